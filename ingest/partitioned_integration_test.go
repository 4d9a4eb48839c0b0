//go:build integration

package ingest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

// handOff is one call of a worker's Handle, or a dead letter written.
type handOff struct {
	ids        []string
	next       int64
	deadLetter string // the dead-lettered message's key, for a dead letter
}

// handOffLog records, in order, what the partitioned stage hands its
// worker and writes as dead letters.
type handOffLog struct {
	mu      sync.Mutex
	entries []handOff
}

func (l *handOffLog) add(h handOff) {
	l.mu.Lock()
	l.entries = append(l.entries, h)
	l.mu.Unlock()
}

// recordingWorker is a PartitionWorker that records its hand-offs.
type recordingWorker struct{ log *handOffLog }

func (w *recordingWorker) Handle(_ context.Context, events []event.Event, next int64) error {
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	w.log.add(handOff{ids: ids, next: next})
	return nil
}

func (w *recordingWorker) Checkpoint() func(context.Context) (int64, error) {
	return func(context.Context) (int64, error) { return -1, nil }
}
func (w *recordingWorker) Command(context.Context, []byte, int64) error { return nil }
func (w *recordingWorker) Idle(context.Context, time.Time) error        { return nil }
func (w *recordingWorker) Close()                                       {}

// recordingDLQ is a dead-letter writer that records what it writes.
type recordingDLQ struct{ log *handOffLog }

func (d *recordingDLQ) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		d.log.add(handOff{deadLetter: string(m.Key)})
	}
	return nil
}

// onePartitionTopic creates a topic of one partition named after prefix on
// the test broker (skipping without one), deleted when the test ends, and
// returns a configuration for it.
func onePartitionTopic(ctx context.Context, t *testing.T, prefix string) (KafkaConfig, string) {
	t.Helper()
	broker := os.Getenv("CORRELATORD_TEST_KAFKA")
	if broker == "" {
		t.Skip("CORRELATORD_TEST_KAFKA is not set (make test starts the dev broker and sets it)")
	}
	cfg := KafkaConfig{Brokers: []string{broker}, DialTimeout: 10 * time.Second, MaxMessageBytes: 1 << 20}
	topic := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 30 * time.Second}
	if _, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteTopics(context.Background(), cfg, []string{topic}) })
	return cfg, topic
}

// TestPartitionedHandsOverMidBatch checks the stateful stage's hand-off
// within a fetch, against the real broker: once the events decoded from a
// fetch's messages reach MaxBatchEvents, they go to the worker before the
// next message, with the offset after the last message they came from; the
// dead letters of the messages before go out first; every event is handed
// runRecording runs a consumer of topic, as group topic, whose workers and
// dead-letter queue record into log; opts gives the rest. stop cancels it
// and fails t if Run returned an error.
func runRecording(ctx context.Context, t *testing.T, cfg KafkaConfig, topic string, opts PartitionedOptions, log *handOffLog, reg *prometheus.Registry) (stop func()) {
	opts.Topic, opts.GroupID = topic, topic
	opts.CommitInterval, opts.Limits, opts.Defaults = 100*time.Millisecond, DefaultLimits, event.DefaultDefaults
	c := NewPartitionedConsumer(cfg, opts,
		func(context.Context, int, int64) (PartitionWorker, int64, error) {
			return &recordingWorker{log: log}, kafka.FirstOffset, nil
		}, &recordingDLQ{log: log}, NewMetrics(reg), reg, zap.NewNop())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// over once, in order.
func TestPartitionedHandsOverMidBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, topic := onePartitionTopic(ctx, t, "midbatch")

	// Ten messages of 100 events, the fourth one not a batch at all: all
	// are produced before the consumer starts, so that its first fetch
	// holds several messages.
	const messages, perMessage, bad = 10, 100, 3
	var want []string
	msgs := make([]kafka.Message, messages)
	for m := range msgs {
		msgs[m] = kafka.Message{Partition: 0, Key: []byte(fmt.Sprintf("m%d", m))}
		if m == bad {
			msgs[m].Value = []byte(`{"not": "a batch"}`)
			continue
		}
		buf := AppendKeyedBatchHeader(nil)
		for i := range perMessage {
			ev := event.Event{ID: fmt.Sprintf("e%d-%d", m, i), Time: time.Unix(1_700_000_000, 0).UTC(),
				Source: "test", Kind: event.KindAlert, Status: event.StatusFiring, Severity: event.SeverityMajor,
				Labels: event.FromMap(map[string]string{"alertname": "A", "n": fmt.Sprint(i)}), Fingerprint: "0123456789abcdef"}
			buf = AppendKeyedBatchEvent(buf, &ev)
			want = append(want, ev.ID)
		}
		msgs[m].Value = buf
	}
	w, err := NewPartitionWriter(cfg, topic, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	var log handOffLog
	const maxBatch = 250
	stop := runRecording(ctx, t, cfg, topic, PartitionedOptions{MaxBatchEvents: maxBatch}, &log, prometheus.NewRegistry())
	handed := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, h := range log.entries {
			n += len(h.ids)
		}
		return n
	}
	for handed() < len(want) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	log.mu.Lock()
	defer log.mu.Unlock()
	var got []string
	var lastNext int64
	deadLettered := false
	midBatch := 0
	for _, h := range log.entries {
		if h.deadLetter != "" {
			if h.deadLetter != fmt.Sprintf("m%d", bad) || deadLettered {
				t.Fatalf("dead letter %q: want m%d once", h.deadLetter, bad)
			}
			deadLettered = true
			continue
		}
		if h.next < lastNext {
			t.Fatalf("offsets went back: %d after %d", h.next, lastNext)
		}
		lastNext = h.next
		if len(h.ids) > maxBatch+perMessage {
			t.Errorf("a hand-off of %d events, over MaxBatchEvents (%d) by more than a message", len(h.ids), maxBatch)
		}
		if len(h.ids) >= maxBatch {
			midBatch++
		}
		if h.next > bad && !deadLettered {
			t.Fatalf("events up to offset %d handed over before the dead letter of offset %d", h.next, bad)
		}
		// A hand-off ends with the last event of the message before its
		// next offset (of the one before that, if that is the bad one).
		if n := len(h.ids); n > 0 {
			last := h.next - 1
			if last == bad {
				last--
			}
			if want := fmt.Sprintf("e%d-%d", last, perMessage-1); h.ids[n-1] != want {
				t.Errorf("hand-off up to offset %d ends with %s, want %s", h.next, h.ids[n-1], want)
			}
		}
		got = append(got, h.ids...)
	}
	if !deadLettered {
		t.Fatal("the bad message was not dead-lettered")
	}
	if midBatch == 0 {
		t.Fatalf("no hand-off reached MaxBatchEvents: the fetches held one message each, the test checked nothing (%d hand-offs)", len(log.entries))
	}
	if len(got) != len(want) {
		t.Fatalf("%d events handed over, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s: not in order, or handed twice", i, got[i], want[i])
		}
	}
	if lastNext != messages {
		t.Errorf("last hand-off's next offset %d, want %d", lastNext, messages)
	}
}

