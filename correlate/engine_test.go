package correlate

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture: two sites; sw1 has hosts h1..h20, each with app a<i>; sw2 has
// hosts g1..g3; db1 on h1 used by a2 and a3; svc depends on a1..a3.
func fixture(t testing.TB) Topology {
	t.Helper()
	doc := &cmdb.Document{}
	add := func(id, typ string) { doc.CIs = append(doc.CIs, cmdb.CI{ID: id, Type: typ}) }
	rel := func(s, d, typ string) {
		doc.Relations = append(doc.Relations, cmdb.Relation{Source: s, Target: d, Type: typ})
	}
	add("site1", "site")
	add("site2", "site")
	add("sw1", "switch")
	add("sw2", "switch")
	rel("sw1", "site1", cmdb.RelMemberOf)
	rel("sw2", "site2", cmdb.RelMemberOf)
	for i := 1; i <= 20; i++ {
		h, a := fmt.Sprintf("h%d", i), fmt.Sprintf("a%d", i)
		add(h, "host")
		add(a, "application")
		rel(h, "sw1", cmdb.RelConnectedTo)
		rel(a, h, cmdb.RelRunsOn)
	}
	for i := 1; i <= 3; i++ {
		g := fmt.Sprintf("g%d", i)
		add(g, "host")
		add("b"+g, "application")
		rel(g, "sw2", cmdb.RelConnectedTo)
		rel("b"+g, g, cmdb.RelRunsOn)
	}
	add("db1", "database")
	rel("db1", "h1", cmdb.RelRunsOn)
	rel("a2", "db1", cmdb.RelDependsOn)
	rel("a3", "db1", cmdb.RelDependsOn)
	add("svc", "service")
	for _, a := range []string{"a1", "a2", "a3"} {
		rel("svc", a, cmdb.RelDependsOn)
	}
	topo, err := cmdb.Build(doc, cmdb.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return NewCMDB(topo)
}

// step is one line of a timeline: at offset at, push an event.
type step struct {
	at       time.Duration
	id, ci   string
	alert    string
	resolved bool
	inhib    bool
	labels   map[string]string
	advance  bool // Advance to the event time minus lateness after it
}

func ev(s step) *event.Event {
	l := map[string]string{"alertname": s.alert}
	for k, v := range s.labels {
		l[k] = v
	}
	st := event.StatusFiring
	if s.resolved {
		st = event.StatusResolved
	}
	return &event.Event{ID: s.id, Time: t0.Add(s.at), Kind: event.KindAlert, Status: st, CI: s.ci, Labels: event.FromMap(l), Fingerprint: s.ci + "/" + s.alert + "/" + s.labels["job"] + "/" + s.labels["cluster"]}
}

func run(t testing.TB, cfg Config, steps []step) (*Engine, []Update) {
	t.Helper()
	topo := fixture(t)
	e := New(cfg, func() Topology { return topo })
	var ups []Update
	for _, s := range steps {
		if s.id == "" { // a pure watermark step
			ups = append(ups, e.Advance(t0.Add(s.at))...)
			continue
		}
		ups = append(ups, e.Process(ev(s), Input{Inhibited: s.inhib}, time.Time{})...)
	}
	return e, ups
}

func byEvent(incs []*Incident) map[string]string {
	m := map[string]string{}
	for _, in := range incs {
		for _, id := range in.EventIDs {
			m[id] = in.ID
		}
	}
	return m
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Window != 5*time.Minute || c.MaxSpan != time.Hour || c.MaxHops != 3 || !reflect.DeepEqual(c.GroupBy, []string{"cluster", "service", "job"}) ||
		c.ResolveHoldDown != 5*time.Minute || c.ReopenWindow != 30*time.Minute || c.AllowedLateness != time.Minute ||
		c.MaxIdle != time.Hour+5*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Window = -1 }, "correlate.window"},
		{func(c *Config) { c.MaxSpan = time.Second }, "correlate.max_span"},
		{func(c *Config) { c.MaxHops = 99 }, "correlate.max_hops"},
		{func(c *Config) { c.GroupBy = []string{""} }, "correlate.group_by[0]"},
		{func(c *Config) { c.ResolveHoldDown = -1 }, "correlate.resolve_hold_down"},
		{func(c *Config) { c.ReopenWindow = -1 }, "correlate.reopen_window"},
		{func(c *Config) { c.AllowedLateness = time.Hour }, "correlate.allowed_lateness"},
		{func(c *Config) { c.MaxIdle = time.Second }, "correlate.max_idle"},
	} {
		c := DefaultConfig()
		tc.mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
}

