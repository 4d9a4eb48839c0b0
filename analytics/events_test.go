package analytics

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/correlatord/correlatord/analytics/analyticstest"
	"github.com/correlatord/correlatord/event"
)

func newBlockBatch(tb testing.TB, table Table[EventRow]) *analyticstest.BlockBatch {
	tb.Helper()
	return analyticstest.NewBlockBatch(tb, table.Columns, analyticstest.EventColumnTypes)
}

func testEvent(i int) EventRow {
	e := event.Event{
		Time:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1234567 * time.Microsecond),
		Source: "prometheus",
		Labels: event.FromMap(map[string]string{
			"alertname": "HighLatency",
			"service":   "checkout",
			"instance":  "10.0.0." + strconv.Itoa(i%250) + ":9100",
			"severity":  []string{"critical", "warning", "info", "major", "minor"}[i%5],
			"job":       "node",
		}),
		Annotations: event.FromMap(map[string]string{"summary": "p99 above 2s", "runbook_url": "https://runbooks/latency"}),
		CI:          "ci-" + strconv.Itoa(i%100),
		Summary:     "p99 latency above 2s on checkout",
	}
	if i%3 == 0 {
		e.Status = event.StatusResolved
	}
	if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
		panic(err)
	}
	return EventRow{Event: e, ReceivedAt: e.Time.Add(1500 * time.Millisecond)}
}

func TestEventsTableAppend(t *testing.T) {
	table := EventsTable()
	b := newBlockBatch(t, table)
	withType := testEvent(3)
	withType.CIType = "host"
	rows := []EventRow{testEvent(1), withType, {
		Event: event.Event{ // not normalized: kept writable
			ID: "raw", Time: time.UnixMilli(-5), Kind: "bogus", Status: "bogus", Severity: "ERROR",
		},
	}}
	for i := range rows {
		if err := table.Append(b, &rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if b.Rows() != 3 {
		t.Fatalf("%d rows", b.Rows())
	}
	e := rows[0].Event
	for name, want := range map[string]any{
		"event_id":          e.ID,
		"time":              e.Time.Truncate(time.Second),
		"time_ms":           uint64(e.Time.UnixMilli()),
		"received_at":       rows[0].ReceivedAt.Truncate(time.Second),
		"source":            "prometheus",
		"kind":              "alert",
		"status":            "firing",
		"severity":          "warning",
		"ci":                "ci-1",
		"fingerprint":       e.Fingerprint,
		"summary":           e.Summary,
		"label_keys":        []string{"alertname", "instance", "job", "service", "severity"},
		"label_values":      []string{"HighLatency", "10.0.0.1:9100", "node", "checkout", "warning"},
		"annotation_keys":   []string{"runbook_url", "summary"},
		"annotation_values": []string{"https://runbooks/latency", "p99 above 2s"},
	} {
		got := b.Value(t, name, 0)
		if tm, ok := got.(time.Time); ok {
			got = tm.UTC()
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := b.Value(t, "ci_type", 1); got != "host" {
		t.Errorf("row 1 ci_type = %v", got)
	}
	if got := b.Value(t, "status", 1); got != "resolved" {
		t.Errorf("row 1 status = %v", got)
	}
	if got := b.Value(t, "severity", 1); got != "major" {
		t.Errorf("row 1 severity = %v", got)
	}
	for name, want := range map[string]any{
		"kind": "alert", "status": "firing", "severity": "major", "time_ms": uint64(0), "label_keys": []string{},
	} {
		if got := b.Value(t, name, 2); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("unnormalized row: %s = %v, want %v", name, got, want)
		}
	}
}

// The same event always produces the same row, whatever the map order.
func TestEventsTableDeterministic(t *testing.T) {
	table := EventsTable()
	var first string
	for i := 0; i < 20; i++ {
		b := newBlockBatch(t, table)
		r := testEvent(7)
		if err := table.Append(b, &r); err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(b.Value(t, "label_keys", 0), b.Value(t, "label_values", 0),
			b.Value(t, "annotation_keys", 0), b.Value(t, "annotation_values", 0))
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("row differs: %s vs %s", got, first)
		}
	}
}

func TestEventsTableEnumCodes(t *testing.T) {
	for k, want := range map[event.Kind]int8{event.KindAlert: 1, event.KindLog: 2, event.KindChange: 3} {
		if got := kindCode(k); got != want {
			t.Errorf("kindCode(%s) = %d", k, got)
		}
	}
	for s, want := range map[event.Status]int8{event.StatusFiring: 1, event.StatusResolved: 2} {
		if got := statusCode(s); got != want {
			t.Errorf("statusCode(%s) = %d", s, got)
		}
	}
	for s, want := range map[event.Severity]int8{"critical": 5, "major": 4, "minor": 3, "warning": 2, "info": 1, "page": 5, "": 2, "zzz": 2} {
		if got := severityCode(s); got != want {
			t.Errorf("severityCode(%q) = %d, want %d", s, got, want)
		}
	}
}

// BenchmarkEventsTableAppend measures the hot path from a decoded event to a
// row in a clickhouse-go batch (conversion, label sorting, column encoding
// into the block), with clickhouse-go's own column encoders and no server.
func BenchmarkEventsTableAppend(b *testing.B) {
	table := EventsTable()
	rows := make([]EventRow, 1024)
	for i := range rows {
		rows[i] = testEvent(i)
	}
	batch := newBlockBatch(b, table)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if batch.Rows() >= 20000 {
			batch.Block.Reset()
		}
		if err := table.Append(batch, &rows[n%len(rows)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
