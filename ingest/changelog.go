package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Changelog is a compacted topic holding the state of the partitioned
// stage: partition p of the changelog holds the state of partition p of the
// keyed topic, as keyed records of which compaction keeps the latest.
type Changelog struct {
	cfg    KafkaConfig
	topic  string
	writer *kafka.Writer
	dialer *kafka.Dialer
	logger *zap.Logger
}

// ChangelogRecord is one record; a nil Value is a tombstone.
type ChangelogRecord struct {
	Key   []byte
	Value []byte
}

// ChangelogTopicConfigs are the topic settings the changelog is created
// with: compacted, and messages large enough for a big incident's state.
var ChangelogTopicConfigs = map[string]string{
	"cleanup.policy":    "compact",
	"max.message.bytes": strconv.Itoa(changelogMaxBytes),
	// Compact soon after a segment rolls, so a restore reads little more
	// than the live state.
	"min.cleanable.dirty.ratio": "0.1",
	"segment.ms":                strconv.Itoa(int(time.Hour / time.Millisecond)),
}

// changelogMaxBytes bounds one changelog record batch.
const changelogMaxBytes = 64 << 20

// changelogBatchMessages is the most records in one produce request. It was
// once 1<<20 so that a checkpoint was one batch; kafka-go preallocates a
// batch's message slice, and 170 MB zeroed per checkpoint was a quarter of
// the daemon's CPU in a storm.
const changelogBatchMessages = 4096

// NewChangelog returns the changelog on topic.
func NewChangelog(cfg KafkaConfig, topic string, logger *zap.Logger) (*Changelog, error) {
	d, err := NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	l := logger.With(zap.String("component", "kafka-go"), zap.String("topic", topic))
	w := &kafka.Writer{
		Addr:      kafka.TCP(cfg.Brokers...),
		Topic:     topic,
		Transport: newTransport(cfg, d),
		// Records go to the partition they name: the keyed topic's.
		Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
		RequiredAcks: kafka.RequireAll,
		// kafka-go allocates room for BatchSize messages with every batch:
		// a checkpoint of more records goes out in several batches, in
		// order (one batch in flight per partition), and Write sends the
		// progress marker on its own after them.
		BatchSize:    changelogBatchMessages,
		BatchBytes:   changelogMaxBytes,
		BatchTimeout: time.Millisecond,
		Compression:  kafka.Lz4,
		MaxAttempts:  10,
		Logger:       kafka.LoggerFunc(l.Sugar().Debugf),
		ErrorLogger:  kafka.LoggerFunc(l.Sugar().Warnf),
	}
	return &Changelog{cfg: cfg, topic: topic, writer: w, dialer: d, logger: logger}, nil
}

// Topic returns the changelog's topic.
func (c *Changelog) Topic() string { return c.topic }

// Close closes the writer.
func (c *Changelog) Close() error { return c.writer.Close() }

// Write appends records to partition and returns once every in-sync
// replica has them. The caller puts its progress marker last. Write sends
// the last record only after all others are acknowledged: a checkpoint
// spans several batches, and a failed batch must not be followed by the
// marker that claims it. A write cut short thus leaves the marker of the
// previous checkpoint as the latest.
func (c *Changelog) Write(ctx context.Context, partition int, records []ChangelogRecord) error {
	if len(records) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(records))
	for i, r := range records {
		msgs[i] = kafka.Message{Partition: partition, Key: r.Key, Value: r.Value}
	}
	last := len(msgs) - 1
	if last > 0 {
		if err := c.writer.WriteMessages(ctx, msgs[:last]...); err != nil {
			return fmt.Errorf("write %d records to changelog %s partition %d: %w", last, c.topic, partition, err)
		}
	}
	if err := c.writer.WriteMessages(ctx, msgs[last]); err != nil {
		return fmt.Errorf("write the last of %d records to changelog %s partition %d: %w", len(records), c.topic, partition, err)
	}
	return nil
}

// Read calls fn with every record of partition, oldest first, up to the
// partition's end when Read started. Tombstones have a nil Value.
func (c *Changelog) Read(ctx context.Context, partition int, fn func(ChangelogRecord) error) error {
	first, last, err := c.bounds(ctx, partition)
	if err != nil {
		return err
	}
	if last <= first {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.cfg.Brokers, Topic: c.topic, Partition: partition, Dialer: c.dialer,
		MinBytes: 1, MaxBytes: changelogMaxBytes, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read changelog %s partition %d: %w", c.topic, partition, err)
		}
		v := m.Value
		if len(v) == 0 {
			v = nil
		}
		if err := fn(ChangelogRecord{Key: m.Key, Value: v}); err != nil {
			return err
		}
		// Compaction leaves gaps in the offsets: stop at the last one
		// below the end seen at the start.
		if m.Offset >= last-1 {
			return nil
		}
	}
}

// bounds returns the first offset and the end offset (the next to be
// written) of partition, from its leader.
func (c *Changelog) bounds(ctx context.Context, partition int) (first, last int64, err error) {
	// A changelog created moments ago (the first start of an instance)
	// may have no leader yet for a while: wait for one rather than fail
	// the restore, which ended the whole generation and left the group
	// rebalancing for seconds in the middle of a storm.
	deadline := time.Now().Add(changelogLeaderWait)
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, time.Second) {
		first, last, err = c.boundsOnce(ctx, partition)
		if err == nil || !temporaryKafkaError(err) || time.Now().Add(backoff).After(deadline) {
			return first, last, err
		}
		c.logger.Debug("changelog partition not ready; waiting", zap.Int("partition", partition), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// changelogLeaderWait bounds the wait for a changelog partition's leader.
const changelogLeaderWait = 30 * time.Second

// temporaryKafkaError reports whether err is one a retry may cure: no
// leader yet, a leader election, a topic the broker is still creating.
func temporaryKafkaError(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Temporary()
}

func (c *Changelog) boundsOnce(ctx context.Context, partition int) (first, last int64, err error) {
	var errs []error
	for _, b := range c.cfg.Brokers {
		conn, err := c.dialer.DialLeader(ctx, "tcp", b, c.topic, partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, last, err = conn.ReadOffsets()
		conn.Close()
		if err == nil {
			return first, last, nil
		}
		errs = append(errs, err)
	}
	return 0, 0, fmt.Errorf("offsets of changelog %s partition %d: %w", c.topic, partition, errors.Join(errs...))
}

// Partitions returns the partition count of topic.
func Partitions(ctx context.Context, cfg KafkaConfig, topic string) (int, error) {
	d, err := NewDialer(cfg)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, b := range cfg.Brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps, err := conn.ReadPartitions(topic)
		conn.Close()
		if err == nil {
			return len(ps), nil
		}
		errs = append(errs, err)
	}
	return 0, fmt.Errorf("partitions of topic %s: %w", topic, errors.Join(errs...))
}
