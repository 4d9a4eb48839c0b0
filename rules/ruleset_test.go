package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGoodRuleFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load([]string{f}); err != nil {
				t.Fatal(err)
			}
		})
	}
	rs, err := Load([]string{"testdata/full.good.yml"})
	if err != nil {
		t.Fatal(err)
	}
	r, w, i := rs.Len()
	if r != 6 || w != 3 || i != 2 {
		t.Errorf("Len = %d, %d, %d", r, w, i)
	}
	if got := strings.Join(rs.RuleNames(), ","); got != "drop-test,classify-db,disk,enrich,stop-here,catch-all" {
		t.Errorf("rule order: %s", got)
	}
	if rs.inhibits[1].maxHops != DefaultTopologyMaxHops {
		t.Errorf("default max_hops = %d", rs.inhibits[1].maxHops)
	}
}

// TestBadRuleFiles checks that every invalid file is rejected with an error
// that names the file, the entry and the field.
func TestBadRuleFiles(t *testing.T) {
	cases := map[string][]string{
		"unknown-field.bad.yml":           {`rules[1] "typo": clas: unknown field in rule (line 7)`},
		"bad-matcher.bad.yml":             {`rules[1] "broken"`, "matchers[1]", "job=~"},
		"bad-class.bad.yml":               {`rules[0] "what"`, "class:", `"critical" is not one of informational, warning, exception`},
		"drop-and-class.bad.yml":          {`rules[0] "both"`, "class: a rule either drops or classifies"},
		"persist-not-warning.bad.yml":     {`rules[0] "persist"`, "persist: only a rule with class: warning"},
		"noop.bad.yml":                    {`rules[0] "nothing"`, "the rule does nothing"},
		"duplicate-name.bad.yml":          {`rules[1] "same"`, "name:", "already used in"},
		"missing-name.bad.yml":            {"rules[0]", "name: missing"},
		"bad-prefix.bad.yml":              {`rules[0] "prefix"`, "matchers[0]", `unknown prefix "cmdb"`},
		"bad-severity-set.bad.yml":        {`rules[0] "sev"`, "set.severity", `"urgent"`},
		"bad-label-name.bad.yml":          {`rules[0] "lbl"`, "set.labels", `"bad-name"`},
		"bad-severity-matcher.bad.yml":    {`rules[0] "sevm"`, "matchers[0]", "labels.severity"},
		"bad-timezone.bad.yml":            {`maintenance[0] "tz"`, "recurring.time_zone", "Mars/Olympus"},
		"bad-day.bad.yml":                 {`maintenance[0] "day"`, "recurring.days[0]", "funday"},
		"bad-at.bad.yml":                  {`maintenance[0] "at"`, "recurring.at", "25:00"},
		"bad-duration.bad.yml":            {`maintenance[0] "long"`, "recurring.duration"},
		"window-end-before-start.bad.yml": {`maintenance[0] "backwards"`, "end:", "not after start"},
		"window-both.bad.yml":             {`maintenance[0] "both"`, "recurring: give either"},
		"window-no-scope.bad.yml":         {`maintenance[0] "everything"`, "matchers: missing"},
		"window-bad-start.bad.yml":        {`maintenance[0] "when"`, "start:", `"tomorrow"`},
		"inhibit-no-target.bad.yml":       {`inhibit[0] "notarget"`, "target_matchers: missing"},
		"inhibit-equal-topology.bad.yml":  {`inhibit[0] "mixed"`, "equal:"},
		"inhibit-hops.bad.yml":            {`inhibit[0] "hops"`, "topology.max_hops"},
		"two-docs.bad.yml":                {"more than one YAML document"},
		"wrong-type.bad.yml":              {`rules[1] "typed"`, "cannot unmarshal"},
		"persist-int.bad.yml":             {`rules[0] "intpersist"`, "time.Duration"},
		"not-a-map.bad.yml":               {"cannot unmarshal", "rule file"},
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
	if len(files) != len(cases) {
		t.Errorf("%d bad files, %d cases: every bad file needs a case", len(files), len(cases))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatal("no case")
			}
			_, err := Load([]string{f})
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			msg := err.Error()
			for _, w := range append([]string{f + ": "}, want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadDirectoryAndCrossFileNames(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20-b.yml", "rules:\n  - name: b\n    drop: true\n")
	write("10-a.yaml", "rules:\n  - name: a\n    drop: true\n")
	write("README.md", "not a rule file")
	write(".hidden.yml", "garbage: [")
	rs, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rs.RuleNames(), ","); got != "a,b" {
		t.Errorf("order %s, want files sorted by name", got)
	}
	write("30-c.yml", "rules:\n  - name: a\n    class: warning\n")
	_, err = Load([]string{dir})
	if err == nil || !strings.Contains(err.Error(), "30-c.yml: rules[0] \"a\": name: \"a\" is already used in "+filepath.Join(dir, "10-a.yaml")) {
		t.Errorf("cross-file duplicate: %v", err)
	}
	if _, err := Load([]string{filepath.Join(dir, "missing.yml")}); err == nil {
		t.Error("missing file accepted")
	}
}

func TestMultipleErrorsReportedAtOnce(t *testing.T) {
	_, err := Parse("x.yml", []byte(`rules:
  - name: one
    class: bogus
  - name: two
    matchers: ['a=~"("']
    drop: true
`))
	if err == nil || !strings.Contains(err.Error(), `rules[0] "one"`) || !strings.Contains(err.Error(), `rules[1] "two"`) {
		t.Fatalf("want both errors, got %v", err)
	}
}
