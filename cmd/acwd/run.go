package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/acwstream/acwstream/processor"
	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/sink/keyspace"
	"github.com/acwstream/acwstream/sink/metrics"
	"github.com/acwstream/acwstream/sink/redisstore"
	"github.com/acwstream/acwstream/sink/topics"
	"github.com/acwstream/acwstream/sink/wallboard"
)

const runUsage = `usage: acwd run --brokers HOST:PORT[,…] --topic NAME[,…] --group ID --redis redis://HOST:PORT/DB [flags]

Consumes canonical events from Kafka as a member of a consumer group, runs
one engine per assigned partition, writes live metrics and checkpoints to
Redis (exactly-once) and publishes derived topics (at-least-once, stable
ids). SIGTERM or Ctrl-C flushes and checkpoints every partition, leaves the
group and exits 0.

flags:
`

// runFlags holds every setting of acwd run (see settings: default, config
// file, ACW_ environment variable, flag).
type runFlags struct {
	engine          engineFlags
	brokers, topics []string
	group           string
	input           adapterFlags
	start           string
	sessionTimeout  time.Duration
	tls             tlsFlags
	saslMechanism   string
	saslUser        string
	saslPassword    string

	redisURL                  string
	prefix                    string
	tz                        string
	intervalTTL, dayTTL       time.Duration
	last60mTTL                time.Duration
	alertsMaxLen              int
	sharedChunkViews          int
	flush, sharedFlush        time.Duration
	snapshot, shutdownTimeout time.Duration
	idleAfter                 time.Duration
	acceptSettingChanges      bool
	stuckAfter                time.Duration
	onLostCheckpoint          string
	maxMessageBytes           int
	dlqMaxBytes               int
	batchMaxBytes             int

	segments, alerts, intervals, dlq string
	replication                      int

	httpListen          string
	pprof               bool
	access              httpAccess
	logLevel, logFormat string
}

type tlsFlags struct {
	enabled            bool
	ca, cert, key      string
	insecureSkipVerify bool
}

