package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/acwstream/acwstream/processor/pipeline"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Default names of the derived topics acwd run publishes.
var derivedTopics = pipeline.DefaultTopics.All()

const devbrokerUsage = `usage: acwd devbroker [--listen HOST:PORT] [--partitions N] [--topic NAME[,NAME…]] [--derived]

Runs an embedded, in-memory Kafka-protocol broker (franz-go's kfake) for
development and tests. It keeps nothing on disk and is NOT for production:
point acwd run at a real Kafka cluster there. Ctrl-C stops it.

flags:
`

// devBrokerMaxMessageBytes is the devbroker's largest accepted batch.
const devBrokerMaxMessageBytes = 16 << 20

// devBrokerConfig describes an embedded broker.
type devBrokerConfig struct {
	Listen     string   // host:port; port 0 picks a free one
	Partitions int      // partitions of each created topic
	Topics     []string // topics to create
}

// startDevBroker starts a one-node kfake cluster listening on cfg.Listen.
// Topics not created up front are auto-created on first use with
// cfg.Partitions partitions. The caller must Close the cluster.
func startDevBroker(cfg devBrokerConfig, extra ...kfake.Opt) (*kfake.Cluster, error) {
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("%w: --partitions must be at least 1, got %d", errUsage, cfg.Partitions)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("%w: --listen %q: %v", errUsage, cfg.Listen, err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.AllowAutoTopicCreation(),
		// Short sessions let tests and demos recover quickly from a killed
		// member (Kafka's own minimum is 6 s).
		kfake.GroupMinSessionTimeout(time.Second),
		// Kafka's default (1 MiB) would refuse the oversized inputs that
		// acwd run must dead-letter, and batches of them.
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(devBrokerMaxMessageBytes)}),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, cfg.Listen) }),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	c, err := kfake.NewCluster(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("devbroker: %w", err)
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runDevbroker(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("devbroker", stderr)
	listen := fs.String("listen", "127.0.0.1:9092", "address to listen on (port 0 picks a free port)")
	partitions := fs.Int("partitions", 12, "partitions of each topic")
	topics := fs.String("topic", pipeline.DefaultInputTopic, "comma-separated topics to create")
	derived := fs.Bool("derived", false, "also create the derived topics "+strings.Join(derivedTopics, ", "))
	fs.Usage = func() { fmt.Fprint(fs.Output(), devbrokerUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := devBrokerConfig{Listen: *listen, Partitions: *partitions, Topics: splitList(*topics)}
	if *derived {
		cfg.Topics = append(cfg.Topics, derivedTopics...)
	}
	c, err := startDevBroker(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "devbroker listening on %s (topics %s, %d partitions each); development and tests only\n",
		strings.Join(c.ListenAddrs(), ","), strings.Join(cfg.Topics, ","), cfg.Partitions)
	<-ctx.Done()
	return nil
}
