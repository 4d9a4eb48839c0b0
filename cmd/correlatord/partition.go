package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/incidents/notify"
	"github.com/correlatord/correlatord/ingest"
	"github.com/correlatord/correlatord/rules"
)

// The daemon runs in two stages when Kafka is on.
//
// The first stage (keyer) consumes the input topics in the instance's
// consumer group, binds each event to its CI and produces it onto the keyed
// topic under its topology partition key: the events that may end in one
// incident share a key, so they share a partition.
//
// The second, stateful stage (stateStage) consumes the keyed topic in a
// consumer group of its own, with one worker per assigned partition: the
// partition's rules engine, correlation engine and event-time clock. A
// worker's state goes to the changelog (a compacted topic with one partition
// per keyed partition) at every checkpoint, before the offset commit, and
// is restored from it when the partition is assigned, here or on another
// instance.

// partitionKeyer computes topology partition keys.
type partitionKeyer struct {
	topology func() *cmdb.Topology // nil: no CMDB
	attr     string                // CI attribute to key by; "" keys by component
	groupBy  []string

	mu    sync.Mutex
	topo  *cmdb.Topology
	comps []string // component -> its smallest CI id, for topo
}

func newPartitionKeyer(topology func() *cmdb.Topology, cfg *correlate.Config) *partitionKeyer {
	return &partitionKeyer{topology: topology, attr: cfg.PartitionAttribute(), groupBy: cfg.GroupBy}
}

// appendKey appends ev's partition key to dst. A component is named by its
// smallest CI id rather than its index, so keys stay put across CMDB
// reloads that do not change the component. Appending, not returning a
// string, keeps the key of an event without a CI from being an allocation
// of its own: the keyer writes it straight into the message's buffer.
func (k *partitionKeyer) appendKey(dst []byte, ev *event.Event) []byte {
	if ev.CI != "" && k.topology != nil {
		if t := k.topology(); t != nil {
			if n, ok := t.Node(ev.CI); ok {
				if k.attr != "" {
					if v := t.At(n).Attributes[k.attr]; v != "" {
						return append(append(dst, "attr/"...), v...)
					}
				}
				return append(append(dst, "comp/"...), k.componentName(t, t.ComponentOf(n))...)
			}
		}
	}
	dst = append(dst, "labels/"...)
	for _, l := range k.groupBy {
		dst = append(dst, l...)
		dst = append(dst, '=')
		dst = append(dst, ev.Labels.Get(l)...)
		dst = append(dst, 0)
	}
	return dst
}

func (k *partitionKeyer) componentName(t *cmdb.Topology, c int) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t != k.topo {
		k.comps = make([]string, t.Components())
		for n := cmdb.Node(0); int(n) < t.Len(); n++ {
			ci := t.ComponentOf(n)
			if id := t.ID(n); k.comps[ci] == "" || id < k.comps[ci] {
				k.comps[ci] = id
			}
		}
		k.topo = t
	}
	return k.comps[c]
}

