package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlatord/correlatord/event"
)

func TestStateIsBounded(t *testing.T) {
	h := newHarness(t, `rules: []`, withConfig(func(c *Config) {
		c.State.MaxAlerts = 10
		c.State.FiringTTL = time.Hour
		c.State.ResolvedTTL = 20 * time.Minute
	}))
	for i := 0; i < 25; i++ {
		h.dec(time.Duration(i)*time.Second, alert("A", "i", fmt.Sprint(i)))
	}
	if n := len(h.en.alerts); n != 10 {
		t.Errorf("%d entries, max 10", n)
	}
	// The most recently seen survive a sampled eviction better: the last
	// one is always there.
	if _, ok := h.en.alerts[fpOf(alert("A", "i", "24"))]; !ok {
		t.Error("the newest alert was evicted")
	}
	h.dec(time.Minute, resolved(alert("A", "i", "24")))
	h.tick(10 * time.Minute)
	if n := len(h.en.alerts); n != 10 {
		t.Errorf("%d entries before expiry", n)
	}
	h.tick(31 * time.Minute) // the resolved one (20m TTL) goes
	if n := len(h.en.alerts); n != 9 {
		t.Errorf("%d entries after the resolved TTL", n)
	}
	h.tick(2 * time.Hour) // the firing ones (1h TTL) go
	if n := len(h.en.alerts); n != 0 {
		t.Errorf("%d entries after the firing TTL", n)
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP correlator_rules_state_evictions_total Entries removed from the rules stage's bounded state, by state (alerts, inhibit_sources) and reason (expired: not seen for their TTL; overflow: the state was full).
# TYPE correlator_rules_state_evictions_total counter
correlator_rules_state_evictions_total{reason="expired",state="alerts"} 10
correlator_rules_state_evictions_total{reason="expired",state="inhibit_sources"} 0
correlator_rules_state_evictions_total{reason="overflow",state="alerts"} 15
correlator_rules_state_evictions_total{reason="overflow",state="inhibit_sources"} 0
# HELP correlator_rules_state_entries Entries in the rules stage's state: alerts (tracked fingerprints), pending_warnings, flapping, inhibit_sources.
# TYPE correlator_rules_state_entries gauge
correlator_rules_state_entries{state="alerts"} 0
correlator_rules_state_entries{state="flapping"} 0
correlator_rules_state_entries{state="inhibit_sources"} 0
correlator_rules_state_entries{state="pending_warnings"} 0
`), "correlator_rules_state_evictions_total", "correlator_rules_state_entries"); err != nil {
		t.Error(err)
	}
}

func TestInhibitSourcesAreBounded(t *testing.T) {
	h := newHarness(t, `inhibit: [{name: i, source_matchers: ['severity="critical"'], target_matchers: ['severity="minor"'], equal: [instance]}]`,
		withConfig(func(c *Config) { c.Inhibition.MaxSources = 2; c.State.FiringTTL = time.Hour }))
	for i := 0; i < 3; i++ {
		h.dec(0, sev(alert("C", "instance", fmt.Sprint(i)), "critical"))
	}
	h.want(h.dec(time.Minute, sev(alert("M", "instance", "1"), "minor")), ClassException, OutcomeInhibited, true)
	h.want(h.dec(time.Minute, sev(alert("M", "instance", "2"), "minor")), ClassException, OutcomePass, true)
	h.tick(2 * time.Hour)
	if n := h.en.inhib[0].len(); n != 0 {
		t.Errorf("%d stale sources kept", n)
	}
	if v := testutil.ToFloat64(h.en.m.evicted[stateInhibitSources][evictOverflow]); v != 1 {
		t.Errorf("overflow %v", v)
	}
}

func TestEngineMetrics(t *testing.T) {
	h := newHarness(t, `rules: [{name: d, matchers: ['env="test"'], drop: true}]`)
	h.dec(0, alert("A"))
	h.dec(time.Minute, alert("A"))
	h.dec(time.Minute, alert("B", "env", "test"))
	h.dec(time.Minute, sev(alert("W"), "warning"))
	h.dec(2*time.Minute, resolved(alert("A")))
	h.tick(time.Hour)
	err := testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP correlator_rules_resolutions_total Resolutions by result: passed on to correlation (whatever suppressed the alert), recorded only (never passed on), held (flapping, passed on once stable).
# TYPE correlator_rules_resolutions_total counter
correlator_rules_resolutions_total{result="held"} 0
correlator_rules_resolutions_total{result="passed"} 1
correlator_rules_resolutions_total{result="recorded"} 0
# HELP correlator_rules_deferred_total Events passed on late by Tick, by reason: warning_promoted (persisted), flapping_released (final state of a stable alert), evicted (held resolution of an evicted alert).
# TYPE correlator_rules_deferred_total counter
correlator_rules_deferred_total{reason="evicted"} 0
correlator_rules_deferred_total{reason="flapping_released"} 0
correlator_rules_deferred_total{reason="warning_promoted"} 1
`), "correlator_rules_resolutions_total", "correlator_rules_deferred_total")
	if err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		class   Class
		outcome Outcome
		want    float64
	}{
		{ClassException, OutcomePass, 2},
		{ClassException, OutcomeDeduplicated, 1},
		{ClassException, OutcomeDropped, 1},
		{ClassWarning, OutcomeWarningPending, 1},
		{ClassInformational, OutcomeRecorded, 0},
	} {
		if v := testutil.ToFloat64(h.en.m.events[c.class][c.outcome]); v != c.want {
			t.Errorf("events_total{class=%s,outcome=%s} = %v, want %v", c.class, c.outcome, v, c.want)
		}
	}
	// Every class/outcome series exists from the start.
	if n := testutil.CollectAndCount(h.reg, "correlator_rules_events_total"); n != 3*int(numOutcomes) {
		t.Errorf("%d events_total series", n)
	}
}

