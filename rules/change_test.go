package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDecodeChange(t *testing.T) {
	r, err := DecodeChange([]byte(`{"id":"CHG1","cis":["db-1","vm-1"],"status":"In Progress",
		"planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T12:00:00+01:00",
		"actual_start":"2026-01-05T10:05:00Z","summary":"upgrade","updated_at":"2026-01-05T10:05:00Z","extra":{"ignored":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "CHG1" || len(r.CIs) != 2 || r.Status != ChangeInProgress || !r.Start().Equal(t0.Add(5*time.Minute)) || !r.End().Equal(t0.Add(time.Hour)) {
		t.Errorf("%+v", r)
	}
	for _, tc := range []struct{ in, want string }{
		{`not json`, "not a JSON change object"},
		{`{"id":"x"} {}`, "trailing data"},
		{`{}`, "id: missing"},
		{`{"id":"C","cis":[],"status":"approved","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T11:00:00Z"}`, `"C": cis: missing`},
		{`{"id":"C","cis":[""],"status":"approved","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T11:00:00Z"}`, "cis[0]: empty"},
		{`{"id":"C","cis":["a"],"status":"done?","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T11:00:00Z"}`, `status: "done?"`},
		{`{"id":"C","cis":["a"],"status":"approved","planned_start":"yesterday","planned_end":"2026-01-05T11:00:00Z"}`, `planned_start: "yesterday" is not an RFC 3339 time`},
		{`{"id":"C","cis":["a"],"status":"approved","planned_start":"2026-01-05T10:00:00Z"}`, "planned_end: missing"},
		{`{"id":"C","cis":["a"],"status":"approved","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T09:00:00Z"}`, "planned_end: not after planned_start"},
		{`{"id":"C","cis":"a"}`, "not a JSON change object"},
	} {
		_, err := DecodeChange([]byte(tc.in))
		if err == nil || !errors.Is(err, ErrInvalidChange) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestLateChangeKeepsItsDuration: a change that started after its planned
// end, with no actual end yet, runs its planned duration from its actual
// start, instead of a window that ends before it begins.
func TestLateChangeKeepsItsDuration(t *testing.T) {
	r, err := DecodeChange([]byte(`{"id":"CHG2","cis":["db-1"],"status":"in_progress",
		"planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T11:00:00Z","actual_start":"2026-01-05T13:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(4 * time.Hour); !r.End().Equal(want) {
		t.Fatalf("end %v, want %v", r.End(), want)
	}
	s := NewChangeStore(ChangeStoreOptions{})
	if err := s.Apply(r); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{3 * time.Hour, 3*time.Hour + 59*time.Minute} {
		if _, ok := s.Active("db-1", t0.Add(at)); !ok {
			t.Errorf("not active %v after 10:00", at)
		}
	}
	if _, ok := s.Active("db-1", t0.Add(4*time.Hour)); ok {
		t.Error("still active after its planned duration")
	}
	// Started before its planned end, early or late: the planned end
	// stands.
	for _, start := range []time.Duration{-30 * time.Minute, 30 * time.Minute} {
		other := r
		other.ActualStart = t0.Add(start)
		if want := t0.Add(time.Hour); !other.End().Equal(want) {
			t.Errorf("started at 10:00%+v: end %v, want %v", start, other.End(), want)
		}
	}
}

func TestChangeStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewChangeStore(ChangeStoreOptions{Registerer: reg, Retention: 24 * time.Hour, MaxRecords: 3})
	rec := func(id string, st ChangeStatus, start, end time.Duration, cis ...string) ChangeRecord {
		return ChangeRecord{ID: id, CIs: cis, Status: st, PlannedStart: t0.Add(start), PlannedEnd: t0.Add(end)}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Apply(rec("C1", ChangeApproved, 0, time.Hour, "db-1", "vm-1")))
	must(s.Apply(rec("C2", ChangeCompleted, 30*time.Minute, 2*time.Hour, "db-1")))
	if r, ok := s.Active("db-1", t0.Add(45*time.Minute)); !ok || r.ID != "C2" {
		t.Errorf("the latest started wins: %v %v", r, ok)
	}
	if r, ok := s.Active("vm-1", t0.Add(10*time.Minute)); !ok || r.ID != "C1" {
		t.Errorf("vm-1: %v %v", r, ok)
	}
	if _, ok := s.Active("vm-1", t0.Add(time.Hour)); ok {
		t.Error("end is exclusive")
	}
	if _, ok := s.Active("other", t0); ok {
		t.Error("other CI")
	}
	// Upsert by id: C1 cancelled, on one CI only.
	must(s.Apply(rec("C1", ChangeCancelled, 0, time.Hour, "vm-1")))
	if _, ok := s.Active("vm-1", t0.Add(10*time.Minute)); ok {
		t.Error("cancelled change active")
	}
	if r, ok := s.Active("db-1", t0.Add(10*time.Minute)); ok {
		t.Errorf("C1 still on db-1: %v", r)
	}
	// Stale updates are ignored.
	newer := rec("C3", ChangeApproved, 0, time.Hour, "app-1")
	newer.UpdatedAt = t0.Add(time.Minute)
	older := rec("C3", ChangeCancelled, 0, time.Hour, "app-1")
	older.UpdatedAt = t0
	must(s.Apply(newer))
	must(s.Apply(older))
	if r, _ := s.Get("C3"); r.Status != ChangeApproved {
		t.Errorf("stale update applied: %v", r.Status)
	}
	if err := s.Apply(ChangeRecord{ID: "bad"}); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("invalid record: %v", err)
	}
	// CompletedBefore: C2 ended at 2h; cancelled C1 never counts.
	if got := s.CompletedBefore("db-1", t0.Add(3*time.Hour), 2*time.Hour); len(got) != 1 || got[0].ID != "C2" {
		t.Errorf("CompletedBefore: %+v", got)
	}
	if got := s.CompletedBefore("db-1", t0.Add(5*time.Hour), 2*time.Hour); len(got) != 0 {
		t.Errorf("too old: %+v", got)
	}
	if got := s.CompletedBefore("db-1", t0.Add(time.Hour), 2*time.Hour); len(got) != 0 {
		t.Errorf("not ended yet: %+v", got)
	}
	// Max records: the one that ended first goes.
	must(s.Apply(rec("C4", ChangeApproved, 0, 10*time.Hour, "x")))
	if s.Len() != 3 {
		t.Errorf("len %d", s.Len())
	}
	if _, ok := s.Get("C1"); ok {
		t.Error("C1 (ended first) not evicted")
	}
	// Retention.
	if n := s.Expire(t0.Add(24*time.Hour + 3*time.Hour)); n != 2 {
		t.Errorf("expired %d", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP correlator_rules_change_records Change records held by the change store.
# TYPE correlator_rules_change_records gauge
correlator_rules_change_records 1
# HELP correlator_rules_change_updates_total Change records applied to the change store, by result: applied, stale (older than the record held, ignored), invalid (rejected).
# TYPE correlator_rules_change_updates_total counter
correlator_rules_change_updates_total{result="applied"} 5
correlator_rules_change_updates_total{result="invalid"} 1
correlator_rules_change_updates_total{result="stale"} 1
# HELP correlator_rules_change_expired_total Change records expired from the change store (past retention or over max records).
# TYPE correlator_rules_change_expired_total counter
correlator_rules_change_expired_total 3
`)); err != nil {
		t.Error(err)
	}
}

func TestLoadChangeFile(t *testing.T) {
	dir := t.TempDir()
	y := filepath.Join(dir, "c.yaml")
	_ = os.WriteFile(y, []byte(`
- id: CHG1
  cis: [db-1]
  status: Scheduled
  planned_start: 2026-01-05T10:00:00Z
  planned_end: "2026-01-05T11:00:00Z"
  assignment_group: ignored
`), 0o644)
	rs, err := LoadChangeFile(y)
	if err != nil || len(rs) != 1 || rs[0].Status != ChangeApproved || !rs[0].PlannedStart.Equal(t0) {
		t.Fatalf("%+v %v", rs, err)
	}
	j := filepath.Join(dir, "c.json")
	_ = os.WriteFile(j, []byte(`[{"id":"CHG2","cis":["a"],"status":"closed","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T11:00:00Z"},
		{"id":"CHG3","cis":["a"],"status":"approved","planned_start":"2026-01-05T10:00:00Z"}]`), 0o644)
	_, err = LoadChangeFile(j)
	if err == nil || !strings.Contains(err.Error(), j+`: [1]: invalid change record "CHG3": planned_end: missing`) {
		t.Errorf("error %v", err)
	}
}