// partitionOf maps a key to a partition as kafka-go's Hash balancer (and
// Sarama's) does: FNV-1a, 32 bits, as a signed remainder. Which partition
// holds a group's state depends on it, so it must not change between
// builds. Calling the balancer took an allocation per event: the hasher it
// borrows from a pool is an interface the key escapes through.
func partitionOf(key []byte, partitions int) int {
	h := uint32(2166136261)
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	p := int32(h) % int32(partitions)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// keyer is the first stage's ingest.Handler: it binds events to CIs and
// produces them onto the keyed topic. An event is durable once the broker
// acknowledged it there. The HTTP endpoints use it too, unless
// kafka.ingest_topic is set.
//
// Producing runs in a goroutine of its own, behind a short queue of
// batches: the consumer decodes and encodes the next batch while the broker
// acknowledges the last one. Batches go out one at a time, in order, so
// events of one key keep their order even when a produce is retried.
type keyer struct {
	writer     ingest.MessageWriter // sends each message to its Message.Partition
	binder     ciBinder             // nil: no CMDB
	keys       *partitionKeyer
	partitions int // of the keyed topic
	// messageBytes bounds a message (keyedMessageBytes), but for a single
	// event over it, which goes alone.
	messageBytes int
	metrics      *ingest.Metrics // nil: none
	logger       *zap.Logger
	// handoff, when set, takes the events of handingOff's callers
	// (handOver), so the stateful stage of this process does not decode
	// them again.
	handoff *ingest.LocalHandoff

	queue chan keyedBatch
	stop  context.CancelFunc
	done  chan struct{}

	// send is held (a token in it) while a batch enters the queue, so
	// positions follow queue order; a channel rather than a mutex, so an
	// HTTP request waiting for it gives up when its context ends.
	send     chan struct{}
	accepted uint64
	closed   bool

	mu      sync.Mutex
	durable uint64
	moved   chan struct{} // closed when durable moves

	// eventBytes is the mean size of the last batch's events: the next
	// batch's buffer is made that large at once, instead of growing by
	// doubling, which copied and left garbage behind at every step.
	eventBytes atomic.Int64
	// buffers holds *keyedBuffers of batches the broker acknowledged:
	// kafka-go keeps no reference to a message once its write returned, and
	// new ones per batch were 8% of the daemon's allocations in an HTTP
	// storm with Kafka on.
	buffers sync.Pool
}

// keyedBatch is one Handle call's messages and the position after them.
type keyedBatch struct {
	*keyedBuffers
	pos uint64
}

// keyedBuffers are a batch's messages and the bytes of their values, and
// Handle's scratch space.
type keyedBuffers struct {
	msgs  []kafka.Message
	buf   []byte
	count int // events in msgs

	cis          []string // the bound CI of each event
	key          []byte
	parts        []int32 // the partition of each event
	byPart       []int32 // the events' indexes, partition by partition
	starts, next []int   // where each partition's indexes start in byPart
}

// keyerQueueBatches is how many batches may wait for the producer. A batch
// holds about kafka.max_message_bytes of input (the consumer's gather
// bound), so the queue holds a few megabytes.
const keyerQueueBatches = 4

func newKeyer(writer ingest.MessageWriter, binder ciBinder, keys *partitionKeyer, partitions, maxMessageBytes int, metrics *ingest.Metrics, logger *zap.Logger) *keyer {
	ctx, stop := context.WithCancel(context.Background())
	k := &keyer{writer: writer, binder: binder, keys: keys, partitions: max(partitions, 1),
		messageBytes: min(keyedMessageBytes, maxMessageBytes), metrics: metrics, logger: logger,
		queue: make(chan keyedBatch, keyerQueueBatches), stop: stop, done: make(chan struct{}), moved: make(chan struct{}),
		send: make(chan struct{}, 1)}
	go k.produceLoop(ctx)
	return k
}

// keyedMessageBytes bounds a message of the keyed topic: a partition's
// events of one write go out in as few messages as this allows.
// kafka.max_message_bytes, when smaller, bounds it too, as the second stage
// dead-letters anything larger.
const keyedMessageBytes = 256 << 10

// Handle implements ingest.Handler. It returns once the batch is queued
// for the producer; Durable tells when it is on the keyed topic.
//
// Each event is bound to its CI and keyed; then the events of each
// partition, in their order, go into messages of their own
// (ingest.AppendKeyedBatchEvent). Events of one key stay in order, as they
// are in one partition.
func (k *keyer) Handle(ctx context.Context, events []event.Event) (uint64, error) {
	return k.handle(ctx, events, false)
}

// handle is Handle; with handOff, the events of each message to a
// partition this process owns are handed to k.handoff too, which then owns
// them, maps included: the caller changes none of them afterwards.
func (k *keyer) handle(ctx context.Context, events []event.Event, handOff bool) (uint64, error) {
	b, _ := k.buffers.Get().(*keyedBuffers)
	if b == nil {
		b = new(keyedBuffers)
	}
	n := len(events)
	b.cis = slices.Grow(b.cis[:0], n)[:n]
	parts := slices.Grow(b.parts[:0], n)[:n]
	starts := slices.Grow(b.starts[:0], k.partitions+1)[:k.partitions+1]
	clear(starts)
	var ev event.Event // binding sets CI on a copy: the caller owns events
	for i := range events {
		ev = events[i]
		if k.binder != nil {
			if ci, ok := k.binder.Bind(&ev); ok {
				ev.CI = ci
			}
		}
		b.cis[i] = ev.CI
		b.key = k.keys.appendKey(b.key[:0], &ev)
		p := partitionOf(b.key, k.partitions)
		parts[i] = int32(p)
		starts[p+1]++
	}
	// A counting sort: starts[p] becomes where partition p's events begin
	// in order, which the second pass fills, stable.
	for p := range k.partitions {
		starts[p+1] += starts[p]
	}
	b.byPart = slices.Grow(b.byPart[:0], n)[:n]
	next := slices.Grow(b.next[:0], k.partitions)[:k.partitions]
	copy(next, starts)
	for i, p := range parts {
		b.byPart[next[p]] = int32(i)
		next[p]++
	}
	msgs := b.msgs[:0]
	buf := slices.Grow(b.buf[:0], int((int64(n)+int64(k.partitions))*k.eventBytes.Load()*9/8))
	for p := range k.partitions {
		run := b.byPart[starts[p]:starts[p+1]]
		hold := handOff && k.handoff != nil && len(run) > 0 && k.handoff.Owns(p)
		for len(run) > 0 {
			start := len(buf)
			buf = ingest.AppendKeyedBatchHeader(buf)
			i := 0
			for i < len(run) {
				end := len(buf)
				ev = events[run[i]]
				ev.CI = b.cis[run[i]]
				buf = ingest.AppendKeyedBatchEvent(buf, &ev)
				if i > 0 && len(buf)-start > k.messageBytes {
					buf = buf[:end] // over the bound: it starts the next message
					break
				}
				i++
			}
			msgs = append(msgs, kafka.Message{Partition: p, Value: buf[start:len(buf):len(buf)]})
			if hold {
				k.handOver(&msgs[len(msgs)-1], events, run[:i], b.cis)
			}
			run = run[i:]
		}
	}
	if n > 0 {
		k.eventBytes.Store(int64(len(buf) / n))
	}
	b.msgs, b.buf, b.parts, b.starts, b.next, b.count = msgs, buf, parts, starts, next, n
	select {
	case k.send <- struct{}{}:
	case <-ctx.Done():
		k.unhand(msgs)
		return 0, ctx.Err()
	}
	defer func() { <-k.send }()
	if k.closed {
		k.unhand(msgs)
		return 0, fmt.Errorf("first stage stopped: %d events not produced", len(events))
	}
	pos := k.accepted + uint64(len(events))
	select {
	case k.queue <- keyedBatch{keyedBuffers: b, pos: pos}:
	case <-ctx.Done():
		k.unhand(msgs)
		return 0, ctx.Err()
	}
	k.accepted = pos
	return pos, nil
}

// handOver gives k.handoff the events of m, events[idx] for idx in run
// with their CIs, as the stateful stage would decode them from m, and
// marks m with the header that finds them.
func (k *keyer) handOver(m *kafka.Message, events []event.Event, run []int32, cis []string) {
	held := make([]event.Event, len(run))
	for j, i := range run {
		held[j] = events[i]
		held[j].CI = cis[i]
		// The keyed topic carries the instant, in UTC and without a
		// monotonic reading, as the decoder returns it.
		if !held[j].Time.IsZero() {
			held[j].Time = held[j].Time.UTC()
		}
	}
	if hdr, ok := k.handoff.Put(m.Partition, held); ok {
		m.Headers = []kafka.Header{hdr}
	}
}

// unhand drops what was handed over for msgs, which will not be produced
// (the caller gave up, or the first stage stopped): it would otherwise be
// held until it expires.
func (k *keyer) unhand(msgs []kafka.Message) {
	if k.handoff == nil {
		return
	}
	for i := range msgs {
		if len(msgs[i].Headers) > 0 {
			k.handoff.Discard(&msgs[i])
		}
	}
}

// localHandoffMaxAge is how long the hand-off holds a message's events
// for the stateful stage of this process: longer than it lags in a storm,
// so that only events it will not fetch (their partition moved, their
// produce failed) are dropped by age.
const localHandoffMaxAge = time.Minute

// handingOff is the keyer for callers whose events are theirs to give
// away (keyer.handle with handOff): the HTTP endpoints and the input
// topics' consumer, which decode fresh events and keep none of their maps.
type handingOff struct{ *keyer }

func (h handingOff) Handle(ctx context.Context, events []event.Event) (uint64, error) {
	return h.handle(ctx, events, true)
}

// produceLoop produces the queued batches in order until the queue is
// closed and empty, or ctx ends.
func (k *keyer) produceLoop(ctx context.Context) {
	defer close(k.done)
	for b := range k.queue {
		// Batches that queued meanwhile (HTTP requests, the consumer) go
		// out with this one, in one produce: one round trip for all of
		// them, and still in order.
		msgs, pos, count := b.msgs, b.pos, b.count
		batches := [keyerQueueBatches + 1]*keyedBuffers{b.keyedBuffers}
		n := 1
	more:
		for range keyerQueueBatches {
			select {
			case nb, ok := <-k.queue:
				if !ok {
					break more
				}
				if n == 1 { // b.msgs stays whole for reuse
					msgs = append(msgs[:len(msgs):len(msgs)], nb.msgs...)
				} else {
					msgs = append(msgs, nb.msgs...)
				}
				pos, count = nb.pos, count+nb.count
				batches[n] = nb.keyedBuffers
				n++
			default:
				break more
			}
		}
		if err := k.produce(ctx, msgs, count); err != nil {
			return // stopped: what is left is not durable, so not committed
		}
		for _, done := range batches[:n] {
			k.buffers.Put(done)
		}
		k.mu.Lock()
		k.durable = pos
		close(k.moved)
		k.moved = make(chan struct{})
		k.mu.Unlock()
	}
}

// produce writes msgs, which hold events events, to the keyed topic. The
// broker may be away a while (restart, leader election): it retries with
// backoff rather than fail, which would stop the daemon. Nothing of the
// batch is committed meanwhile, and the consumer waits once the queue is
// full.
func (k *keyer) produce(ctx context.Context, msgs []kafka.Message, events int) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 10*time.Second) {
		err := ingest.ShortWriteError(k.writer.WriteMessages(ctx, msgs...))
		if err == nil {
			if k.metrics != nil {
				k.metrics.Produced(events)
			}
			return nil
		}
		if k.metrics != nil {
			k.metrics.ProduceFailed()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("produce %d events to the keyed topic: %w", events, err)
		}
		if k.logger != nil {
			k.logger.Warn("producing to the keyed topic failed; retrying", zap.Int("events", events), zap.Int("messages", len(msgs)), zap.Duration("backoff", backoff), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// Durable implements ingest.Handler: produced is durable.
func (k *keyer) Durable() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.durable
}

// WaitDurable implements ingest.Handler.
func (k *keyer) WaitDurable(ctx context.Context, pos uint64) error {
	for {
		k.mu.Lock()
		durable, moved := k.durable, k.moved
		k.mu.Unlock()
		if durable >= pos {
			return nil
		}
		select {
		case <-moved:
		case <-k.done:
			return fmt.Errorf("first stage stopped at position %d of %d", k.Durable(), pos)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close produces what is queued, until ctx ends, and stops the producer.
// The consumers must have stopped: Handle fails from now on.
func (k *keyer) Close(ctx context.Context) {
	k.send <- struct{}{}
	if !k.closed {
		k.closed = true
		close(k.queue)
	}
	<-k.send
	select {
	case <-k.done:
	case <-ctx.Done(): // the broker is away: what is queued stays uncommitted
	}
	k.stop()
	<-k.done
}

// stateMetrics are the stateful stage's metrics.
type stateMetrics struct {
	updates       *prometheus.CounterVec
	openIncidents prometheus.Gauge
	latency       prometheus.Histogram
	stateBytes    prometheus.Counter
}

func newStateMetrics(reg prometheus.Registerer) *stateMetrics {
	f := promauto.With(reg)
	return &stateMetrics{
		updates: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_correlate_updates_total",
			Help: "Changes the correlation engine made to incidents, by kind (opened, joined, merged, root_cause, resolved, reopened, unattached, closed).",
		}, []string{"kind"}),
		openIncidents: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_correlate_incidents_live",
			Help: "Incidents in the correlation state of this instance (open, or resolved within the reopen window).",
		}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "correlator_event_to_incident_seconds",
			Help:    "Time from an event's own timestamp to its incident update (ingest, Kafka, queueing and correlation).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		stateBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_state_changelog_bytes_total",
			Help: "Bytes of correlation state written to the changelog.",
		}),
	}
}

