package correlate

import (
	"strconv"
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
)

// BenchmarkAppendChanges measures a checkpoint of the state a storm leaves:
// 50,000 firing alerts in 500 label groups of 100, all written for the
// first time (the cost a checkpoint pays during a storm of new alerts).
func BenchmarkAppendChanges(b *testing.B) {
	const alerts, groups = 50_000, 500
	cfg := DefaultConfig()
	cfg.GroupBy = []string{"instance"}
	start := time.Date(2024, 5, 14, 9, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range alerts {
		ev := event.Event{
			Time: start.Add(time.Duration(i) * time.Millisecond), Source: "bench", Kind: event.KindAlert,
			Status: event.StatusFiring, Severity: event.SeverityMajor,
			Labels: event.FromMap(map[string]string{"alertname": "HighLoad", "instance": "host-" + strconv.Itoa(i%groups), "seq": strconv.Itoa(i)}),
		}
		if err := event.Normalize(&ev, event.DefaultDefaults); err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		b.StopTimer()
		e := New(cfg, nil)
		for i := range evs {
			e.Process(&evs[i], Input{}, evs[i].Time)
		}
		b.StartTimer()
		records, err := e.AppendChanges(nil)
		if err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for _, r := range records {
			bytes += len(r.Key) + len(r.Value)
		}
	}
	b.ReportMetric(float64(bytes)/alerts, "B/alert")
}
