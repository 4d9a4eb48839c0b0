package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/correlatord/correlatord/event"
)

// TestActions is the table test of every rule action and of rule order.
func TestActions(t *testing.T) {
	type want struct {
		class    Class
		outcome  Outcome
		rule     string
		severity event.Severity
		ci       string
		labels   map[string]string // "" means absent
	}
	cases := []struct {
		name  string
		rules string
		event event.Event
		want  want
	}{
		{"default info is informational", ``, sev(alert("A"), "info"),
			want{class: ClassInformational, outcome: OutcomeRecorded}},
		{"default warning is a pending warning", ``, sev(alert("A"), "warning"),
			want{class: ClassWarning, outcome: OutcomeWarningPending}},
		{"default minor is an exception", ``, sev(alert("A"), "minor"),
			want{class: ClassException, outcome: OutcomePass}},
		{"default critical is an exception", ``, sev(alert("A"), "critical"),
			want{class: ClassException, outcome: OutcomePass}},
		{"drop", `rules: [{name: d, matchers: ['env="test"'], drop: true}]`, alert("A", "env", "test"),
			want{class: ClassException, outcome: OutcomeDropped, rule: "d"}},
		{"drop stops evaluation", `
rules:
  - {name: d, matchers: ['env="test"'], drop: true}
  - {name: c, matchers: ['env="test"'], class: informational, set: {labels: {x: y}}}`,
			alert("A", "env", "test"),
			want{class: ClassException, outcome: OutcomeDropped, rule: "d", labels: map[string]string{"x": ""}}},
		{"no match: defaults", `rules: [{name: d, matchers: ['env="test"'], drop: true}]`, alert("A", "env", "prod"),
			want{class: ClassException, outcome: OutcomePass}},
		{"classify informational", `rules: [{name: c, matchers: ['alertname="A"'], class: informational}]`, sev(alert("A"), "critical"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c"}},
		{"classify warning", `rules: [{name: c, matchers: ['alertname="A"'], class: warning}]`, sev(alert("A"), "critical"),
			want{class: ClassWarning, outcome: OutcomeWarningPending, rule: "c"}},
		{"classify exception", `rules: [{name: c, matchers: ['alertname="A"'], class: exception}]`, sev(alert("A"), "info"),
			want{class: ClassException, outcome: OutcomePass, rule: "c"}},
		{"first deciding rule stops by default", `
rules:
  - {name: first, matchers: ['alertname="A"'], class: informational}
  - {name: second, matchers: ['alertname="A"'], class: exception}`, alert("A"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "first"}},
		{"continue lets a later rule reclassify", `
rules:
  - {name: first, matchers: ['alertname="A"'], class: informational, continue: true}
  - {name: second, matchers: ['alertname="A"'], class: exception}`, alert("A"),
			want{class: ClassException, outcome: OutcomePass, rule: "second"}},
		{"set severity changes the default class", `rules: [{name: s, matchers: ['alertname="A"'], set: {severity: info}}]`, sev(alert("A"), "critical"),
			want{class: ClassInformational, outcome: OutcomeRecorded, severity: "info"}},
		{"set severity accepts aliases", `rules: [{name: s, matchers: ['alertname="A"'], set: {severity: page}}]`, sev(alert("A"), "warning"),
			want{class: ClassException, outcome: OutcomePass, severity: "critical"}},
		{"set labels adds, overwrites and deletes", `rules: [{name: s, matchers: ['alertname="A"'], set: {labels: {team: dba, env: prod, junk: ""}}}]`,
			alert("A", "env", "staging", "junk", "x"),
			want{class: ClassException, outcome: OutcomePass, labels: map[string]string{"team": "dba", "env": "prod", "junk": ""}}},
		{"set-only rules continue", `
rules:
  - {name: s, matchers: ['alertname="A"'], set: {labels: {team: dba}}}
  - {name: c, matchers: ['team="dba"'], class: informational}`, alert("A"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c", labels: map[string]string{"team": "dba"}}},
		{"continue: false stops after a set", `
rules:
  - {name: s, matchers: ['alertname="A"'], set: {labels: {team: dba}}, continue: false}
  - {name: c, matchers: ['team="dba"'], class: informational}`, alert("A"),
			want{class: ClassException, outcome: OutcomePass, labels: map[string]string{"team": "dba"}}},
		{"a stop rule ends evaluation", `
rules:
  - {name: stop, matchers: ['alertname="A"'], continue: false}
  - {name: c, matchers: ['alertname="A"'], class: informational}`, alert("A"),
			want{class: ClassException, outcome: OutcomePass}},
		{"set ci changes what ci.* matchers see", `
rules:
  - {name: bind, matchers: ['instance="db-01:5432"'], set: {ci: db-1}}
  - {name: c, matchers: ['ci.support_group="dba"', 'ci_type="database"'], class: informational}`,
			alert("A", "instance", "db-01:5432"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c", ci: "db-1"}},
		{"enrich copies CI attributes and fields, keeps existing labels", `rules: [{name: e, matchers: ['ci!=""'], enrich: [site, env, support_group, missing]}]`,
			onCI(alert("A", "env", "from-source"), "db-1"),
			want{class: ClassException, outcome: OutcomePass, labels: map[string]string{"site": "paris", "env": "from-source", "support_group": "dba", "missing": ""}}},
		{"enrich without a CI does nothing", `rules: [{name: e, enrich: [site]}]`, alert("A"),
			want{class: ClassException, outcome: OutcomePass, labels: map[string]string{"site": ""}}},
		{"fields: source, kind, status, severity, ci_type", `
rules:
  - {name: c, matchers: ['source="prometheus", kind="alert", status="firing", severity="major", ci_type="database"'], class: informational}`,
			onCI(alert("A"), "db-1"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c"}},
		{"severity field is canonical, labels.severity is raw", `
rules:
  - {name: raw, matchers: ['labels.severity="page"', 'severity="critical"'], class: informational}`,
			sev(alert("A", "severity", "page"), ""),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "raw"}},
		{"ci.* fields and attributes", `
rules:
  - {name: c, matchers: ['ci.name="Orders DB", ci.criticality="1", ci.type="database", ci.id="db-1", ci.cost-center="cc-42"'], class: informational}`,
			onCI(alert("A"), "db-1"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c"}},
		{"unknown CI reads empty values", `rules: [{name: c, matchers: ['ci.site=""', 'ci!=""'], class: informational}]`,
			onCI(alert("A"), "not-in-cmdb"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c", ci: "not-in-cmdb"}},
		{"absent label equals empty", `rules: [{name: c, matchers: ['team=""'], class: informational}]`, alert("A"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c"}},
		{"regexp and negative matchers", `rules: [{name: c, matchers: ['instance=~"web-[0-9]+", job!~"test.*"'], class: informational}]`,
			alert("A", "instance", "web-12", "job", "node"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c"}},
		{"unindexed rule before an indexed one keeps its precedence", `
rules:
  - {name: regex, matchers: ['alertname=~"A.*"'], class: informational}
  - {name: exact, matchers: ['alertname="A"'], class: exception}`, sev(alert("A"), "info"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "regex"}},
		{"rules keyed by a literal set", `rules: [{name: c, matchers: ['alertname=~"X|A|Y"'], class: informational}]`, alert("A"),
			want{class: ClassInformational, outcome: OutcomeRecorded, rule: "c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules := tc.rules
			if rules == "" {
				rules = "rules: []"
			}
			h := newHarness(t, rules)
			e, d := h.at(0, tc.event)
			w := tc.want
			if d.Class != w.class || d.Outcome != w.outcome || d.Rule != w.rule {
				t.Errorf("got %s/%s rule %q, want %s/%s rule %q", d.Class, d.Outcome, d.Rule, w.class, w.outcome, w.rule)
			}
			if w.severity != "" && e.Severity != w.severity {
				t.Errorf("severity %q, want %q", e.Severity, w.severity)
			}
			if w.ci != "" && e.CI != w.ci {
				t.Errorf("ci %q, want %q", e.CI, w.ci)
			}
			for k, v := range w.labels {
				got, ok := e.Labels.Lookup(k)
				if v == "" && ok || v != "" && got != v {
					t.Errorf("labels.%s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			wantCorr := w.outcome == OutcomePass || w.outcome == OutcomeInhibited
			if d.Correlate != wantCorr {
				t.Errorf("correlate %v, want %v", d.Correlate, wantCorr)
			}
		})
	}
}

func TestLogEventsHaveNoState(t *testing.T) {
	h := newHarness(t, `rules: [{name: w, matchers: ['alertname="W"'], class: warning}]`)
	log := func(name string, s event.Severity) event.Event {
		e := sev(alert(name), s)
		e.Kind = event.KindLog
		return e
	}
	h.want(h.dec(0, log("E", "critical")), ClassException, OutcomePass, true)
	// The same log again is not a repeat: logs are not deduplicated.
	h.want(h.dec(0, log("E", "critical")), ClassException, OutcomePass, true)
	h.want(h.dec(0, log("W", "critical")), ClassWarning, OutcomeRecorded, false)
	h.want(h.dec(0, log("I", "info")), ClassInformational, OutcomeRecorded, false)
	if n := len(h.en.alerts); n != 0 {
		t.Errorf("logs left %d state entries", n)
	}

	h = newHarness(t, `
rules: [{name: d, matchers: ['alertname="D"'], drop: true}]
maintenance: [{name: m, matchers: ['alertname="M"'], start: "2026-01-05T10:00:00Z", end: "2026-01-05T11:00:00Z"}]
inhibit: [{name: i, source_matchers: ['alertname="Root"'], topology: {}}]
`)
	h.want(h.dec(0, log("D", "critical")), ClassException, OutcomeDropped, false)
	h.want(h.dec(0, log("M", "critical")), ClassException, OutcomeMaintenance, false)
	h.want(h.dec(0, onCI(alert("Root"), "host-1")), ClassException, OutcomePass, true)
	d := h.dec(0, onCI(log("Symptom", "critical"), "vm-1"))
	h.want(d, ClassException, OutcomeInhibited, true)
	if d.InhibitedByCI != "host-1" {
		t.Errorf("%+v", d)
	}
}

// TestIndexMatchesLinearScan checks on random rule sets and events that the
// indexed evaluation decides exactly as testing every rule in order would.
func TestIndexMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"alertname", "job", "env", "team", "severity", "ci", "ci.site", "ci_type"}
	values := map[string][]string{
		"alertname": {"A", "B", "C", "D"}, "job": {"node", "db", ""}, "env": {"prod", "test", ""},
		"team": {"x", "y", ""}, "severity": {"critical", "major", "warning", "info"},
		"ci": {"db-1", "vm-1", "host-1", ""}, "ci.site": {"paris", "lyon", ""}, "ci_type": {"database", "vm", "host", ""},
	}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	matcher := func() string {
		n := pick(names)
		switch r.IntN(5) {
		case 0:
			return fmt.Sprintf(`%s!="%s"`, n, pick(values[n]))
		case 1:
			return fmt.Sprintf(`%s=~"%s|%s"`, n, pick(values[n]), pick(values[n]))
		case 2:
			return fmt.Sprintf(`%s=~"%s.*"`, n, pick(values[n]))
		default:
			return fmt.Sprintf(`%s="%s"`, n, pick(values[n]))
		}
	}
	for iter := 0; iter < 200; iter++ {
		var b strings.Builder
		b.WriteString("rules:\n")
		for i := 0; i < 1+r.IntN(30); i++ {
			fmt.Fprintf(&b, "  - name: r%d\n    matchers: [", i)
			for j := 0; j < r.IntN(3); j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "'%s'", matcher())
			}
			b.WriteString("]\n")
			switch r.IntN(5) {
			case 0:
				b.WriteString("    drop: true\n")
			case 1:
				fmt.Fprintf(&b, "    set: {labels: {team: %s, env: %s}}\n", pick(values["team"][:2]), pick(values["env"][:2]))
			case 2:
				fmt.Fprintf(&b, "    set: {ci: %s}\n    continue: %v\n", pick(values["ci"][:3]), r.IntN(2) == 0)
			default:
				fmt.Fprintf(&b, "    class: %s\n    continue: %v\n", pick([]string{"informational", "warning", "exception"}), r.IntN(3) == 0)
			}
		}
		rs, err := Parse("random.yml", []byte(b.String()))
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		topo := newFixtureTopology(testCMDB)
		for k := 0; k < 20; k++ {
			labels := map[string]string{}
			for _, n := range []string{"alertname", "job", "env", "team"} {
				if v := pick(values[n]); v != "" {
					labels[n] = v
				}
			}
			base := event.Event{Labels: event.FromMap(labels), Severity: event.Severity(pick(values["severity"])), CI: pick(values["ci"])}
			e1, e2 := fresh(base), fresh(base)
			var d1, d2 Decision
			en := &Engine{cfg: Config{WarningPersist: DefaultWarningPersist}, cands: nil}
			en.sync(rs)
			en.ctx.reset(&e1, topo)
			p := DefaultWarningPersist
			drop1 := en.applyRules(rs, &en.ctx, &d1, &p)
			drop2 := linearRules(rs, &e2, topo, &d2)
			if drop1 != drop2 || d1.Class != d2.Class || d1.Rule != d2.Rule || e1.CI != e2.CI || fmt.Sprint(e1.Labels) != fmt.Sprint(e2.Labels) {
				t.Fatalf("index and linear scan differ on %+v:\nindexed %v %+v %v\nlinear  %v %+v %v\nrules:\n%s",
					base, drop1, d1, e1, drop2, d2, e2, b.String())
			}
		}
	}
}

// linearRules is the reference semantics: every rule in order.
func linearRules(rs *RuleSet, e *event.Event, topo Topology, d *Decision) bool {
	var ctx evalCtx
	ctx.reset(e, topo)
	for i := range rs.rules {
		r := &rs.rules[i]
		if !ctx.matchAll(r.matchers) {
			continue
		}
		if r.drop {
			d.Rule = r.name
			return true
		}
		if r.class != ClassUnknown {
			d.Class, d.Rule = r.class, r.name
		}
		if r.mutates {
			mutate(r, &ctx)
		}
		if !r.cont {
			break
		}
	}
	return false
}

func TestClassAndOutcomeNames(t *testing.T) {
	for o := Outcome(0); o < numOutcomes; o++ {
		if p, ok := ParseOutcome(o.String()); !ok || p != o {
			t.Errorf("outcome %d: %q", o, o.String())
		}
		d := Decision{Outcome: o}
		if want := o != OutcomePass && o != OutcomeInhibited; d.Suppressed() != want {
			t.Errorf("%s: suppressed %v", o, d.Suppressed())
		}
	}
	for c := ClassInformational; c < numClasses; c++ {
		if p, ok := ParseClass(c.String()); !ok || p != c {
			t.Errorf("class %d: %q", c, c.String())
		}
	}
	if Outcome(200).String() != "unknown" || Class(200).String() != "unknown" {
		t.Error("out of range names")
	}
	if _, ok := ParseOutcome("nope"); ok {
		t.Error("ParseOutcome accepted nope")
	}
}
