//go:build integration

package analytics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t
}

// trendEvents are 30 events, 10 a minute from 2026-03-02 10:00:00 UTC.
func trendEvents() []EventRow {
	rows := make([]EventRow, 30)
	for i := range rows {
		e := event.Event{
			Time:     utc("2026-03-02 10:00:00").Add(time.Duration(i) * 6 * time.Second),
			Source:   []string{"prometheus", "zabbix"}[i%2],
			Severity: event.SeverityWarning,
			Labels:   event.FromMap(map[string]string{"alertname": "Down", "n": strconv.Itoa(i)}),
			CI:       "ci-" + strconv.Itoa(i),
		}
		if i%3 == 0 {
			e.Severity = event.SeverityCritical
		}
		if i%4 == 0 {
			e.Kind = event.KindLog
		}
		if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
			panic(err)
		}
		r := EventRow{Event: e, ReceivedAt: e.Time, CIType: "host"}
		if i%2 == 1 {
			r.CIType = "database"
		}
		if i%5 == 0 {
			r.CIType = ""
		}
		rows[i] = r
	}
	return rows
}

// wantEventsPerMinute computes what events_per_minute_by_<dim> returns for
// rows, with buckets of bucket.
func wantEventsPerMinute(rows []EventRow, bucket time.Duration, dim func(*EventRow) string) string {
	counts := map[[2]string]int{}
	for i := range rows {
		r := &rows[i]
		k := [2]string{r.Event.Time.Truncate(bucket).Format(time.DateTime), dim(r)}
		counts[k]++
	}
	keys := make([][2]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"|"+a[1], b[0]+"|"+b[1]) })
	var b strings.Builder
	for _, k := range keys {
		rate := float64(counts[k]) / bucket.Minutes()
		fmt.Fprintf(&b, "%s | %s | %s\n", k[0], k[1], strconv.FormatFloat(rate, 'g', 4, 64))
	}
	return b.String()
}

// incidentVersions returns the versions of one incident: base as version
// 1, then each change applied to a copy of the previous version.
func incidentVersions(base incidents.Incident, changes ...func(*incidents.Incident)) []*incidents.Incident {
	base.Version = 1
	if base.Status == "" {
		base.Status = incidents.StatusNew
	}
	base.UpdatedAt = base.OpenedAt
	out := []*incidents.Incident{&base}
	for _, ch := range changes {
		in := clone(out[len(out)-1])
		in.Version++
		ch(in)
		out = append(out, in)
	}
	return out
}

func resolvedAt(at string, breaches ...incidents.BreachKind) func(*incidents.Incident) {
	return func(in *incidents.Incident) {
		in.Status, in.ResolvedAt, in.UpdatedAt = incidents.StatusResolved, utc(at), utc(at)
		for _, k := range breaches {
			in.Breaches = append(in.Breaches, incidents.Breach{Kind: k, At: utc(at)})
		}
	}
}

func problemVersions(id, raised string, moves ...string) []*incidents.Problem {
	p := incidents.Problem{ID: id, Version: 1, Status: incidents.ProblemCandidate, Reason: incidents.ReasonRecurring,
		RaisedAt: utc(raised), UpdatedAt: utc(raised),
		Transitions: []incidents.Transition{{At: utc(raised), To: incidents.Status(incidents.ProblemCandidate), By: "correlatord"}}}
	out := []*incidents.Problem{&p}
	for i := 0; i+1 < len(moves); i += 2 {
		prev := out[len(out)-1]
		n := *prev
		n.Version++
		n.Status, n.UpdatedAt = incidents.ProblemStatus(moves[i+1]), utc(moves[i])
		n.Transitions = append(slices.Clone(prev.Transitions), incidents.Transition{At: utc(moves[i]),
			From: incidents.Status(prev.Status), To: incidents.Status(moves[i+1]), By: "bob"})
		out = append(out, &n)
	}
	return out
}