// stateStage owns what the partitions of the stateful stage share, and
// opens their workers.
type stateStage struct {
	cfg       *Config
	sink      eventSink // nil: analytics off
	binder    ciBinder  // set when there is no first stage (Kafka off)
	rules     *rulesStage
	topology  func() *cmdb.Topology
	changelog *ingest.Changelog // nil: the state is not durable (Kafka off)
	metrics   *stateMetrics
	logger    *zap.Logger
	wall      func() time.Time
	// syncInterval is incidentSyncInterval (benchmarks compare it with 0).
	syncInterval time.Duration

	// The incident stage: shared by the partitions' managers.
	incMetrics *incidents.Metrics
	kedb       *incidents.KEDB
	// onChanges, when set, also receives every partition's incident and
	// problem changes (replay). Called with the worker's lock held.
	onChanges func(partition int, chs []incidents.Change)
	// outbox receives notifications (nil: no notification targets).
	outbox notify.Outbox
	// records writes incident and problem versions to analytics (nil:
	// analytics off).
	records *recordWriters

	// keepClosed bounds the closed incidents a worker keeps for the API;
	// negative keeps all (replay).
	keepClosed int
	// commands routes operator actions onto the keyed topic (nil: Kafka
	// off, actions apply in-process); waiting are the requests waiting
	// for their command to be applied here.
	commands *commandRouter
	waiting  waiters

	mu      sync.Mutex
	workers map[int]*partitionWorker
}

