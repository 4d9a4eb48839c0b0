package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

// Partitioned consumption.
//
// The stateful stages (rules and correlation) run per partition of the
// keyed topic, onto which the first stage re-keys events by topology
// partition: all the events that may end in one incident are on one
// partition, and one instance owns a partition at a time. Unlike Consumer,
// which hands every assigned partition's messages to one Handler, the
// PartitionedConsumer starts a PartitionWorker per assigned partition, so a
// partition's state can be restored when it is assigned and written away
// when it is revoked, in the manner of Kafka Streams tasks.

// PartitionWorker processes the events of one partition during one
// generation of the consumer group. Its methods are called from one
// goroutine.
type PartitionWorker interface {
	// Handle processes the decoded events of consecutive messages; next is
	// the offset after the last of them.
	Handle(ctx context.Context, events []event.Event, next int64) error
	// Checkpoint takes what was handled so far and returns the function
	// that makes it durable (analytics rows, state changelog) and reports
	// the offset to commit: the offset after the last message whose
	// effects are then durable. The function is the slow part: it runs on
	// another goroutine, one at a time, while the partition goes on, so a
	// slow ClickHouse fills the bounded buffers (and spills) instead of
	// stopping consumption at once.
	Checkpoint() func(ctx context.Context) (int64, error)
	// Command applies an operator command (a message with the
	// HeaderCommand header) in its place among the events; next is the
	// offset after it. A command that cannot be applied is the worker's
	// to report; an error stops the partition like one of Handle.
	Command(ctx context.Context, payload []byte, next int64) error
	// Idle is called when no message arrived for IdleInterval, with the
	// wall clock, so event-time timers can move on without traffic.
	Idle(ctx context.Context, now time.Time) error
	// Close releases the partition; the final Checkpoint has been made (or
	// failed: the partition is redelivered from the last committed offset).
	Close()
}

// Flusher is a PartitionWorker with output that should not wait for the
// next checkpoint (notifications). Between checkpoints, every
// CommitInterval, Flush takes it and returns the function that sends it,
// run like a checkpoint's: on another goroutine, one at a time, in order
// with the checkpoints. Sending before the state is written is safe where
// the output is idempotent: after a crash it is made again, the same.
type Flusher interface {
	Flush() func(ctx context.Context) error
}

// HeaderCommand marks a message of the keyed topic that carries an
// operator command instead of an event: commands travel with the events of
// their partition, so they are applied in order by whoever owns it, and are
// as durable as the events.
const HeaderCommand = "correlator-command"

func isCommand(m *kafka.Message) bool {
	for _, h := range m.Headers {
		if h.Key == HeaderCommand {
			return true
		}
	}
	return false
}

// NewPartitionWriter returns a synchronous writer that sends each message
// to the partition it names (Message.Partition), acknowledged by every
// in-sync replica. Its messages are few and large: each carries a batch of
// a partition's events, so that a write holds about one message per
// partition.
func NewPartitionWriter(cfg KafkaConfig, topic string, logger *zap.Logger) (*kafka.Writer, error) {
	w, err := NewWriter(cfg, topic, logger)
	if err != nil {
		return nil, err
	}
	w.Balancer = kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })
	// kafka-go allocates room for BatchSize messages with every batch. At
	// NewWriter's 512, the batches holding one message each were 11% of
	// the bytes allocated over HTTP with Kafka on, all of it zeroed.
	w.BatchSize = partitionWriterBatchMessages
	return w, nil
}

// partitionWriterBatchMessages is the partition writer's BatchSize: more
// messages than a write sends to one partition, as BatchBytes (1 MiB by
// default) holds only four of the keyed topic's largest messages.
const partitionWriterBatchMessages = 16

// PartitionOpener restores a partition's state and returns its worker and
// the offset to read from. committed is the group's committed offset for
// the partition (kafka.FirstOffset when none); a worker whose restored
// state is ahead of it (the state was written, the commit was not) returns
// the offset after its state, so nothing is applied twice.
type PartitionOpener func(ctx context.Context, partition int, committed int64) (PartitionWorker, int64, error)

