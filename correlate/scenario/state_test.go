package scenario

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/correlatord/correlatord/correlate"
)

// runWithRestarts is Run, but every `every` events the engine writes its
// changes to an in-memory changelog, and at each event index in restarts
// the engine is thrown away and a new one restored from the changelog. With
// redeliver, the events since the last checkpoint are processed again after
// a restart, as Kafka redelivers what was not committed.
func runWithRestarts(t *testing.T, s *Scenario, cfg correlate.Config, every int, restarts map[int]bool, redeliver bool) []*correlate.Incident {
	t.Helper()
	topo := correlate.NewCMDB(s.Topology)
	newEngine := func() *correlate.Engine { return correlate.New(cfg, func() correlate.Topology { return topo }) }
	e := newEngine()
	var (
		changelog []correlate.StateRecord
		out       []*correlate.Incident
		last      time.Time
		lastCkpt  int // index of the first event not in the changelog
		ckptLast  time.Time
	)
	collect := func(ups []correlate.Update) {
		for _, u := range ups {
			if u.Kind == correlate.UpdateClosed {
				out = append(out, u.Incident)
			}
		}
	}
	checkpoint := func(next int) {
		var err error
		if changelog, err = e.AppendChanges(changelog); err != nil {
			t.Fatal(err)
		}
		lastCkpt, ckptLast = next, last
	}
	for i := 0; i < len(s.Events); i++ {
		if restarts[i] {
			delete(restarts, i)
			if !redeliver {
				checkpoint(i)
			}
			e = newEngine()
			if err := e.Restore(changelog); err != nil {
				t.Fatal(err)
			}
			// Closed incidents are final once reported; the redelivered
			// events must not report them twice.
			out = out[:0:0]
			i, last = lastCkpt, ckptLast
		}
		ev := &s.Events[i]
		collect(e.Process(ev, correlate.Input{}, time.Time{}))
		if ev.Time.Sub(last) >= 10*time.Second {
			last = ev.Time
			collect(e.Advance(ev.Time.Add(-cfg.AllowedLateness)))
		}
		if (i+1)%every == 0 {
			checkpoint(i + 1)
		}
	}
	collect(e.Flush())
	return out
}

func incidentsJSON(t *testing.T, incs []*correlate.Incident) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, in := range incs {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		m[in.ID] = string(b)
	}
	return m
}