func newStateStage(cfg *Config, sink eventSink, rs *rulesStage, topology func() *cmdb.Topology, changelog *ingest.Changelog, kedb *incidents.KEDB, reg prometheus.Registerer, logger *zap.Logger) *stateStage {
	return &stateStage{cfg: cfg, sink: sink, rules: rs, topology: topology, changelog: changelog,
		metrics: newStateMetrics(reg), logger: logger, wall: time.Now, syncInterval: incidentSyncInterval, workers: map[int]*partitionWorker{},
		incMetrics: incidents.NewMetrics(reg), kedb: kedb, keepClosed: maxClosedKept}
}

// partitionMeta is the worker's own changelog record, written after the
// engine's in every checkpoint: the marker of what the state includes.
type partitionMeta struct {
	V        int       `json:"v"`
	Next     int64     `json:"next_offset"`
	Clock    time.Time `json:"clock"`
	TickedAt time.Time `json:"ticked_at"`
}

const partitionMetaKey = "partition"

// maxClosedKept bounds the closed incidents a worker keeps for the API.
const maxClosedKept = 1000

// partitionWorker is one partition of the stateful stage. It implements
// ingest.PartitionWorker.
type partitionWorker struct {
	stage     *stateStage
	partition int
	pipe      *pipeline
	engine    *correlate.Engine
	rules     *rules.Engine
	inc       *incidents.Manager
	ups       []correlate.Update // correlation updates not yet synced into inc
	incTick   time.Time          // clock of inc's last Tick
	// urgent: ups hold more than members joining (an incident opened,
	// merged, resolved...), which the records take at once; syncedAt is
	// the wall clock of the last sync (see syncIncidents).
	urgent   bool
	syncedAt time.Time

	mu        sync.Mutex // Handle from HTTP requests (Kafka off) and the API
	next      int64      // offset after the last message handled
	changed   bool       // state changed since the last checkpoint
	unsent    []correlate.StateRecord
	outgoing  []notify.Notification // notifications for the next flush or checkpoint
	lastEvent time.Time             // wall clock of the last event, for Idle
	lastIdle  time.Time
	live      int // incidents in the engine, for the gauge
	closed    []*correlate.Incident
	recs      []ingest.ChangelogRecord
}

