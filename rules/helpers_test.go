package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// t0 is the start of every scenario: a Monday.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// testCMDB is the topology of the engine tests:
//
//	app-1 -> db-1 -> vm-1 -> host-1 -> switch-1
//	app-2 -> vm-2 -> host-2
var testCMDB = &cmdb.Document{
	CIs: []cmdb.CI{
		{ID: "switch-1", Type: "switch", Attributes: map[string]string{"site": "paris"}},
		{ID: "host-1", Type: "host", SupportGroup: "unix", Attributes: map[string]string{"site": "paris", "env": "prod"}},
		{ID: "host-2", Type: "host", Attributes: map[string]string{"site": "lyon", "env": "prod"}},
		{ID: "vm-1", Type: "vm", Attributes: map[string]string{"site": "paris", "env": "prod"}},
		{ID: "vm-2", Type: "vm", Attributes: map[string]string{"site": "lyon", "env": "test"}},
		{ID: "db-1", Type: "database", Name: "Orders DB", Criticality: 1, SupportGroup: "dba", Attributes: map[string]string{"site": "paris", "env": "prod", "cost-center": "cc-42"}},
		{ID: "app-1", Type: "application", Attributes: map[string]string{"site": "paris", "env": "prod"}},
		{ID: "app-2", Type: "application"},
	},
	Relations: []cmdb.Relation{
		{Source: "app-1", Target: "db-1", Type: "depends_on"},
		{Source: "db-1", Target: "vm-1", Type: "runs_on"},
		{Source: "vm-1", Target: "host-1", Type: "hosted_on"},
		{Source: "host-1", Target: "switch-1", Type: "connected_to"},
		{Source: "app-2", Target: "vm-2", Type: "runs_on"},
		{Source: "vm-2", Target: "host-2", Type: "hosted_on"},
	},
}

// harness runs an engine over a scenario.
type harness struct {
	t       *testing.T
	en      *Engine
	rs      *RuleSet
	changes *ChangeStore
	reg     *prometheus.Registry
	topo    Topology
}

type harnessOpt func(*EngineOptions)

func withConfig(f func(*Config)) harnessOpt {
	return func(o *EngineOptions) { f(&o.Config) }
}

func newHarness(t *testing.T, rulesYAML string, opts ...harnessOpt) *harness {
	t.Helper()
	rs, err := Parse("test.yml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rs: rs, reg: prometheus.NewRegistry(), topo: newFixtureTopology(testCMDB)}
	h.changes = NewChangeStore(ChangeStoreOptions{Registerer: h.reg})
	o := EngineOptions{
		Rules:      func() *RuleSet { return h.rs },
		Topology:   func() Topology { return h.topo },
		Changes:    h.changes,
		Registerer: h.reg,
	}
	for _, f := range opts {
		f(&o)
	}
	h.en, err = NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// setRules swaps the rule set in, as a reload would.
func (h *harness) setRules(rulesYAML string) {
	h.t.Helper()
	rs, err := Parse("test.yml", []byte(rulesYAML))
	if err != nil {
		h.t.Fatal(err)
	}
	h.rs = rs
}

// at processes one event at t0+d and returns the event as modified and the
// decision.
func (h *harness) at(d time.Duration, e event.Event) (event.Event, Decision) {
	h.t.Helper()
	e.Time = t0.Add(d)
	if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
		h.t.Fatal(err)
	}
	evs := []event.Event{e}
	out := h.en.Process(evs, t0.Add(d), nil)
	if len(out) != 1 {
		h.t.Fatalf("%d decisions for one event", len(out))
	}
	return evs[0], out[0]
}

// dec processes one event and returns its decision only.
func (h *harness) dec(d time.Duration, e event.Event) Decision {
	h.t.Helper()
	_, dd := h.at(d, e)
	return dd
}

func (h *harness) tick(d time.Duration) []Deferred {
	return h.en.Tick(t0.Add(d), nil)
}

// alert builds a firing alert: alert("HostDown", "instance", "h1").
func alert(name string, kv ...string) event.Event {
	l := map[string]string{"alertname": name}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return event.Event{Labels: event.FromMap(l), Severity: event.SeverityMajor, Source: "prometheus"}
}

func sev(e event.Event, s event.Severity) event.Event { e.Severity = s; return e }
func onCI(e event.Event, ci string) event.Event       { e.CI = ci; return e }

// resolved returns the resolution of e. Labels are copied: events must not
// share labels.
func resolved(e event.Event) event.Event {
	e.Status = event.StatusResolved
	e.Labels = slices.Clone(e.Labels)
	e.ID = ""
	return e
}

// fresh returns a copy of e with its own labels map.
func fresh(e event.Event) event.Event {
	r := resolved(e)
	r.Status = e.Status
	return r
}

func (h *harness) want(d Decision, class Class, outcome Outcome, correlate bool) {
	h.t.Helper()
	if d.Class != class || d.Outcome != outcome || d.Correlate != correlate {
		h.t.Errorf("got %s/%s correlate=%v, want %s/%s correlate=%v (decision %+v)",
			d.Class, d.Outcome, d.Correlate, class, outcome, correlate, d)
	}
}
