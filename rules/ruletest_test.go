package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestRunTestFilesReportsDiffs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yml"), `rules: [{name: team, matchers: ['alertname="A"'], class: exception, set: {labels: {team: dba}}}]`)
	writeFile(t, filepath.Join(dir, "t.yml"), `
rule_files: [r.yml]
tests:
  - name: passes
    events: [{event: {labels: {alertname: A}, severity: major}}]
    expect: [{index: 0, class: exception, labels: {team: dba}}]
  - name: fails
    events:
      - event: {id: e-1, labels: {alertname: A}, severity: major}
      - at: 1m
        event: {labels: {alertname: A}, severity: major}
    expect:
      - {event_id: e-1, class: warning, outcome: pass, rule: team, labels: {team: ops, other: x, gone: ""}}
      - {index: 1, outcome: pass, correlate: true, dedup_count: 1}
    deferred:
      - {index: 0, promoted: true}
`)
	var out strings.Builder
	failed, err := RunTestFiles([]string{filepath.Join(dir, "t.yml")}, &out)
	if err != nil || failed != 1 {
		t.Fatalf("failed=%d err=%v\n%s", failed, err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"  PASS passes\n",
		"  FAIL fails\n",
		`event[0] (id e-1): class: want "warning", got "exception"`,
		`event[0] (id e-1): labels.other: want "x", got absent`,
		`event[0] (id e-1): labels.team: want "ops", got "dba"`,
		`event[1] (id `, `): outcome: want "pass", got "deduplicated"`,
		`correlate: want true, got false`,
		`dedup_count: want 1, got 2`,
		`deferred: want 1 events, got 0`,
		"1 passed, 1 failed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "labels.gone") {
		t.Errorf("absent label reported:\n%s", got)
	}
}

func TestRunTestFilesErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad-rules.yml"), `rules: [{name: x, class: nope}]`)
	cases := map[string]string{
		"unknown.yml":  "rule_files: [r.yml]\nbogus: 1\n",
		"norules.yml":  "tests: []\n",
		"badrules.yml": "rule_files: [bad-rules.yml]\n",
		"badat.yml":    "rule_files: []\n",
		"noindex.yml":  "rule_files: [bad-rules.yml]\n",
	}
	cases["badat.yml"] = "rule_files: [ok.yml]\ntests: [{name: t, events: [{at: soon, event: {labels: {a: b}}}]}]\n"
	cases["noindex.yml"] = "rule_files: [ok.yml]\ntests: [{name: t, events: [{event: {labels: {a: b}}}], expect: [{class: warning}]}]\n"
	writeFile(t, filepath.Join(dir, "ok.yml"), "rules: []\n")
	want := map[string]string{
		"unknown.yml":  "field bogus not found",
		"norules.yml":  "rule_files: missing",
		"badrules.yml": `bad-rules.yml: rules[0] "x": class`,
		"badat.yml":    `events[0].at: "soon" is neither a duration`,
		"noindex.yml":  "expect[0]: missing index or event_id",
	}
	for name, content := range cases {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		var out strings.Builder
		_, err := RunTestFiles([]string{p}, &out)
		if err == nil || !strings.Contains(err.Error(), want[name]) || !strings.Contains(out.String(), "ERROR") {
			t.Errorf("%s: err %v, output:\n%s", name, err, out.String())
		}
	}
}

func TestCheckFiles(t *testing.T) {
	var out strings.Builder
	err := CheckFiles([]string{"testdata/full.good.yml", "testdata/bad-class.bad.yml"}, &out)
	if err == nil {
		t.Fatal("bad file passed the check")
	}
	got := out.String()
	if !strings.Contains(got, "OK   testdata/full.good.yml: 6 rules, 3 maintenance windows, 2 inhibit rules") ||
		!strings.Contains(got, "FAIL testdata/bad-class.bad.yml\n  testdata/bad-class.bad.yml: rules[0] \"what\": class:") {
		t.Errorf("output:\n%s", got)
	}
	out.Reset()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yml"), "rules: [{name: x, drop: true}]\n")
	writeFile(t, filepath.Join(dir, "b.yml"), "rules: [{name: x, drop: true}]\n")
	if err := CheckFiles([]string{dir}, &out); err == nil || !strings.Contains(out.String(), "FAIL together") {
		t.Errorf("cross-file duplicate not reported: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := CheckFiles([]string{t.TempDir()}, &out); err == nil {
		t.Error("no files passed the check")
	}
}
