package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/config"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/correlatord/correlatord/event"
)

// Headers set on dead-letter messages, next to the original message's own.
const (
	HeaderError           = "correlator-error"
	HeaderErrorReason     = "correlator-error-reason"
	HeaderSourceTopic     = "correlator-source-topic"
	HeaderSourcePartition = "correlator-source-partition"
	HeaderSourceOffset    = "correlator-source-offset"
)

// maxErrorsInHeader bounds how many item errors a dead letter lists, so a
// payload of 10,000 bad alerts does not make a 10 MB header.
const maxErrorsInHeader = 20

// Fetcher is the part of *kafka.Reader the consumer uses. FetchMessage and
// CommitMessages are called from different goroutines, which *kafka.Reader
// allows.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// MessageWriter is the part of *kafka.Writer used to write dead letters and
// to produce what the HTTP endpoints accept. WriteMessages must return only
// once the broker acknowledged (a synchronous writer).
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	Format          Format
	MaxMessageBytes int
	MaxBatchEvents  int
	CommitInterval  time.Duration
	Policy          Policy
	Limits          Limits
	Defaults        event.Defaults
	// Now is the receiving clock, used for the time policy and for alerts
	// that carry no time. Defaults to time.Now.
	Now func() time.Time
	// Decode, when set, replaces the alert decoders (Format, Limits,
	// Defaults and Policy are then unused): it appends the events of one
	// message's value to dst. When part or all of the message is bad it
	// also returns a dead-letter reason and text; the message then goes to
	// the dead-letter topic with them, and the good events go on. The log
	// stage decodes log records this way.
	Decode func(value []byte, now time.Time, dst []event.Event) (events []event.Event, reason, errText string)
}

// Consumer reads messages from Kafka, decodes them and hands the events to a
// Handler. It commits an offset only once the Handler reports every event
// decoded up to it durable, so a crash at any point redelivers rather than
// loses. Messages it cannot decode go to the dead-letter topic first, and are
// committed like any other once written there.
type Consumer struct {
	fetcher Fetcher
	dlq     MessageWriter
	handler Handler
	opts    ConsumerOptions
	decoder *Decoder
	metrics *Metrics
	logger  *zap.Logger

	mu      sync.Mutex
	pending []pendingMessage // fetched, handled, waiting for durability; in fetch order
	ready   map[topicPartition]kafka.Message
}

type pendingMessage struct {
	msg kafka.Message
	pos uint64
}

type topicPartition struct {
	topic     string
	partition int
}

// NewConsumer returns a consumer; Run starts it.
func NewConsumer(f Fetcher, dlq MessageWriter, h Handler, opts ConsumerOptions, m *Metrics, logger *zap.Logger) *Consumer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatchEvents <= 0 {
		opts.MaxBatchEvents = 5000
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	return &Consumer{
		fetcher: f, dlq: dlq, handler: h, opts: opts, metrics: m,
		decoder: NewDecoder(opts.Limits, opts.Defaults),
		logger:  logger.With(zap.String("component", "kafka-consumer")),
		ready:   make(map[topicPartition]kafka.Message),
	}
}

