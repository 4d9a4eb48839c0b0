package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

// fakeFetcher hands out msgs in order, then blocks until ctx is done.
type fakeFetcher struct {
	mu         sync.Mutex
	msgs       []kafka.Message
	next       int
	commits    [][]kafka.Message
	failCommit bool
}

func (f *fakeFetcher) FetchMessage(ctx context.Context) (kafka.Message, error) {
	f.mu.Lock()
	if f.next < len(f.msgs) {
		m := f.msgs[f.next]
		f.next++
		f.mu.Unlock()
		return m, nil
	}
	f.mu.Unlock()
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (f *fakeFetcher) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failCommit {
		return errors.New("coordinator not available")
	}
	f.commits = append(f.commits, append([]kafka.Message(nil), msgs...))
	return nil
}

// committed returns the last committed offset per partition.
func (f *fakeFetcher) committed() map[int]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]int64{}
	for _, c := range f.commits {
		for _, m := range c {
			out[m.Partition] = m.Offset
		}
	}
	return out
}

type fakeDLQ struct {
	mu       sync.Mutex
	written  []kafka.Message
	failures int // fail this many writes first
}

func (d *fakeDLQ) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failures > 0 {
		d.failures--
		return errors.New("broker not available")
	}
	d.written = append(d.written, msgs...)
	return nil
}

func (d *fakeDLQ) messages() []kafka.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]kafka.Message(nil), d.written...)
}

// fakeHandler counts events; durability advances only when the test says.
type fakeHandler struct {
	mu      sync.Mutex
	events  []event.Event
	durable uint64
	auto    bool // every accepted event is durable at once
}

func (h *fakeHandler) Handle(_ context.Context, events []event.Event) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, events...)
	if h.auto {
		h.durable = uint64(len(h.events))
	}
	return uint64(len(h.events)), nil
}

func (h *fakeHandler) Durable() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.durable
}

func (h *fakeHandler) WaitDurable(ctx context.Context, pos uint64) error { return nil }

func (h *fakeHandler) makeDurable() {
	h.mu.Lock()
	h.durable = uint64(len(h.events))
	h.mu.Unlock()
}