// PartitionedOptions configure a PartitionedConsumer.
type PartitionedOptions struct {
	// Topic is the keyed topic; GroupID the consumer group of the
	// partitioned stage.
	Topic   string
	GroupID string
	// Handoff, when set, holds the events this process's first stage
	// produced to the keyed topic, which are then taken instead of
	// decoded from their messages (LocalHandoff). The consumer marks the
	// partitions it processes as owned.
	Handoff *LocalHandoff
	// MaxBatchEvents bounds the events handed to a worker at once, give
	// or take those of one message (a message of the keyed topic holds a
	// batch of events).
	MaxBatchEvents int
	// CommitInterval is how often workers flush (Flusher) or checkpoint.
	CommitInterval time.Duration
	// StateInterval is how often workers checkpoint and offsets commit,
	// at a CommitInterval tick. A checkpoint rewrites the changed state:
	// in a storm, where every incident changes all the time, checkpoints
	// every second drained 58k alerts/s, every 5 s 82k. Default (and at
	// least) CommitInterval.
	StateInterval time.Duration
	// FetchWait is how long the broker may hold a fetch until it has
	// fetchMinBytes (KafkaConfig.FetchWait); 0 hands over whatever has
	// arrived at once.
	FetchWait time.Duration
	// IdleInterval is how long a partition waits without messages before
	// Idle is called. Default 1s.
	IdleInterval time.Duration
	Limits       Limits
	Defaults     event.Defaults
	// Now is the wall clock handed to Idle. Defaults to time.Now.
	Now func() time.Time
	// MemberData is sent with this member's join, where the other members
	// find it (Members): the daemon puts its API's address there. Empty:
	// none.
	MemberData []byte
}

// PartitionedConsumer runs the consumer group of the partitioned stage.
type PartitionedConsumer struct {
	cfg     KafkaConfig
	opts    PartitionedOptions
	open    PartitionOpener
	dlq     MessageWriter
	metrics *Metrics
	pm      *partitionMetrics
	logger  *zap.Logger

	mu          sync.Mutex
	assigned    map[int]bool
	groupClient *kafka.Client // for Members, made at its first call
}

type partitionMetrics struct {
	assigned    prometheus.Gauge
	restores    prometheus.Counter
	restoreTime prometheus.Histogram
	checkpoints *prometheus.CounterVec
	lag         *prometheus.GaugeVec
	rebalances  prometheus.Counter
}

func newPartitionMetrics(reg prometheus.Registerer) *partitionMetrics {
	f := promauto.With(reg)
	return &partitionMetrics{
		assigned: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_partitions_assigned",
			Help: "Partitions of the keyed topic this instance owns (correlation state held here).",
		}),
		restores: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_partition_restores_total",
			Help: "Partition states restored from the changelog on assignment.",
		}),
		restoreTime: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "correlator_partition_restore_duration_seconds",
			Help:    "Time to restore a partition's state from the changelog.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		checkpoints: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_partition_checkpoints_total",
			Help: "Partition checkpoints (state written, offset committed), by result.",
		}, []string{"result"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "correlator_kafka_consumer_lag",
			Help: "Messages between the last consumed offset and the partition's end, by topic and partition. A message of the keyed topic holds a batch of events.",
		}, []string{"topic", "partition"}),
		rebalances: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_partition_generations_total",
			Help: "Consumer group generations (rebalances) the partitioned stage joined.",
		}),
	}
}

// keyedQueueMessages bounds the messages of the keyed topic fetched ahead
// of the worker, in kafka-go's queue and again in the partition's. A
// message of the first stage holds a batch of events, tens of kilobytes in
// a storm and at most 256 KiB: 64 are thousands of events, and at most
// 16 MiB per queue.
const keyedQueueMessages = 64