// TestRestoreGivesSameIncidents: an engine restored from its changelog,
// at any point, carries on exactly as the one that never stopped.
func TestRestoreGivesSameIncidents(t *testing.T) {
	s, err := Generate(Options{Seed: 3, CIs: 2000, Faults: 30})
	if err != nil {
		t.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	want := Run(s, cfg)
	n := len(s.Events)
	for _, redeliver := range []bool{false, true} {
		restarts := map[int]bool{n / 5: true, n / 3: true, n / 2: true, 2 * n / 3: true, n - 7: true}
		got := runWithRestarts(t, s, cfg, 97, restarts, redeliver)
		// Incidents closed before the last restart were reported by the
		// engine before it; only those after it are compared in full.
		wantByID := incidentsJSON(t, want)
		gotByID := incidentsJSON(t, got)
		for id, g := range gotByID {
			if w, ok := wantByID[id]; !ok {
				t.Errorf("redeliver=%v: incident %s after restore, not in the uninterrupted run", redeliver, id)
			} else if w != g {
				t.Errorf("redeliver=%v: incident %s differs after restore:\n got %s\nwant %s", redeliver, id, g, w)
			}
		}
		if len(gotByID) == 0 {
			t.Fatalf("redeliver=%v: no incidents after the last restart", redeliver)
		}
	}
	// The quality holds across restarts too.
	r := Evaluate(s.Truth, want)
	if r.F1 < 0.95 {
		t.Fatalf("F1 %.3f", r.F1)
	}
}

// TestChangelogIsCompactable: replaying only the latest record of each key
// gives the same state as the full changelog.
func TestChangelogIsCompactable(t *testing.T) {
	s, err := Generate(Options{Seed: 4, CIs: 1000, Faults: 20})
	if err != nil {
		t.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	topo := correlate.NewCMDB(s.Topology)
	e := correlate.New(cfg, func() correlate.Topology { return topo })
	var log []correlate.StateRecord
	for i := range s.Events[:len(s.Events)/2] {
		e.Process(&s.Events[i], correlate.Input{}, time.Time{})
		if i%50 == 0 {
			e.Advance(s.Events[i].Time.Add(-cfg.AllowedLateness))
			log, err = e.AppendChanges(log)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	log, _ = e.AppendChanges(log)
	latest := map[string]int{}
	for i, r := range log {
		latest[r.Key] = i
	}
	var compacted []correlate.StateRecord
	for i, r := range log {
		if latest[r.Key] == i && r.Value != nil {
			compacted = append(compacted, r)
		}
	}
	if len(compacted) >= len(log) {
		t.Fatalf("nothing to compact: %d records", len(log))
	}
	a := correlate.New(cfg, func() correlate.Topology { return topo })
	b := correlate.New(cfg, func() correlate.Topology { return topo })
	if err := a.Restore(log); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(compacted); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(incidentsJSON(t, a.Incidents()), incidentsJSON(t, b.Incidents())) {
		t.Fatal("compacted changelog restores a different state")
	}
	if want := incidentsJSON(t, e.Incidents()); !reflect.DeepEqual(want, incidentsJSON(t, a.Incidents())) {
		t.Fatal("restored state differs from the engine's")
	}
}

func TestRestoreRejectsBadRecords(t *testing.T) {
	e := correlate.New(correlate.DefaultConfig(), nil)
	err := e.Restore([]correlate.StateRecord{{Key: "group/INC-1", Value: []byte("{not json")}})
	if err == nil || !contains(err.Error(), `"group/INC-1"`) {
		t.Fatalf("want an error naming the key, got %v", err)
	}
	err = correlate.New(correlate.DefaultConfig(), nil).Restore([]correlate.StateRecord{{Key: "engine", Value: []byte(`{"v":99}`)}})
	if err == nil || !contains(err.Error(), "version 99") {
		t.Fatalf("want a version error, got %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestRedeliveryChangesNothing: every 500 events, the last 100 are
// delivered again (a first stage killed before its offset commit produces
// them twice). Incidents are the same as without the duplicates: even a
// copy of a firing event that arrives after its alert resolved is
// recognised.
func TestRedeliveryChangesNothing(t *testing.T) {
	s, err := Generate(Options{Seed: 5, CIs: 2000, Faults: 30})
	if err != nil {
		t.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	want := incidentsJSON(t, Run(s, cfg))
	topo := correlate.NewCMDB(s.Topology)
	e := correlate.New(cfg, func() correlate.Topology { return topo })
	var out []*correlate.Incident
	collect := func(ups []correlate.Update) {
		for _, u := range ups {
			if u.Kind == correlate.UpdateClosed {
				out = append(out, u.Incident)
			}
		}
	}
	var last time.Time
	dups := 0
	for i := range s.Events {
		collect(e.Process(&s.Events[i], correlate.Input{}, time.Time{}))
		if t := s.Events[i].Time; t.Sub(last) >= 10*time.Second {
			last = t
			collect(e.Advance(t.Add(-cfg.AllowedLateness)))
		}
		if i%500 == 499 {
			for j := i - 99; j <= i; j++ {
				if ups := e.Process(&s.Events[j], correlate.Input{}, time.Time{}); len(ups) > 0 {
					t.Fatalf("redelivered event %s changed something: %+v", s.Events[j].ID, ups)
				}
				dups++
			}
		}
	}
	collect(e.Flush())
	got := incidentsJSON(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d incidents with %d duplicates, %d without", len(got), dups, len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Fatalf("incident %s differs with duplicates", id)
		}
	}
}
