package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// The YAML of a rules test file (`correlatord rules test`), in the spirit
// of `promtool test rules`: events in, expected decisions out.
type testFileDoc struct {
	// RuleFiles are the rule files under test, relative to the test file.
	RuleFiles []string `yaml:"rule_files"`
	// CMDB is an optional native CMDB document (cmdb.Document YAML),
	// relative to the test file, that ci.* matchers, enrich and topology
	// inhibition read.
	CMDB string `yaml:"cmdb"`
	// Changes is an optional change file, relative to the test file.
	Changes string `yaml:"changes"`
	// Config overrides the rules stage settings (warning_persist,
	// flapping, dedup...); its files are ignored.
	Config *Config `yaml:"config"`
	// Start is the time `at: 0s` stands for. Default 2026-01-05T00:00:00Z
	// (a Monday).
	Start string        `yaml:"start"`
	Tests []testCaseDoc `yaml:"tests"`
}

type testCaseDoc struct {
	Name   string         `yaml:"name"`
	Events []testEventDoc `yaml:"events"`
	// Tick is when (after the events) the engine is ticked a last time,
	// to collect promotions and releases: a duration from start or an
	// RFC 3339 time. The engine is also ticked before each event at its
	// time.
	Tick     string       `yaml:"tick"`
	Expect   []expectDoc  `yaml:"expect"`
	Deferred *[]expectDoc `yaml:"deferred"`
}

type testEventDoc struct {
	At    string       `yaml:"at"`
	Event eventYAMLDoc `yaml:"event"`
}