func (f *runFlags) register(ss *settings) {
	f.engine.register(ss)
	// Live, an event is held against its Kafka record's timestamp, so a
	// skewed clock is caught even on an idle partition (see check).
	ss.setDefault("max-future", "5m0s")
	ss.strList(&f.brokers, "brokers", "kafka.brokers", "127.0.0.1:9092", "Kafka bootstrap addresses, comma-separated HOST:PORT", true)
	ss.strList(&f.topics, "topic", "kafka.topics", pipeline.DefaultInputTopic, "input topics, comma-separated (events keyed by agent_id)", true)
	ss.str(&f.group, "group", "kafka.group", "acwstream", "consumer group id; instances with the same id share the partitions")
	f.input.register(ss, "format of the input messages: canonical JSON, or a platform's records read by its adapter")
	ss.str(&f.start, "start", "kafka.start", "earliest", "where a partition without a checkpoint starts", "earliest", "latest")
	ss.dur(&f.sessionTimeout, "session-timeout", "kafka.session_timeout", pipeline.DefaultSessionTimeout.String(), "consumer group session timeout: how long a silent member keeps its partitions (duration)", time.Second)
	ss.boolean(&f.tls.enabled, "kafka-tls", "kafka.tls.enabled", "false", "connect to Kafka over TLS")
	ss.str(&f.tls.ca, "kafka-tls-ca", "kafka.tls.ca_file", "", "PEM file of the CAs that sign the brokers' certificates (default: the system's)")
	ss.str(&f.tls.cert, "kafka-tls-cert", "kafka.tls.cert_file", "", "PEM client certificate, for mutual TLS")
	ss.str(&f.tls.key, "kafka-tls-key", "kafka.tls.key_file", "", "PEM key of the client certificate")
	ss.boolean(&f.tls.insecureSkipVerify, "kafka-tls-insecure", "kafka.tls.insecure_skip_verify", "false", "do not verify the brokers' certificates (testing only)")
	ss.str(&f.saslMechanism, "kafka-sasl", "kafka.sasl.mechanism", "none", "SASL mechanism", "none", "plain", "scram-sha-256", "scram-sha-512")
	ss.str(&f.saslUser, "kafka-sasl-user", "kafka.sasl.username", "", "SASL user name")
	ss.str(&f.saslPassword, "kafka-sasl-password", "kafka.sasl.password", "", "SASL password (prefer the environment variable)").mask = secret

	ss.str(&f.redisURL, "redis", "redis.url", "redis://127.0.0.1:6379/0", "Redis URL: redis://[user:password@]HOST:PORT/DB, or rediss:// for TLS").mask = maskURL
	ss.str(&f.prefix, "prefix", "redis.prefix", keyspace.DefaultPrefix, "prefix of every Redis key and channel")
	ss.str(&f.tz, "tz", "redis.time_zone", "UTC", "IANA time zone of the daily views (acw:…:day:YYYY-MM-DD)")
	ss.dur(&f.intervalTTL, "interval-ttl", "redis.interval_ttl", "48h", "lifetime of interval hashes (duration)", time.Minute)
	ss.dur(&f.dayTTL, "day-ttl", "redis.day_ttl", "192h", "lifetime of daily hashes (duration)", time.Hour)
	ss.dur(&f.last60mTTL, "last60m-ttl", "redis.last60m_ttl", "2h", "lifetime of the rolling last-60-minutes hashes (duration)", time.Hour)
	ss.num(&f.alertsMaxLen, "alerts-max-len", "redis.alerts_max_len", "100000", "approximate cap of the acw:alerts stream (entries)", 100)
	ss.num(&f.sharedChunkViews, "shared-chunk-views", "redis.shared_chunk_views", "256", "most team, queue and centre views the shared writer writes in one Redis script; a larger round goes in several, so Redis is never held long", 1)

	ss.dur(&f.flush, "flush-interval", "pipeline.flush_interval", pipeline.DefaultFlushInterval.String(), "how often each partition flushes agent keys, alerts and its checkpoint to Redis (duration)", time.Millisecond)
	ss.dur(&f.sharedFlush, "shared-flush-interval", "pipeline.shared_flush_interval", pipeline.DefaultSharedFlushInterval.String(), "how often a partition's flush also logs its team, queue and center updates for the shared writer (duration)", time.Millisecond)
	ss.dur(&f.snapshot, "snapshot-interval", "pipeline.snapshot_interval", pipeline.DefaultSnapshotInterval.String(), "how often a flush carries a full engine snapshot; recovery re-reads from it (duration)", 100*time.Millisecond)
	ss.dur(&f.idleAfter, "idle-after", "pipeline.idle_after", pipeline.DefaultIdleAfter.String(), "how long a caught-up partition sees no message before its watermark follows the wall clock (duration)", time.Millisecond)
	ss.num(&f.maxMessageBytes, "max-message-bytes", "pipeline.max_message_bytes", strconv.Itoa(pipeline.DefaultMaxMessageBytes), "input messages larger than this go to the DLQ unread (bytes)", 1024)
	ss.num(&f.batchMaxBytes, "batch-max-bytes", "pipeline.batch_max_bytes", strconv.Itoa(pipeline.DefaultBatchMaxBytes), "derived records (keys and values) a partition gathers before it flushes; past it the partition applies nothing more until it can flush, which bounds its memory while draining a backlog (bytes)", 1024)
	ss.str(&f.onLostCheckpoint, "on-lost-checkpoint", "pipeline.on_lost_checkpoint", "fail", "what a partition does when Kafka has committed offsets for the group but Redis has no checkpoint (Redis was emptied): fail leaves it unprocessed and /readyz false; rebuild recomputes it from the earliest offset Kafka holds, marking its derived records", "fail", "rebuild")
	ss.dur(&f.stuckAfter, "stuck-after", "pipeline.stuck_after", pipeline.DefaultStuckAfter.String(), "report (metric acw_stuck_states, a log line) an agent held in one call state longer than this, in event time: a record that ends it was probably lost (duration)", time.Minute)
	ss.boolean(&f.acceptSettingChanges, "accept-setting-changes", "pipeline.accept_setting_changes", "false", "start even though settings the checkpoints depend on (thresholds, max_out_of_order, …; never window or input format) differ from those they were written with, and record the new values")
	ss.dur(&f.shutdownTimeout, "shutdown-timeout", "pipeline.shutdown_timeout", pipeline.DefaultFinalFlushTimeout.String(), "on SIGTERM, how long flushing and checkpointing every partition may take before exiting (duration)", time.Second)

	ss.str(&f.segments, "segments-topic", "topics.segments", pipeline.DefaultTopics.Segments, "derived topic of closed wrap-ups")
	ss.str(&f.alerts, "alerts-topic", "topics.alerts", pipeline.DefaultTopics.Alerts, "derived topic of overrun and resolved alerts")
	ss.str(&f.intervals, "intervals-topic", "topics.intervals", pipeline.DefaultTopics.Intervals, "derived topic of closed intervals")
	ss.str(&f.dlq, "dlq-topic", "topics.dlq", pipeline.DefaultTopics.DLQ, "dead-letter topic of rejected input messages")
	ss.num(&f.dlqMaxBytes, "dlq-max-bytes", "topics.dlq_max_bytes", strconv.Itoa(pipeline.DefaultDLQMaxBytes), "largest dead-letter record (key, value, headers); a longer value is cut to fit, with headers original_size and sha256 (bytes; keep it under the DLQ topic's max.message.bytes)", 1024)
	ss.num(&f.replication, "topics-replication", "topics.replication_factor", "1", "replication factor of derived topics acwd creates (use 3 on a production cluster)", 1)

	ss.str(&f.httpListen, "http", "http.listen", ":8080", "HTTP address of /metrics, /healthz, /readyz and the wallboard; empty to disable")
	ss.boolean(&f.pprof, "pprof", "http.pprof", "false", "also serve Go's profiles at /debug/pprof/ on the HTTP address (for diagnosis; they show internals)")
	ss.str(&f.access.token, "http-token", "http.token", "", "bearer token required by the wallboard and its API (Authorization: Bearer …); prefer the environment variable").mask = secret
	ss.str(&f.access.user, "http-user", "http.user", "", "basic-auth user required by the wallboard and its API (with --http-password)")
	ss.str(&f.access.password, "http-password", "http.password", "", "basic-auth password (prefer the environment variable)").mask = secret
	ss.boolean(&f.access.protectOps, "http-protect-ops", "http.protect_ops", "false", "also require the token or credentials on /metrics, /healthz and /readyz (Prometheus and probes must then send them)")
	ss.str(&f.logLevel, "log-level", "log.level", "info", "log level", "debug", "info", "warn", "error")
	ss.str(&f.logFormat, "log-format", "log.format", "json", "log format", "json", "console")
}

