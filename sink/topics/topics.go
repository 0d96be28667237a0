// Package topics publishes acwstream's derived records to Kafka with
// kafka-go: all in-sync replicas acknowledge every write (RequireAll), and
// messages are spread by hashing their key, so one agent's records keep
// their order on one partition.
package topics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/acwstream/acwstream/processor/pipeline"
)

// Publisher is a pipeline.Publisher on a kafka-go Writer; safe for
// concurrent use.
type Publisher struct {
	w *kafka.Writer
}

// Config configures a Publisher.
type Config struct {
	Brokers []string
	// Transport carries TLS and SASL settings; nil uses kafka-go's default.
	Transport *kafka.Transport
	// BatchTimeout bounds how long a write waits to fill a batch;
	// default 5ms.
	BatchTimeout time.Duration
	// MaxMessageBytes is the largest batch in bytes; default 16 MiB (DLQ
	// messages carry oversized inputs).
	MaxMessageBytes int64
}

// New returns a Publisher. Close it when done.
func New(cfg Config) *Publisher {
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 5 * time.Millisecond
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 16 << 20
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: cfg.BatchTimeout,
		// kafka-go allocates room for BatchSize messages with every
		// batch; a flush sends a few records per topic partition, so a
		// large value costs CPU (and GC) for nothing.
		BatchSize:              128,
		BatchBytes:             cfg.MaxMessageBytes,
		AllowAutoTopicCreation: true,
		MaxAttempts:            3,
	}
	if cfg.Transport != nil {
		w.Transport = cfg.Transport
	}
	return &Publisher{w: w}
}

// Publish writes msgs (each naming its topic) and returns once all are
// acknowledged.
func (p *Publisher) Publish(ctx context.Context, msgs []kafka.Message) error {
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		if refused(err) {
			return fmt.Errorf("publishing %d derived records: %w: %w", len(msgs), pipeline.ErrRefused, err)
		}
		return fmt.Errorf("publishing %d derived records: %w", len(msgs), err)
	}
	return nil
}

// refused reports whether err holds a Kafka error that retrying does not
// fix (kafka.Error's Temporary is false: a record too large for its
// topic, an authorization failure, an invalid topic).
func refused(err error) bool {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && refused(e) {
				return true
			}
		}
		return false
	}
	var kerr kafka.Error
	return errors.As(err, &kerr) && !kerr.Temporary()
}

// Close flushes and closes the writer.
func (p *Publisher) Close() error { return p.w.Close() }

// Ensure creates the topics that do not exist yet, with the given number
// of partitions and replication factor, through the cluster's controller.
func Ensure(ctx context.Context, dialer *kafka.Dialer, brokers []string, partitions, replication int, topics ...string) error {
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	var conn *kafka.Conn
	var err error
	for _, b := range brokers {
		if conn, err = dialer.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("finding the Kafka controller: %w", err)
	}
	cc, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("connecting to the Kafka controller: %w", err)
	}
	defer cc.Close()
	for _, t := range topics {
		err := cc.CreateTopics(kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replication})
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	return nil
}

// Partitions returns how many partitions topic has (0 if it does not exist).
func Partitions(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string) (int, error) {
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	var err error
	for _, b := range brokers {
		var conn *kafka.Conn
		if conn, err = dialer.DialContext(ctx, "tcp", b); err != nil {
			continue
		}
		parts, perr := conn.ReadPartitions(topic)
		conn.Close()
		if perr != nil {
			if errors.Is(perr, kafka.UnknownTopicOrPartition) {
				return 0, nil
			}
			return 0, perr
		}
		return len(parts), nil
	}
	return 0, fmt.Errorf("connecting to Kafka: %w", err)
}