// Sample events, incidents and problems written through the Writers;
// every trend query run on them, its macros expanded, against the real
// server.
func TestIntegrationTrendQueries(t *testing.T) {
	c, cfg := migrated(t)
	db := cfg.Database

	// Events, the first ten delivered twice (in another INSERT).
	events := trendEvents()
	writeBatches(t, c, cfg, EventsTable(), events, events[:10])

	// Incidents, each version its own INSERT, in an order that puts
	// some later versions first.
	const (
		rt  = 15 * time.Minute
		res = 4 * time.Hour
	)
	inc := func(id string, p incidents.Priority, cat incidents.Category, services []string, root, opened string) incidents.Incident {
		return incidents.Incident{ID: id, Priority: p, Category: cat, Services: services, RootCauseCI: root,
			OpenedAt: utc(opened), ResponseTarget: rt, ResolutionTarget: res,
			Transitions: []incidents.Transition{{At: utc(opened), To: incidents.StatusNew, By: "correlatord"}}}
	}
	a := incidentVersions(inc("INC-A", incidents.P1, incidents.CategoryOutage, []string{"checkout", "payments"}, "db-1", "2026-03-02 10:00:00"),
		func(in *incidents.Incident) {
			in.Status, in.AcknowledgedAt = incidents.StatusAcknowledged, utc("2026-03-02 10:05:00")
		},
		resolvedAt("2026-03-02 11:00:00"),
		func(in *incidents.Incident) { in.MergedFrom = []string{"INC-E"} })
	// E was merged into A: counted nowhere.
	e := incidentVersions(inc("INC-E", incidents.P3, incidents.CategoryOutage, []string{"checkout"}, "db-1", "2026-03-02 10:01:00"),
		func(in *incidents.Incident) {
			in.Status, in.ClosedAt = incidents.StatusClosed, utc("2026-03-02 10:02:00")
		})
	// B missed both targets.
	b := incidentVersions(inc("INC-B", incidents.P2, incidents.CategoryDegraded, []string{"checkout"}, "db-1", "2026-03-02 12:00:00"),
		func(in *incidents.Incident) {
			in.Breaches = append(in.Breaches, incidents.Breach{Kind: incidents.BreachResponse, At: utc("2026-03-02 12:15:00")})
			in.EscalationLevel = 2
		},
		resolvedAt("2026-03-03 12:00:00", incidents.BreachResolution))
	// C was P4 at first, then P3; it impacts no service.
	c1 := incidentVersions(inc("INC-C", incidents.P4, incidents.CategoryUnreachable, nil, "sw-1", "2026-03-03 09:00:00"),
		func(in *incidents.Incident) { in.Priority = incidents.P3 },
		resolvedAt("2026-03-03 09:30:00"))
	// D was resolved, then reopened: not resolved any more.
	d := incidentVersions(inc("INC-D", incidents.P2, incidents.CategoryOutage, []string{"payments"}, "db-1", "2026-03-05 08:00:00"),
		resolvedAt("2026-03-05 09:00:00"),
		func(in *incidents.Incident) {
			in.Status, in.ResolvedAt, in.Reopened = incidents.StatusReopened, time.Time{}, 1
		})
	g := incidentVersions(inc("INC-G", incidents.P3, incidents.CategoryOutage, []string{"checkout"}, "db-1", "2026-03-10 07:00:00"))
	// F was acknowledged late (response breached), resolved in time.
	f := incidentVersions(inc("INC-F", incidents.P4, incidents.CategoryDegraded, []string{"search"}, "web-1", "2026-04-01 00:30:00"),
		func(in *incidents.Incident) {
			in.Status, in.AcknowledgedAt = incidents.StatusAcknowledged, utc("2026-04-01 01:00:00")
			in.Breaches = append(in.Breaches, incidents.Breach{Kind: incidents.BreachResponse, At: utc("2026-04-01 00:45:00")})
		},
		resolvedAt("2026-04-01 02:30:00"))
	writeBatches(t, c, cfg, IncidentsTable(),
		[]*incidents.Incident{a[0], e[0], b[0], c1[0], d[0], g[0], f[0]},
		[]*incidents.Incident{a[3], b[2], d[2], f[2]}, // the latest first
		[]*incidents.Incident{a[1], a[2], e[1], b[1], c1[1], d[1], f[1]},
		[]*incidents.Incident{c1[2], a[2]}, // a[2] delivered twice
	)

	// Problems.
	p1 := problemVersions("PRB-1", "2026-03-02 12:00:00",
		"2026-03-04 10:00:00", "accepted", "2026-03-06 10:00:00", "known_error", "2026-03-08 10:00:00", "resolved")
	p2 := problemVersions("PRB-2", "2026-03-03 00:00:00", "2026-03-05 10:00:00", "rejected")
	p3 := problemVersions("PRB-3", "2026-03-07 15:00:00")
	writeBatches(t, c, cfg, ProblemsTable(),
		[]*incidents.Problem{p1[3], p2[0], p3[0]}, []*incidents.Problem{p1[0], p1[1]}, []*incidents.Problem{p2[1], p1[2]})

	source := func(r *EventRow) string { return r.Event.Source }
	hour := [2]time.Time{utc("2026-03-02 10:00:00"), utc("2026-03-02 10:59:59")} // 1-minute buckets
	day := [2]time.Time{utc("2026-03-02 00:00:00"), utc("2026-03-02 23:59:59")}  // 2-minute buckets
	months := [2]time.Time{utc("2026-03-01 00:00:00"), utc("2026-04-30 23:59:59")}
	ciType := func(r *EventRow) string {
		if r.CIType == "" {
			return "(unknown)"
		}
		return r.CIType
	}
	type check struct {
		rng  [2]time.Time
		want string
	}
	want := map[string][]check{
		"events_per_minute_by_source": {
			{hour, wantEventsPerMinute(events, time.Minute, source)},
			{day, wantEventsPerMinute(events, 2*time.Minute, source)},
		},
		"events_per_minute_by_severity": {{hour, wantEventsPerMinute(events, time.Minute, func(r *EventRow) string { return string(r.Event.Severity) })}},
		"events_per_minute_by_kind":     {{hour, wantEventsPerMinute(events, time.Minute, func(r *EventRow) string { return string(r.Event.Kind) })}},
		"events_per_minute_by_ci_type": {
			{hour, wantEventsPerMinute(events, time.Minute, ciType)},
			{day, wantEventsPerMinute(events, 2*time.Minute, ciType)},
		},
		"incidents_per_day_by_service": {{months, `2026-03-02 00:00:00 | checkout | 2
2026-03-02 00:00:00 | payments | 1
2026-03-03 00:00:00 | (none) | 1
2026-03-05 00:00:00 | payments | 1
2026-03-10 00:00:00 | checkout | 1
2026-04-01 00:00:00 | search | 1
`}},
		"incidents_per_day_by_priority": {{months, `2026-03-02 00:00:00 | P1 | 1
2026-03-02 00:00:00 | P2 | 1
2026-03-03 00:00:00 | P3 | 1
2026-03-05 00:00:00 | P2 | 1
2026-03-10 00:00:00 | P3 | 1
2026-04-01 00:00:00 | P4 | 1
`}},
		"incidents_per_day_by_category": {{months, `2026-03-02 00:00:00 | degraded | 1
2026-03-02 00:00:00 | outage | 1
2026-03-03 00:00:00 | unreachable | 1
2026-03-05 00:00:00 | outage | 1
2026-03-10 00:00:00 | outage | 1
2026-04-01 00:00:00 | degraded | 1
`}},
		"mttr_by_service": {{months, `2026-03-02 00:00:00 | checkout | 3600 | 3600
2026-03-02 00:00:00 | payments | 3600 | 3600
2026-03-03 00:00:00 | (none) | 1800 | 1800
2026-03-03 00:00:00 | checkout | 8.64e+04 | 8.64e+04
2026-04-01 00:00:00 | search | 7200 | 7200
`}},
		// March: A, B and C resolved; B missed both targets. April: F
		// missed the response target only.
		"sla_compliance_monthly": {{months, `2026-03-01 00:00:00 | 0.6667 | 0.6667
2026-04-01 00:00:00 | 1 | 0
`}},
		"sla_compliance_by_priority": {{months, `P1 | 1 | 1 | 1
P2 | 1 | 0 | 0
P3 | 1 | 1 | 1
P4 | 1 | 1 | 0
`}},
		// db-1 was the root cause of A, D and G as outages (E, merged into
		// A, does not count) and of B as degraded (once: not recurring).
		"top_root_cause_cis": {{months, "db-1 | outage | 3 | 2 | 2026-03-02 10:00:00 | 2026-03-10 07:00:00\n"}},
		"problem_backlog": {{[2]time.Time{utc("2026-03-01 00:00:00"), utc("2026-03-09 23:59:59")}, `2026-03-02 00:00:00 | candidate | 1
2026-03-03 00:00:00 | candidate | 2
2026-03-04 00:00:00 | accepted | 1
2026-03-04 00:00:00 | candidate | 1
2026-03-05 00:00:00 | accepted | 1
2026-03-06 00:00:00 | known_error | 1
2026-03-07 00:00:00 | candidate | 1
2026-03-07 00:00:00 | known_error | 1
2026-03-08 00:00:00 | candidate | 1
2026-03-09 00:00:00 | candidate | 1
`}},
	}
	for _, q := range TrendQueries {
		checks, ok := want[q.Name]
		if !ok {
			t.Errorf("no expected result for trend query %s", q.Name)
			continue
		}
		delete(want, q.Name)
		for _, ck := range checks {
			sql := ExpandMacros(q.For(db), ck.rng[0], ck.rng[1])
			got := joinRows(queryStrings(t, c, sql))
			if got == "" {
				t.Errorf("%s over %v: no rows", q.Name, ck.rng)
			}
			if got != ck.want {
				t.Errorf("%s over %v:\n got:\n%s\nwant:\n%s\nquery:\n%s", q.Name, ck.rng, got, ck.want, sql)
			}
		}
	}
	for name := range want {
		t.Errorf("expected results for %s, which is not a trend query", name)
	}
}
