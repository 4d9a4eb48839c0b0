package scenario

import (
	"runtime"
	"slices"
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

// BenchmarkStormLatency times every Process call (and the Advance calls,
// charged to the event that triggered them) during the storm of
// BenchmarkProcessStorm: the time from an event's arrival at the engine to
// its incident update. It reports the median, p99 and maximum.
func BenchmarkStormLatency(b *testing.B) {
	s, err := Generate(Options{Seed: 3, CIs: 10000, Faults: 200, FaultGap: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	topo := correlate.NewCMDB(s.Topology)
	evs := s.Events
	lat := make([]time.Duration, 0, len(evs)*b.N)
	b.ReportAllocs()
	for b.Loop() {
		e := correlate.New(cfg, func() correlate.Topology { return topo })
		var last time.Time
		for i := range evs {
			start := time.Now()
			e.Process(&evs[i], correlate.Input{}, time.Time{})
			if t := evs[i].Time; t.Sub(last) >= time.Second {
				last = t
				e.Advance(t.Add(-cfg.AllowedLateness))
			}
			lat = append(lat, time.Since(start))
		}
		e.Flush()
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.5), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
}

// BenchmarkStateMemory measures the heap the engine holds for a storm
// that is still open: the same storm without Flush, measured after a GC.
// It reports the bytes per live incident and per tracked (firing) alert,
// each the whole state divided by that count.
func BenchmarkStateMemory(b *testing.B) {
	s, err := Generate(Options{Seed: 3, CIs: 10000, Faults: 200, FaultGap: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	// Keep every incident in the state to the end of the storm.
	cfg.ReopenWindow, cfg.MaxIdle = 24*time.Hour, 24*time.Hour
	topo := correlate.NewCMDB(s.Topology)
	evs := s.Events
	var ms runtime.MemStats
	var perInc, perAlert float64
	var live, alerts int
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		e := correlate.New(cfg, func() correlate.Topology { return topo })
		var last time.Time
		for i := range evs {
			e.Process(&evs[i], correlate.Input{}, time.Time{})
			if t := evs[i].Time; t.Sub(last) >= time.Second {
				last = t
				e.Advance(t.Add(-cfg.AllowedLateness))
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		held := float64(ms.HeapAlloc) - float64(before)
		incs := e.Incidents()
		live, alerts = len(incs), 0
		for _, in := range incs {
			alerts += len(in.EventIDs)
		}
		incs = nil
		runtime.GC()
		runtime.ReadMemStats(&ms)
		held = min(held, float64(ms.HeapAlloc)-float64(before))
		perInc, perAlert = held/float64(live), held/float64(alerts)
		runtime.KeepAlive(e)
	}
	b.ReportMetric(perInc, "B/incident")
	b.ReportMetric(perAlert, "B/alert")
	b.ReportMetric(float64(live), "incidents")
	b.ReportMetric(float64(alerts), "alerts")
}