// secretFlags are the flags whose values are secrets: masked in config
// check, in pprof's command line and in errors.
var secretFlags = []string{"redis", "kafka-sasl-password", "http-token", "http-password"}

// maskURL hides the password of a URL (also of one that does not parse).
func maskURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return maskURLText(v)
	}
	if u.User == nil {
		return v
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}

// runConfig is what runFlags turn into once checked as a whole.
type runConfig struct {
	engine    processor.Config
	start     int64
	loc       *time.Location
	redis     *redis.Options
	dialer    *kafka.Dialer
	transport *kafka.Transport
}

// check validates the settings together and builds what run needs. Every
// error names the setting.
func (f *runFlags) check() (*runConfig, error) {
	rc := &runConfig{}
	var err error
	if rc.engine, err = f.engine.config(&f.input); err != nil {
		return nil, err
	}
	rc.engine.MaxFutureByArrival = true
	if f.group == "" {
		return nil, fmt.Errorf("%w: --group (kafka.group) must not be empty", errConfig)
	}
	rc.start = kafka.FirstOffset
	if f.start == "latest" {
		rc.start = kafka.LastOffset
	}
	if rc.loc, err = time.LoadLocation(f.tz); err != nil {
		return nil, fmt.Errorf("%w: --tz (redis.time_zone) %q: want an IANA zone such as UTC or Europe/Paris: %v", errConfig, f.tz, err)
	}
	if rc.redis, err = redis.ParseURL(f.redisURL); err != nil {
		// The parse error quotes the URL, password and all.
		msg := strings.ReplaceAll(err.Error(), f.redisURL, maskURL(f.redisURL))
		return nil, fmt.Errorf("%w: --redis (redis.url) %q: %v", errConfig, maskURL(f.redisURL), maskURLText(msg))
	}
	if f.prefix == "" {
		return nil, fmt.Errorf("%w: --prefix (redis.prefix) must not be empty", errConfig)
	}
	for name, t := range map[string]string{"--segments-topic": f.segments, "--alerts-topic": f.alerts, "--intervals-topic": f.intervals, "--dlq-topic": f.dlq} {
		if t == "" {
			return nil, fmt.Errorf("%w: %s must not be empty", errConfig, name)
		}
	}
	if (f.access.user == "") != (f.access.password == "") {
		return nil, fmt.Errorf("%w: --http-user (http.user) and --http-password (http.password) go together", errConfig)
	}
	if f.access.protectOps && !f.access.enabled() {
		return nil, fmt.Errorf("%w: --http-protect-ops (http.protect_ops) needs --http-token or --http-user and --http-password", errConfig)
	}
	if f.sharedFlush < f.flush {
		return nil, fmt.Errorf("%w: --shared-flush-interval (%s) must not be shorter than --flush-interval (%s)", errConfig, f.sharedFlush, f.flush)
	}
	tlsCfg, err := f.tls.config()
	if err != nil {
		return nil, err
	}
	mech, err := saslMechanism(f.saslMechanism, f.saslUser, f.saslPassword)
	if err != nil {
		return nil, err
	}
	rc.dialer = &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}
	rc.transport = &kafka.Transport{TLS: tlsCfg, SASL: mech}
	return rc, nil
}

