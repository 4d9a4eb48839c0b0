package incidents

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/rules"
)

// The estate: a critical shop service and a class-3 wiki, each on an app
// on a host behind one switch.
func testTopology(t *testing.T) *cmdb.Topology {
	t.Helper()
	doc := &cmdb.Document{
		CIs: []cmdb.CI{
			{ID: "shop", Type: "service", Criticality: 1},
			{ID: "wiki", Type: "service", Criticality: 3},
			{ID: "shop-app", Type: "application", SupportGroup: "shop-team"},
			{ID: "wiki-app", Type: "application", SupportGroup: "wiki-team"},
			{ID: "db", Type: "database", SupportGroup: "dba"},
			{ID: "host-1", Type: "host", SupportGroup: "unix"},
			{ID: "host-2", Type: "host", SupportGroup: "unix"},
			{ID: "sw-1", Type: "switch", SupportGroup: "network"},
		},
		Relations: []cmdb.Relation{
			{Source: "shop", Target: "shop-app", Type: "depends_on"},
			{Source: "wiki", Target: "wiki-app", Type: "depends_on"},
			{Source: "shop-app", Target: "db", Type: "depends_on"},
			{Source: "shop-app", Target: "host-1", Type: "runs_on"},
			{Source: "wiki-app", Target: "host-2", Type: "runs_on"},
			{Source: "host-1", Target: "sw-1", Type: "connected_to"},
			{Source: "host-2", Target: "sw-1", Type: "connected_to"},
		},
	}
	topo, err := cmdb.Build(doc, cmdb.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	m   *Manager
	snp map[string]*correlate.Incident
}

func newFixture(t *testing.T, cfg Config, changes ChangeSource, kedb *KEDB) *fixture {
	topo := testTopology(t)
	m := NewManager(Options{Config: cfg, Topology: func() Topology { return topo }, Changes: changes, KEDB: kedb, Metrics: NewMetrics(nil)})
	return &fixture{t: t, m: m, snp: map[string]*correlate.Incident{}}
}

// incident makes the correlator's view of an incident.
func incident(id string, at time.Time, root string, sev event.Severity, symptom string, cis ...string) *correlate.Incident {
	c := &correlate.Incident{ID: id, Status: correlate.StatusOpen, OpenedAt: at, RootCauseCI: root, RootCauseConfidence: 1, CIs: cis}
	for i, ci := range cis {
		eid := id + "-e" + string(rune('a'+i))
		c.EventIDs = append(c.EventIDs, eid)
		c.Members = append(c.Members, correlate.Member{EventID: eid, CI: ci, Reason: correlate.ReasonTopology, Severity: sev, Symptom: symptom})
	}
	return c
}

func (f *fixture) sync(now time.Time, ups ...correlate.Update) []Change {
	f.t.Helper()
	return f.m.Sync(ups, func(id string) (*correlate.Incident, bool) { c, ok := f.snp[id]; return c, ok }, now)
}

// restored returns a fixture restored from f's changelog records.
func (f *fixture) restored() *fixture {
	f.t.Helper()
	recs, err := f.m.AppendChanges(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	g := newFixture(f.t, Config{}, nil, nil)
	if err := g.m.Restore(recs); err != nil {
		f.t.Fatal(err)
	}
	return g
}

func (f *fixture) open(c *correlate.Incident) *Incident {
	f.t.Helper()
	f.snp[c.ID] = c
	f.sync(c.OpenedAt, correlate.Update{Kind: correlate.UpdateOpened, IncidentID: c.ID, At: c.OpenedAt})
	in, ok := f.m.Incident(c.ID)
	if !ok {
		f.t.Fatalf("incident %s not created", c.ID)
	}
	return in
}

func TestPriorityMatrix(t *testing.T) {
	cfg := Config{}
	cfg.SetDefaults()
	want := map[[2]int]Priority{{1, 1}: P1, {1, 2}: P2, {1, 3}: P3, {2, 1}: P2, {2, 2}: P3, {2, 3}: P4, {3, 1}: P3, {3, 2}: P4, {3, 3}: P5}
	for iu, p := range want {
		if got := cfg.PriorityMatrix[iu[0]-1][iu[1]-1]; got != p {
			t.Errorf("impact %d urgency %d: %s, want %s", iu[0], iu[1], got, p)
		}
	}
	f := newFixture(t, Config{}, nil, nil)
	// Critical outage under the class-1 shop: impact 1, urgency 1, P1.
	in := f.open(incident("INC-1", t0, "host-1", event.SeverityCritical, "HostDown", "host-1", "shop-app"))
	if in.Priority != P1 || in.Impact != 1 || in.Urgency != 1 || in.Category != CategoryOutage || in.ServiceClass != 1 {
		t.Fatalf("shop host down: %s impact %d urgency %d %s class %d", in.Priority, in.Impact, in.Urgency, in.Category, in.ServiceClass)
	}
	if in.SupportGroup != "unix" || in.ResolutionTarget != 10*time.Minute || in.ResponseTarget != 5*time.Minute {
		t.Fatalf("support group %q targets %s/%s", in.SupportGroup, in.ResponseTarget, in.ResolutionTarget)
	}
	// A major latency alert on the class-3 wiki: impact 3, urgency 2: P4.
	in = f.open(incident("INC-2", t0, "wiki-app", event.SeverityMajor, "HighLatency", "wiki-app"))
	if in.Priority != P4 || in.Category != CategoryDegraded || in.ResolutionTarget != 60*time.Minute {
		t.Fatalf("wiki latency: %s %s %s", in.Priority, in.Category, in.ResolutionTarget)
	}
	// A switch down is an unreachability for what is behind it; it hits
	// both services.
	in = f.open(incident("INC-3", t0, "sw-1", event.SeverityCritical, "SwitchDown", "sw-1", "host-1", "host-2"))
	if in.Category != CategoryUnreachable || len(in.Services) != 2 || in.Priority != P1 {
		t.Fatalf("switch down: %s services %v %s", in.Category, in.Services, in.Priority)
	}
	if !strings.Contains(in.Title, "sw-1") || !strings.Contains(in.Description, "Root-cause candidate: sw-1") {
		t.Fatalf("title %q description %q", in.Title, in.Description)
	}
	// A configured matrix is used.
	cfg2 := Config{PriorityMatrix: [][]Priority{{P2, P2, P2}, {P3, P3, P3}, {P5, P5, P5}}}
	f2 := newFixture(t, cfg2, nil, nil)
	if in := f2.open(incident("INC-4", t0, "host-1", event.SeverityCritical, "HostDown", "host-1")); in.Priority != P2 {
		t.Fatalf("configured matrix: %s", in.Priority)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{PriorityMatrix: [][]Priority{{P1, "P9"}}}
	cfg.SetDefaults()
	cfg.ResolutionTargets[CategoryOutage] = []time.Duration{time.Minute}
	cfg.AutoCloseAfter = time.Minute
	err := cfg.Validate(30 * time.Minute)
	for _, want := range []string{"incidents.priority_matrix: must have 3 rows", `priority_matrix[0][1]: "P9"`, "resolution_targets.outage", "auto_close_after"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	ok := Config{}
	ok.SetDefaults()
	if err := ok.Validate(30 * time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestEscalationOnFakeClock(t *testing.T) {
	f := newFixture(t, Config{}, nil, nil)
	// P2: a major outage under the class-1 shop (impact 1, urgency 2).
	in := f.open(incident("INC-1", t0, "shop-app", event.SeverityMajor, "AppDown", "shop-app"))
	if in.Priority != P2 || in.EscalationLevel != LevelLine1 {
		t.Fatalf("%s level %d", in.Priority, in.EscalationLevel)
	}
	// Response target 15m, resolution 10m (outage, class 1).
	f.m.Tick(t0.Add(9 * time.Minute))
	if in, _ := f.m.Incident("INC-1"); len(in.Escalations) != 0 {
		t.Fatalf("escalated early: %+v", in.Escalations)
	}
	chs := f.m.Tick(t0.Add(10 * time.Minute))
	in, _ = f.m.Incident("INC-1")
	if in.EscalationLevel != LevelLine2 || !in.Breached(BreachResolution) || len(chs) != 1 || chs[0].Notices[0].Kind != "escalated" {
		t.Fatalf("at 10m: level %d breaches %+v changes %+v", in.EscalationLevel, in.Breaches, chs)
	}
	f.m.Tick(t0.Add(15 * time.Minute)) // response target missed
	in, _ = f.m.Incident("INC-1")
	if in.EscalationLevel != LevelLine3 || !in.Breached(BreachResponse) {
		t.Fatalf("at 15m: level %d breaches %+v", in.EscalationLevel, in.Breaches)
	}
	f.m.Tick(t0.Add(20 * time.Minute)) // 2x resolution target
	in, _ = f.m.Incident("INC-1")
	if in.EscalationLevel != LevelIncidentManager || len(in.Escalations) != 3 {
		t.Fatalf("at 20m: level %d %+v", in.EscalationLevel, in.Escalations)
	}
	f.m.Tick(t0.Add(2 * time.Hour))
	if in, _ = f.m.Incident("INC-1"); len(in.Escalations) != 3 || len(in.Breaches) != 2 {
		t.Fatalf("escalated past the incident manager: %+v %+v", in.Escalations, in.Breaches)
	}
	for i, e := range in.Escalations {
		if e.At.IsZero() || e.Reason == "" || e.To != e.From+1 {
			t.Fatalf("escalation %d: %+v", i, e)
		}
	}
	// P1 goes to the incident manager at creation.
	p1 := f.open(incident("INC-2", t0, "host-1", event.SeverityCritical, "HostDown", "host-1"))
	if p1.EscalationLevel != LevelIncidentManager || p1.Escalations[0].At != t0 {
		t.Fatalf("P1: %+v", p1.Escalations)
	}
	// Acknowledged in time: no response breach.
	f.open(incident("INC-3", t0, "wiki-app", event.SeverityMajor, "HighLatency", "wiki-app"))
	if _, err := f.m.Act(Command{Action: ActAcknowledge, IncidentID: "INC-3", By: "alice", At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	f.m.Tick(t0.Add(3 * time.Hour))
	in, _ = f.m.Incident("INC-3")
	if in.Breached(BreachResponse) || !in.Breached(BreachResolution) {
		t.Fatalf("acknowledged in time: %+v", in.Breaches)
	}
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t, Config{}, nil, nil)
	f.open(incident("INC-1", t0, "wiki-app", event.SeverityMajor, "HighLatency", "wiki-app"))
	act := func(a Action, at time.Duration, extra ...func(*Command)) error {
		c := Command{Action: a, IncidentID: "INC-1", By: "bob", At: t0.Add(at)}
		for _, e := range extra {
			e(&c)
		}
		_, err := f.m.Act(c)
		return err
	}
	if err := act(ActClose, time.Minute); !errors.Is(err, ErrConflict) {
		t.Fatalf("close an open incident: %v", err)
	}
	if err := act(ActAssign, time.Minute); !errors.Is(err, ErrBadInput) {
		t.Fatalf("assign to nobody: %v", err)
	}
	for _, step := range []struct {
		a Action
		e func(*Command)
	}{
		{ActAcknowledge, nil}, {ActAssign, func(c *Command) { c.AssignTo = "wiki-team" }}, {ActStart, nil},
		{ActComment, func(c *Command) { c.Note = "restarting" }}, {ActResolve, nil}, {ActReopen, nil}, {ActResolve, nil}, {ActClose, nil},
	} {
		var extra []func(*Command)
		if step.e != nil {
			extra = append(extra, step.e)
		}
		if err := act(step.a, 2*time.Minute, extra...); err != nil {
			t.Fatalf("%s: %v", step.a, err)
		}
	}
	in, _ := f.m.Incident("INC-1")
	var path []Status
	for _, tr := range in.Transitions {
		path = append(path, tr.To)
	}
	want := []Status{StatusNew, StatusAcknowledged, StatusInProgress, StatusResolved, StatusReopened, StatusResolved, StatusClosed}
	if strings.Join(strs(path), ",") != strings.Join(strs(want), ",") {
		t.Fatalf("transitions %v, want %v", path, want)
	}
	if in.AutoResolved || in.AssignedTo != "wiki-team" || len(in.Comments) != 1 || in.Reopened != 1 || in.ClosedAt.IsZero() {
		t.Fatalf("record %+v", in)
	}
	if _, err := f.m.Act(Command{Action: ActAcknowledge, IncidentID: "INC-404", By: "bob"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	// Auto-resolved by the correlator, then closed automatically.
	f.open(incident("INC-2", t0, "db", event.SeverityCritical, "MySQLDown", "db"))
	f.sync(t0.Add(20*time.Minute), correlate.Update{Kind: correlate.UpdateResolved, IncidentID: "INC-2", At: t0.Add(20 * time.Minute)})
	in, _ = f.m.Incident("INC-2")
	if in.Status != StatusResolved || !in.AutoResolved {
		t.Fatalf("auto-resolve: %s %v", in.Status, in.AutoResolved)
	}
	f.m.Tick(t0.Add(20*time.Minute + 24*time.Hour))
	if in, _ = f.m.Incident("INC-2"); in.Status != StatusClosed {
		t.Fatalf("auto-close: %s", in.Status)
	}
}

func strs(ss []Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, string(s))
	}
	return out
}

type fakeChanges []rules.ChangeRecord

func (f fakeChanges) CompletedBefore(ci string, at time.Time, within time.Duration) []rules.ChangeRecord {
	var out []rules.ChangeRecord
	for _, c := range f {
		for _, x := range c.CIs {
			if x == ci && !c.End().After(at) && !c.End().Before(at.Add(-within)) {
				out = append(out, c)
			}
		}
	}
	return out
}

func TestChangeInduced(t *testing.T) {
	changes := fakeChanges{
		{ID: "CHG-1", CIs: []string{"sw-1"}, Status: rules.ChangeCompleted, PlannedStart: t0.Add(-time.Hour), PlannedEnd: t0.Add(-30 * time.Minute)},
		{ID: "CHG-OLD", CIs: []string{"db"}, Status: rules.ChangeCompleted, PlannedStart: t0.Add(-10 * time.Hour), PlannedEnd: t0.Add(-9 * time.Hour)},
	}
	f := newFixture(t, Config{}, changes, nil)
	// host-1 depends on sw-1, changed 30 minutes before the onset.
	if in := f.open(incident("INC-1", t0, "host-1", event.SeverityCritical, "HostDown", "host-1")); in.ChangeID != "CHG-1" {
		t.Fatalf("change-induced: %q", in.ChangeID)
	}
	// The db change is older than the 2h lookback.
	if in := f.open(incident("INC-2", t0, "db", event.SeverityCritical, "MySQLDown", "db")); in.ChangeID != "" {
		t.Fatalf("old change flagged: %q", in.ChangeID)
	}
}

func TestKnownErrorMatching(t *testing.T) {
	kedb, err := NewKEDB("")
	if err != nil {
		t.Fatal(err)
	}
	es, err := ParseKnownErrors([]byte(`known_errors:
  - id: KE-1
    title: db connection pool exhausted
    root_cause: pool too small
    workaround: restart shop-app
    matchers: ['root_cause_ci="db"', 'category=~"outage|degraded"', 'service="shop"']
`))
	if err != nil {
		t.Fatal(err)
	}
	kedb.cur.Store(&es)
	f := newFixture(t, Config{}, nil, kedb)
	in := f.open(incident("INC-1", t0, "db", event.SeverityCritical, "MySQLDown", "db", "shop-app"))
	if in.KnownErrorID != "KE-1" || in.Workaround != "restart shop-app" || !strings.Contains(in.Description, "Known error KE-1") {
		t.Fatalf("known error: %q %q", in.KnownErrorID, in.Workaround)
	}
	if in := f.open(incident("INC-2", t0, "host-2", event.SeverityCritical, "HostDown", "host-2")); in.KnownErrorID != "" {
		t.Fatalf("matched the wrong incident: %q", in.KnownErrorID)
	}
	for _, bad := range []string{"known_errors: [{id: x, matchers: ['a=~\"(\"']}]", "known_errors: [{id: x}]", "known_errors: [{id: x, matchers: ['a=\"b\"'], bogus: 1}]"} {
		if _, err := ParseKnownErrors([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestProblemCandidates(t *testing.T) {
	f := newFixture(t, Config{}, nil, nil)
	// The same signature three times within 7 days: a recurring problem.
	for i, day := range []int{0, 2, 5} {
		at := t0.Add(time.Duration(day) * 24 * time.Hour)
		id := "INC-db-" + string(rune('a'+i))
		f.open(incident(id, at, "db", event.SeverityMajor, "MySQLSlowQueries", "db"))
	}
	ps := f.m.Problems()
	if len(ps) != 1 || ps[0].Reason != ReasonRecurring || len(ps[0].Incidents) != 3 || ps[0].RootCauseCI != "db" {
		t.Fatalf("recurring: %+v", ps)
	}
	// A fourth joins the open problem instead of raising another.
	f.open(incident("INC-db-d", t0.Add(6*24*time.Hour), "db", event.SeverityMajor, "MySQLSlowQueries", "db"))
	if ps = f.m.Problems(); len(ps) != 1 || len(ps[0].Incidents) != 4 {
		t.Fatalf("fourth: %+v", ps)
	}
	// Two in 7 days and one later: none.
	g := newFixture(t, Config{}, nil, nil)
	for i, day := range []int{0, 2, 10} {
		g.open(incident("INC-x-"+string(rune('a'+i)), t0.Add(time.Duration(day)*24*time.Hour), "wiki-app", event.SeverityMajor, "HighLatency", "wiki-app"))
	}
	if ps := g.m.Problems(); len(ps) != 0 {
		t.Fatalf("no recurrence within 7 days, got %+v", ps)
	}
	// A P1 resolved: a major-incident review.
	h := newFixture(t, Config{}, nil, nil)
	h.open(incident("INC-P1", t0, "host-1", event.SeverityCritical, "HostDown", "host-1"))
	h.sync(t0.Add(time.Hour), correlate.Update{Kind: correlate.UpdateResolved, IncidentID: "INC-P1", At: t0.Add(time.Hour)})
	ps = h.m.Problems()
	if len(ps) != 1 || ps[0].Reason != ReasonMajorIncident {
		t.Fatalf("major: %+v", ps)
	}
	in, _ := h.m.Incident("INC-P1")
	if in.ProblemID != ps[0].ID {
		t.Fatalf("incident not linked: %q", in.ProblemID)
	}
	// Problem lifecycle to a known error; the next matching incident gets
	// its workaround.
	id := f.m.Problems()[0].ID
	for _, c := range []Command{
		{Action: ActAcceptProblem, ProblemID: id, By: "pm"},
		{Action: ActKnownError, ProblemID: id, By: "pm", RootCause: "missing index", Workaround: "kill long queries", Matchers: []string{`root_cause_ci="db"`}},
	} {
		c.At = t0.Add(7 * 24 * time.Hour)
		if _, err := f.m.Act(c); err != nil {
			t.Fatal(err)
		}
	}
	next := f.open(incident("INC-db-e", t0.Add(8*24*time.Hour), "db", event.SeverityMajor, "MySQLSlowQueries", "db"))
	if next.KnownErrorID == "" || next.Workaround != "kill long queries" || next.ProblemID != id {
		t.Fatalf("known error from the problem: %+v", next)
	}
	if _, err := f.m.Act(Command{Action: ActCloseProblem, ProblemID: id, By: "pm"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("close a known error before resolving: %v", err)
	}
}

func TestRateAnomaly(t *testing.T) {
	f := newFixture(t, Config{}, nil, nil)
	// A quiet week (one incident on the wiki), then five in a day.
	f.open(incident("INC-old", t0.Add(-8*24*time.Hour), "wiki-app", event.SeverityMinor, "HighLatency", "wiki-app"))
	for i := range 5 {
		f.open(incident("INC-r"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Hour), "host-2", event.SeverityMinor, "DiskFull", "host-2", "wiki-app"))
	}
	f.m.Tick(t0.Add(5 * time.Hour))
	var rate *Problem
	for _, p := range f.m.Problems() {
		if p.Reason == ReasonRateAnomaly && p.Service == "wiki" {
			rate = p
		}
	}
	if rate == nil || len(rate.Incidents) != 5 || !strings.Contains(rate.Detail, "5 incidents") {
		t.Fatalf("rate anomaly on wiki: %+v", f.m.Problems())
	}
	// Without a baseline's worth of history, the same burst raises none.
	g := newFixture(t, Config{}, nil, nil)
	for i := range 5 {
		g.open(incident("INC-r"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Hour), "host-2", event.SeverityMinor, "DiskFull", "host-2", "wiki-app"))
	}
	g.m.Tick(t0.Add(5 * time.Hour))
	for _, p := range g.m.Problems() {
		if p.Reason == ReasonRateAnomaly {
			t.Fatalf("rate anomaly without history: %+v", p)
		}
	}
}

func TestRestore(t *testing.T) {
	f := newFixture(t, Config{}, nil, nil)
	for i, day := range []int{0, 2, 5} {
		f.open(incident("INC-"+string(rune('a'+i)), t0.Add(time.Duration(day)*24*time.Hour), "db", event.SeverityMajor, "MySQLSlowQueries", "db"))
	}
	if _, err := f.m.Act(Command{Action: ActAcknowledge, IncidentID: "INC-a", By: "x", At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	g := f.restored()
	if len(g.m.Incidents()) != 3 || len(g.m.Problems()) != 1 {
		t.Fatalf("restored %d incidents, %d problems", len(g.m.Incidents()), len(g.m.Problems()))
	}
	a, _ := g.m.Incident("INC-a")
	if a.Status != StatusAcknowledged || a.Version != 3 { // created, linked to the problem, acknowledged
		t.Fatalf("restored INC-a: %s v%d", a.Status, a.Version)
	}
	// The restored signature history keeps counting recurrences.
	g.snp = f.snp
	g.open(incident("INC-d", t0.Add(6*24*time.Hour), "db", event.SeverityMajor, "MySQLSlowQueries", "db"))
	if ps := g.m.Problems(); len(ps[0].Incidents) != 4 {
		t.Fatalf("after restore: %+v", ps[0])
	}
	if err := g.m.Restore([]correlate.StateRecord{{Key: "incident/x", Value: []byte("{")}}); err == nil || !strings.Contains(err.Error(), `"incident/x"`) {
		t.Fatalf("bad record: %v", err)
	}
}

// kindsOf lists the notices of chs as kind:reason.
func kindsOf(chs []Change) []string {
	var out []string
	for _, c := range chs {
		for _, n := range c.Notices {
			out = append(out, n.Kind+":"+n.Reason)
		}
	}
	return out
}

// TestUpdateNotificationsArePaced: "updated" notices from correlation go at
// most once per incident and update_interval, their reasons merged; other
// notices go at once and carry what was held; what is held survives a
// restore.
func TestUpdateNotificationsArePaced(t *testing.T) {
	f := newFixture(t, Config{}, nil, nil)
	c := incident("INC-1", t0, "wiki-app", event.SeverityMinor, "HighLatency", "wiki-app")
	f.open(c)
	join := func(at time.Duration, sev event.Severity) []string {
		t.Helper()
		c.Members = append(c.Members, correlate.Member{EventID: "e" + at.String(), CI: "wiki-app", Reason: correlate.ReasonSameIncident, Severity: sev, Symptom: "HighLatency"})
		c.EventIDs = append(c.EventIDs, "e"+at.String())
		return kindsOf(f.sync(t0.Add(at), correlate.Update{Kind: correlate.UpdateJoined, IncidentID: "INC-1", At: t0.Add(at)}))
	}
	// Within the minute after "created": held, and merged.
	if got := join(10*time.Second, event.SeverityMinor); got != nil {
		t.Fatalf("update 10s after creation sent: %v", got)
	}
	if got := join(20*time.Second, event.SeverityCritical); got != nil { // priority P5 -> P3
		t.Fatalf("update 20s after creation sent: %v", got)
	}
	in, _ := f.m.Incident("INC-1")
	if in.HeldUpdate != "new members; priority P5 -> P3" || !in.NotifiedAt.Equal(t0) {
		t.Fatalf("held %q, notified at %s", in.HeldUpdate, in.NotifiedAt)
	}
	// What is held survives a restore.
	g := f.restored()
	if r, _ := g.m.Incident("INC-1"); r.HeldUpdate != in.HeldUpdate || !r.NotifiedAt.Equal(in.NotifiedAt) {
		t.Fatalf("restored held %q at %s", r.HeldUpdate, r.NotifiedAt)
	}
	// The clock passes the interval: one notice with both reasons.
	if got := kindsOf(f.m.Tick(t0.Add(59 * time.Second))); got != nil {
		t.Fatalf("tick before the interval: %v", got)
	}
	got := kindsOf(f.m.Tick(t0.Add(61 * time.Second)))
	if len(got) != 1 || got[0] != "updated:new members; priority P5 -> P3" {
		t.Fatalf("tick after the interval: %v", got)
	}
	if in, _ = f.m.Incident("INC-1"); in.HeldUpdate != "" || !in.NotifiedAt.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("after the release: held %q, notified at %s", in.HeldUpdate, in.NotifiedAt)
	}
	// Held again, then an operator acts: that goes at once, with what was
	// held; so does a resolution.
	if got := join(70*time.Second, event.SeverityCritical); got != nil {
		t.Fatalf("update 9s after the last notification sent: %v", got)
	}
	chs, err := f.m.Act(Command{Action: ActAssign, IncidentID: "INC-1", AssignTo: "web-team", By: "ann", At: t0.Add(75 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if got := kindsOf(chs); len(got) != 1 || got[0] != "updated:new members; assigned to web-team" {
		t.Fatalf("operator action: %v", got)
	}
	if in, _ = f.m.Incident("INC-1"); in.HeldUpdate != "" {
		t.Fatalf("held %q after a notification went", in.HeldUpdate)
	}
	join(80*time.Second, event.SeverityCritical)
	got = kindsOf(f.sync(t0.Add(85*time.Second), correlate.Update{Kind: correlate.UpdateResolved, IncidentID: "INC-1", At: t0.Add(85 * time.Second)}))
	if len(got) != 1 || !strings.HasPrefix(got[0], "resolved:") {
		t.Fatalf("resolution: %v", got)
	}
	if in, _ = f.m.Incident("INC-1"); in.HeldUpdate != "" {
		t.Fatalf("held %q after the resolution went", in.HeldUpdate)
	}
}
