package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
)

// FuzzParse feeds arbitrary rule files to the loader: it must return a
// rule set or an error, never panic, and a rule set it returns must run.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	ex, _ := filepath.Glob("../examples/rules/*.yml")
	for _, p := range append(files, ex...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(benchRules(20)))
	f.Add([]byte("rules: [{name: a, matchers: ['ci.x=~\"a|b\", labels.y!=\"\"'], set: {ci: x, labels: {a: b}}, enrich: [x]}]"))
	topo := newFixtureTopology(testCMDB)
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse("fuzz.yml", data)
		if err != nil {
			if rs != nil {
				t.Fatal("rule set and error")
			}
			return
		}
		en, err := NewEngine(EngineOptions{Rules: func() *RuleSet { return rs }, Topology: func() Topology { return topo }})
		if err != nil {
			t.Fatal(err)
		}
		evs := []event.Event{
			{Labels: event.FromMap(map[string]string{"alertname": "A", "env": "test"}), CI: "db-1", Severity: "critical"},
			{Labels: event.FromMap(map[string]string{"alertname": "B"}), CI: "vm-1", Severity: "warning", Status: "resolved"},
			{Labels: event.FromMap(map[string]string{"alertname": "HostDown"}), CI: "host-1", Severity: "info", Kind: "log"},
		}
		for i := range evs {
			evs[i].Time = t0
			if err := event.Normalize(&evs[i], event.DefaultDefaults); err != nil {
				t.Fatal(err)
			}
		}
		if out := en.Process(evs, t0, nil); len(out) != len(evs) {
			t.Fatalf("%d decisions", len(out))
		}
		en.Tick(t0.Add(time.Hour), nil)
	})
}

// FuzzDecodeChange feeds arbitrary messages to the change decoder; a
// record it accepts must be accepted by the store.
func FuzzDecodeChange(f *testing.F) {
	f.Add([]byte(`{"id":"CHG1","cis":["db-1"],"status":"approved","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T12:00:00Z"}`))
	f.Add([]byte(`{"id":"CHG1","cis":["db-1"],"status":"Closed","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T12:00:00Z","actual_start":"2026-01-05T10:00:00Z","actual_end":"2026-01-05T10:30:00Z","updated_at":"2026-01-05T10:30:00Z"}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeChange(data)
		if err != nil {
			return
		}
		s := NewChangeStore(ChangeStoreOptions{})
		if err := s.Apply(r); err != nil {
			t.Fatalf("decoded record rejected by the store: %v", err)
		}
		for _, ci := range r.CIs {
			if a, ok := s.Active(ci, r.Start()); r.Status.implemented() && (!ok || a.ID != r.ID) {
				t.Fatalf("not active at its start: %+v", r)
			}
		}
	})
}

// FuzzParseChanges feeds arbitrary change files to the file loader.
func FuzzParseChanges(f *testing.F) {
	if b, err := os.ReadFile("../examples/rules/tests/changes.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`[{"id":"C","cis":["a"],"status":"approved","planned_start":"2026-01-05T10:00:00Z","planned_end":"2026-01-05T11:00:00Z"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseChanges("fuzz.yaml", data)
		if err != nil {
			return
		}
		s := NewChangeStore(ChangeStoreOptions{})
		if err := s.ApplyAll(rs); err != nil {
			t.Fatalf("parsed records rejected by the store: %v", err)
		}
	})
}

// FuzzParseMatchers checks the matcher parser never panics and that what
// it accepts without a dotted name Alertmanager's parser accepts too.
func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`a="b"`, `{a=~"x|y", b!="c"}`, `ci.site="x"`, `labels.severity!~"a.*"`, `msg="a, \"b\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseMatchers(s)
		if err != nil {
			return
		}
		for i := range ms {
			_ = ms[i].matches("")
			_ = ms[i].matches(s)
		}
	})
}