// config builds the TLS configuration (nil when TLS is off).
func (t *tlsFlags) config() (*tls.Config, error) {
	if !t.enabled {
		if t.ca != "" || t.cert != "" || t.key != "" {
			return nil, fmt.Errorf("%w: --kafka-tls-ca/-cert/-key are set but --kafka-tls (kafka.tls.enabled) is false", errConfig)
		}
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.insecureSkipVerify}
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return nil, fmt.Errorf("%w: --kafka-tls-ca (kafka.tls.ca_file): %v", errConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: --kafka-tls-ca (kafka.tls.ca_file) %s: no PEM certificate in it", errConfig, t.ca)
		}
		c.RootCAs = pool
	}
	if (t.cert == "") != (t.key == "") {
		return nil, fmt.Errorf("%w: --kafka-tls-cert and --kafka-tls-key (kafka.tls.cert_file, key_file) go together", errConfig)
	}
	if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, fmt.Errorf("%w: --kafka-tls-cert/--kafka-tls-key: %v", errConfig, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// saslMechanism returns the kafka-go SASL mechanism (nil for none).
func saslMechanism(name, user, password string) (sasl.Mechanism, error) {
	if name == "none" {
		if user != "" || password != "" {
			return nil, fmt.Errorf("%w: a SASL user or password is set but --kafka-sasl (kafka.sasl.mechanism) is none", errConfig)
		}
		return nil, nil
	}
	if user == "" || password == "" {
		return nil, fmt.Errorf("%w: --kafka-sasl %s needs --kafka-sasl-user and --kafka-sasl-password (kafka.sasl.username, kafka.sasl.password)", errConfig, name)
	}
	switch name {
	case "plain":
		return plain.Mechanism{Username: user, Password: password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, user, password)
	default:
		return scram.Mechanism(scram.SHA512, user, password)
	}
}

func newLogger(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errConfig, level)
	}
	// Partitions log from their own goroutines: one write at a time, even
	// to a writer that is not safe for concurrent use.
	w = zerolog.SyncWriter(w)
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Nop(), fmt.Errorf("%w: --log-format %q: want json or console", errConfig, format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func runRun(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var f runFlags
	var ss settings
	f.register(&ss)
	fs.Usage = func() { fmt.Fprint(fs.Output(), runUsage); fs.PrintDefaults() }
	if err := parseSettings(fs, &ss, args); err != nil {
		return err
	}
	rc, err := f.check()
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, &f, rc, log, service{})
}

// wrapPublisher, when set (by tests), wraps the derived topics'
// publisher of the runs started after it.
var wrapPublisher func(pipeline.Publisher) pipeline.Publisher

// service holds what acwd demo changes about a run: the clock and a
// callback with the bound HTTP address. The zero value is acwd run's.
type service struct {
	// now is the pipeline's wall clock and the wallboard's event-time
	// clock (default time.Now); rate is how fast it runs against the real
	// one (default 1).
	now  func() time.Time
	rate float64
	// listening, if set, is called with the HTTP address once bound.
	listening func(addr string)
	// owner is the name bound to the Redis prefix (default the group).
	owner string
}

// bindPrefix binds the Redis prefix to owner (see redisstore.Store.Bind),
// retrying while Redis is unreachable (capped exponential backoff, logged
// once); a prefix bound to another group is a configuration error. It
// returns nil without binding when ctx ends first.
func bindPrefix(ctx context.Context, store *redisstore.Store, owner string, log zerolog.Logger) error {
	b, failing := pipeline.NewBackoff(5*time.Second), false
	for {
		err := store.Bind(ctx, owner)
		switch {
		case err == nil:
			if failing {
				log.Info().Msg("Redis is reachable again")
			}
			return nil
		case errors.Is(err, redisstore.ErrPrefixInUse):
			return fmt.Errorf("%w: %v", errConfig, err)
		case !failing:
			failing = true
			log.Warn().Err(err).Msg("Redis unreachable at start; retrying")
		}
		if !b.Wait(ctx) {
			return nil
		}
	}
}