// fetchMinBytes is what a fetch of the keyed topic waits for, up to
// FetchWait: about 1,500 of an alert storm's events, ten times the batches
// the stage got without a wait while it kept up with HTTP senders.
const fetchMinBytes = 1 << 20

// NewPartitionedConsumer returns the consumer; Run starts it.
func NewPartitionedConsumer(cfg KafkaConfig, opts PartitionedOptions, open PartitionOpener, dlq MessageWriter, m *Metrics, reg prometheus.Registerer, logger *zap.Logger) *PartitionedConsumer {
	if opts.MaxBatchEvents <= 0 {
		opts.MaxBatchEvents = 5000
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	opts.StateInterval = max(opts.StateInterval, opts.CommitInterval)
	if opts.IdleInterval <= 0 {
		opts.IdleInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &PartitionedConsumer{cfg: cfg, opts: opts, open: open, dlq: dlq, metrics: m, pm: newPartitionMetrics(reg),
		logger: logger.With(zap.String("component", "partitioned-consumer"), zap.String("topic", opts.Topic)), assigned: map[int]bool{}}
}

// Assigned returns the partitions this instance owns now.
func (c *PartitionedConsumer) Assigned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []int
	for p := range c.assigned {
		ps = append(ps, p)
	}
	return ps
}

// Run joins the group and processes generation after generation until ctx
// is done. Each partition's worker checkpoints when the generation ends, so
// the member that gets the partition next restores what this one did.
func (c *PartitionedConsumer) Run(ctx context.Context) error {
	d, err := NewDialer(c.cfg)
	if err != nil {
		return err
	}
	start := kafka.FirstOffset
	if c.cfg.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	l := c.logger.With(zap.String("component", "kafka-go"))
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.opts.GroupID,
		Brokers:               c.cfg.Brokers,
		Dialer:                d,
		Topics:                []string{c.opts.Topic},
		GroupBalancers:        memberDataBalancers(c.opts.MemberData),
		StartOffset:           start,
		WatchPartitionChanges: true,
		// A stopping member leaves at once, so the survivors rebalance
		// without waiting for the session to time out.
		SessionTimeout: 10 * time.Second,
		Logger:         kafka.LoggerFunc(l.Sugar().Debugf),
		ErrorLogger:    kafka.LoggerFunc(l.Sugar().Warnf),
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", c.opts.GroupID, err)
	}
	defer group.Close()
	backoff := 100 * time.Millisecond
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, kafka.ErrGroupClosed) {
				return fmt.Errorf("consumer group %s closed: %w", c.opts.GroupID, err)
			}
			c.logger.Warn("joining the consumer group failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		c.pm.rebalances.Inc()
		var ids []int
		for _, a := range gen.Assignments[c.opts.Topic] {
			ids = append(ids, a.ID)
			a := a
			gen.Start(func(gctx context.Context) { c.runPartition(gctx, gen, a.ID, a.Offset) })
		}
		c.logger.Info("generation joined", zap.Int32("generation", gen.ID), zap.String("member", gen.MemberID), zap.Ints("partitions", ids))
	}
}

