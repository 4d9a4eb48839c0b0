//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/ingest"
)

// TestMain deletes the Kafka topics this run's tests made once they are
// done. Left behind, every `make test` on a developer's machine added a few
// hundred partitions to the dev broker: over 3,100 partition directories
// and 11 GB after a day, which the benchmarks run on that broker share.
func TestMain(m *testing.M) {
	start := time.Now().Unix()
	code := m.Run()
	if broker := os.Getenv("CORRELATORD_TEST_KAFKA"); broker != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := deleteTestTopics(ctx, broker, start)
		cancel()
		if err != nil {
			// Not a test failure: the topics only take room.
			fmt.Fprintf(os.Stderr, "deleting this run's test topics: %v\n", err)
		}
	}
	os.Exit(code)
}

// testTopicName matches the names randomName makes, with what the daemon
// derives from them (".dlq", ".keyed", ".state"): the second a name was made
// is its first group.
var testTopicName = regexp.MustCompile(`^[a-z0-9_]+?_(\d{10})_\d{6}(\..*)?$`)

// deleteTestTopics deletes the topics randomName named at or after since
// (unix seconds).
func deleteTestTopics(ctx context.Context, broker string, since int64) error {
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 30 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var topics []string
	for _, t := range meta.Topics {
		m := testTopicName.FindStringSubmatch(t.Name)
		if m == nil {
			continue
		}
		if made, err := strconv.ParseInt(m[1], 10, 64); err == nil && made >= since {
			topics = append(topics, t.Name)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	return ingest.DeleteTopics(ctx, ingest.KafkaConfig{Brokers: []string{broker}, DialTimeout: 30 * time.Second}, topics)
}