func (s *stateStage) newWorker(partition int) (*partitionWorker, error) {
	re, err := s.rules.newEngine()
	if err != nil {
		return nil, err
	}
	var corrTopo func() correlate.Topology
	if s.topology != nil {
		// One adapter per snapshot and worker: it keeps scratch buffers.
		var (
			last *cmdb.Topology
			ad   *correlate.CMDB
		)
		corrTopo = func() correlate.Topology {
			t := s.topology()
			if t == nil {
				return nil
			}
			if t != last {
				last, ad = t, correlate.NewCMDB(t)
			}
			return ad
		}
	}
	engine := correlate.New(s.cfg.Correlate, corrTopo)
	w := &partitionWorker{stage: s, partition: partition, engine: engine, rules: re, next: -1}
	w.inc = newIncidentManager(s.cfg, s.topology, s.rules.changes, s.kedb, s.incMetrics, partition,
		s.records == nil && s.outbox == nil && s.onChanges == nil)
	w.pipe = newEventTimePipeline(s.sink, s.binder, re, engine, s.cfg.Correlate.AllowedLateness)
	w.pipe.onUpdates = w.onUpdates
	if s.topology != nil {
		w.pipe.ciType = func(ci string) string {
			if t := s.topology(); t != nil {
				if c, ok := t.CI(ci); ok {
					return c.Type
				}
			}
			return ""
		}
	}
	return w, nil
}

// newIncidentManager builds a partition's incident manager. Incidents
// record their partition of the keyed topic, so operator actions can be
// produced to the partition that owns them.
func newIncidentManager(cfg *Config, topology func() *cmdb.Topology, changes *rules.ChangeStore, kedb *incidents.KEDB, m *incidents.Metrics, partition int, noChanges bool) *incidents.Manager {
	key := strconv.Itoa(partition)
	opts := incidents.Options{Config: cfg.Incidents, KEDB: kedb, Metrics: m, NoChanges: noChanges,
		PartitionKey: func(*correlate.Incident) string { return key }}
	if changes != nil {
		opts.Changes = changes
	}
	if topology != nil {
		opts.Topology = func() incidents.Topology {
			if t := topology(); t != nil {
				return t
			}
			return nil
		}
	}
	return incidents.NewManager(opts)
}

// flushIncidents hands the batch's correlation updates to the incident
// manager, and runs its timers when the clock moved a second. Called with
// w.mu held, after the pipeline.
func (w *partitionWorker) flushIncidents() {
	now := w.pipe.tickedAt
	var chs []incidents.Change
	if len(w.ups) > 0 {
		chs = w.inc.Sync(w.ups, w.engine.Snapshot, now)
		clear(w.ups)
		w.ups = w.ups[:0]
	}
	w.urgent, w.syncedAt = false, w.stage.wall()
	if now.Sub(w.incTick) >= eventClockTick {
		w.incTick = now
		chs = append(chs, w.inc.Tick(now)...)
	}
	w.emitChanges(chs)
}