// runPartition restores the partition, processes it until the generation
// ends, then checkpoints and commits.
func (c *PartitionedConsumer) runPartition(ctx context.Context, gen *kafka.Generation, partition int, committed int64) {
	log := c.logger.With(zap.Int("partition", partition))
	restoreStart := time.Now()
	w, offset, err := c.open(ctx, partition, committed)
	if err != nil {
		// The partition stays unprocessed in this generation; the group
		// reassigns it at the next rebalance. Crashing would not help: the
		// changelog or the CMDB is what failed, and a retry may pass.
		if ctx.Err() == nil {
			log.Error("restoring the partition failed; the group rebalances and tries again", zap.Error(err))
			// Returning ends the generation for every partition of this
			// member; pause first so a persistent failure does not spin.
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
		return
	}
	c.pm.restores.Inc()
	c.pm.restoreTime.Observe(time.Since(restoreStart).Seconds())
	c.mu.Lock()
	c.assigned[partition] = true
	c.pm.assigned.Set(float64(len(c.assigned)))
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.assigned, partition)
		c.pm.assigned.Set(float64(len(c.assigned)))
		c.mu.Unlock()
		w.Close()
	}()
	if h := c.opts.Handoff; h != nil {
		h.Own(partition, true)
		defer h.Own(partition, false)
	}
	log.Info("partition assigned", zap.Int64("committed", committed), zap.Int64("from", offset), zap.Duration("restore", time.Since(restoreStart)))

	d, err := NewDialer(c.cfg)
	if err != nil {
		log.Error("kafka dialer", zap.Error(err))
		return
	}
	// Without a fetch wait the broker answers a fetch as soon as anything
	// arrived, and holds an empty one up to 250 ms (a long poll).
	minBytes, maxWait := 1, 250*time.Millisecond
	if c.opts.FetchWait > 0 {
		minBytes, maxWait = fetchMinBytes, c.opts.FetchWait
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.cfg.Brokers, Topic: c.opts.Topic, Partition: partition, Dialer: d,
		MinBytes: minBytes, MaxBytes: max(c.cfg.MaxMessageBytes*2, 10<<20), MaxWait: maxWait, QueueCapacity: keyedQueueMessages,
	})
	defer reader.Close()
	if offset >= 0 || offset == kafka.FirstOffset || offset == kafka.LastOffset {
		if err := reader.SetOffset(offset); err != nil {
			log.Error("set offset", zap.Int64("offset", offset), zap.Error(err))
			return
		}
	}
	msgs := make(chan kafka.Message, keyedQueueMessages)
	fctx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	go func() {
		defer close(msgs)
		for {
			m, err := reader.FetchMessage(fctx)
			if err != nil {
				if fctx.Err() == nil {
					log.Warn("fetch failed; retrying", zap.Error(err))
					select {
					case <-fctx.Done():
						return
					case <-time.After(time.Second):
					}
					continue
				}
				return
			}
			select {
			case msgs <- m:
			case <-fctx.Done():
				return
			}
		}
	}()

	lagGauge := c.pm.lag.WithLabelValues(c.opts.Topic, fmt.Sprint(partition))
	defer c.pm.lag.DeleteLabelValues(c.opts.Topic, fmt.Sprint(partition))
	dec := NewDecoder(c.opts.Limits, c.opts.Defaults)
	var (
		batch  []kafka.Message
		events []event.Event
		dls    []deadLetter
	)
	commit := time.NewTicker(c.opts.CommitInterval)
	defer commit.Stop()
	idle := time.NewTimer(c.opts.IdleInterval)
	defer idle.Stop()
	lastCommitted := committed
	commitAfter := func(cctx context.Context, finish func(context.Context) (int64, error)) {
		next, err := finish(cctx)
		if err != nil && cctx.Err() != nil && cctx == ctx {
			// The generation ended under a periodic checkpoint (a
			// rebalance or shutdown): the final one follows.
			log.Info("checkpoint interrupted by the end of the generation; the final checkpoint follows", zap.Error(err))
			return
		}
		if err != nil {
			c.pm.checkpoints.WithLabelValues("error").Inc()
			log.Warn("checkpoint failed; the uncommitted messages will be redelivered", zap.Error(err))
			return
		}
		if next <= lastCommitted || next < 0 {
			return
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{c.opts.Topic: {partition: next}}); err != nil {
			c.pm.checkpoints.WithLabelValues("error").Inc()
			c.metrics.commitErrors.Inc()
			log.Warn("offset commit failed; the state is ahead and skips what it already applied", zap.Error(err))
			return
		}
		c.pm.checkpoints.WithLabelValues("ok").Inc()
		c.metrics.commits.Inc()
		lastCommitted = next
	}
	// One checkpoint or flush in flight at a time: lastCommitted and the
	// order of the changelog writes belong to it, and a flush's output goes
	// before the next checkpoint's. A tick that finds one still running
	// (ClickHouse slow) is skipped.
	var inflight chan struct{}
	flusher, _ := w.(Flusher)
	lastState := c.opts.Now()
	checkpoint := func() {
		if inflight != nil {
			select {
			case <-inflight:
				inflight = nil
			default:
				return
			}
		}
		var run func()
		switch now := c.opts.Now(); {
		case now.Sub(lastState) >= c.opts.StateInterval:
			lastState = now
			finish := w.Checkpoint()
			run = func() { commitAfter(ctx, finish) }
		case flusher != nil:
			flush := flusher.Flush()
			run = func() {
				if err := flush(ctx); err != nil {
					log.Warn("flush failed; the output goes with the next flush or checkpoint", zap.Error(err))
				}
			}
		default:
			return
		}
		done := make(chan struct{})
		inflight = done
		go func() {
			defer close(done)
			run()
		}()
	}
	defer func() {
		// The generation ended (rebalance or shutdown): the state goes to
		// the changelog before the partition is given up, whoever gets it.
		if inflight != nil {
			<-inflight
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		commitAfter(cctx, w.Checkpoint())
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-commit.C:
			checkpoint()
			if lag := reader.Lag(); lag >= 0 {
				lagGauge.Set(float64(lag))
			}
			continue
		case <-idle.C:
			if err := w.Idle(ctx, c.opts.Now()); err != nil && ctx.Err() == nil {
				log.Error("idle processing failed", zap.Error(err))
				return
			}
			idle.Reset(c.opts.IdleInterval)
			continue
		case m, ok := <-msgs:
			if !ok {
				return
			}
			batch = gather(append(batch[:0], m), msgs, c.opts.MaxBatchEvents, max(c.cfg.MaxMessageBytes, 1<<20))
		}
		events, dls = events[:0], dls[:0]
		now := c.opts.Now()
		failed := false
		// handle hands the events gathered so far to the worker; next is
		// the offset after them. It is called for a stretch without events
		// too (all dead letters), so the worker's offset moves past it.
		handle := func(next int64) bool {
			start := time.Now()
			if err := w.Handle(ctx, events, next); err != nil {
				if ctx.Err() == nil {
					log.Error("processing a batch failed; the partition is released and redelivered from its last commit", zap.Int("events", len(events)), zap.Error(err))
				}
				return false
			}
			if len(events) > 0 {
				c.metrics.handleDuration.Observe(time.Since(start).Seconds())
			}
			clear(events)
			events = events[:0]
			return true
		}
		for i := range batch {
			m := &batch[i]
			if isCommand(m) {
				// Events before the command first, then the command.
				if !handle(m.Offset) {
					failed = true
					break
				}
				if err := w.Command(ctx, m.Value, m.Offset+1); err != nil {
					if ctx.Err() == nil {
						log.Error("applying a command failed; the partition is released", zap.Int64("offset", m.Offset), zap.Error(err))
					}
					failed = true
					break
				}
				continue
			}
			if len(m.Value) > c.cfg.MaxMessageBytes && c.cfg.MaxMessageBytes > 0 {
				if c.opts.Handoff != nil {
					c.opts.Handoff.Discard(m) // dead-lettered with the message
				}
				c.metrics.rejected(TransportKafka, ReasonTooLarge, 1)
				dls = append(dls, newDeadLetter(m, ReasonTooLarge, fmt.Sprintf("message of %d bytes is over the limit of %d (kafka.max_message_bytes)", len(m.Value), c.cfg.MaxMessageBytes)))
				continue
			}
			var errs []DecodeError
			if held, ok := c.take(m); ok {
				events = append(events, held...)
			} else {
				events, errs = dec.DecodeKeyed(m.Value, now, events)
			}
			if len(errs) > 0 {
				c.metrics.rejected(TransportKafka, ReasonInvalidEvent, len(errs))
				dls = append(dls, newDeadLetter(m, ReasonInvalidEvent, describeErrors(errs)))
			}
			if len(events) >= c.opts.MaxBatchEvents && i < len(batch)-1 {
				// A message holds many events: hand them over before the
				// batch is over MaxBatchEvents by more than a message's
				// worth. Dead letters go first, as at the batch's end.
				if err := writeDeadLetters(ctx, c.dlq, dls, c.metrics, log); err != nil {
					return
				}
				dls = dls[:0]
				if !handle(m.Offset + 1) {
					failed = true
					break
				}
			}
		}
		if failed {
			return
		}
		if err := writeDeadLetters(ctx, c.dlq, dls, c.metrics, log); err != nil {
			return // only a cancelled context
		}
		if !handle(batch[len(batch)-1].Offset + 1) {
			return
		}
		clear(events)
		clear(batch)
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(c.opts.IdleInterval)
	}
}

