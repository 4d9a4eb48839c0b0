package rules

import (
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"github.com/correlatord/correlatord/event"
)

// TestCopyEventOwnsItsStrings: a held copy must not change when the buffer
// its original's strings pointed into is reused, as a decoder reuses its.
func TestCopyEventOwnsItsStrings(t *testing.T) {
	buf := []byte("evt-1fp-1db-1promcpu highalertnameHighCPUinstancedb-1:9100summaryhot")
	str := func(from, to int) string { return unsafe.String(&buf[from], to-from) }
	e := &event.Event{
		ID: str(0, 5), Fingerprint: str(5, 9), CI: str(9, 13), Source: str(13, 17), Summary: str(17, 25),
		Labels:      event.FromMap(map[string]string{str(25, 34): str(34, 41), str(41, 49): str(49, 58)}),
		Annotations: event.FromMap(map[string]string{str(58, 65): str(65, 68)}),
	}
	held := copyEvent(nil, e)
	want := event.Event{ID: "evt-1", Fingerprint: "fp-1", CI: "db-1", Source: "prom", Summary: "cpu high",
		Labels:      event.FromMap(map[string]string{"alertname": "HighCPU", "instance": "db-1:9100"}),
		Annotations: event.FromMap(map[string]string{"summary": "hot"})}
	for i := range buf {
		buf[i] = 'x'
	}
	if held.ID != want.ID || held.Fingerprint != want.Fingerprint || held.CI != want.CI || held.Source != want.Source ||
		held.Summary != want.Summary || !slices.Equal(held.Labels, want.Labels) || !slices.Equal(held.Annotations, want.Annotations) {
		t.Fatalf("held copy changed with the decoder's buffer:\n got %+v\nwant %+v", *held, want)
	}
}

// TestCopyEventReuses: copying a repeat into the last copy allocates
// nothing, and copying a changed delivery allocates the strings once,
// keeping the labels' array.
func TestCopyEventReuses(t *testing.T) {
	first := event.Event{ID: "evt-1", Fingerprint: "fp-1", CI: "db-1", Summary: "cpu high",
		Labels:      event.FromMap(map[string]string{"alertname": "HighCPU", "instance": "db-1:9100", "job": "node"}),
		Annotations: event.FromMap(map[string]string{"summary": "hot"})}
	held := copyEvent(nil, &first)
	labels := held.Labels
	repeat := first
	repeat.Labels = slices.Clone(first.Labels)
	if n := testing.AllocsPerRun(100, func() { held = copyEvent(held, &repeat) }); n != 0 {
		t.Errorf("copying a repeat: %.1f allocations, want 0", n)
	}
	changed := first
	changed.ID = "evt-2"
	changed.Labels = event.FromMap(map[string]string{"alertname": "HighCPU", "instance": "db-1:9100", "job": "node-exporter"})
	deliveries := [2]*event.Event{&first, &changed}
	i := 0
	if n := testing.AllocsPerRun(100, func() { i++; held = copyEvent(held, deliveries[i%2]) }); n != 1 {
		t.Errorf("copying a changed delivery: %.1f allocations, want 1 (its strings)", n)
	}
	if i%2 == 0 {
		held = copyEvent(held, &changed)
	}
	if held.ID != "evt-2" || !slices.Equal(held.Labels, changed.Labels) || !slices.Equal(held.Annotations, first.Annotations) {
		t.Fatalf("copy of the changed delivery: %+v", *held)
	}
	if reflect.ValueOf(labels).UnsafePointer() != reflect.ValueOf(held.Labels).UnsafePointer() {
		t.Errorf("labels replaced, want the held ones refilled")
	}
}

// TestCopyEventKeepsEmptyLabels: a held copy of an event whose labels are
// empty (a set rule deleted the last one) has empty labels too, not none,
// so that the event is still written as "labels":{}.
func TestCopyEventKeepsEmptyLabels(t *testing.T) {
	e := event.Event{ID: "evt-1", Labels: event.Labels{}, Annotations: event.Labels{}}
	held := copyEvent(nil, &e)
	if held.Labels == nil || held.Annotations == nil {
		t.Errorf("copy has labels %#v, annotations %#v, want both empty, not nil", held.Labels, held.Annotations)
	}
	none := event.Event{ID: "evt-2"}
	if held = copyEvent(held, &none); held.Labels != nil || held.Annotations != nil {
		t.Errorf("copy of an event without labels has %#v, %#v, want nil", held.Labels, held.Annotations)
	}
}
