package scenario

import (
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/correlatord/correlatord/correlate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Run feeds the scenario through an engine with cfg, advancing the
// watermark every 10s of event time, and returns every incident.
func Run(s *Scenario, cfg correlate.Config) []*correlate.Incident {
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
	for i := range s.Events {
		ev := &s.Events[i]
		collect(e.Process(ev, correlate.Input{}, time.Time{}))
		if ev.Time.Sub(last) >= 10*time.Second {
			last = ev.Time
			collect(e.Advance(ev.Time.Add(-cfg.AllowedLateness)))
		}
	}
	collect(e.Flush())
	return out
}

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(Options{Seed: 7, CIs: 500, Faults: 5})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(Options{Seed: 7, CIs: 500, Faults: 5})
	if !reflect.DeepEqual(a.Events, b.Events) || !reflect.DeepEqual(a.Truth, b.Truth) || !reflect.DeepEqual(a.Doc, b.Doc) {
		t.Fatal("not deterministic")
	}
	for i := 1; i < len(a.Events); i++ {
		if a.Events[i].Time.Before(a.Events[i-1].Time) {
			t.Fatal("events not time-ordered")
		}
	}
	// An unbound alert carries the labels correlation groups it by.
	unbound := 0
	for _, e := range a.Events {
		if !a.Truth.Unbound[e.ID] {
			continue
		}
		unbound++
		if e.Labels.Get("cluster") == "" || e.Labels.Get("job") == "" || !e.Labels.Sorted() {
			t.Fatalf("unbound event %s has labels %v, want cluster and job", e.ID, e.Labels)
		}
	}
	if unbound == 0 {
		t.Fatal("no unbound event generated")
	}
}

func TestQuality(t *testing.T) {
	seed := uint64(1)
	if v := os.Getenv("SCENARIO_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	s, err := Generate(Options{Seed: seed, CIs: 2000, Faults: 50})
	if err != nil {
		t.Fatal(err)
	}
	cfg := correlate.DefaultConfig()
	if v := os.Getenv("SCENARIO_SHARED"); v != "" {
		cfg.SharedMaxHops, _ = strconv.Atoi(v)
	}
	incs := Run(s, cfg)
	r := Evaluate(s.Truth, incs)
	t.Logf("CIs=%d events=%d faults=%d incidents=%d precision=%.3f recall=%.3f F1=%.3f RCA=%.3f noise-reduction=%.1fx",
		s.Topology.Len(), r.Events, r.Faults, r.Incidents, r.Precision, r.Recall, r.F1, r.RCAAccuracy, r.NoiseReduction)
	rb := EvaluateBound(s.Truth, incs)
	t.Logf("CI-bound events only: precision=%.3f recall=%.3f F1=%.3f", rb.Precision, rb.Recall, rb.F1)
	if os.Getenv("SCENARIO_DEBUG") != "" {
		debug(t, s, incs)
	}
	// The targets: grouping F1 >= 0.95 and root-cause accuracy >= 0.90.
	if r.F1 < 0.95 || r.RCAAccuracy < 0.90 {
		t.Errorf("seed %d below target: F1 %.3f RCA %.3f", seed, r.F1, r.RCAAccuracy)
	}
	if again := Evaluate(s.Truth, Run(s, cfg)); again != r {
		t.Fatalf("not deterministic: %+v vs %+v", again, r)
	}
}

// TestQualitySeeds holds the targets on seeds 1 to 5 with the default
// Config, so that a change does not tune the engine to one scenario.
func TestQualitySeeds(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		s, err := Generate(Options{Seed: seed, CIs: 2000, Faults: 50})
		if err != nil {
			t.Fatal(err)
		}
		r := Evaluate(s.Truth, Run(s, correlate.DefaultConfig()))
		t.Logf("seed %d: precision=%.3f recall=%.3f F1=%.3f RCA=%.3f noise-reduction=%.1fx",
			seed, r.Precision, r.Recall, r.F1, r.RCAAccuracy, r.NoiseReduction)
		if r.F1 < 0.95 || r.RCAAccuracy < 0.90 {
			t.Errorf("seed %d below target: F1 %.3f RCA %.3f", seed, r.F1, r.RCAAccuracy)
		}
	}
}