// Run consumes until ctx is done or the fetcher fails for good. It commits
// durable offsets every CommitInterval meanwhile. On return some handled
// messages may still wait for durability: call Commit after the pipeline has
// flushed to commit them.
func (c *Consumer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Fetching runs apart from decoding, so a batch can gather every message
	// already fetched without waiting on the network for more. What is
	// fetched ahead is bounded in bytes, not only in messages: a message may
	// carry a thousand alerts, and 512 of those are 150 MB.
	msgs := make(chan kafka.Message, fetchAheadMessages)
	ahead := semaphore.NewWeighted(fetchAheadBytes)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		fetchErr <- c.fetchLoop(ctx, msgs, ahead)
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.commitLoop(ctx)
	}()
	err := c.processLoop(ctx, msgs, ahead)
	cancel()
	for range msgs { // let the fetch goroutine exit
	}
	wg.Wait()
	if ferr := <-fetchErr; err == nil {
		err = ferr
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Bounds on what the consumer fetches ahead of decoding.
const (
	fetchAheadMessages = 8192
	fetchAheadBytes    = 64 << 20
)

// fetchCost is what a fetched message holds of the fetch-ahead budget
// until its batch is decoded. Every message costs a little, so a flood of
// tiny ones is bounded too, and none costs more than the whole budget.
func fetchCost(m *kafka.Message) int64 {
	return min(int64(len(m.Key)+len(m.Value))+256, fetchAheadBytes)
}

func (c *Consumer) fetchLoop(ctx context.Context, out chan<- kafka.Message, ahead *semaphore.Weighted) error {
	backoff := 100 * time.Millisecond
	for {
		m, err := c.fetcher.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A closed reader answers io.EOF: nothing more will come.
			if errors.Is(err, kafka.ErrGroupClosed) || errors.Is(err, io.EOF) {
				return fmt.Errorf("kafka consumer closed: %w", err)
			}
			c.metrics.fetchErrors.Inc()
			c.logger.Warn("fetch failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if err := ahead.Acquire(ctx, fetchCost(&m)); err != nil {
			return err
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Consumer) processLoop(ctx context.Context, msgs <-chan kafka.Message, ahead *semaphore.Weighted) error {
	var (
		batch   []kafka.Message
		events  []event.Event
		dls     []deadLetter
		pending []pendingMessage
	)
	for {
		batch = batch[:0]
		m, ok := <-msgs
		if !ok {
			return ctx.Err()
		}
		batch = gather(append(batch, m), msgs, c.opts.MaxBatchEvents, max(c.opts.MaxMessageBytes, 1<<20))
		events, dls = events[:0], dls[:0]
		now := c.opts.Now()
		var cost int64
		for i := range batch {
			cost += fetchCost(&batch[i])
			events, dls = c.decodeMessage(&batch[i], events, dls, now)
		}
		ahead.Release(cost) // decoded events do not share the payloads' memory
		if err := c.writeDeadLetters(ctx, dls); err != nil {
			return err // only a cancelled context
		}
		clear(dls) // drop the payloads
		pos := c.handler.Durable()
		if len(events) > 0 {
			start := time.Now()
			var err error
			pos, err = c.handler.Handle(ctx, events)
			if err != nil {
				// Nothing of this batch is committed, so it is redelivered.
				return fmt.Errorf("handle batch of %d events: %w", len(events), err)
			}
			c.metrics.handleDuration.Observe(time.Since(start).Seconds())
			c.metrics.received(TransportKafka, events)
		}
		pending = pending[:0]
		for _, m := range batch {
			pending = append(pending, pendingMessage{msg: stripMessage(m), pos: pos})
		}
		c.mu.Lock()
		c.pending = append(c.pending, pending...)
		c.mu.Unlock()
	}
}

// gather appends to batch the messages already fetched, without waiting
// for more, up to limit messages and about maxBytes of payload in all: a
// message may carry a thousand alerts, and a batch's events are held at
// once (decoded, then produced or processed).
func gather(batch []kafka.Message, msgs <-chan kafka.Message, limit, maxBytes int) []kafka.Message {
	size := 0
	for _, m := range batch {
		size += len(m.Value)
	}
	for len(batch) < limit && size < maxBytes {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
			size += len(m.Value)
		default:
			return batch
		}
	}
	return batch
}

// stripMessage keeps what a commit needs, so pending messages do not pin
// their payloads in memory until they are durable.
func stripMessage(m kafka.Message) kafka.Message {
	return kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
}

// deadLetter is a message bound for the dead-letter topic, with its reason.
type deadLetter struct {
	msg    kafka.Message
	reason string
}

// decodeMessage appends the valid events of m to events. What it cannot use
// it appends to dls, for the batch's dead-letter write, which happens before
// anything of the batch is committed.
func (c *Consumer) decodeMessage(m *kafka.Message, events []event.Event, dls []deadLetter, now time.Time) ([]event.Event, []deadLetter) {
	c.metrics.messagesConsumed.WithLabelValues(m.Topic).Inc()
	if len(m.Value) > c.opts.MaxMessageBytes {
		err := fmt.Errorf("message of %d bytes is over the limit of %d (kafka.max_message_bytes)", len(m.Value), c.opts.MaxMessageBytes)
		c.metrics.rejected(TransportKafka, ReasonTooLarge, 1)
		return events, append(dls, newDeadLetter(m, ReasonTooLarge, err.Error()))
	}
	if c.opts.Decode != nil {
		events, reason, text := c.opts.Decode(m.Value, now, events)
		if reason != "" {
			c.metrics.rejected(TransportKafka, reason, 1)
			dls = append(dls, newDeadLetter(m, reason, text))
		}
		return events, dls
	}
	start := len(events)
	events, errs := c.decoder.Decode(c.opts.Format, m.Value, now, events)
	kept, timeErrs := c.opts.Policy.filter(events[start:], now)
	events = events[:start+len(kept)]
	if len(errs) == 0 && len(timeErrs) == 0 {
		return events, dls
	}
	reason := ReasonInvalidEvent
	switch {
	case len(errs) == 1 && errs[0].Index < 0:
		reason = ReasonMalformed
		c.metrics.rejected(TransportKafka, ReasonMalformed, 1)
	case len(errs) > 0:
		c.metrics.rejected(TransportKafka, ReasonInvalidEvent, len(errs))
	default:
		reason = ReasonTimeRange
	}
	c.metrics.rejected(TransportKafka, ReasonTimeRange, len(timeErrs))
	return events, append(dls, newDeadLetter(m, reason, describeErrors(append(errs, timeErrs...))))
}

// describeErrors joins item errors into one readable line.
func describeErrors(errs []DecodeError) string {
	var b strings.Builder
	for i, e := range errs {
		if i == maxErrorsInHeader {
			fmt.Fprintf(&b, "; and %d more", len(errs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// newDeadLetter wraps m for the dead-letter topic: its key, value and
// headers, plus headers saying why and where it came from.
func newDeadLetter(m *kafka.Message, reason, msg string) deadLetter {
	return deadLetter{reason: reason, msg: kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: append(append([]kafka.Header(nil), m.Headers...),
			kafka.Header{Key: HeaderError, Value: []byte(msg)},
			kafka.Header{Key: HeaderErrorReason, Value: []byte(reason)},
			kafka.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
			kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
			kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		),
	}}
}

// writeDeadLetters writes a batch's dead letters in one call, retrying until
// the broker takes them or ctx ends: the batch's offsets must not be
// committed before its bad messages are safe somewhere. One call per batch
// keeps a storm of bad input from slowing the stream to one round trip per
// message.
func (c *Consumer) writeDeadLetters(ctx context.Context, dls []deadLetter) error {
	return writeDeadLetters(ctx, c.dlq, dls, c.metrics, c.logger)
}

func writeDeadLetters(ctx context.Context, dlq MessageWriter, dls []deadLetter, metrics *Metrics, logger *zap.Logger) error {
	if len(dls) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(dls))
	for i := range dls {
		msgs[i] = dls[i].msg
	}
	backoff := 100 * time.Millisecond
	for {
		err := ShortWriteError(dlq.WriteMessages(ctx, msgs...))
		if err == nil {
			for i := range dls {
				metrics.deadLetters.WithLabelValues(dls[i].reason).Inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logger.Warn("dead-letter write failed; retrying (the batch's offsets are not committed meanwhile)",
			zap.Error(err), zap.Int("messages", len(msgs)), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Commit(ctx); err != nil && ctx.Err() == nil {
				c.logger.Warn("offset commit failed; will retry", zap.Error(err))
			}
		}
	}
}

// Commit commits the offsets of every message whose events are durable. The
// runner calls it once more at shutdown, after the pipeline has flushed.
func (c *Consumer) Commit(ctx context.Context) error {
	durable := c.handler.Durable()
	c.mu.Lock()
	n := 0
	for n < len(c.pending) && c.pending[n].pos <= durable {
		m := c.pending[n].msg
		c.ready[topicPartition{m.Topic, m.Partition}] = m
		n++
	}
	c.pending = append(c.pending[:0], c.pending[n:]...)
	if len(c.ready) == 0 {
		c.mu.Unlock()
		return nil
	}
	msgs := make([]kafka.Message, 0, len(c.ready))
	for _, m := range c.ready {
		msgs = append(msgs, m)
	}
	c.mu.Unlock()

	if err := c.fetcher.CommitMessages(ctx, msgs...); err != nil {
		c.metrics.commitErrors.Inc()
		return fmt.Errorf("commit %d partitions: %w", len(msgs), err)
	}
	c.metrics.commits.Inc()
	c.mu.Lock()
	for _, m := range msgs {
		tp := topicPartition{m.Topic, m.Partition}
		if c.ready[tp].Offset == m.Offset { // not overtaken meanwhile
			delete(c.ready, tp)
		}
	}
	c.mu.Unlock()
	return nil
}

// Uncommitted returns how many fetched messages wait for durability or for a
// commit; tests and the shutdown log use it.
func (c *Consumer) Uncommitted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) + len(c.ready)
}

// NewDialer builds the kafka-go dialer for cfg: SASL and TLS when set.
func NewDialer(cfg KafkaConfig) (*kafka.Dialer, error) {
	d := &kafka.Dialer{Timeout: cfg.DialTimeout, DualStack: true, ClientID: "correlatord"}
	mech, err := saslMechanism(cfg.SASL)
	if err != nil {
		return nil, err
	}
	d.SASLMechanism = mech
	if cfg.TLS != nil {
		t, err := newTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		d.TLS = t
	}
	return d, nil
}

func newTLS(c *config.TLSConfig) (*tls.Config, error) {
	t, err := config.NewTLSConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kafka.tls: %w", err)
	}
	return t, nil
}

func saslMechanism(s *SASLConfig) (sasl.Mechanism, error) {
	if s == nil {
		return nil, nil
	}
	pw, err := s.ResolvePassword()
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
	}
	switch s.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: pw}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, pw)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, s.Username, pw)
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not supported", s.Mechanism)
}