// checkpointSettings are the settings a checkpoint depends on, by config
// key: restored under other values, the messages re-read after its
// snapshot would be processed under the new ones, and the results would
// not be those of one run.
func checkpointSettings(f *runFlags, rc *runConfig) map[string]string {
	e := rc.engine
	m := map[string]string{
		"engine.window":               e.Window.String(),
		"engine.max_out_of_order":     e.MaxOutOfOrder.String(),
		"engine.dedup_horizon":        e.DedupHorizon.String(),
		"engine.agent_idle_timeout":   e.AgentIdleTimeout.String(),
		"engine.max_future":           e.MaxFuture.String(),
		"engine.max_acw":              e.MaxACW.String(),
		"engine.uncoded_dispositions": strings.Join(e.UncodedDispositions, ","),
		"engine.thresholds":           fmt.Sprintf("warn %s overrun %s teams %v queues %v", e.Default.Warn, e.Default.Overrun, e.ByTeam, e.ByQueue),
		"kafka.input_format":          f.input.format,
		"redis.time_zone":             f.tz,
	}
	if a := f.input.settings(); a != "" {
		m["adapters."+f.input.format] = a
	}
	return m
}

// unmigratable settings cannot change under existing checkpoints at all:
// a snapshot of another window or input format cannot be restored.
var unmigratable = []string{"engine.window", "kafka.input_format"}

// checkSettings refuses to start when a setting the prefix's checkpoints
// depend on has changed (see redisstore.Store.CheckSettings), unless
// --accept-setting-changes allows it.
func checkSettings(ctx context.Context, store *redisstore.Store, f *runFlags, rc *runConfig, log zerolog.Logger) error {
	settings := checkpointSettings(f, rc)
	err := store.CheckSettings(ctx, settings, false)
	if ctx.Err() != nil {
		return nil // stopped before it could check: nothing runs
	}
	var se *redisstore.SettingsError
	if !errors.As(err, &se) {
		return err
	}
	hard := false
	for _, c := range se.Changes {
		hard = hard || slices.Contains(unmigratable, c.Name)
	}
	if f.acceptSettingChanges && !hard {
		log.Warn().Err(err).Msg("settings changed under existing checkpoints; recording the new values (--accept-setting-changes)")
		return store.CheckSettings(ctx, settings, true)
	}
	way := "run with the recorded values, or start the new ones under a new --prefix and --group (the old results stay as they are)"
	if !hard {
		way += ", or give --accept-setting-changes to record the new values (the messages re-read after each partition's last snapshot are then processed under the new ones)"
	}
	return fmt.Errorf("%w: %v: %s", errConfig, err, way)
}