func TestSwitchFailure(t *testing.T) {
	var steps []step
	// Hosts and apps alert over two minutes, the switch itself 30s in.
	for i := 1; i <= 10; i++ {
		steps = append(steps,
			step{at: time.Duration(i) * 10 * time.Second, id: fmt.Sprintf("eh%d", i), ci: fmt.Sprintf("h%d", i), alert: "HostDown"},
			step{at: time.Duration(i)*10*time.Second + 5*time.Second, id: fmt.Sprintf("ea%d", i), ci: fmt.Sprintf("a%d", i), alert: "AppDown"})
	}
	steps = append(steps, step{at: 30 * time.Second, id: "esw", ci: "sw1", alert: "SwitchDown"})
	e, _ := run(t, DefaultConfig(), steps)
	incs := e.Incidents()
	if len(incs) != 1 {
		t.Fatalf("want 1 incident, got %d", len(incs))
	}
	in := incs[0]
	if in.RootCauseCI != "sw1" || in.RootCauseSuspected || in.RootCauseConfidence != 1 {
		t.Fatalf("root cause %q suspected=%v conf=%v; revisions %+v", in.RootCauseCI, in.RootCauseSuspected, in.RootCauseConfidence, in.RootCauseRevisions)
	}
	if len(in.EventIDs) != 21 || len(in.RootCauseExplains) != 20 {
		t.Fatalf("events %d explains %d", len(in.EventIDs), len(in.RootCauseExplains))
	}
	if len(in.RootCauseRevisions) < 2 {
		t.Fatalf("want the candidate revised once the switch alerted: %+v", in.RootCauseRevisions)
	}
	// h2 joined through the switch: h2 -> sw1 <- h1.
	m := in.Members[2]
	if m.EventID != "eh2" || m.Reason != ReasonTopology || m.Hops != 2 || !reflect.DeepEqual(m.Path, []string{"h2", "sw1", "h1"}) || m.Offset != 10*time.Second {
		t.Fatalf("member: %+v", m)
	}
}

func TestSuspectedCause(t *testing.T) {
	// The switch does not alert; its hosts do.
	var steps []step
	for i := 1; i <= 4; i++ {
		steps = append(steps, step{at: time.Duration(i) * time.Second, id: fmt.Sprintf("eh%d", i), ci: fmt.Sprintf("h%d", i), alert: "HostDown"})
	}
	// a7 runs on h7, which does not alert: it joins through the suspected
	// switch (a7 -> h7 -> sw1), a path longer than SharedMaxHops.
	steps = append(steps, step{at: time.Minute, id: "ea7", ci: "a7", alert: "AppDown"})
	e, _ := run(t, DefaultConfig(), steps)
	incs := e.Incidents()
	if len(incs) != 1 || incs[0].RootCauseCI != "sw1" || !incs[0].RootCauseSuspected {
		t.Fatalf("got %+v", incs)
	}
	m := incs[0].Members[4]
	if m.CI != "a7" || m.RelatedCI != "sw1" || m.Hops != 2 || !reflect.DeepEqual(m.Path, []string{"a7", "h7", "sw1"}) {
		t.Fatalf("member %+v", m)
	}
}

func TestUnrelatedSeparate(t *testing.T) {
	e, _ := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", ci: "h5", alert: "HostDown"},
		{at: time.Second, id: "2", ci: "g1", alert: "HostDown"},
		{at: 2 * time.Second, id: "3", ci: "a5", alert: "AppDown"},
		{at: 3 * time.Second, id: "4", ci: "bg1", alert: "AppDown"},
	})
	incs := e.Incidents()
	if len(incs) != 2 {
		t.Fatalf("want 2, got %d", len(incs))
	}
	if incs[0].RootCauseCI != "h5" || incs[1].RootCauseCI != "g1" {
		t.Fatalf("roots %s %s", incs[0].RootCauseCI, incs[1].RootCauseCI)
	}
}

