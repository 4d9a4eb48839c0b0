package scenario

import (
	"testing"
	"time"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
)

// BenchmarkProcessStorm runs an alert storm (200 faults 10s apart on a
// 10k-CI topology, with noise) through a fresh engine per iteration, the
// watermark advancing every 10s of event time.
func BenchmarkProcessStorm(b *testing.B) {
	s, err := Generate(Options{Seed: 3, CIs: 10000, Faults: 200, FaultGap: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	topo := correlate.NewCMDB(s.Topology)
	evs := s.Events
	firing := 0
	for i := range evs {
		if evs[i].Status == event.StatusFiring {
			firing++
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		e := correlate.New(cfg, func() correlate.Topology { return topo })
		var last time.Time
		for i := range evs {
			e.Process(&evs[i], correlate.Input{}, time.Time{})
			if t := evs[i].Time; t.Sub(last) >= 10*time.Second {
				last = t
				e.Advance(t.Add(-cfg.AllowedLateness))
			}
		}
		e.Flush()
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(firing), "firing/op")
}