type eventYAMLDoc struct {
	ID          string            `yaml:"id"`
	Time        string            `yaml:"time"`
	Source      string            `yaml:"source"`
	Kind        string            `yaml:"kind"`
	Status      string            `yaml:"status"`
	Severity    string            `yaml:"severity"`
	CI          string            `yaml:"ci"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Summary     string            `yaml:"summary"`
	Fingerprint string            `yaml:"fingerprint"`
}

// expectDoc is what a test expects of one decision. Only the fields given
// are compared; labels are compared one by one, "" meaning absent.
type expectDoc struct {
	Index         *int              `yaml:"index"`
	EventID       string            `yaml:"event_id"`
	Class         *string           `yaml:"class"`
	Outcome       *string           `yaml:"outcome"`
	Correlate     *bool             `yaml:"correlate"`
	Rule          *string           `yaml:"rule"`
	Labels        map[string]string `yaml:"labels"`
	Severity      *string           `yaml:"severity"`
	CI            *string           `yaml:"ci"`
	Status        *string           `yaml:"status"`
	ChangeID      *string           `yaml:"change_id"`
	Maintenance   *string           `yaml:"maintenance"`
	InhibitedBy   *string           `yaml:"inhibited_by"`
	InhibitedByCI *string           `yaml:"inhibited_by_ci"`
	InhibitRule   *string           `yaml:"inhibit_rule"`
	Flapping      *bool             `yaml:"flapping"`
	Promoted      *bool             `yaml:"promoted"`
	DedupCount    *uint32           `yaml:"dedup_count"`
}

var defaultTestStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// RunTestFiles runs rules test files and writes a report to w: one line
// per test, and for a failed one every field that differs, expected
// against got. It returns the number of failed tests; err reports test
// files that could not be run (unreadable, invalid, or whose rule files
// are invalid). `correlatord rules test` exits non-zero when either is
// set.
func RunTestFiles(paths []string, w io.Writer) (failed int, err error) {
	var errs []error
	passed := 0
	for _, p := range paths {
		fmt.Fprintf(w, "Unit testing %s\n", p)
		ok, nf, err := runTestFile(p, w)
		if err != nil {
			fmt.Fprintf(w, "  ERROR %v\n", indent(err.Error(), "        "))
			errs = append(errs, err)
			continue
		}
		passed += ok
		failed += nf
	}
	fmt.Fprintf(w, "%d passed, %d failed", passed, failed)
	if len(errs) > 0 {
		fmt.Fprintf(w, ", %d test files not run", len(errs))
	}
	fmt.Fprintln(w)
	return failed, errors.Join(errs...)
}

func indent(s, prefix string) string { return strings.ReplaceAll(s, "\n", "\n"+prefix) }

func runTestFile(path string, w io.Writer) (passed, failed int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var doc testFileDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return 0, 0, fmt.Errorf("%s: %v", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if len(doc.RuleFiles) == 0 {
		return 0, 0, fmt.Errorf("%s: rule_files: missing: the rule files under test", path)
	}
	files := make([]string, len(doc.RuleFiles))
	for i, f := range doc.RuleFiles {
		files[i] = rel(f)
	}
	rs, err := Load(files)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: rule_files: %w", path, err)
	}
	var topo Topology
	if doc.CMDB != "" {
		t, err := loadFixtureTopology(rel(doc.CMDB))
		if err != nil {
			return 0, 0, fmt.Errorf("%s: cmdb: %w", path, err)
		}
		topo = t
	}
	var changes []ChangeRecord
	if doc.Changes != "" {
		if changes, err = LoadChangeFile(rel(doc.Changes)); err != nil {
			return 0, 0, fmt.Errorf("%s: changes: %w", path, err)
		}
	}
	var cfg Config
	if doc.Config != nil {
		cfg = *doc.Config
	}
	cfg.Files = nil
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return 0, 0, fmt.Errorf("%s: config: %w", path, err)
	}
	start := defaultTestStart
	if doc.Start != "" {
		if start, err = time.Parse(time.RFC3339, doc.Start); err != nil {
			return 0, 0, fmt.Errorf("%s: start: %q is not an RFC 3339 time", path, doc.Start)
		}
	}
	for i := range doc.Tests {
		tc := &doc.Tests[i]
		diffs, err := runTestCase(tc, rs, topo, changes, cfg, start)
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("tests[%d]", i)
		}
		switch {
		case err != nil:
			return passed, failed, fmt.Errorf("%s: tests[%d] %q: %w", path, i, tc.Name, err)
		case len(diffs) == 0:
			passed++
			fmt.Fprintf(w, "  PASS %s\n", name)
		default:
			failed++
			fmt.Fprintf(w, "  FAIL %s\n", name)
			for _, d := range diffs {
				fmt.Fprintf(w, "        %s\n", d)
			}
		}
	}
	return passed, failed, nil
}

func parseAt(s string, start time.Time) (time.Time, error) {
	if s == "" {
		return start, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return start.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration from start (90s, 15m) nor an RFC 3339 time", s)
	}
	return t, nil
}

// runTestCase runs one test on a fresh engine and returns its differences.
func runTestCase(tc *testCaseDoc, rs *RuleSet, topo Topology, changes []ChangeRecord, cfg Config, start time.Time) ([]string, error) {
	var store *ChangeStore
	if changes != nil {
		store = NewChangeStore(ChangeStoreOptions{Retention: cfg.Changes.Retention, MaxRecords: cfg.Changes.MaxRecords})
		if err := store.ApplyAll(changes); err != nil {
			return nil, err
		}
	}
	en, err := NewEngine(EngineOptions{
		Config:   cfg,
		Rules:    func() *RuleSet { return rs },
		Topology: func() Topology { return topo },
		Changes:  store,
	})
	if err != nil {
		return nil, err
	}
	events := make([]event.Event, len(tc.Events))
	decisions := make([]Decision, 0, len(tc.Events))
	var deferred []Deferred
	for i := range tc.Events {
		te := &tc.Events[i]
		at, err := parseAt(te.At, start)
		if err != nil {
			return nil, fmt.Errorf("events[%d].at: %v", i, err)
		}
		e, err := te.Event.event(at)
		if err != nil {
			return nil, fmt.Errorf("events[%d].event: %v", i, err)
		}
		events[i] = e
		deferred = en.Tick(at, deferred)
		decisions = en.Process(events[i:i+1], at, decisions)
	}
	if tc.Tick != "" {
		at, err := parseAt(tc.Tick, start)
		if err != nil {
			return nil, fmt.Errorf("tick: %v", err)
		}
		deferred = en.Tick(at, deferred)
	}

	var diffs []string
	for j := range tc.Expect {
		x := &tc.Expect[j]
		i, err := x.find(events)
		if err != nil {
			return nil, fmt.Errorf("expect[%d]: %v", j, err)
		}
		what := fmt.Sprintf("event[%d]", i)
		if events[i].ID != "" {
			what += fmt.Sprintf(" (id %s)", events[i].ID)
		}
		for _, d := range x.compare(&events[i], &decisions[i]) {
			diffs = append(diffs, what+": "+d)
		}
	}
	if tc.Deferred != nil {
		want := *tc.Deferred
		if len(want) != len(deferred) {
			var got []string
			for _, d := range deferred {
				got = append(got, fmt.Sprintf("%s %s/%s", d.Event.Labels.Get("alertname"), d.Decision.Class, d.Decision.Outcome))
			}
			diffs = append(diffs, fmt.Sprintf("deferred: want %d events, got %d %v", len(want), len(deferred), got))
		}
		for j := 0; j < len(want) && j < len(deferred); j++ {
			x := &want[j]
			if x.Index != nil || x.EventID != "" {
				i, err := x.find(events)
				if err != nil {
					return nil, fmt.Errorf("deferred[%d]: %v", j, err)
				}
				if events[i].Fingerprint != deferred[j].Event.Fingerprint {
					diffs = append(diffs, fmt.Sprintf("deferred[%d]: want the alert of event[%d] (%s), got %s", j, i, events[i].Fingerprint, deferred[j].Event.Fingerprint))
					continue
				}
			}
			for _, d := range x.compare(&deferred[j].Event, &deferred[j].Decision) {
				diffs = append(diffs, fmt.Sprintf("deferred[%d]: %s", j, d))
			}
		}
	}
	return diffs, nil
}

func (d *eventYAMLDoc) event(at time.Time) (event.Event, error) {
	e := event.Event{
		ID: d.ID, Source: d.Source, Kind: event.Kind(d.Kind), Status: event.Status(d.Status),
		Severity: event.Severity(d.Severity), CI: d.CI, Labels: event.FromMap(d.Labels), Annotations: event.FromMap(d.Annotations),
		Summary: d.Summary, Fingerprint: d.Fingerprint, Time: at,
	}
	if d.Time != "" {
		t, err := time.Parse(time.RFC3339, d.Time)
		if err != nil {
			return e, fmt.Errorf("time: %q is not an RFC 3339 time", d.Time)
		}
		e.Time = t
	}
	if e.Labels == nil {
		e.Labels = event.Labels{}
	}
	err := event.Normalize(&e, event.DefaultDefaults)
	return e, err
}

func (x *expectDoc) find(events []event.Event) (int, error) {
	switch {
	case x.Index != nil && x.EventID != "":
		return 0, errors.New("give index or event_id, not both")
	case x.Index != nil:
		if *x.Index < 0 || *x.Index >= len(events) {
			return 0, fmt.Errorf("index %d: the test has %d events", *x.Index, len(events))
		}
		return *x.Index, nil
	case x.EventID != "":
		for i := range events {
			if events[i].ID == x.EventID {
				return i, nil
			}
		}
		return 0, fmt.Errorf("event_id %q: no event has this id", x.EventID)
	}
	return 0, errors.New("missing index or event_id: which event the expectation is about")
}

// compare returns a line per field that differs: "field: want X, got Y".
func (x *expectDoc) compare(e *event.Event, d *Decision) []string {
	var out []string
	str := func(field string, want *string, got string) {
		if want != nil && *want != got {
			out = append(out, fmt.Sprintf("%s: want %q, got %q", field, *want, got))
		}
	}
	boolean := func(field string, want *bool, got bool) {
		if want != nil && *want != got {
			out = append(out, fmt.Sprintf("%s: want %v, got %v", field, *want, got))
		}
	}
	str("class", x.Class, d.Class.String())
	str("outcome", x.Outcome, d.Outcome.String())
	boolean("correlate", x.Correlate, d.Correlate)
	str("rule", x.Rule, d.Rule)
	str("severity", x.Severity, string(e.Severity))
	str("ci", x.CI, e.CI)
	str("status", x.Status, string(e.Status))
	str("change_id", x.ChangeID, d.ChangeID)
	str("maintenance", x.Maintenance, d.Maintenance)
	str("inhibited_by", x.InhibitedBy, d.InhibitedBy)
	str("inhibited_by_ci", x.InhibitedByCI, d.InhibitedByCI)
	str("inhibit_rule", x.InhibitRule, d.InhibitRule)
	boolean("flapping", x.Flapping, d.Flapping)
	boolean("promoted", x.Promoted, d.Promoted)
	if x.DedupCount != nil && *x.DedupCount != d.DedupCount {
		out = append(out, fmt.Sprintf("dedup_count: want %d, got %d", *x.DedupCount, d.DedupCount))
	}
	names := make([]string, 0, len(x.Labels))
	for n := range x.Labels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		want := x.Labels[n]
		got, ok := e.Labels.Lookup(n)
		switch {
		case want == "" && ok:
			out = append(out, fmt.Sprintf("labels.%s: want absent, got %q", n, got))
		case want != "" && !ok:
			out = append(out, fmt.Sprintf("labels.%s: want %q, got absent", n, want))
		case want != got:
			out = append(out, fmt.Sprintf("labels.%s: want %q, got %q", n, want, got))
		}
	}
	return out
}

// CheckFiles validates rule files without running anything
// (`correlatord rules check`): each file on its own, then all of them
// together (names are unique across files). It writes one line per file
// to w and returns an error when any file is invalid.
func CheckFiles(paths []string, w io.Writer) error {
	names, err := ExpandPaths(paths)
	if err != nil {
		fmt.Fprintf(w, "FAIL %v\n", err)
		return err
	}
	var errs []error
	for _, n := range names {
		rs, err := Load([]string{n})
		if err != nil {
			fmt.Fprintf(w, "FAIL %s\n  %s\n", n, indent(err.Error(), "  "))
			errs = append(errs, err)
			continue
		}
		r, wn, i := rs.Len()
		fmt.Fprintf(w, "OK   %s: %d rules, %d maintenance windows, %d inhibit rules\n", n, r, wn, i)
	}
	if len(errs) == 0 && len(names) > 1 {
		if _, err := Load(names); err != nil {
			fmt.Fprintf(w, "FAIL together:\n  %s\n", indent(err.Error(), "  "))
			errs = append(errs, err)
		}
	}
	if len(names) == 0 {
		err := errors.New("no rule files found")
		fmt.Fprintf(w, "FAIL %v\n", err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fixtureTopology is a tiny Topology over a native CMDB document, for rules
// tests: the real topology lives in the cmdb package, which the rules stage
// does not import.
type fixtureTopology struct {
	cis  map[string]*cmdb.CI
	deps map[string][]string // source depends on targets
}

func loadFixtureTopology(path string) (*fixtureTopology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc cmdb.Document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return newFixtureTopology(&doc), nil
}

func newFixtureTopology(doc *cmdb.Document) *fixtureTopology {
	t := &fixtureTopology{cis: map[string]*cmdb.CI{}, deps: map[string][]string{}}
	for i := range doc.CIs {
		t.cis[doc.CIs[i].ID] = &doc.CIs[i]
	}
	for _, r := range doc.Relations {
		t.deps[r.Source] = append(t.deps[r.Source], r.Target)
	}
	return t
}

func (t *fixtureTopology) CI(id string) (*cmdb.CI, bool) {
	ci, ok := t.cis[id]
	return ci, ok
}

func (t *fixtureTopology) DependsOn(dependent, dependency string, maxHops int) bool {
	seen := map[string]bool{dependent: true}
	frontier := []string{dependent}
	for hop := 0; hop < maxHops && len(frontier) > 0; hop++ {
		var next []string
		for _, c := range frontier {
			for _, d := range t.deps[c] {
				if d == dependency {
					return true
				}
				if !seen[d] {
					seen[d] = true
					next = append(next, d)
				}
			}
		}
		frontier = next
	}
	return false
}