// take returns the events the first stage of this process handed over
// for m (Handoff), if it still holds them.
func (c *PartitionedConsumer) take(m *kafka.Message) ([]event.Event, bool) {
	if c.opts.Handoff == nil || len(m.Headers) == 0 {
		return nil, false
	}
	return c.opts.Handoff.TakeWithin(m, c.opts.Limits)
}

// memberDataBalancers are kafka-go's default balancers (range, then round
// robin), each sending data as the member's user data. Nil data: the
// defaults themselves.
func memberDataBalancers(data []byte) []kafka.GroupBalancer {
	if len(data) == 0 {
		return nil
	}
	return []kafka.GroupBalancer{
		withMemberData{kafka.RangeGroupBalancer{}, data},
		withMemberData{kafka.RoundRobinGroupBalancer{}, data},
	}
}

// withMemberData is a balancer that sends data with the member's join. The
// assignment ignores it: range and round robin use no user data.
type withMemberData struct {
	kafka.GroupBalancer
	data []byte
}

func (b withMemberData) UserData() ([]byte, error) { return b.data, nil }

// GroupMember is a member of the partitioned stage's consumer group.
type GroupMember struct {
	ID string
	// Data is what the member sent as PartitionedOptions.MemberData.
	Data []byte
	// Partitions are the member's partitions of the keyed topic in the
	// current generation (none while the group rebalances).
	Partitions []int
}