// incidentSyncInterval is how long (wall clock) a partition of the Kafka
// path may hold correlation updates that only add members to incidents
// before their records take them. A record's refresh costs about as much for
// one new member as for a hundred, and the stateful stage gets small batches
// while it keeps up (160 events on average in an HTTP storm with Kafka on),
// so it refreshed a record per alert: 12% of the daemon's CPU. Holding them
// saved 5% of the daemon's CPU in that storm (median of 5 interleaved
// runs, docs/PERFORMANCE.md). Anything else
// (an incident opened, merged, resolved, reopened or closed), a
// command, a checkpoint or a flush of notifications syncs at once, and so
// does a partition gone idle, so a record lags its incident by at most this
// much, or idle_interval after the last event.
const incidentSyncInterval = 250 * time.Millisecond

// maxHeldUpdates bounds the updates a partition holds back.
const maxHeldUpdates = 50000

// syncIncidents is flushIncidents for the Kafka path's batches: it holds
// back updates that only add members, for up to incidentSyncInterval.
// The timers run on event time as ever: a storm replayed from a backlog
// moves the event clock many seconds per second. They may run on a record
// up to incidentSyncInterval behind: new members can raise its priority,
// and with it the SLA targets. Breaches are dated from the targets, so
// their times are right; an escalation a raise brings goes out at the sync
// that raises it.
func (w *partitionWorker) syncIncidents() {
	if w.urgent || len(w.ups) >= maxHeldUpdates || w.stage.wall().Sub(w.syncedAt) >= w.stage.syncInterval {
		w.flushIncidents()
		return
	}
	if now := w.pipe.tickedAt; now.Sub(w.incTick) >= eventClockTick {
		w.incTick = now
		w.emitChanges(w.inc.Tick(now))
	}
}

// open implements ingest.PartitionOpener: it restores the partition from
// the changelog and returns where to read from.
func (s *stateStage) open(ctx context.Context, partition int, committed int64) (ingest.PartitionWorker, int64, error) {
	w, err := s.newWorker(partition)
	if err != nil {
		return nil, 0, err
	}
	from := committed
	if s.changelog != nil {
		var (
			recs []correlate.StateRecord
			meta *partitionMeta
		)
		err := s.changelog.Read(ctx, partition, func(r ingest.ChangelogRecord) error {
			if string(r.Key) == partitionMetaKey {
				meta = nil
				if r.Value != nil {
					meta = new(partitionMeta)
					if err := json.Unmarshal(r.Value, meta); err != nil {
						return fmt.Errorf("changelog %s partition %d: record %q: %w", s.changelog.Topic(), partition, partitionMetaKey, err)
					}
				}
				return nil
			}
			recs = append(recs, correlate.StateRecord{Key: string(r.Key), Value: r.Value})
			return nil
		})
		if err != nil {
			w.rules.Close()
			return nil, 0, err
		}
		if err := w.engine.Restore(recs); err != nil {
			w.rules.Close()
			return nil, 0, fmt.Errorf("changelog %s partition %d: %w", s.changelog.Topic(), partition, err)
		}
		if err := w.inc.Restore(recs); err != nil {
			w.rules.Close()
			w.inc.Close()
			return nil, 0, fmt.Errorf("changelog %s partition %d: %w", s.changelog.Topic(), partition, err)
		}
		if meta != nil {
			w.pipe.clock, w.pipe.tickedAt = meta.Clock, meta.TickedAt
			w.next = meta.Next
			// The state may be ahead of the committed offset (written,
			// then the commit failed or the process died): read on from
			// the state, or its events would be applied twice.
			if meta.Next > from {
				from = meta.Next
			}
		}
		s.logger.Info("partition state restored", zap.Int("partition", partition), zap.Int("records", len(recs)),
			zap.Int("incidents", len(w.engine.Incidents())), zap.Int64("committed", committed), zap.Int64("from", from))
	}
	w.live = len(w.engine.Incidents())
	s.metrics.openIncidents.Add(float64(w.live))
	w.lastEvent = s.wall()
	s.mu.Lock()
	s.workers[partition] = w
	s.mu.Unlock()
	return w, from, nil
}

// Handle implements ingest.PartitionWorker.
func (w *partitionWorker) Handle(ctx context.Context, events []event.Event, next int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = next
	w.changed = true
	if len(events) == 0 {
		return nil
	}
	if _, err := w.pipe.handleOrdered(ctx, events); err != nil {
		return err
	}
	w.syncIncidents()
	now := w.stage.wall()
	w.lastEvent = now
	for i := range events {
		w.stage.metrics.latency.Observe(now.Sub(events[i].Time).Seconds())
	}
	return nil
}