// TestPartitionedTakesHandedOffEvents (real broker): a message whose
// events this process's first stage handed over is not decoded, its held
// events are processed in its place; a message whose events were dropped,
// or that another process handed over, is decoded. The partition is owned
// while it is processed and released after.
func TestPartitionedTakesHandedOffEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, topic := onePartitionTopic(ctx, t, "handoff")

	reg := prometheus.NewRegistry()
	h := NewLocalHandoff(1000, time.Minute, nil, reg)
	other := NewLocalHandoff(1000, time.Minute, nil, prometheus.NewRegistry())
	other.Own(0, true) // another process's consumer owns it there

	// The consumer starts first: it owns the partition once it is
	// processing it, and only then does Put hold anything.
	var log handOffLog
	stop := runRecording(ctx, t, cfg, topic, PartitionedOptions{MaxBatchEvents: 100, Handoff: h}, &log, reg)
	for !h.Owns(0) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if !h.Owns(0) {
		t.Fatal("the consumer never marked its partition as owned")
	}
	const perMessage = 5
	var want []string
	msgs := make([]kafka.Message, 4)
	for m := range msgs {
		buf := AppendKeyedBatchHeader(nil)
		held := make([]event.Event, perMessage)
		for i := range perMessage {
			ev := event.Event{ID: fmt.Sprintf("e%d-%d", m, i), Time: time.Unix(1_700_000_000, 0).UTC(),
				Source: "test", Kind: event.KindAlert, Status: event.StatusFiring, Severity: event.SeverityMajor,
				Labels: event.FromMap(map[string]string{"alertname": "A"}), Fingerprint: "0123456789abcdef"}
			buf = AppendKeyedBatchEvent(buf, &ev)
			// Held events differ from the message's only by id, so the
			// log shows which way each came.
			held[i] = ev
			held[i].ID = "held-" + ev.ID
		}
		msgs[m] = kafka.Message{Partition: 0, Value: buf}
		switch m {
		case 1: // handed over: taken
			hdr, _ := h.Put(0, held)
			msgs[m].Headers = []kafka.Header{hdr}
		case 2: // handed over, then dropped: decoded
			hdr, _ := h.Put(0, held)
			msgs[m].Headers = []kafka.Header{hdr}
			h.Discard(&msgs[m])
		case 3: // another process's: decoded
			hdr, _ := other.Put(0, held)
			msgs[m].Headers = []kafka.Header{hdr}
		}
		for i := range perMessage {
			if m == 1 {
				want = append(want, held[i].ID)
			} else {
				want = append(want, fmt.Sprintf("e%d-%d", m, i))
			}
		}
	}
	w, err := NewPartitionWriter(cfg, topic, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		log.mu.Lock()
		got = got[:0]
		for _, e := range log.entries {
			got = append(got, e.ids...)
		}
		log.mu.Unlock()
	}
	stop()
	if !slices.Equal(got, want) {
		t.Fatalf("events handed to the worker:\n%v\nwant\n%v", got, want)
	}
	if h.Owns(0) {
		t.Error("the partition is still owned after the consumer stopped")
	}
	if n := testutil.ToFloat64(h.taken); n != perMessage {
		t.Errorf("%v events taken, want %d (message 1's)", n, perMessage)
	}
}
