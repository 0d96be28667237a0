package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestDevbrokerServesKafkaGoConsumerGroups checks the property the pipeline
// and its tests rely on: kafka-go, over TCP, can create, produce to and
// consume with a consumer group from the embedded broker.
func TestDevbrokerServesKafkaGoConsumerGroups(t *testing.T) {
	c, err := startDevBroker(devBrokerConfig{Listen: "127.0.0.1:0", Partitions: 12, Topics: append([]string{"in"}, derivedTopics...)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, err := kafka.DialContext(ctx, "tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range append([]string{"in"}, derivedTopics...) {
		parts, err := conn.ReadPartitions(topic)
		if err != nil || len(parts) != 12 {
			t.Fatalf("topic %s: %d partitions, %v", topic, len(parts), err)
		}
	}
	conn.Close()

	w := &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: "in", Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	const n = 300
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint("agent-", i%37)), Value: []byte(fmt.Sprint(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "test", Brokers: addrs, Topics: []string{"in"}, StartOffset: kafka.FirstOffset,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gen, err := g.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, n)
	assigned := 0
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			assigned++
			gen.Start(func(ctx context.Context) {
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: topic, Partition: p.ID, MaxWait: 50 * time.Millisecond})
				defer r.Close()
				if err := r.SetOffset(kafka.FirstOffset); err != nil {
					return
				}
				for {
					m, err := r.FetchMessage(ctx)
					if err != nil {
						return
					}
					got <- fmt.Sprintf("%d:%s", p.ID, m.Key)
				}
			})
		}
	}
	if assigned != 12 {
		t.Fatalf("one member was assigned %d partitions, want 12", assigned)
	}
	partitionOf := map[string]string{}
	for i := 0; i < n; i++ {
		select {
		case s := <-got:
			var part int
			var key string
			fmt.Sscanf(s, "%d:%s", &part, &key)
			if prev, ok := partitionOf[key]; ok && prev != fmt.Sprint(part) {
				t.Fatalf("key %s on partitions %s and %d: keys must stick to one partition", key, prev, part)
			}
			partitionOf[key] = fmt.Sprint(part)
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d", i, n)
		}
	}
}