// handle is Handle for the in-process pipeline (Kafka off).
func (w *partitionWorker) handle(ctx context.Context, events []event.Event) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pos, err := w.pipe.handleOrdered(ctx, events)
	if err == nil {
		w.flushIncidents()
		w.lastEvent = w.stage.wall()
	}
	return pos, err
}

// Idle implements ingest.PartitionWorker: after correlate.idle_advance
// without events the event-time clock follows the wall clock.
func (w *partitionWorker) Idle(ctx context.Context, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ups) > 0 {
		w.flushIncidents() // held by syncIncidents: nothing follows them
	}
	if now.Sub(w.lastEvent) < w.stage.cfg.Correlate.IdleAdvance || w.pipe.clock.IsZero() {
		return nil
	}
	from := w.lastEvent
	if w.lastIdle.After(from) {
		from = w.lastIdle
	}
	w.lastIdle = now
	if d := now.Sub(from); d > 0 {
		w.changed = true
		err := w.pipe.advanceTo(ctx, w.pipe.clock.Add(d))
		w.flushIncidents()
		return err
	}
	return nil
}

func (w *partitionWorker) onUpdates(ups []correlate.Update) {
	w.ups = append(w.ups, ups...)
	m := w.stage.metrics
	for _, u := range ups {
		if u.Kind != correlate.UpdateJoined && u.Kind != correlate.UpdateUnattached {
			w.urgent = true
		}
		m.updates.WithLabelValues(string(u.Kind)).Inc()
		switch u.Kind {
		case correlate.UpdateOpened:
			w.live++
			m.openIncidents.Inc()
		case correlate.UpdateMerged:
			w.live--
			m.openIncidents.Dec()
		case correlate.UpdateClosed:
			w.live--
			m.openIncidents.Dec()
			if len(w.closed) == w.stage.keepClosed {
				w.closed = append(w.closed[:0], w.closed[1:]...)
			}
			w.closed = append(w.closed, u.Incident)
		}
	}
}

// Checkpoint implements ingest.PartitionWorker: the analytics rows first,
// then the state, then (the caller) the offset, so that whatever a crash
// interrupts is redone from a state that agrees with the offset. The
// state is taken now; the returned function waits for ClickHouse and
// writes the changelog.
func (w *partitionWorker) Checkpoint() func(context.Context) (int64, error) {
	w.mu.Lock()
	w.flushIncidents() // the records in the state are those of every event up to next
	if !w.changed || w.stage.changelog == nil {
		next := w.next
		w.mu.Unlock()
		return func(context.Context) (int64, error) { return next, nil }
	}
	pos, next := w.pipe.position(), w.next
	recs, err := w.engine.AppendChanges(w.unsent)
	if err == nil {
		recs, err = w.inc.AppendChanges(recs)
	}
	w.unsent = nil
	outgoing := w.outgoing
	w.outgoing = nil
	meta, merr := json.Marshal(partitionMeta{V: 1, Next: next, Clock: w.pipe.clock, TickedAt: w.pipe.tickedAt})
	w.changed = false
	w.mu.Unlock()
	fail := func(err error) (int64, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		// Written again, with whatever changes next, at the next checkpoint.
		w.unsent = append(recs, w.unsent...)
		w.outgoing = append(outgoing, w.outgoing...)
		w.changed = true
		return -1, err
	}
	return func(ctx context.Context) (int64, error) {
		if err != nil {
			return fail(err)
		}
		if merr != nil {
			return fail(merr)
		}
		if err := w.awaitWritten(ctx, pos); err != nil {
			return fail(err)
		}
		// Notifications before the state: a crash in between sends them again
		// with the same keys, never loses them.
		if len(outgoing) > 0 {
			if err := w.stage.outbox.Enqueue(ctx, outgoing); err != nil {
				return fail(fmt.Errorf("queueing %d notifications: %w", len(outgoing), err))
			}
		}
		out := w.recs[:0]
		n := 0
		for _, r := range recs {
			out = append(out, ingest.ChangelogRecord{Key: []byte(r.Key), Value: r.Value})
			n += len(r.Key) + len(r.Value)
		}
		out = append(out, ingest.ChangelogRecord{Key: []byte(partitionMetaKey), Value: meta})
		if err := w.stage.changelog.Write(ctx, w.partition, out); err != nil {
			clear(out)
			return fail(err)
		}
		clear(out)
		w.recs = out[:0]
		w.stage.metrics.stateBytes.Add(float64(n + len(meta)))
		return next, nil
	}
}

