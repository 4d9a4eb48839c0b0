package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/pkg/labels"
)

func TestParseMatchers(t *testing.T) {
	cases := []struct {
		in   string
		want []matcher // src, name, typ, value
		lits [][]string
	}{
		{`severity=~"critical|major"`, []matcher{{src: srcSeverity, typ: labels.MatchRegexp, value: "critical|major"}}, [][]string{{"critical", "major"}}},
		{`job!="test"`, []matcher{{src: srcLabel, name: "job", typ: labels.MatchNotEqual, value: "test"}}, nil},
		{`{env="prod", ci.site=~"par.*", labels.severity="page"}`, []matcher{
			{src: srcLabel, name: "env", typ: labels.MatchEqual, value: "prod"},
			{src: srcCIAttr, name: "site", typ: labels.MatchRegexp, value: "par.*"},
			{src: srcLabel, name: "severity", typ: labels.MatchEqual, value: "page"},
		}, nil},
		{`ci.type="vm",ci_type!~"db|cache",ci.name="x, y"`, []matcher{
			{src: srcCIType, typ: labels.MatchEqual, value: "vm"},
			{src: srcCIType, typ: labels.MatchNotRegexp, value: "db|cache"},
			{src: srcCIName, typ: labels.MatchEqual, value: "x, y"},
		}, nil},
		{`msg="say \"hi\", ok"`, []matcher{{src: srcLabel, name: "msg", typ: labels.MatchEqual, value: `say "hi", ok`}}, nil},
		{`source = prometheus`, []matcher{{src: srcSource, typ: labels.MatchEqual, value: "prometheus"}}, nil},
		{`ci.cost-center="cc"`, []matcher{{src: srcCIAttr, name: "cost-center", typ: labels.MatchEqual, value: "cc"}}, nil},
	}
	for _, tc := range cases {
		got, err := parseMatchers(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d matchers, want %d", tc.in, len(got), len(tc.want))
			continue
		}
		for i, w := range tc.want {
			g := got[i]
			if g.src != w.src || g.name != w.name || g.typ != w.typ || g.value != w.value {
				t.Errorf("%s [%d]: got %+v, want %+v", tc.in, i, g, w)
			}
			if tc.lits != nil && !slices.Equal(g.lits, tc.lits[i]) {
				t.Errorf("%s [%d]: literals %q", tc.in, i, g.lits)
			}
		}
	}
	for _, bad := range []string{``, `,`, `foo`, `1a="b"`, `a="b`, `x.y="z"`, `ci.="z"`, `ci.a b="z"`, `labels.1x="y"`, `severity="urgent"`, `a=~"("`} {
		if _, err := parseMatchers(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMatcherSemantics(t *testing.T) {
	for _, tc := range []struct {
		m     string
		value string
		want  bool
	}{
		{`a=~"x|y"`, "y", true},
		{`a=~"x|y"`, "xy", false}, // anchored, as in Alertmanager
		{`a!~"x|y"`, "z", true},
		{`a!~"x|y"`, "x", false},
		{`a=~"x.*"`, "xyz", true},
		{`a=~"(?i)X"`, "x", true}, // not a literal set: case folding
		{`a=~""`, "", true},
		{`a=""`, "", true},
		{`a!=""`, "", false},
	} {
		ms, err := parseMatchers(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := ms[0].matches(tc.value); got != tc.want {
			t.Errorf("%s on %q: %v", tc.m, tc.value, got)
		}
		// Same answer as Alertmanager's own matcher.
		am, _ := labels.ParseMatcher(strings.Replace(tc.m, "a", "a", 1))
		if am.Matches(tc.value) != tc.want {
			t.Errorf("%s on %q: differs from Alertmanager", tc.m, tc.value)
		}
	}
}