// NewReader returns a consumer-group reader for cfg. Commits are synchronous
// (CommitInterval 0): the Consumer decides when to commit.
func NewReader(cfg KafkaConfig, logger *zap.Logger) (*kafka.Reader, error) {
	d, err := NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	start := kafka.FirstOffset
	if cfg.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	l := logger.With(zap.String("component", "kafka-go"))
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:     cfg.Brokers,
		GroupID:     cfg.GroupID,
		GroupTopics: cfg.Topics,
		Dialer:      d,
		MinBytes:    1,
		MaxBytes:    max(cfg.MaxMessageBytes*2, 10<<20),
		MaxWait:     250 * time.Millisecond,
		// The queue holds whole messages, which may each carry a list of
		// a thousand alerts: 1,000 of those are 300 MB.
		QueueCapacity:         100,
		StartOffset:           start,
		CommitInterval:        0,
		WatchPartitionChanges: true,
		Logger:                kafka.LoggerFunc(l.Sugar().Debugf),
		ErrorLogger:           kafka.LoggerFunc(l.Sugar().Warnf),
	}), nil
}

// newTransport is the transport of writers and admin clients: the dialer's
// SASL and TLS settings on a plain net.Dialer.
func newTransport(cfg KafkaConfig, d *kafka.Dialer) *kafka.Transport {
	return &kafka.Transport{
		Dial:     (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext,
		SASL:     d.SASLMechanism,
		TLS:      d.TLS,
		ClientID: "correlatord",
	}
}

// brokerDefaultMaxMessageBytes is under Kafka's default max.message.bytes
// (1 MiB plus 12 bytes), with room for the record batch's own overhead.
const brokerDefaultMaxMessageBytes = 1000000

// TopicMaxMessageBytes is the max.message.bytes topics are created with: a
// writer's batch (up to kafka.max_message_bytes) twice over. Kafka's default
// of 1 MiB would refuse the batches of a storm of small events.
func (c *KafkaConfig) TopicMaxMessageBytes() int {
	return 2 * max(c.MaxMessageBytes, brokerDefaultMaxMessageBytes)
}

// NewWriter returns a synchronous writer to topic that waits for every
// in-sync replica to acknowledge: what it reports written is not lost.
// Messages with equal keys go to the same partition.
func NewWriter(cfg KafkaConfig, topic string, logger *zap.Logger) (*kafka.Writer, error) {
	d, err := NewDialer(cfg)
	if err != nil {
		return nil, err
	}
	l := logger.With(zap.String("component", "kafka-go"), zap.String("topic", topic))
	return &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        topic,
		Transport:    newMetadataCache(newTransport(cfg, d), time.Now),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		// kafka-go allocates room for BatchSize messages (152 B each) with
		// every batch, however few it then holds, and a write makes a batch
		// per partition: with 2,000, each request of 1,000 alerts over HTTP
		// left 2.4 MB of garbage on the 8-partition keyed topic. A larger
		// write goes out as more batches per partition, one round trip each.
		BatchSize: 512,
		// A batch is one record batch on the broker, which refuses one over
		// the topic's max.message.bytes (1 MiB by default): EnsureTopicSpecs
		// creates every topic with room for two batches (TopicMaxMessageBytes).
		BatchBytes:             int64(max(cfg.MaxMessageBytes, brokerDefaultMaxMessageBytes)),
		BatchTimeout:           2 * time.Millisecond,
		AllowAutoTopicCreation: true,
		MaxAttempts:            5,
		Logger:                 kafka.LoggerFunc(l.Sugar().Debugf),
		ErrorLogger:            kafka.LoggerFunc(l.Sugar().Warnf),
	}, nil
}

