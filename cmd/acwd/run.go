package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/acwstream/acwstream/sink/redisstore"
	"github.com/acwstream/acwstream/sink/topics"
)

const runUsage = `usage: acwd run --brokers HOST:PORT[,…] --topic NAME[,…] --group ID --redis redis://HOST:PORT/DB [flags]

Consumes canonical events from Kafka as a member of a consumer group, runs
one engine per assigned partition, writes live metrics and checkpoints to
Redis (exactly-once) and publishes derived topics (at-least-once, stable
ids). SIGTERM or Ctrl-C flushes and checkpoints every partition, leaves the
group and exits 0.

flags:
`

type runFlags struct {
	engine                       engineFlags
	brokers, topic               string
	group, redisURL              string
	start                        string
	prefix                       string
	tz                           string
	flush, sharedFlush, snapshot time.Duration
	segments, alerts             string
	intervals, dlq               string
	maxMessageBytes              int
	logLevel                     string
	logFormat                    string
	shutdownTimeout              time.Duration
	sessionTimeout               time.Duration
}

func (f *runFlags) register(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	IntVar(*int, string, int, string)
}) {
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap addresses")
	fs.StringVar(&f.topic, "topic", "acw.events", "comma-separated input topics (canonical events keyed by agent_id)")
	fs.StringVar(&f.group, "group", "acwstream", "consumer group id")
	fs.StringVar(&f.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL (redis:// or rediss:// for TLS, with password and DB)")
	fs.StringVar(&f.start, "start", "earliest", "where a partition without a checkpoint starts: earliest or latest")
	fs.StringVar(&f.prefix, "prefix", "acw", "prefix of every Redis key and channel")
	fs.StringVar(&f.tz, "tz", "UTC", "IANA time zone of the daily views")
	fs.DurationVar(&f.flush, "flush-interval", 100*time.Millisecond, "how often each partition flushes agent keys, alerts and its checkpoint to Redis")
	fs.DurationVar(&f.sharedFlush, "shared-flush-interval", time.Second, "how often each partition's flush also updates the team, queue and center keys")
	fs.DurationVar(&f.snapshot, "snapshot-interval", 5*time.Second, "how often a flush carries a full engine snapshot (recovery re-reads from it)")
	fs.StringVar(&f.segments, "segments-topic", "acw.segments", "derived topic of closed wrap-ups")
	fs.StringVar(&f.alerts, "alerts-topic", "acw.alerts", "derived topic of overrun and resolved alerts")
	fs.StringVar(&f.intervals, "intervals-topic", "acw.intervals", "derived topic of closed intervals")
	fs.StringVar(&f.dlq, "dlq-topic", "acw.dlq", "dead-letter topic of rejected input messages")
	fs.IntVar(&f.maxMessageBytes, "max-message-bytes", 1<<20, "input messages larger than this (bytes) are dead-lettered unread")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or console")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", 10*time.Second, "consumer group session timeout: how long a silent member keeps its partitions")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long the final flush of each partition may take on shutdown")
}

func newLogger(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Nop(), fmt.Errorf("%w: --log-format %q: want json or console", errUsage, format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func runRun(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var f runFlags
	f.engine.register(fs)
	f.register(fs)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	eng, err := f.engine.build(fs)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	var start int64
	switch f.start {
	case "earliest":
		start = kafka.FirstOffset
	case "latest":
		start = kafka.LastOffset
	default:
		return fmt.Errorf("%w: --start %q: want earliest or latest", errUsage, f.start)
	}
	loc, err := time.LoadLocation(f.tz)
	if err != nil {
		return fmt.Errorf("%w: --tz %q: %v", errUsage, f.tz, err)
	}
	brokers, inputs := splitList(f.brokers), splitList(f.topic)
	if len(brokers) == 0 || len(inputs) == 0 || f.group == "" {
		return fmt.Errorf("%w: --brokers, --topic and --group must not be empty", errUsage)
	}
	ropt, err := redis.ParseURL(f.redisURL)
	if err != nil {
		return fmt.Errorf("%w: --redis %q: %v", errUsage, f.redisURL, err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Config{Prefix: f.prefix, Group: f.group, Window: eng.Window})
	if err != nil {
		return err
	}
	derived := pipeline.Topics{Segments: f.segments, Alerts: f.alerts, Intervals: f.intervals, DLQ: f.dlq}
	if err := ensureDerived(ctx, brokers, inputs[0], derived.All()); err != nil {
		log.Warn().Err(err).Msg("could not create the derived topics; relying on auto-creation")
	}
	pub := topics.New(topics.Config{Brokers: brokers})
	defer pub.Close()
	p, err := pipeline.New(pipeline.Config{
		Brokers: brokers, Topics: inputs, Group: f.group, StartOffset: start,
		Engine: eng, Derived: derived, Location: loc,
		FlushInterval: f.flush, SharedFlushInterval: f.sharedFlush, SnapshotInterval: f.snapshot, MaxMessageBytes: f.maxMessageBytes,
		FinalFlushTimeout: f.shutdownTimeout,
		SessionTimeout:    f.sessionTimeout, RebalanceTimeout: f.sessionTimeout,
		HeartbeatInterval: min(time.Second, f.sessionTimeout/5),
		Store:             store, Publisher: pub, Log: log,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log.Info().Strs("brokers", brokers).Strs("topics", inputs).Str("group", f.group).Msg("acwd run starting")
	err = p.Run(ctx)
	log.Info().Msg("acwd run stopped")
	return err
}

// ensureDerived creates the derived topics with as many partitions as the
// first input topic (at least one).
func ensureDerived(ctx context.Context, brokers []string, input string, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := topics.Partitions(ctx, nil, brokers, input)
	if err != nil {
		return err
	}
	return topics.Ensure(ctx, nil, brokers, max(n, 1), 1, names...)
}