// Flush implements ingest.Flusher: the notifications go out between state
// checkpoints (kafka.state_interval), every kafka.commit_interval, after
// the rows and records they speak of, as at a checkpoint. A crash before
// the next checkpoint makes them again, under the same keys.
func (w *partitionWorker) Flush() func(context.Context) error {
	w.mu.Lock()
	w.flushIncidents()
	pos := w.pipe.position()
	outgoing := w.outgoing
	w.outgoing = nil
	w.mu.Unlock()
	if len(outgoing) == 0 {
		return func(context.Context) error { return nil }
	}
	return func(ctx context.Context) error {
		err := w.awaitWritten(ctx, pos)
		if err == nil {
			if err = w.stage.outbox.Enqueue(ctx, outgoing); err != nil {
				err = fmt.Errorf("queueing %d notifications: %w", len(outgoing), err)
			}
		}
		if err != nil {
			w.mu.Lock()
			w.outgoing = append(outgoing, w.outgoing...)
			w.mu.Unlock()
		}
		return err
	}
}

// awaitWritten waits until the analytics rows up to pos and the incident
// records handed over so far are stored: notifications and state speak of
// them, so they go after.
func (w *partitionWorker) awaitWritten(ctx context.Context, pos uint64) error {
	if err := w.pipe.WaitDurable(ctx, pos); err != nil {
		return fmt.Errorf("waiting for analytics rows: %w", err)
	}
	if r := w.stage.records; r != nil {
		if err := r.waitDurable(ctx); err != nil {
			return fmt.Errorf("waiting for incident records: %w", err)
		}
	}
	return nil
}

// Close implements ingest.PartitionWorker.
func (w *partitionWorker) Close() {
	s := w.stage
	s.mu.Lock()
	if s.workers[w.partition] == w {
		delete(s.workers, w.partition)
	}
	s.mu.Unlock()
	w.mu.Lock()
	s.metrics.openIncidents.Sub(float64(w.live))
	w.live = 0
	w.inc.Close()
	w.mu.Unlock()
	w.rules.Close()
}

// checkStatePartitions returns the keyed topic's partition count, and fails
// when the state topic has another: partition p of the state holds the
// state of partition p of the keyed topic.
func checkStatePartitions(ctx context.Context, kc ingest.KafkaConfig) (int, error) {
	keyed, err := ingest.Partitions(ctx, kc, kc.KeyedTopic)
	if err != nil {
		return 0, err
	}
	state, err := ingest.Partitions(ctx, kc, kc.StateTopic)
	if err != nil {
		return 0, err
	}
	if keyed != state {
		return 0, fmt.Errorf("kafka.state_topic %s has %d partitions and kafka.keyed_topic %s has %d: they must match, since partition p of the state holds the state of keyed partition p",
			kc.StateTopic, state, kc.KeyedTopic, keyed)
	}
	return keyed, nil
}

// inProcessHandler is the ingest.Handler of the in-process partitions
// (Kafka off): the HTTP endpoints hand their events to it, and it binds
// and keys them as the first stage does, so each partition sees what the
// keyed topic's partition would.
type inProcessHandler struct {
	workers []*partitionWorker
	binder  ciBinder // nil: no CMDB
	keys    *partitionKeyer
	sink    eventSink // nil: analytics off
}

func (h *inProcessHandler) Handle(ctx context.Context, events []event.Event) (uint64, error) {
	parts := make([][]event.Event, len(h.workers))
	var key []byte
	for i := range events {
		ev := events[i] // binding sets CI on a copy: the caller owns events
		if h.binder != nil {
			if ci, ok := h.binder.Bind(&ev); ok {
				ev.CI = ci
			}
		}
		p := 0
		if len(h.workers) > 1 {
			key = h.keys.appendKey(key[:0], &ev)
			p = partitionOf(key, len(h.workers))
		}
		parts[p] = append(parts[p], ev)
	}
	var pos uint64
	for p, evs := range parts {
		if len(evs) == 0 {
			continue
		}
		q, err := h.workers[p].handle(ctx, evs)
		if err != nil {
			return pos, err
		}
		pos = max(pos, q)
	}
	return pos, nil
}

func (h *inProcessHandler) Durable() uint64 {
	if h.sink != nil {
		return h.sink.Durable()
	}
	var pos uint64
	for _, w := range h.workers {
		pos = max(pos, w.pipe.Durable())
	}
	return pos
}

func (h *inProcessHandler) WaitDurable(ctx context.Context, pos uint64) error {
	if h.sink != nil {
		return h.sink.WaitDurable(ctx, pos)
	}
	return nil
}

// runIdle calls the in-process partition's Idle every second until ctx is
// done (the partitioned consumer does it for Kafka partitions).
func runIdle(ctx context.Context, w *partitionWorker, logger *zap.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := w.Idle(ctx, now); err != nil && ctx.Err() == nil {
				logger.Warn("advancing the event-time clock failed", zap.Error(err))
			}
		}
	}
}
