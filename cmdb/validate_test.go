package cmdb

import (
	"errors"
	"strings"
	"testing"
)

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []Problem // Where and ID exactly, Msg as a substring
	}{
		{
			name: "empty id",
			doc:  "cis: [{id: a, type: host}, {type: host}]",
			want: []Problem{{Where: "cis[1]", Msg: "empty id"}},
		},
		{
			name: "duplicate id",
			doc:  "cis: [{id: a, type: host}, {id: b, type: host}, {id: a, type: vm}]",
			want: []Problem{{Where: "cis[2]", ID: "a", Msg: "duplicate id: cis[0] has it already"}},
		},
		{
			name: "empty type",
			doc:  "cis: [{id: a}]",
			want: []Problem{{Where: "cis[0]", ID: "a", Msg: "empty type"}},
		},
		{
			name: "criticality too high",
			doc:  "cis: [{id: a, type: host, criticality: 5}]",
			want: []Problem{{Where: "cis[0]", ID: "a", Msg: "criticality 5 is outside 1..4"}},
		},
		{
			name: "criticality negative",
			doc:  "cis: [{id: a, type: host, criticality: -1}]",
			want: []Problem{{Where: "cis[0]", ID: "a", Msg: "criticality -1 is outside 1..4"}},
		},
		{
			name: "empty alias",
			doc:  `cis: [{id: a, type: host, aliases: [x, ""]}]`,
			want: []Problem{{Where: "cis[0]", ID: "a", Msg: "aliases[1] is empty"}},
		},
		{
			name: "unknown target",
			doc:  "cis: [{id: a, type: host}]\nrelations: [{source: a, target: b}]",
			want: []Problem{{Where: "relations[0]", ID: "a -> b", Msg: `unknown target CI "b"`}},
		},
		{
			name: "unknown source, with a hint",
			doc:  "cis: [{id: web-01, type: host, aliases: [web-01.example.com]}, {id: b, type: host}]\nrelations: [{source: WEB-01.example.com, target: b}]",
			want: []Problem{{Where: "relations[0]", ID: "WEB-01.example.com -> b", Msg: `unknown source CI "WEB-01.example.com" (relations take ids; did you mean "web-01"?)`}},
		},
		{
			name: "empty source",
			doc:  "cis: [{id: a, type: host}]\nrelations: [{target: a}]",
			want: []Problem{{Where: "relations[0]", ID: " -> a", Msg: "empty source"}},
		},
		{
			name: "empty target",
			doc:  "cis: [{id: a, type: host}]\nrelations: [{source: a, type: runs_on}]",
			want: []Problem{{Where: "relations[0]", ID: "a -> ", Msg: "empty target"}},
		},
		{
			name: "self relation",
			doc:  "cis: [{id: a, type: host}]\nrelations: [{source: a, target: a}]",
			want: []Problem{{Where: "relations[0]", ID: "a -> a", Msg: "cannot depend on itself"}},
		},
		{
			name: "several at once, in order",
			doc:  "cis: [{id: a, type: host, criticality: 9}, {id: a, type: host}, {id: c}]\nrelations: [{source: a, target: zz}, {source: c, target: c}]",
			want: []Problem{
				{Where: "cis[0]", ID: "a", Msg: "criticality 9"},
				{Where: "cis[1]", ID: "a", Msg: "duplicate id"},
				{Where: "cis[2]", ID: "c", Msg: "empty type"},
				{Where: "relations[0]", ID: "a -> zz", Msg: "unknown target"},
				{Where: "relations[1]", ID: "c -> c", Msg: "cannot depend on itself"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := DecodeNativeYAML(strings.NewReader(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(doc, BuildOptions{Source: "cmdb.yaml"})
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("not ErrInvalid")
			}
			if !strings.HasPrefix(err.Error(), "cmdb.yaml: ") {
				t.Errorf("error %q does not name the file", err)
			}
			if ve.Total != len(tc.want) || len(ve.Problems) != len(tc.want) {
				t.Fatalf("got %d problems (%v), want %d", ve.Total, ve.Problems, len(tc.want))
			}
			for i, w := range tc.want {
				got := ve.Problems[i]
				if got.Where != w.Where || got.ID != w.ID || !strings.Contains(got.Msg, w.Msg) {
					t.Errorf("problem %d = %q, want where %q id %q msg containing %q", i, got, w.Where, w.ID, w.Msg)
				}
				if !strings.Contains(err.Error(), got.String()) {
					t.Errorf("error %q lacks %q", err, got)
				}
			}
		})
	}
}

func TestBuildDefaultsAndWarnings(t *testing.T) {
	doc, err := DecodeNativeYAML(strings.NewReader(`
cis:
  - {id: a, type: host, aliases: [shared, A-alias]}
  - {id: b, type: host, aliases: [SHARED], name: a-alias}
  - {id: B, type: host}
  - {id: c, type: host, name: shared-name}
  - {id: d, type: host, name: Shared-Name}
  - {id: e, type: host, aliases: [a]}
relations:
  - {source: a, target: b}
  - {source: a, target: b}
  - {source: b, target: c, type: runs_on}
  - {source: c, target: a}
`))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Build(doc, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.At(0).Criticality; got != DefaultCriticality {
		t.Errorf("criticality default = %d", got)
	}
	var rels []Relation
	topo.EachRelation(func(r Relation) { rels = append(rels, r) })
	if rels[0].Type != RelDependsOn || rels[2].Type != RelRunsOn {
		t.Errorf("relation types not defaulted: %v", rels)
	}
	want := []string{
		`cis[2] ("B"): id differs only in case from the id of cis[1] ("b")`,
		`cis[1] ("b"): alias "SHARED" already names cis[0] ("a") as its alias: events with it bind to a`,
		`cis[5] ("e"): alias "a" already names cis[0] ("a") as its id`,
		`cis[1] ("b"): name "a-alias" already names cis[0] ("a") as its alias`,
		`cis[4] ("d"): name "Shared-Name" already names cis[3] ("c") as its name`,
		`1 relations repeat an earlier one (same source, target and type), e.g. a -> b (depends_on)`,
		`dependency cycle among 3 CIs: a, b, c`,
	}
	got := topo.Warnings()
	if len(got) != len(want) || topo.WarningsTotal() != len(want) {
		t.Fatalf("warnings:\n%v\nwant %d", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i].String(), w) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
		}
	}
	// First claim wins, deterministically.
	for key, id := range map[string]string{"shared": "a", "SHARED": "a", "a-alias": "a", "shared-name": "c", "b": "b", "B": "b"} {
		if n, ok := topo.Lookup(key); !ok || topo.ID(n) != id {
			t.Errorf("Lookup(%q) = %v, want %s", key, n, id)
		}
	}
	// Exact id lookups find both case variants.
	for _, id := range []string{"b", "B"} {
		if ci, ok := topo.CI(id); !ok || ci.ID != id {
			t.Errorf("CI(%q) = %v", id, ci)
		}
	}
}

func TestValidationErrorTruncates(t *testing.T) {
	var b strings.Builder
	b.WriteString("cis:\n")
	for range 150 {
		b.WriteString("  - {type: host}\n")
	}
	doc, err := DecodeNativeYAML(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(doc, BuildOptions{})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	if ve.Total != 150 || len(ve.Problems) != MaxProblems {
		t.Errorf("total %d, kept %d", ve.Total, len(ve.Problems))
	}
	if !strings.Contains(err.Error(), "150 errors") || !strings.Contains(err.Error(), "and 140 more") {
		t.Errorf("error: %s", err)
	}
}
