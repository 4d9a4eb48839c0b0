package analytics

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/correlatord/correlatord/analytics/analyticstest"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
)

// schemaColumns returns the columns of table and their types, in order,
// as the migrations define them: its CREATE TABLE, then the ADD COLUMNs
// of later ALTERs. Each column is on its own line in the DDL.
func schemaColumns(tb testing.TB, table string) (names []string, types map[string]string, defaults map[string]string) {
	tb.Helper()
	types, defaults = map[string]string{}, map[string]string{}
	add := func(def string) {
		def = strings.TrimSuffix(strings.TrimSpace(def), ",")
		name, typ, ok := strings.Cut(def, " ")
		if !ok {
			tb.Fatalf("table %s: cannot parse column %q", table, def)
		}
		typ, dflt, _ := strings.Cut(typ, " DEFAULT ")
		names = append(names, name)
		types[name], defaults[name] = typ, dflt
	}
	create := "CREATE TABLE IF NOT EXISTS {db}." + table + " ("
	alter := "ALTER TABLE {db}." + table
	for _, m := range migrations {
		for _, s := range m.Statements {
			switch {
			case strings.HasPrefix(s, create):
				body, _, ok := strings.Cut(s[len(create):], "\n) ENGINE")
				if !ok {
					tb.Fatalf("%s: no ENGINE after the columns of %s", m.ID(), table)
				}
				for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
					add(line)
				}
			case strings.HasPrefix(s, alter) && strings.ContainsAny(s[len(alter):][:1], " \n"):
				for _, line := range strings.Split(s, "\n") {
					if _, def, ok := strings.Cut(line, "ADD COLUMN "); ok {
						add(def)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		tb.Fatalf("no migration creates %s", table)
	}
	return names, types, defaults
}

func schemaBatch(tb testing.TB, table string, columns []string) *analyticstest.BlockBatch {
	tb.Helper()
	_, types, _ := schemaColumns(tb, table)
	return analyticstest.NewBlockBatch(tb, columns, types)
}

// Every Table writes columns its table has, and every column of the table
// but those computed by the server.
func TestTablesMatchSchema(t *testing.T) {
	for _, tc := range []struct {
		name    string
		columns []string
		skipped []string // left to their DEFAULT
	}{
		{"events", EventsTable().Columns, []string{"date"}},
		{"incidents", IncidentsTable().Columns, nil},
		{"incident_timeline", IncidentTimelineTable().Columns, nil},
		{"incident_members", IncidentMembersTable().Columns, nil},
		{"problems", ProblemsTable().Columns, nil},
	} {
		names, types, _ := schemaColumns(t, tc.name)
		for _, c := range tc.columns {
			if _, ok := types[c]; !ok {
				t.Errorf("%s: writes column %s, which the schema lacks", tc.name, c)
			}
		}
		for _, c := range names {
			if !slices.Contains(tc.columns, c) && !slices.Contains(tc.skipped, c) {
				t.Errorf("%s: column %s is never written", tc.name, c)
			}
		}
		if len(tc.columns) != len(slices.Compact(slices.Sorted(slices.Values(tc.columns)))) {
			t.Errorf("%s: a column is written twice: %v", tc.name, tc.columns)
		}
	}
	// The encoders of other packages' benchmarks use these types.
	_, types, _ := schemaColumns(t, "events")
	for name, typ := range analyticstest.EventColumnTypes {
		if types[name] != typ {
			t.Errorf("analyticstest.EventColumnTypes[%s] = %s, schema says %s", name, typ, types[name])
		}
	}
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func testIncident() *incidents.Incident {
	return &incidents.Incident{
		ID: "INC-1", Version: 3, PartitionKey: "p7", Title: "checkout down", Description: "db-1 unreachable",
		Category: incidents.CategoryOutage, Impact: 1, Urgency: 2, Priority: incidents.P2, ServiceClass: 1,
		Services: []string{"checkout", "payments"}, CIs: []string{"db-1", "web-1"},
		RootCauseCI: "db-1", RootCauseConfidence: 0.75, RootCauseSuspected: true, SupportGroup: "dba", AssignedTo: "alice",
		Status: incidents.StatusResolved, AutoResolved: true,
		OpenedAt: t0, AcknowledgedAt: t0.Add(5 * time.Minute), ResolvedAt: t0.Add(time.Hour + 500*time.Millisecond),
		UpdatedAt: t0.Add(time.Hour), Reopened: 1,
		ResponseTarget: 15 * time.Minute, ResolutionTarget: 4*time.Hour + 999*time.Millisecond, EscalationLevel: 2,
		Escalations: []incidents.Escalation{{At: t0.Add(30 * time.Minute), From: 1, To: 2, Reason: "not resolved"}},
		Breaches:    []incidents.Breach{{Kind: incidents.BreachResolution, At: t0.Add(4 * time.Hour), Target: 4 * time.Hour}},
		Transitions: []incidents.Transition{
			{At: t0, To: incidents.StatusNew, By: "correlatord", Note: "opened from e1"},
			{At: t0.Add(5 * time.Minute), From: incidents.StatusNew, To: incidents.StatusAcknowledged, By: "alice"},
			{At: t0.Add(time.Hour), From: incidents.StatusAcknowledged, To: incidents.StatusResolved, By: "correlatord", Note: "every alert cleared"},
		},
		Comments: []incidents.Comment{{At: t0.Add(10 * time.Minute), By: "alice", Text: "looking"}},
		ChangeID: "CHG-9", KnownErrorID: "KE-1", ProblemID: "PRB-1",
		EventIDs: []string{"e1", "e2", "e3"}, SuppressedEventIDs: []string{"e3"}, MergedFrom: []string{"INC-0"},
	}
}

// checkRow compares the values of one row of b with want, by column.
func checkRow(t *testing.T, b *analyticstest.BlockBatch, row int, want map[string]any) {
	t.Helper()
	for name, w := range want {
		got := b.Value(t, name, row)
		if tm, ok := got.(time.Time); ok {
			got = tm.UTC()
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("row %d: %s = %v, want %v", row, name, got, w)
		}
	}
}

func TestIncidentsTableAppend(t *testing.T) {
	table := IncidentsTable()
	b := schemaBatch(t, "incidents", table.Columns)
	in := testIncident()
	// A record with nothing set but its id: zero times, nil slices and
	// out-of-range numbers must still be writable.
	bare := &incidents.Incident{ID: "INC-2", Impact: -1, Urgency: 300, Reopened: -2,
		ResponseTarget: -time.Second, ResolutionTarget: 200 * 365 * 24 * time.Hour,
		OpenedAt: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, r := range []*incidents.Incident{in, bare} {
		if err := table.Append(b, &r); err != nil {
			t.Fatal(err)
		}
	}
	checkRow(t, b, 0, map[string]any{
		"id": "INC-1", "version": uint64(3), "partition_key": "p7", "title": "checkout down", "description": "db-1 unreachable",
		"category": "outage", "priority": "P2", "impact": uint8(1), "urgency": uint8(2), "service_class": uint8(1),
		"services": []string{"checkout", "payments"}, "cis": []string{"db-1", "web-1"},
		"root_cause_ci": "db-1", "root_cause_confidence": 0.75, "root_cause_suspected": uint8(1),
		"support_group": "dba", "assigned_to": "alice", "status": "resolved", "auto_resolved": uint8(1),
		"opened_at": t0, "acknowledged_at": t0.Add(5 * time.Minute), "resolved_at": t0.Add(time.Hour),
		"closed_at": time.Unix(0, 0).UTC(), "updated_at": t0.Add(time.Hour), "reopened": uint32(1),
		"response_target_s": uint32(900), "resolution_target_s": uint32(4 * 3600), "escalation_level": uint8(2),
		"response_breached": uint8(0), "resolution_breached": uint8(1),
		"change_id": "CHG-9", "known_error_id": "KE-1", "problem_id": "PRB-1",
		"event_count": uint32(3), "suppressed_count": uint32(1), "merged_from": []string{"INC-0"},
	})
	checkRow(t, b, 1, map[string]any{
		"id": "INC-2", "impact": uint8(0), "urgency": uint8(255), "reopened": uint32(0),
		"response_target_s": uint32(0), "resolution_target_s": uint32(1<<32 - 1),
		"services": []string{}, "merged_from": []string{}, "opened_at": time.Unix(0, 0).UTC(),
		"acknowledged_at": time.Unix(0, 0).UTC(), "updated_at": time.Unix(1<<32-1, 0).UTC(),
		"priority": "", "status": "",
	})
}

func TestAppendTimeline(t *testing.T) {
	in := testIncident()
	rows, mark := AppendTimeline(nil, in, TimelineMark{})
	if want := (TimelineMark{Transitions: 3, Escalations: 1, Breaches: 1, Comments: 1}); mark != want {
		t.Errorf("mark %+v, want %+v", mark, want)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s/%d %s", r.Kind, r.Seq, r.At.Sub(t0)))
	}
	want := []string{"transition/0 0s", "transition/1 5m0s", "transition/2 1h0m0s", "escalation/0 30m0s", "breach/0 4h0m0s", "comment/0 10m0s"}
	if !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}

	// The next version adds a transition and a comment: only they are new.
	in.Transitions = append(in.Transitions, incidents.Transition{At: t0.Add(2 * time.Hour), From: incidents.StatusResolved, To: incidents.StatusClosed, By: "bob"})
	in.Comments = append(in.Comments, incidents.Comment{At: t0.Add(2 * time.Hour), By: "bob", Text: "done"})
	rows, mark2 := AppendTimeline(rows[:0], in, mark)
	if len(rows) != 2 || rows[0].Kind != TimelineTransition || rows[0].Seq != 3 || rows[0].To != incidents.StatusClosed ||
		rows[1].Kind != TimelineComment || rows[1].Seq != 1 || rows[1].Note != "done" || rows[1].By != "bob" {
		t.Errorf("new rows %+v", rows)
	}
	if mark2.Transitions != 4 || mark2.Comments != 2 || mark2.Escalations != 1 {
		t.Errorf("mark %+v", mark2)
	}
	// A mark past the lists (another instance's) yields nothing.
	if rows, _ := AppendTimeline(nil, in, TimelineMark{Transitions: 9, Escalations: 9, Breaches: 9, Comments: 9}); len(rows) != 0 {
		t.Errorf("rows past the end: %+v", rows)
	}

	table := IncidentTimelineTable()
	b := schemaBatch(t, "incident_timeline", table.Columns)
	all, _ := AppendTimeline(nil, in, TimelineMark{})
	all = append(all, TimelineRow{IncidentID: "INC-x", Kind: "bogus"}) // written as a comment
	for i := range all {
		if err := table.Append(b, &all[i]); err != nil {
			t.Fatal(err)
		}
	}
	checkRow(t, b, 1, map[string]any{
		"incident_id": "INC-1", "kind": "transition", "seq": uint32(1), "at": t0.Add(5 * time.Minute),
		"at_ms": uint64(t0.Add(5 * time.Minute).UnixMilli()), "priority": "P2",
		"from_status": "new", "to_status": "acknowledged", "actor": "alice", "note": "",
	})
	checkRow(t, b, 4, map[string]any{
		"kind": "escalation", "seq": uint32(0), "from_level": uint8(1), "to_level": uint8(2), "note": "not resolved", "to_status": "",
	})
	checkRow(t, b, 5, map[string]any{"kind": "breach", "breach": "resolution", "target_s": uint32(4 * 3600), "at": t0.Add(4 * time.Hour)})
	checkRow(t, b, 7, map[string]any{"kind": "comment", "seq": uint32(1), "actor": "bob", "note": "done"})
	checkRow(t, b, 8, map[string]any{"kind": "comment", "incident_id": "INC-x", "at": time.Unix(0, 0).UTC(), "at_ms": uint64(0)})
}

func TestIncidentMembersTableAppend(t *testing.T) {
	table := IncidentMembersTable()
	b := schemaBatch(t, "incident_members", table.Columns)
	rows := []MemberRow{
		{IncidentID: "INC-1", AddedAt: t0, Member: correlate.Member{
			EventID: "e2", CI: "web-1", Reason: correlate.ReasonTopology, RelatedCI: "db-1", Path: []string{"web-1", "db-1"},
			Hops: 1, Offset: 1500 * time.Millisecond, MergedFrom: "INC-0", Severity: event.SeverityCritical, Symptom: "Down"}},
		{IncidentID: "INC-1", Member: correlate.Member{EventID: "e1", Reason: correlate.ReasonOpened, Hops: 999}},
	}
	for i := range rows {
		if err := table.Append(b, &rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	checkRow(t, b, 0, map[string]any{
		"incident_id": "INC-1", "event_id": "e2", "ci": "web-1", "reason": "topology", "related_ci": "db-1",
		"path": []string{"web-1", "db-1"}, "hops": uint8(1), "offset_s": 1.5, "merged_from": "INC-0",
		"severity": "critical", "symptom": "Down", "added_at": t0,
	})
	checkRow(t, b, 1, map[string]any{"event_id": "e1", "path": []string{}, "hops": uint8(255), "added_at": time.Unix(0, 0).UTC()})
}

func TestProblemsTableAppend(t *testing.T) {
	table := ProblemsTable()
	b := schemaBatch(t, "problems", table.Columns)
	p := &incidents.Problem{
		ID: "PRB-1", Version: 2, PartitionKey: "p7", Status: incidents.ProblemAccepted, Reason: incidents.ReasonRecurring,
		Title: "Recurring outage on db-1", RootCauseCI: "db-1", Category: incidents.CategoryOutage, Service: "checkout",
		Incidents: []string{"INC-1", "INC-2"}, RaisedAt: t0, UpdatedAt: t0.Add(time.Hour),
		Transitions: []incidents.Transition{
			{At: t0, To: incidents.Status(incidents.ProblemCandidate), By: "correlatord"},
			{At: t0.Add(time.Hour), From: incidents.Status(incidents.ProblemCandidate), To: incidents.Status(incidents.ProblemAccepted), By: "bob"},
		},
		RootCause: "disk", Workaround: "failover", KnownErrorID: "KE-1", Detail: "3 incidents",
	}
	bare := &incidents.Problem{ID: "PRB-2", Status: incidents.ProblemCandidate, RaisedAt: t0}
	for _, r := range []*incidents.Problem{p, bare} {
		if err := table.Append(b, &r); err != nil {
			t.Fatal(err)
		}
	}
	checkRow(t, b, 0, map[string]any{
		"id": "PRB-1", "version": uint64(2), "partition_key": "p7", "status": "accepted", "reason": "recurring",
		"title": "Recurring outage on db-1", "root_cause_ci": "db-1", "category": "outage", "service": "checkout",
		"incidents": []string{"INC-1", "INC-2"}, "raised_at": t0, "updated_at": t0.Add(time.Hour),
		"root_cause": "disk", "workaround": "failover", "known_error_id": "KE-1", "detail": "3 incidents",
		"transition_to": []string{"candidate", "accepted"},
	})
	if got := b.Value(t, "transition_at", 0).([]time.Time); len(got) != 2 || !got[1].Equal(t0.Add(time.Hour)) {
		t.Errorf("transition_at = %v", got)
	}
	checkRow(t, b, 1, map[string]any{"incidents": []string{}, "transition_to": []string{"candidate"}, "updated_at": time.Unix(0, 0).UTC()})
	if got := b.Value(t, "transition_at", 1).([]time.Time); len(got) != 1 || !got[0].Equal(t0) {
		t.Errorf("transition_at of a problem without transitions = %v", got)
	}
}

func TestChTime(t *testing.T) {
	for _, tc := range []struct{ in, want time.Time }{
		{time.Time{}, time.Unix(0, 0)},
		{time.Unix(-1, 0), time.Unix(0, 0)},
		{t0, t0},
		{time.Unix(1<<32, 0), time.Unix(1<<32-1, 0)},
	} {
		if got := chTime(tc.in); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("chTime(%v) = %v, want %v UTC", tc.in, got, tc.want)
		}
	}
}
