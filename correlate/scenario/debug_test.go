package scenario

import (
	"testing"

	"github.com/correlatord/correlatord/correlate"
)

// debug logs, per fault, how its events spread over incidents and what the
// main incident names as root cause.
func debug(t *testing.T, s *Scenario, incs []*correlate.Incident) {
	incOf := map[string]int{}
	for i, in := range incs {
		for _, id := range in.EventIDs {
			incOf[id] = i
		}
	}
	for _, f := range s.Truth.Faults {
		spread := map[int]int{}
		for id, fid := range s.Truth.FaultOf {
			if fid == f.ID {
				spread[incOf[id]]++
			}
		}
		best, bn := -1, 0
		for i, n := range spread {
			if n > bn || n == bn && i < best {
				best, bn = i, n
			}
		}
		rc := ""
		if best >= 0 {
			rc = incs[best].RootCauseCI
		}
		if rc != f.RootCI || len(spread) > 1 {
			t.Logf("%s root=%s(%s) spread=%v main-root=%s", f.ID, f.RootCI, f.Type, spread, rc)
			for i := range s.Events {
				ev := &s.Events[i]
				if s.Truth.FaultOf[ev.ID] == f.ID && incOf[ev.ID] != best {
					in := incs[incOf[ev.ID]]
					t.Logf("   stray %s ci=%q at +%s -> inc %d cis=%v root=%s", ev.ID, ev.CI, ev.Time.Sub(f.Start), incOf[ev.ID], in.CIs, in.RootCauseCI)
				}
			}
		}
	}
}
