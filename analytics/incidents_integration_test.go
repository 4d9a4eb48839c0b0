//go:build integration

package analytics

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/incidents"
)

// writeBatches writes each batch through a Writer of table as its own
// INSERT (so as its own part, which FINAL has to merge), in order.
func writeBatches[T any](t *testing.T, c *Client, cfg Config, table Table[T], batches ...[]T) {
	t.Helper()
	opts := cfg.WriterOptions()
	opts.MaxWait = 10 * time.Millisecond
	w := NewWriter(c, table, opts, nil, zaptest.NewLogger(t))
	stop := startWriter(t, w)
	for _, b := range batches {
		pos, err := w.Append(ctxT2(t, time.Minute), b)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WaitDurable(ctxT2(t, time.Minute), pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// queryStrings runs q and returns its rows with every value formatted:
// times as "2006-01-02 15:04:05" UTC, floats with 4 significant digits.
func queryStrings(t *testing.T, c *Client, q string) [][]string {
	t.Helper()
	rows, err := c.Conn().Query(ctxT2(t, time.Minute), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = formatValue(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return out
}

func formatValue(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format(time.DateTime)
	case *time.Time:
		if v == nil {
			return "NULL"
		}
		return v.UTC().Format(time.DateTime)
	case float64:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return fmt.Sprint(v)
}

func joinRows(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, " | "))
		b.WriteByte('\n')
	}
	return b.String()
}

func clone(in *incidents.Incident) *incidents.Incident {
	c := *in
	c.Transitions = slices.Clone(in.Transitions)
	c.Escalations = slices.Clone(in.Escalations)
	c.Breaches = slices.Clone(in.Breaches)
	c.Comments = slices.Clone(in.Comments)
	return &c
}

// Versions of an incident written out of order, one twice: FINAL reads the
// latest, and the timeline, members and problem rows written again merge.
func TestIntegrationIncidentVersions(t *testing.T) {
	c, cfg := migrated(t)
	db := cfg.Database

	v1 := &incidents.Incident{
		ID: "INC-1", Version: 1, Title: "checkout down", Category: incidents.CategoryDegraded, Priority: incidents.P3,
		Impact: 2, Urgency: 2, ServiceClass: 1, Services: []string{"checkout"}, CIs: []string{"db-1"},
		RootCauseCI: "db-1", RootCauseConfidence: 0.5, Status: incidents.StatusNew, OpenedAt: t0, UpdatedAt: t0,
		ResponseTarget: 15 * time.Minute, ResolutionTarget: 4 * time.Hour, EscalationLevel: 1,
		Transitions: []incidents.Transition{{At: t0, To: incidents.StatusNew, By: "correlatord", Note: "opened from e1"}},
		EventIDs:    []string{"e1"},
	}
	v2 := clone(v1)
	v2.Version, v2.Priority, v2.Category, v2.Impact = 2, incidents.P1, incidents.CategoryOutage, 1
	v2.Status, v2.AcknowledgedAt, v2.UpdatedAt, v2.AssignedTo = incidents.StatusAcknowledged, t0.Add(20*time.Minute), t0.Add(20*time.Minute), "alice"
	v2.Breaches = append(v2.Breaches, incidents.Breach{Kind: incidents.BreachResponse, At: t0.Add(15 * time.Minute), Target: 15 * time.Minute})
	v2.Escalations = append(v2.Escalations, incidents.Escalation{At: t0.Add(15 * time.Minute), From: 1, To: 2, Reason: "not acknowledged"})
	v2.Transitions = append(v2.Transitions, incidents.Transition{At: t0.Add(20 * time.Minute), From: incidents.StatusNew, To: incidents.StatusAcknowledged, By: "alice"})
	v2.Services, v2.EventIDs = []string{"checkout", "payments"}, []string{"e1", "e2"}
	v3 := clone(v2)
	v3.Version, v3.Status, v3.ResolvedAt, v3.UpdatedAt, v3.AutoResolved = 3, incidents.StatusResolved, t0.Add(time.Hour), t0.Add(time.Hour), true
	v3.Transitions = append(v3.Transitions, incidents.Transition{At: t0.Add(time.Hour), From: incidents.StatusAcknowledged, To: incidents.StatusResolved, By: "correlatord"})
	v3.Comments = append(v3.Comments, incidents.Comment{At: t0.Add(30 * time.Minute), By: "alice", Text: "failing over"})
	v3.MergedFrom = []string{"INC-0"}

	// v3 lands before v2 (another instance took the partition over), and v2
	// is delivered twice.
	writeBatches(t, c, cfg, IncidentsTable(), []*incidents.Incident{v1}, []*incidents.Incident{v3}, []*incidents.Incident{v2}, []*incidents.Incident{v2})

	q := "SELECT version, status, priority, category, impact, services, assigned_to, acknowledged_at, resolved_at, " +
		"closed_at, closed_at = 0, nullIf(closed_at, toDateTime(0)), response_breached, resolution_breached, auto_resolved, " +
		"merged_from, event_count, response_target_s FROM " + db + ".incidents FINAL"
	got := joinRows(queryStrings(t, c, q))
	want := "3 | resolved | P1 | outage | 1 | [checkout payments] | alice | 2026-03-02 10:20:00 | 2026-03-02 11:00:00 | " +
		"1970-01-01 00:00:00 | 1 | NULL | 1 | 0 | 1 | [INC-0] | 2 | 900\n"
	if got != want {
		t.Errorf("incidents FINAL:\n got %s\nwant %s", got, want)
	}
	if got := joinRows(queryStrings(t, c, "SELECT count(), uniqExact(id) FROM "+db+".incidents")); got != "4 | 1\n" {
		t.Errorf("raw rows, ids: %s", got)
	}
	// A filter on a column that changed between versions applies to the
	// latest one only.
	if got := joinRows(queryStrings(t, c, "SELECT count() FROM "+db+".incidents FINAL WHERE status = 'new' OR priority = 'P3'")); got != "0\n" {
		t.Errorf("versions older than the latest matched a filter: %s", got)
	}

	// The timeline: each version's new entries, then all of them again (a
	// restart without the marks).
	var tl [][]TimelineRow
	var mark TimelineMark
	for _, in := range []*incidents.Incident{v1, v2, v3} {
		var rows []TimelineRow
		rows, mark = AppendTimeline(nil, in, mark)
		tl = append(tl, rows)
	}
	all, _ := AppendTimeline(nil, v3, TimelineMark{})
	tl = append(tl, all)
	writeBatches(t, c, cfg, IncidentTimelineTable(), tl...)
	got = joinRows(queryStrings(t, c, "SELECT at, toString(kind), seq, priority, from_status, to_status, actor, note, "+
		"from_level, to_level, breach, target_s FROM "+db+".incident_timeline FINAL WHERE incident_id = 'INC-1' ORDER BY at, kind, seq"))
	// The first entry was written again with the later priority, which is
	// the one kept.
	want = `2026-03-02 10:00:00 | transition | 0 | P1 |  | new | correlatord | opened from e1 | 0 | 0 |  | 0
2026-03-02 10:15:00 | escalation | 0 | P1 |  |  |  | not acknowledged | 1 | 2 |  | 0
2026-03-02 10:15:00 | breach | 0 | P1 |  |  |  |  | 0 | 0 | response | 900
2026-03-02 10:20:00 | transition | 1 | P1 | new | acknowledged | alice |  | 0 | 0 |  | 0
2026-03-02 10:30:00 | comment | 0 | P1 |  |  | alice | failing over | 0 | 0 |  | 0
2026-03-02 11:00:00 | transition | 2 | P1 | acknowledged | resolved | correlatord |  | 0 | 0 |  | 0
`
	if got != want {
		t.Errorf("incident_timeline FINAL:\n got %s\nwant %s", got, want)
	}

	// Members, written twice.
	members := []MemberRow{
		{IncidentID: "INC-1", AddedAt: t0, Member: correlate.Member{EventID: "e1", CI: "db-1", Reason: correlate.ReasonOpened}},
		{IncidentID: "INC-1", AddedAt: t0.Add(time.Minute), Member: correlate.Member{EventID: "e2", CI: "web-1",
			Reason: correlate.ReasonTopology, RelatedCI: "db-1", Path: []string{"web-1", "db-1"}, Hops: 1, Offset: time.Minute}},
	}
	writeBatches(t, c, cfg, IncidentMembersTable(), members, members)
	got = joinRows(queryStrings(t, c, "SELECT event_id, ci, reason, related_ci, path, hops, offset_s, added_at FROM "+
		db+".incident_members FINAL ORDER BY incident_id, event_id"))
	want = `e1 | db-1 | opened |  | [] | 0 | 0 | 2026-03-02 10:00:00
e2 | web-1 | topology | db-1 | [web-1 db-1] | 1 | 60 | 2026-03-02 10:01:00
`
	if got != want {
		t.Errorf("incident_members FINAL:\n got %s\nwant %s", got, want)
	}

	// Problems.
	p1 := &incidents.Problem{ID: "PRB-1", Version: 1, Status: incidents.ProblemCandidate, Reason: incidents.ReasonMajorIncident,
		Title: "Major incident review", RootCauseCI: "db-1", Incidents: []string{"INC-1"}, RaisedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour),
		Transitions: []incidents.Transition{{At: t0.Add(time.Hour), To: incidents.Status(incidents.ProblemCandidate), By: "correlatord"}}}
	p2 := *p1
	p2.Version, p2.Status, p2.UpdatedAt = 2, incidents.ProblemKnownError, t0.Add(2*time.Hour)
	p2.RootCause, p2.Workaround, p2.KnownErrorID = "disk full", "failover", "KE-1"
	p2.Transitions = append(slices.Clone(p1.Transitions), incidents.Transition{At: t0.Add(2 * time.Hour),
		From: incidents.Status(incidents.ProblemCandidate), To: incidents.Status(incidents.ProblemKnownError), By: "bob"})
	writeBatches(t, c, cfg, ProblemsTable(), []*incidents.Problem{&p2}, []*incidents.Problem{p1})
	got = joinRows(queryStrings(t, c, "SELECT version, status, known_error_id, workaround, incidents, transition_at, transition_to FROM "+
		db+".problems FINAL"))
	want = "2 | known_error | KE-1 | failover | [INC-1] | [2026-03-02 11:00:00 +0000 UTC 2026-03-02 12:00:00 +0000 UTC] | [candidate known_error]\n"
	if got != want {
		t.Errorf("problems FINAL:\n got %s\nwant %s", got, want)
	}
}
