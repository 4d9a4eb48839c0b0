package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// journal records deliveries and commits in the order they happen.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// fakeWriter is a synchronous Kafka writer into memory.
type fakeWriter struct {
	mu   sync.Mutex
	msgs []kafka.Message
	err  error
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.msgs = append(w.msgs, msgs...)
	return nil
}

// fakeFetcher serves messages from a channel, one partition, and records
// commits in the journal.
type fakeFetcher struct {
	msgs chan kafka.Message
	j    *journal

	mu        sync.Mutex
	committed []int64
}

func (f *fakeFetcher) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case m := <-f.msgs:
		return m, nil
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	}
}

func (f *fakeFetcher) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		f.committed = append(f.committed, m.Offset)
		f.j.add("commit %d", m.Offset)
	}
	return nil
}

func (f *fakeFetcher) Committed() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.committed)
}

// journalDeliverer records each delivery.
type journalDeliverer struct{ j *journal }

func (d journalDeliverer) Deliver(_ context.Context, n *Notification, _ time.Time) error {
	d.j.add("deliver %s", n.Key)
	return nil
}

func TestKafkaOutboxCommitsAfterDispatch(t *testing.T) {
	w := &fakeWriter{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	out := NewKafkaOutbox(w, m)
	ns := []Notification{testNotification("inc-1", 1, KindCreated), testNotification("inc-2", 1, KindCreated),
		testNotification("inc-1", 2, KindResolved)}
	if err := out.Enqueue(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if len(w.msgs) != 3 || string(w.msgs[0].Key) != "inc-1" || string(w.msgs[1].Key) != "inc-2" {
		t.Fatalf("written %v", w.msgs)
	}
	if testutil.ToFloat64(m.enqueued) != 3 {
		t.Error("enqueued counter")
	}
	// An invalid notification is rejected before anything is written.
	if err := out.Enqueue(t.Context(), []Notification{ns[0], {Key: "k"}}); err == nil {
		t.Error("invalid notification accepted")
	}
	if len(w.msgs) != 3 {
		t.Error("partial write of an invalid batch")
	}

	j := &journal{}
	f := &fakeFetcher{msgs: make(chan kafka.Message, 10), j: j}
	for i, msg := range w.msgs {
		msg.Topic, msg.Partition, msg.Offset = "correlator.notifications", 0, int64(i)
		f.msgs <- msg
		if i == 1 {
			f.msgs <- kafka.Message{Topic: "correlator.notifications", Offset: 100, Value: []byte("garbage")}
		}
	}
	r := NewKafkaRunner(f, journalDeliverer{j}, KafkaRunnerOptions{Metrics: m})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "4 commits", func() bool { return len(f.Committed()) == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"deliver inc-1:1", "commit 0", "deliver inc-2:1", "commit 1", "commit 100", "deliver inc-1:2", "commit 2"}
	if got := j.all(); !slices.Equal(got, want) {
		t.Errorf("journal:\n got %v\nwant %v", got, want)
	}
	if testutil.ToFloat64(m.undecodable) != 1 {
		t.Error("undecodable message not counted")
	}
}

func TestKafkaRunnerLeavesUncommittedWhileReceiverDown(t *testing.T) {
	rc, srv := newRecorder(t, 503)
	clock := newFakeClock()
	clock.block = make(chan time.Duration, 1)
	d, reg := newTestDispatcher(t, []Route{webhookRoute(t, "oncall", srv.URL, Filter{})}, clock, RetryConfig{})
	_ = reg
	w := &fakeWriter{}
	if err := NewKafkaOutbox(w, nil).Enqueue(t.Context(), []Notification{testNotification("inc-1", 1, KindCreated)}); err != nil {
		t.Fatal(err)
	}
	f := &fakeFetcher{msgs: make(chan kafka.Message, 1), j: &journal{}}
	f.msgs <- w.msgs[0]
	r := NewKafkaRunner(f, d, KafkaRunnerOptions{Clock: clock})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-clock.block // the dispatcher is waiting to retry
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := f.Committed(); len(c) != 0 {
		t.Errorf("committed %v while the receiver was down", c)
	}
	if got := len(drain(rc)); got != 1 {
		t.Errorf("%d attempts", got)
	}
}

func TestKafkaOutboxWriteError(t *testing.T) {
	w := &fakeWriter{err: errors.New("broker down")}
	err := NewKafkaOutbox(w, nil).Enqueue(t.Context(), []Notification{testNotification("inc-1", 1, KindCreated)})
	if err == nil {
		t.Fatal("write error swallowed")
	}
}

func TestFileOutboxSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	o, err := OpenFileOutbox(dir, FileOutboxOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ns := []Notification{testNotification("inc-1", 1, KindCreated), testNotification("inc-2", 1, KindCreated)}
	if err := o.Enqueue(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(t.Context(), []Notification{testNotification("inc-1", 2, KindResolved)}); err != nil {
		t.Fatal(err)
	}
	// "Crash": close without dispatching anything.
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	o, err = OpenFileOutbox(dir, FileOutboxOptions{Clock: clock, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if o.Pending() != 3 || testutil.ToFloat64(m.pending) != 3 {
		t.Fatalf("pending after reopen: %d", o.Pending())
	}
	rc, srv := newRecorder(t, 200)
	d, _ := newTestDispatcher(t, []Route{webhookRoute(t, "oncall", srv.URL, Filter{})}, clock, RetryConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, d) }()
	waitFor(t, "outbox drained", func() bool { return o.Pending() == 0 })

	// Enqueued while running: delivered too.
	if err := o.Enqueue(t.Context(), []Notification{testNotification("inc-3", 1, KindCreated)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "outbox drained", func() bool { return o.Pending() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range drain(rc) {
		keys = append(keys, r.header.Get(HeaderIdempotencyKey))
	}
	if want := []string{"inc-1:1", "inc-2:1", "inc-1:2", "inc-3:1"}; !slices.Equal(keys, want) {
		t.Errorf("delivered %v, want each once, in order: %v", keys, want)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = OpenFileOutbox(dir, FileOutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Pending() != 0 {
		t.Errorf("%d pending after a clean run and reopen", o.Pending())
	}
}

// A notification whose delivery is interrupted stays stored and is
// delivered after the restart, with the same idempotency key.
func TestFileOutboxInterruptedDeliveryIsRedelivered(t *testing.T) {
	dir := t.TempDir()
	o, err := OpenFileOutbox(dir, FileOutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Enqueue(t.Context(), []Notification{testNotification("inc-1", 1, KindCreated)}); err != nil {
		t.Fatal(err)
	}
	rc, srv := newRecorder(t, 503, 200)
	clock := newFakeClock()
	clock.block = make(chan time.Duration, 1)
	d, _ := newTestDispatcher(t, []Route{webhookRoute(t, "oncall", srv.URL, Filter{})}, clock, RetryConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, d) }()
	<-clock.block
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	o.Close()

	o, err = OpenFileOutbox(dir, FileOutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Pending() != 1 {
		t.Fatalf("pending %d after interrupted delivery", o.Pending())
	}
	d2, _ := newTestDispatcher(t, []Route{webhookRoute(t, "oncall", srv.URL, Filter{})}, newFakeClock(), RetryConfig{})
	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- o.Run(ctx, d2) }()
	waitFor(t, "outbox drained", func() bool { return o.Pending() == 0 })
	cancel()
	<-done
	reqs := drain(rc)
	if len(reqs) != 2 || reqs[0].header.Get(HeaderIdempotencyKey) != reqs[1].header.Get(HeaderIdempotencyKey) {
		t.Errorf("requests %d, keys must match", len(reqs))
	}
}

func TestFileOutboxMaxPendingDropsOldest(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	o, err := OpenFileOutbox(t.TempDir(), FileOutboxOptions{MaxPending: 2, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for i := range 3 {
		if err := o.Enqueue(t.Context(), []Notification{testNotification("inc-1", i, KindUpdated)}); err != nil {
			t.Fatal(err)
		}
	}
	if o.Pending() != 2 || testutil.ToFloat64(m.outboxDropped) != 1 {
		t.Errorf("pending %d, dropped %v", o.Pending(), testutil.ToFloat64(m.outboxDropped))
	}
	j := &journal{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, journalDeliverer{j}) }()
	waitFor(t, "outbox drained", func() bool { return o.Pending() == 0 })
	cancel()
	<-done
	if got := j.all(); !slices.Equal(got, []string{"deliver inc-1:1", "deliver inc-1:2"}) {
		t.Errorf("delivered %v", got)
	}
}

func TestFileOutboxIsLocked(t *testing.T) {
	dir := t.TempDir()
	o, err := OpenFileOutbox(dir, FileOutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := OpenFileOutbox(dir, FileOutboxOptions{}); err == nil {
		t.Fatal("second open of a locked outbox succeeded")
	}
}
