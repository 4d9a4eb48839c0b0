package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/event"
)

func handoffEvents(ids ...string) []event.Event {
	evs := make([]event.Event, len(ids))
	for i, id := range ids {
		evs[i] = event.Event{ID: id, Labels: event.FromMap(map[string]string{"alertname": id})}
	}
	return evs
}

func handoffCount(t *testing.T, reg *prometheus.Registry, result string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(reg, "correlator_ingest_handoff_events_total")
	if err != nil || n != 3 {
		t.Fatalf("handoff counter series: %d, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "correlator_ingest_handoff_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	t.Fatalf("no %s series", result)
	return 0
}

// TestLocalHandoffTakesOnce: the events put for a message are taken by
// the message that carries the header, once; a message without it, with
// another process's header or a damaged one finds nothing.
func TestLocalHandoffTakesOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewLocalHandoff(100, time.Minute, nil, reg)
	if _, ok := h.Put(3, handoffEvents("a")); ok {
		t.Fatal("Put held events for a partition this process does not own")
	}
	h.Own(3, true)
	hdr, ok := h.Put(3, handoffEvents("a", "b"))
	if !ok {
		t.Fatal("Put refused events for an owned partition with room")
	}
	hdr2, _ := h.Put(3, handoffEvents("c"))
	m := kafka.Message{Partition: 3, Headers: []kafka.Header{{Key: "other", Value: []byte("x")}, hdr}}
	got, ok := h.Take(&m)
	if !ok || len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("Take = %v, %v; want events a and b", got, ok)
	}
	if _, ok := h.Take(&m); ok {
		t.Fatal("the same message took its events twice (a redelivery must decode)")
	}
	other := NewLocalHandoff(100, time.Minute, nil, prometheus.NewRegistry())
	other.Own(3, true)
	if _, ok := other.Take(&kafka.Message{Headers: []kafka.Header{hdr2}}); ok {
		t.Fatal("another process's hand-off took events by this one's header")
	}
	for _, bad := range [][]byte{nil, hdr2.Value[:15], append(append([]byte{}, hdr2.Value...), 0)} {
		if _, ok := h.Take(&kafka.Message{Headers: []kafka.Header{{Key: HeaderHandoff, Value: bad}}}); ok {
			t.Fatalf("a header of %d bytes took events", len(bad))
		}
	}
	if _, ok := h.Take(&kafka.Message{}); ok {
		t.Fatal("a message without headers took events")
	}
	if got, ok := h.Take(&kafka.Message{Headers: []kafka.Header{hdr2}}); !ok || got[0].ID != "c" {
		t.Fatalf("Take(second message) = %v, %v", got, ok)
	}
	if h.Held() != 0 || handoffCount(t, reg, "taken") != 3 {
		t.Fatalf("held %d, taken %d; want 0 and 3", h.Held(), handoffCount(t, reg, "taken"))
	}
}

// TestLocalHandoffBounds: beyond MaxEvents Put refuses (the oldest, which
// the stage fetches next, stay); past MaxAge, and when their partition is
// released, events are dropped; each is counted.
func TestLocalHandoffBounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	h := NewLocalHandoff(3, 10*time.Second, func() time.Time { return now }, reg)
	h.Own(0, true)
	h.Own(1, true)
	first, _ := h.Put(0, handoffEvents("a", "b"))
	if _, ok := h.Put(1, handoffEvents("c", "d")); ok {
		t.Fatal("Put held 4 events with room for 3")
	}
	now = now.Add(5 * time.Second)
	second, ok := h.Put(1, handoffEvents("e"))
	if !ok {
		t.Fatal("Put refused an event that fits")
	}
	if h.Held() != 3 || handoffCount(t, reg, "refused") != 2 {
		t.Fatalf("held %d, refused %d; want 3 and 2", h.Held(), handoffCount(t, reg, "refused"))
	}
	// The first entry is 11 s old at the next Put: dropped.
	now = now.Add(6 * time.Second)
	if _, ok := h.Put(0, handoffEvents("f")); !ok {
		t.Fatal("Put refused an event after the oldest expired")
	}
	if _, ok := h.Take(&kafka.Message{Headers: []kafka.Header{first}}); ok {
		t.Fatal("events older than the maximum age were taken")
	}
	if got := handoffCount(t, reg, "dropped"); got != 2 {
		t.Fatalf("dropped %d, want 2", got)
	}
	// Partition 1 moves to another instance: what was held for it goes.
	h.Own(1, false)
	if _, ok := h.Take(&kafka.Message{Headers: []kafka.Header{second}}); ok {
		t.Fatal("events of a released partition were taken")
	}
	if h.Held() != 1 || handoffCount(t, reg, "dropped") != 3 {
		t.Fatalf("held %d, dropped %d; want 1 and 3", h.Held(), handoffCount(t, reg, "dropped"))
	}
	if h.Owns(1) || !h.Owns(0) {
		t.Fatal("Owns does not follow Own")
	}
}

// TestLocalHandoffDropsWhatIsNotTaken: Discard (a dead-lettered or never
// produced message) and TakeWithin on events over the decoder's limits
// drop the events, so the message is decoded and reported as before; a
// fetch expires what is left behind as a Put does.
func TestLocalHandoffDropsWhatIsNotTaken(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	h := NewLocalHandoff(100, 10*time.Second, func() time.Time { return now }, reg)
	h.Own(0, true)
	msg := func(evs []event.Event) *kafka.Message {
		hdr, ok := h.Put(0, evs)
		if !ok {
			t.Fatal("Put refused")
		}
		return &kafka.Message{Headers: []kafka.Header{hdr}}
	}
	discarded := msg(handoffEvents("a"))
	h.Discard(discarded)
	if _, ok := h.Take(discarded); ok {
		t.Fatal("a discarded message's events were taken")
	}
	limits := Limits{MaxLabels: 2, MaxLabelBytes: 16}
	for name, e := range map[string]event.Event{
		"labels":      {ID: "b", Labels: event.FromMap(map[string]string{"a": "1", "b": "2", "c": "3"})},
		"annotations": {ID: "c", Annotations: event.FromMap(map[string]string{"a": "1", "b": "2", "c": "3"})},
		"long ci":     {ID: "d", CI: "a-ci-id-longer-than-16-bytes"},
		"bad ci":      {ID: "e", CI: "\xff"},
	} {
		m := msg([]event.Event{{ID: "ok"}, e})
		if got, ok := h.TakeWithin(m, limits); ok {
			t.Errorf("%s: taken %v, over the limits", name, got)
		}
	}
	within := msg([]event.Event{{ID: "f", CI: "ci-1", Labels: event.FromMap(map[string]string{"a": "1", "b": "2"})}})
	if got, ok := h.TakeWithin(within, limits); !ok || got[0].ID != "f" {
		t.Fatalf("TakeWithin(events within the limits) = %v, %v", got, ok)
	}
	if d, tk := handoffCount(t, reg, "dropped"), handoffCount(t, reg, "taken"); d != 9 || tk != 1 {
		t.Fatalf("dropped %d, taken %d; want 9 and 1", d, tk)
	}
	left := msg(handoffEvents("g"))
	other := msg(handoffEvents("h"))
	now = now.Add(11 * time.Second)
	h.Take(other) // expired itself; the fetch of it expires "g" too
	if h.Held() != 0 {
		t.Fatalf("%d events held after a fetch past their age", h.Held())
	}
	if _, ok := h.Take(left); ok {
		t.Fatal("an expired message's events were taken")
	}
}
