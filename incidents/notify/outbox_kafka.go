package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Outbox makes notifications durable for later delivery. Enqueue returns nil
// only once every notification in ns is durable; on error some may be, and
// the caller retries all of them (duplicates carry the same idempotency
// key). It rejects invalid notifications (see Notification.Validate)
// before storing any. Implementations are safe for concurrent use.
type Outbox interface {
	Enqueue(ctx context.Context, ns []Notification) error
}

// Kafka headers on outbox messages, for people reading the topic.
const (
	HeaderKafkaKey  = "correlator-notification-key"
	HeaderKafkaKind = "correlator-notification-kind"
)

// MessageWriter is the part of *kafka.Writer the Kafka outbox uses. It must
// be synchronous (WriteMessages returns once the broker acknowledged, with
// RequiredAcks all) and carry the outbox topic (Writer.Topic): messages are
// written without one.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Fetcher is the part of a consumer-group *kafka.Reader (with
// CommitInterval 0, so commits are synchronous) the Kafka runner uses.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// KafkaOutbox is the producer side of the Kafka outbox: one message per
// notification, keyed by incident id so one incident's notifications share
// a partition and stay in order, valued with EncodeNotification.
type KafkaOutbox struct {
	w       MessageWriter
	metrics *Metrics
}

// NewKafkaOutbox returns an outbox writing through w.
func NewKafkaOutbox(w MessageWriter, m *Metrics) *KafkaOutbox {
	if m == nil {
		m = NewMetrics(prometheus.NewRegistry())
	}
	return &KafkaOutbox{w: w, metrics: m}
}

// Enqueue writes ns in one call. See [Outbox].
func (o *KafkaOutbox) Enqueue(ctx context.Context, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(ns))
	for i := range ns {
		v, err := EncodeNotification(&ns[i])
		if err != nil {
			return fmt.Errorf("notification %d: %w", i, err)
		}
		msgs[i] = kafka.Message{
			Key:   []byte(ns[i].IncidentID),
			Value: v,
			Headers: []kafka.Header{
				{Key: HeaderKafkaKey, Value: []byte(ns[i].Key)},
				{Key: HeaderKafkaKind, Value: []byte(ns[i].Kind)},
			},
		}
	}
	if err := o.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %d notifications to the outbox topic: %w", len(msgs), err)
	}
	o.metrics.enqueued.Add(float64(len(msgs)))
	return nil
}

// KafkaRunnerOptions configure a KafkaRunner.
type KafkaRunnerOptions struct {
	// Clock defaults to SystemClock; it times fetch and commit retries and
	// dates messages without a timestamp.
	Clock   Clock
	Metrics *Metrics
	Logger  *zap.Logger
}

// KafkaRunner is the consumer side of the Kafka outbox. It fetches one
// message at a time, hands it to the Deliverer and commits its offset only
// once the Deliverer is done with it, so a crash redelivers rather than
// loses. Processing one message at a time keeps each partition, and so each
// incident, in order. Messages it cannot decode are logged, counted and
// committed: retrying them cannot help.
//
// Offsets are committed per message rather than from a ticker: the volume is
// a few notifications a minute, and each commit narrows what a crash
// resends.
type KafkaRunner struct {
	f       Fetcher
	d       Deliverer
	clock   Clock
	metrics *Metrics
	logger  *zap.Logger
}

// NewKafkaRunner returns a runner; Run starts it.
func NewKafkaRunner(f Fetcher, d Deliverer, opts KafkaRunnerOptions) *KafkaRunner {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &KafkaRunner{f: f, d: d, clock: opts.Clock, metrics: opts.Metrics,
		logger: opts.Logger.With(zap.String("component", "notify-kafka-runner"))}
}

// Run consumes until ctx is done (it then returns nil, leaving the message
// in hand uncommitted) or the reader is closed.
func (r *KafkaRunner) Run(ctx context.Context) error {
	var n Notification
	backoff := 100 * time.Millisecond
	for {
		m, err := r.f.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, kafka.ErrGroupClosed) || errors.Is(err, io.EOF) {
				return fmt.Errorf("notification outbox consumer closed: %w", err)
			}
			r.logger.Warn("fetch from the notification outbox failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			if r.clock.Sleep(ctx, backoff) != nil {
				return nil
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.metrics.pending.Set(1)
		if err := DecodeNotification(m.Value, &n); err != nil {
			r.metrics.undecodable.Inc()
			r.logger.Error("skipping an outbox message that is not a notification", zap.Error(err),
				zap.String("topic", m.Topic), zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
		} else {
			enqueued := m.Time
			if enqueued.IsZero() {
				enqueued = r.clock.Now()
			}
			if err := r.d.Deliver(ctx, &n, enqueued); err != nil {
				// Only a cancelled ctx: the message stays uncommitted
				// and is delivered again after the restart.
				return nil
			}
		}
		if err := r.commit(ctx, m); err != nil {
			return nil // ctx done
		}
		r.metrics.pending.Set(0)
	}
}

// commit commits m, retrying a few times. If the commits keep failing (the
// partition moved to another instance in a rebalance) it logs and goes on:
// the new owner delivers the message again under the same idempotency key,
// and the next commit on the partition covers it anyway. It returns an
// error only when ctx is done.
func (r *KafkaRunner) commit(ctx context.Context, m kafka.Message) error {
	m = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	backoff := 100 * time.Millisecond
	var err error
	for range 5 {
		if err = r.f.CommitMessages(ctx, m); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.clock.Sleep(ctx, backoff) != nil {
			return ctx.Err()
		}
		backoff *= 2
	}
	r.logger.Warn("could not commit a delivered notification; it may be delivered again (same idempotency key)",
		zap.Error(err), zap.String("topic", m.Topic), zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
	return nil
}