// GroupStable is the state of a group that is not rebalancing. Only then
// does the coordinator describe its members' data.
const GroupStable = "Stable"

// Members asks the group coordinator for the group's state and members, with
// their data and partitions. Any instance may ask, consuming or not. While
// the group rebalances, the members come without data or partitions.
func (c *PartitionedConsumer) Members(ctx context.Context) (string, []GroupMember, error) {
	c.mu.Lock()
	client := c.groupClient
	if client == nil {
		d, err := NewDialer(c.cfg)
		if err != nil {
			c.mu.Unlock()
			return "", nil, err
		}
		// One client, so its connections are reused from call to call.
		client = &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: newTransport(c.cfg, d)}
		c.groupClient = client
	}
	c.mu.Unlock()
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.opts.GroupID}})
	if err != nil {
		return "", nil, fmt.Errorf("describe consumer group %s: %w", c.opts.GroupID, err)
	}
	var out []GroupMember
	state := ""
	for _, g := range resp.Groups {
		if g.Error != nil {
			return "", nil, fmt.Errorf("describe consumer group %s: %w", c.opts.GroupID, g.Error)
		}
		state = g.GroupState
		for _, m := range g.Members {
			gm := GroupMember{ID: m.MemberID, Data: m.MemberMetadata.UserData}
			for _, t := range m.MemberAssignments.Topics {
				if t.Topic == c.opts.Topic {
					gm.Partitions = append(gm.Partitions, t.Partitions...)
				}
			}
			out = append(out, gm)
		}
	}
	return state, out, nil
}