func (h *fakeHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

func eventMessage(partition int, offset int64, alertname string) kafka.Message {
	v := fmt.Sprintf(`{"time":"2026-11-02T10:00:00Z","source":"test","labels":{"alertname":%q,"instance":"h1"}}`, alertname)
	return kafka.Message{Topic: "alerts", Partition: partition, Offset: offset, Value: []byte(v)}
}

func newTestConsumer(f Fetcher, dlq MessageWriter, h Handler, reg prometheus.Registerer) *Consumer {
	return NewConsumer(f, dlq, h, ConsumerOptions{
		Format:          FormatAuto,
		MaxMessageBytes: 4096,
		CommitInterval:  10 * time.Millisecond,
		Now:             func() time.Time { return time.Date(2026, 11, 2, 10, 1, 0, 0, time.UTC) },
		Policy:          Policy{MaxEventAge: 24 * time.Hour, MaxFutureSkew: time.Hour},
	}, NewMetrics(reg), zap.NewNop())
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConsumerCommitsOnlyDurableOffsets(t *testing.T) {
	f := &fakeFetcher{msgs: []kafka.Message{eventMessage(0, 10, "A"), eventMessage(1, 5, "B"), eventMessage(0, 11, "C")}}
	h := &fakeHandler{}
	c := newTestConsumer(f, &fakeDLQ{}, h, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()

	waitFor(t, "3 events handled", func() bool { return h.count() == 3 })
	time.Sleep(50 * time.Millisecond) // several commit ticks
	if got := f.committed(); len(got) != 0 {
		t.Fatalf("committed %v before anything was durable", got)
	}
	h.makeDurable()
	waitFor(t, "commit", func() bool { return len(f.committed()) == 2 })
	if got := f.committed(); got[0] != 11 || got[1] != 5 {
		t.Errorf("committed %v, want partition 0 at 11 and partition 1 at 5", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := c.Uncommitted(); n != 0 {
		t.Errorf("%d messages left uncommitted", n)
	}
}

func TestConsumerDeadLettersBadMessagesAndGoesOn(t *testing.T) {
	bad := kafka.Message{Topic: "alerts", Partition: 0, Offset: 2, Key: []byte("k"), Value: []byte(`{"time": oops}`),
		Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}}}
	mixed := kafka.Message{Topic: "alerts", Partition: 0, Offset: 3, Value: []byte(
		"{\"time\":\"2026-11-02T10:00:00Z\",\"labels\":{\"alertname\":\"OK\"}}\n{\"time\":\"2026-11-02T10:00:00Z\",\"status\":\"pending\",\"labels\":{\"alertname\":\"X\"}}\n")}
	huge := kafka.Message{Topic: "alerts", Partition: 0, Offset: 4, Value: []byte(strings.Repeat(" ", 5000))}
	old := kafka.Message{Topic: "alerts", Partition: 0, Offset: 5, Value: []byte(`{"time":"2001-01-01T00:00:00Z","labels":{"alertname":"Old"}}`)}
	f := &fakeFetcher{msgs: []kafka.Message{eventMessage(0, 1, "A"), bad, mixed, huge, old, eventMessage(0, 6, "B")}}
	h := &fakeHandler{auto: true}
	dlq := &fakeDLQ{failures: 2} // the broker refuses twice first
	reg := prometheus.NewRegistry()
	c := newTestConsumer(f, dlq, h, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()

	waitFor(t, "all offsets committed", func() bool { return f.committed()[0] == 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.count() != 3 { // A, the good line of mixed, B
		t.Errorf("handled %d events, want 3", h.count())
	}
	dl := dlq.messages()
	if len(dl) != 4 {
		t.Fatalf("dead-lettered %d messages, want 4", len(dl))
	}
	wantReasons := []string{ReasonMalformed, ReasonInvalidEvent, ReasonTooLarge, ReasonTimeRange}
	for i, m := range dl {
		hdr := map[string]string{}
		for _, h := range m.Headers {
			hdr[h.Key] = string(h.Value)
		}
		if hdr[HeaderErrorReason] != wantReasons[i] {
			t.Errorf("dead letter %d: reason %q, want %q", i, hdr[HeaderErrorReason], wantReasons[i])
		}
		if hdr[HeaderError] == "" || hdr[HeaderSourceTopic] != "alerts" || hdr[HeaderSourceOffset] == "" {
			t.Errorf("dead letter %d lacks its headers: %v", i, hdr)
		}
	}
	if hdr := dl[0].Headers; string(hdr[0].Value) != "t1" || string(dl[0].Key) != "k" {
		t.Error("the original key and headers were not kept")
	}
	if msg := headerValue(dl[1], HeaderError); !strings.Contains(msg, "status") {
		t.Errorf("invalid-event error does not name the field: %s", msg)
	}
	if got := testutil.ToFloat64(c.metrics.deadLetters.WithLabelValues(ReasonMalformed)); got != 1 {
		t.Errorf("malformed dead letters counted %v, want 1", got)
	}
}

func TestConsumerCommitRetriesAfterFailure(t *testing.T) {
	f := &fakeFetcher{msgs: []kafka.Message{eventMessage(0, 1, "A")}, failCommit: true}
	h := &fakeHandler{auto: true}
	c := newTestConsumer(f, &fakeDLQ{}, h, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "handled", func() bool { return h.count() == 1 })
	time.Sleep(30 * time.Millisecond)
	if c.Uncommitted() != 1 {
		t.Fatalf("a failed commit lost track of the offset: uncommitted=%d", c.Uncommitted())
	}
	f.mu.Lock()
	f.failCommit = false
	f.mu.Unlock()
	waitFor(t, "commit after recovery", func() bool { return f.committed()[0] == 1 })
	cancel()
	<-done
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