// TestNoMatchPathDoesNotAllocate guards the zero-allocation hot path.
func TestNoMatchPathDoesNotAllocate(t *testing.T) {
	en := benchEngine(t, 500)
	evs := benchEvents(t, 512, false)
	out := make([]Decision, 0, len(evs))
	now := time.Unix(1.7e9, 0)
	out = en.Process(evs, now, out[:0])
	allocs := testing.AllocsPerRun(20, func() {
		out = en.Process(evs, now, out[:0])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d events", allocs, len(evs))
	}
	_ = event.Event{}
}

// TestFullStateSweepsOnlyWhenSomethingIsStale: a state full of fresh
// alerts is not swept for every second of a storm (each sweep visits it
// all), yet an alert that became stale is swept before a fresh one is
// evicted for room.
func TestFullStateSweepsOnlyWhenSomethingIsStale(t *testing.T) {
	h := newHarness(t, `rules: []`, withConfig(func(c *Config) {
		c.State.MaxAlerts = 10
		c.State.FiringTTL = time.Hour
		c.State.ResolvedTTL = 20 * time.Minute
	}))
	for i := range 11 {
		h.dec(time.Duration(i)*time.Second, alert("A", "i", fmt.Sprint(i)))
	}
	swept := h.en.lastSweep
	for i := 11; i < 100; i++ { // a storm: full, nothing stale
		h.dec(time.Duration(i)*time.Second, alert("A", "i", fmt.Sprint(i)))
	}
	if h.en.lastSweep != swept {
		t.Errorf("swept again at %v with nothing stale", time.Duration(h.en.lastSweep-swept))
	}
	overflow := testutil.ToFloat64(h.en.m.evicted[stateAlerts][evictOverflow])
	// One alert resolves; past its 20-minute TTL, before any firing one's,
	// a new alert makes room by sweeping it, not by evicting a fresh one.
	h.dec(time.Minute+99*time.Second, resolved(alert("A", "i", "99")))
	h.dec(25*time.Minute, alert("A", "i", "new"))
	if v := testutil.ToFloat64(h.en.m.evicted[stateAlerts][evictExpired]); v != 1 {
		t.Errorf("%v expired evictions, want the resolved alert's", v)
	}
	if v := testutil.ToFloat64(h.en.m.evicted[stateAlerts][evictOverflow]); v != overflow {
		t.Errorf("%v overflow evictions after the resolution, want none more (%v before)", v-overflow, overflow)
	}
}