// PingKafka checks that a broker of cfg answers a metadata request.
func PingKafka(ctx context.Context, cfg KafkaConfig) error {
	d, err := NewDialer(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range cfg.Brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no Kafka broker of %v answers: %w", cfg.Brokers, errors.Join(errs...))
}

// EnsureTopics creates the topics that do not exist yet and waits until
// every partition of every topic has a leader, so that a consumer group
// joining next gets its partitions (see KafkaConfig.CreateTopics).
func EnsureTopics(ctx context.Context, cfg KafkaConfig, topics []string, logger *zap.Logger) error {
	specs := make([]TopicSpec, len(topics))
	for i, t := range topics {
		specs[i] = TopicSpec{Name: t}
	}
	return EnsureTopicSpecs(ctx, cfg, specs, logger)
}

// DeleteTopics deletes topics; one that does not exist is not an error.
// The benchmark tools and the integration tests clean up with it: topics
// left behind take the broker's disk and partitions.
func DeleteTopics(ctx context.Context, cfg KafkaConfig, topics []string) error {
	d, err := NewDialer(cfg)
	if err != nil {
		return err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: newTransport(cfg, d)}
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	var errs []error
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// TopicSpec is a topic EnsureTopicSpecs creates when missing.
type TopicSpec struct {
	Name string
	// Configs are topic-level settings (cleanup.policy, ...).
	Configs map[string]string
}

// EnsureTopicSpecs is EnsureTopics with topic-level settings. Settings
// apply to topics it creates; existing topics are left as they are.
func EnsureTopicSpecs(ctx context.Context, cfg KafkaConfig, specs []TopicSpec, logger *zap.Logger) error {
	d, err := NewDialer(cfg)
	if err != nil {
		return err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout,
		Transport: newTransport(cfg, d)}
	req := &kafka.CreateTopicsRequest{}
	topics := make([]string, len(specs))
	for i, sp := range specs {
		topics[i] = sp.Name
		tc := kafka.TopicConfig{Topic: sp.Name, NumPartitions: cfg.TopicPartitions, ReplicationFactor: cfg.TopicReplicationFactor}
		configs := map[string]string{"max.message.bytes": strconv.Itoa(cfg.TopicMaxMessageBytes())}
		for k, v := range sp.Configs {
			configs[k] = v
		}
		names := make([]string, 0, len(configs))
		for k := range configs {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: configs[k]})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, t := range topics {
		switch err := resp.Errors[t]; {
		case err == nil:
			logger.Info("created topic", zap.String("topic", t), zap.Int("partitions", cfg.TopicPartitions))
		case errors.Is(err, kafka.TopicAlreadyExists):
		default:
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	// A created topic is usable once its partitions have leaders.
	deadline := time.Now().Add(30 * time.Second)
	for {
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		ready := err == nil
		if ready {
			for _, t := range meta.Topics {
				if t.Error != nil || len(t.Partitions) == 0 {
					ready = false
				}
				for _, p := range t.Partitions {
					if p.Leader.ID < 0 || p.Error != nil {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v have partitions without a leader after 30s (metadata: %v)", topics, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ShortWriteError shortens kafka-go's WriteErrors, which list one error per
// message (thousands for a batch), to the count and the first error.
func ShortWriteError(err error) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	for _, e := range we {
		if e != nil {
			return fmt.Errorf("%d of %d messages not written, the first: %w", we.Count(), len(we), e)
		}
	}
	return err
}