// serve runs the pipeline, the HTTP endpoints and the wallboard until ctx
// ends, then flushes and checkpoints every partition (bounded by
// --shutdown-timeout).
func serve(ctx context.Context, f *runFlags, rc *runConfig, log zerolog.Logger, svc service) error {
	if svc.now == nil {
		svc.now = time.Now
	}
	m := metrics.New(version)
	m.SetInputFormat(f.input.format)
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{log}) })
	rdb := redis.NewClient(rc.redis)
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Config{Prefix: f.prefix, Group: f.group, Window: rc.engine.Window,
		IntervalTTL: f.intervalTTL, DayTTL: f.dayTTL, Last60mTTL: f.last60mTTL, AlertsMaxLen: int64(f.alertsMaxLen), SharedChunkViews: f.sharedChunkViews})
	if err != nil {
		return err
	}
	defer store.Close()
	derived := pipeline.Topics{Segments: f.segments, Alerts: f.alerts, Intervals: f.intervals, DLQ: f.dlq}
	if err := ensureDerived(ctx, rc.dialer, f.brokers, f.topics[0], f.replication, derived.All()); err != nil {
		log.Warn().Err(err).Msg("could not create the derived topics; relying on auto-creation")
	}
	tp := topics.New(topics.Config{Brokers: f.brokers, Transport: rc.transport})
	defer tp.Close()
	var pub pipeline.Publisher = tp
	if wrapPublisher != nil {
		pub = wrapPublisher(pub)
	}
	p, err := pipeline.New(pipeline.Config{
		Brokers: f.brokers, Topics: f.topics, Group: f.group, StartOffset: rc.start, Dialer: rc.dialer,
		Engine: rc.engine, Derived: derived, Location: rc.loc,
		FlushInterval: f.flush, SharedFlushInterval: f.sharedFlush, SnapshotInterval: f.snapshot, MaxMessageBytes: f.maxMessageBytes, DLQMaxBytes: f.dlqMaxBytes, BatchMaxBytes: f.batchMaxBytes,
		FinalFlushTimeout: f.shutdownTimeout, IdleAfter: f.idleAfter, OnLostCheckpoint: f.onLostCheckpoint, StuckAfter: f.input.stuckAfter(f.stuckAfter),
		SessionTimeout: f.sessionTimeout, RebalanceTimeout: f.sessionTimeout,
		HeartbeatInterval: min(time.Second, f.sessionTimeout/5),
		Store:             store, Publisher: pub, Log: log, Observer: m, Now: svc.now,
		NewAdapter: f.input.factory(),
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	if f.httpListen != "" {
		board, err := wallboard.New(wallboard.Config{Redis: rdb, Prefix: f.prefix, Window: rc.engine.Window, Location: rc.loc,
			Now: func() int64 { return svc.now().UnixMilli() }, Rate: svc.rate, Log: log})
		if err != nil {
			return err
		}
		bctx, stopBoard := context.WithCancel(ctx)
		defer stopBoard()
		go board.Run(bctx)
		h := m.Handler(func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, board.Handler())
		if f.pprof {
			h = withPprof(h, secretFlags)
		}
		h = guard(h, f.access)
		srv, addr, err := serveHTTP(f.httpListen, h)
		if err != nil {
			return fmt.Errorf("%w: --http (http.listen) %s: %v", errConfig, f.httpListen, err)
		}
		defer srv.Close()
		log.Info().Str("addr", addr).Msg("serving the wallboard at /, and /metrics, /healthz and /readyz")
		if host, _, _ := net.SplitHostPort(addr); !f.access.enabled() && !net.ParseIP(host).IsLoopback() {
			log.Warn().Str("addr", addr).Msg("the wallboard and /api/state (every agent's state) are open to anyone who can reach this address: set --http-token or --http-user/--http-password, and put TLS in front (see README, HTTP endpoints)")
		}
		if svc.listening != nil {
			svc.listening(addr)
		}
	}
	owner := svc.owner
	if owner == "" {
		owner = f.group
	}
	if err := bindPrefix(ctx, store, owner, log); err != nil {
		return err
	}
	if err := checkSettings(ctx, store, f, rc, log); err != nil {
		return err
	}
	log.Info().Strs("brokers", f.brokers).Strs("topics", f.topics).Str("group", f.group).Str("version", version).Msg("acwd run starting")
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info().Dur("timeout", f.shutdownTimeout).Msg("stopping: flushing and checkpointing every partition")
		select {
		case err = <-errc:
		case <-time.After(f.shutdownTimeout + 2*time.Second):
			log.Error().Msg("shutdown timed out; exiting with partitions not checkpointed (their next owner resumes from the last checkpoint)")
			return fmt.Errorf("shutdown took longer than --shutdown-timeout %s", f.shutdownTimeout)
		}
	}
	log.Info().Msg("acwd run stopped")
	return err
}

// redisLogger sends go-redis's own messages (connection pool retries) to
// the log at debug level: the pipeline already logs failures once per
// state change.
type redisLogger struct{ log zerolog.Logger }

// redisLogOnce: go-redis's logger is process-wide; the first run sets it.
var redisLogOnce sync.Once

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Str("component", "go-redis").Msgf(format, v...)
}

// serveHTTP listens on addr and serves h in the background; it returns
// the server and the address actually bound (for port 0).
func serveHTTP(addr string, h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, ln.Addr().String(), nil
}

// ensureDerived creates the derived topics with as many partitions as the
// first input topic (at least one).
func ensureDerived(ctx context.Context, dialer *kafka.Dialer, brokers []string, input string, replication int, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := topics.Partitions(ctx, dialer, brokers, input)
	if err != nil {
		return err
	}
	return topics.Ensure(ctx, dialer, brokers, max(n, 1), replication, names...)
}