func TestMerge(t *testing.T) {
	// a2 and a5 are 4+ hops apart; h2 is near a2 only... use db1: a2 and
	// a3 are not related to h9 until sw1 alerts.
	e, ups := run(t, Config{MaxHops: 2}, []step{
		{at: 0, id: "1", ci: "a2", alert: "AppDown"},
		{at: time.Second, id: "2", ci: "h9", alert: "HostDown"},
		{at: 2 * time.Second, id: "3", ci: "sw1", alert: "SwitchDown"},
	})
	incs := e.Incidents()
	if len(incs) != 1 {
		t.Fatalf("want 1 after merge, got %d", len(incs))
	}
	in := incs[0]
	if in.ID != incidentID("1") || !reflect.DeepEqual(in.MergedFrom, []string{incidentID("2")}) {
		t.Fatalf("id %s merged %v", in.ID, in.MergedFrom)
	}
	if !reflect.DeepEqual(in.EventIDs, []string{"1", "2", "3"}) || in.Members[1].MergedFrom != incidentID("2") {
		t.Fatalf("members %+v", in.Members)
	}
	var merged bool
	for _, u := range ups {
		merged = merged || u.Kind == UpdateMerged
	}
	if !merged {
		t.Fatal("no merge update")
	}
}

func TestSameIncidentRule(t *testing.T) {
	// The same CI and symptom 20 minutes later, far past the window, joins
	// the unresolved incident.
	e, _ := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", ci: "h5", alert: "HostDown"},
		{at: 20 * time.Minute},
		{at: 20 * time.Minute, id: "3", ci: "h5", alert: "DiskFull"},
		{at: 20 * time.Minute, id: "2", ci: "h5", alert: "HostDown", labels: map[string]string{"job": "other"}},
	})
	incs := e.Incidents()
	if len(incs) != 2 {
		t.Fatalf("want 2, got %d", len(incs))
	}
	if !reflect.DeepEqual(incs[0].EventIDs, []string{"1", "2"}) || incs[0].Members[1].Reason != ReasonSameIncident {
		t.Fatalf("got %+v", incs[0])
	}
}

// A new alert on a symptom CI of a resolved incident, while its root cause
// does not recur, is a new failure: it does not reopen the old incident
// (which would then absorb every failure around its CIs), and it joins the
// fresh incident it relates to by topology.
func TestSymptomRecurrenceIsNew(t *testing.T) {
	e, ups := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", ci: "h1", alert: "HostDown"},
		{at: 10 * time.Second, id: "2", ci: "db1", alert: "DatabaseDown"},
		{at: time.Minute, id: "r1", ci: "h1", alert: "HostDown", resolved: true},
		{at: time.Minute, id: "r2", ci: "db1", alert: "DatabaseDown", resolved: true},
		{at: 7 * time.Minute},
		{at: 20 * time.Minute, id: "3", ci: "db1", alert: "DatabaseDown", labels: map[string]string{"job": "again"}},
		{at: 20 * time.Minute, id: "4", ci: "a2", alert: "AppDown"},
	})
	for _, u := range ups {
		if u.Kind == UpdateReopened {
			t.Fatalf("reopened: %+v", u)
		}
	}
	incs := e.Incidents()
	if len(incs) != 2 || incs[0].Status != StatusResolved || !reflect.DeepEqual(incs[1].EventIDs, []string{"3", "4"}) {
		t.Fatalf("got %+v", incs)
	}
	// A still firing alert with the same CI and symptom keeps the ISO 20000
	// rule even then: the duplicate joins its incident.
	e.Process(ev(step{at: 21 * time.Minute, id: "5", ci: "db1", alert: "DatabaseDown", labels: map[string]string{"job": "third"}}), Input{}, time.Time{})
	if incs := e.Incidents(); len(incs) != 2 || !slices.Contains(incs[1].EventIDs, "5") {
		t.Fatalf("got %+v", incs)
	}
}

func TestUnboundByLabels(t *testing.T) {
	lab := func(c, s string) map[string]string { return map[string]string{"cluster": c, "service": s, "job": "j"} }
	e, _ := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", alert: "A", labels: lab("c1", "s1")},
		{at: time.Minute, id: "2", alert: "B", labels: lab("c1", "s1")},
		{at: time.Minute, id: "3", alert: "A", labels: lab("c2", "s1")},
		{at: 5 * time.Minute, id: "4", alert: "C", labels: lab("c1", "s1")},  // the window slid to 6m
		{at: 11 * time.Minute, id: "5", alert: "D", labels: lab("c1", "s1")}, // past 10m
	})
	got := byEvent(e.Incidents())
	if got["1"] != got["2"] || got["2"] != got["4"] || got["1"] == got["3"] || got["5"] == got["1"] {
		t.Fatalf("grouping %v", got)
	}
}

func TestLateEvents(t *testing.T) {
	e, _ := run(t, DefaultConfig(), []step{
		{at: 2 * time.Minute, id: "1", ci: "h5", alert: "HostDown"},
		{at: 90 * time.Second, id: "2", ci: "a5", alert: "AppDown"}, // 30s late: placed at its time
	})
	in := e.Incidents()[0]
	if len(e.Incidents()) != 1 || !in.OpenedAt.Equal(t0.Add(90*time.Second)) || in.Members[1].Offset != -30*time.Second {
		t.Fatalf("got %+v", in)
	}
	// 10 minutes late: placed at the lateness bound, still in the window.
	e, _ = run(t, DefaultConfig(), []step{
		{at: 12 * time.Minute, id: "1", ci: "h5", alert: "HostDown"},
		{at: 2 * time.Minute, id: "2", ci: "a5", alert: "AppDown"},
	})
	in = e.Incidents()[0]
	if len(e.Incidents()) != 1 || in.Members[1].Offset != -time.Minute {
		t.Fatalf("got %+v", in.Members)
	}
}

func TestResolveAndReopen(t *testing.T) {
	e, ups := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", ci: "h5", alert: "HostDown"},
		{at: 10 * time.Second, id: "2", ci: "a5", alert: "AppDown"},
		{at: time.Minute, id: "r1", ci: "h5", alert: "HostDown", resolved: true},
		{at: 2 * time.Minute, id: "r2", ci: "a5", alert: "AppDown", resolved: true},
		{at: 6 * time.Minute}, // hold-down not over
		{at: 7 * time.Minute},
		{at: 20 * time.Minute, id: "3", ci: "h5", alert: "HostDown"}, // recurrence
	})
	var kinds []UpdateKind
	for _, u := range ups {
		if u.Kind == UpdateResolved || u.Kind == UpdateReopened {
			kinds = append(kinds, u.Kind)
			if u.Kind == UpdateResolved && !u.At.Equal(t0.Add(7*time.Minute)) {
				t.Fatalf("resolved at %v", u.At)
			}
		}
	}
	if !reflect.DeepEqual(kinds, []UpdateKind{UpdateResolved, UpdateReopened}) {
		t.Fatalf("kinds %v", kinds)
	}
	incs := e.Incidents()
	if len(incs) != 1 || incs[0].Status != StatusOpen || incs[0].Reopened != 1 || len(incs[0].EventIDs) != 3 {
		t.Fatalf("got %+v", incs)
	}
	// Past the reopen window, the incident closes and a recurrence opens a
	// new one.
	ups = e.Process(ev(step{at: 21 * time.Minute, id: "r3", ci: "h5", alert: "HostDown", resolved: true}), Input{}, time.Time{})
	ups = append(ups, e.Advance(t0.Add(time.Hour))...)
	if len(ups) != 2 || ups[0].Kind != UpdateResolved || ups[1].Kind != UpdateClosed || ups[1].Incident.ID != incidentID("1") {
		t.Fatalf("ups %+v", ups)
	}
	e.Process(ev(step{at: time.Hour, id: "4", ci: "h5", alert: "HostDown"}), Input{}, time.Time{})
	if incs := e.Incidents(); len(incs) != 1 || incs[0].ID != incidentID("4") {
		t.Fatalf("got %+v", incs)
	}
}

// An incident whose alerts never resolve leaves the state after MaxIdle
// without a new member, with a final snapshot; a recurrence then opens a
// new incident.
func TestNeverResolvedIsClosed(t *testing.T) {
	e, ups := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", ci: "h5", alert: "HostDown"},
		{at: 10 * time.Second, id: "2", ci: "a5", alert: "AppDown"},
		{at: 30 * time.Minute},
		{at: 65 * time.Minute}, // MaxIdle (1h05m) after the last member: not past it yet
	})
	for _, u := range ups {
		if u.Kind == UpdateClosed || u.Kind == UpdateResolved {
			t.Fatalf("closed too early: %+v", u)
		}
	}
	if len(e.Incidents()) != 1 {
		t.Fatal("incident lost")
	}
	ups = e.Advance(t0.Add(66 * time.Minute))
	if len(ups) != 1 || ups[0].Kind != UpdateClosed || ups[0].Incident == nil || ups[0].Incident.ID != incidentID("1") ||
		ups[0].Incident.Status != StatusOpen || len(ups[0].Incident.EventIDs) != 2 {
		t.Fatalf("ups %+v", ups)
	}
	if len(e.Incidents()) != 0 || len(e.byKey) != 0 || len(e.ciGroup) != 0 || len(e.byComp) != 0 {
		t.Fatalf("state kept: %d keys, %d cis, %d comps", len(e.byKey), len(e.ciGroup), len(e.byComp))
	}
	// A late resolution of a closed incident's alert is ignored.
	if ups := e.Process(ev(step{at: 67 * time.Minute, id: "r1", ci: "h5", alert: "HostDown", resolved: true}), Input{}, time.Time{}); len(ups) != 0 {
		t.Fatalf("ups %+v", ups)
	}
	e.Process(ev(step{at: 68 * time.Minute, id: "3", ci: "h5", alert: "HostDown"}), Input{}, time.Time{})
	if incs := e.Incidents(); len(incs) != 1 || incs[0].ID != incidentID("3") {
		t.Fatalf("got %+v", incs)
	}
}

func TestInhibitedNeverOpens(t *testing.T) {
	e, ups := run(t, DefaultConfig(), []step{
		{at: 0, id: "1", ci: "a5", alert: "AppDown", inhib: true},
		{at: time.Second, id: "2", ci: "h5", alert: "HostDown"},
		{at: 2 * time.Second, id: "3", ci: "a5", alert: "AppSlow", inhib: true},
	})
	if ups[0].Kind != UpdateUnattached {
		t.Fatalf("ups %+v", ups)
	}
	// The held symptom joins once its incident opens.
	incs := e.Incidents()
	if len(incs) != 1 || !reflect.DeepEqual(incs[0].EventIDs, []string{"2", "1", "3"}) || !reflect.DeepEqual(incs[0].SuppressedEventIDs, []string{"1", "3"}) ||
		incs[0].Members[1].Reason != ReasonSymptom || incs[0].Members[2].Reason != ReasonSymptom || incs[0].RootCauseCI != "h5" {
		t.Fatalf("got %+v", incs)
	}
	// A symptom with nothing to join is dropped once the window passed.
	e.Process(ev(step{at: time.Hour, id: "4", ci: "g2", alert: "X", inhib: true}), Input{Inhibited: true}, time.Time{})
	e.Advance(t0.Add(2 * time.Hour))
	e.Process(ev(step{at: 2 * time.Hour, id: "5", ci: "g2", alert: "HostDown"}), Input{}, time.Time{})
	for _, in := range e.Incidents() {
		if slices.Contains(in.EventIDs, "4") {
			t.Fatal("stale symptom attached")
		}
	}
}

func TestDeterminism(t *testing.T) {
	var steps []step
	for i := 1; i <= 20; i++ {
		steps = append(steps, step{at: time.Duration(i*7%30) * time.Second, id: fmt.Sprintf("e%d", i), ci: fmt.Sprintf("h%d", i), alert: "HostDown"})
		steps = append(steps, step{at: time.Duration(i*11%40) * time.Second, id: fmt.Sprintf("f%d", i), ci: fmt.Sprintf("a%d", i), alert: "AppDown"})
	}
	steps = append(steps, step{at: 10 * time.Second, id: "g", ci: "g1", alert: "HostDown"}, step{at: 20 * time.Second, id: "d", ci: "db1", alert: "DBDown"})
	e1, u1 := run(t, DefaultConfig(), steps)
	e2, u2 := run(t, DefaultConfig(), steps)
	if !reflect.DeepEqual(u1, u2) || !reflect.DeepEqual(e1.Incidents(), e2.Incidents()) {
		t.Fatal("not deterministic")
	}
}
