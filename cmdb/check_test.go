package cmdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	doc, err := DecodeNative(strings.NewReader(smallYAML))
	if err != nil {
		t.Fatal(err)
	}
	r := Check(doc)
	if !r.OK() || r.CIs != 16 || r.Relations != 15 || r.Services != 3 || r.Components != 3 ||
		r.Orphans != 1 || r.CIsByType["application"] != 4 || r.RelationsByType["depends_on"] != 6 ||
		r.RelationsByType["runs_on"] != 6 || len(r.LargestComponents) != 3 || r.LargestComponents[0] != 12 || r.Version == "" {
		t.Errorf("report %+v", r)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"16 CIs, 15 relations, 3 business services",
		"  application 4\n",
		"3 connected components (largest: 12, 3, 1)",
		"1 orphan CIs",
		"2 warnings:",
		"dependency cycle among 2 CIs: app-b, app-c",
		"1 orphan CIs (no relation: no impact reaches or leaves them): lonely",
		"OK\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckErrors(t *testing.T) {
	doc, err := DecodeNative(strings.NewReader("cis: [{id: a, type: host}, {id: a, type: host}, {id: b}]\nrelations: [{source: a, target: c, type: runs_on}]"))
	if err != nil {
		t.Fatal(err)
	}
	r := Check(doc)
	if r.OK() || r.ErrorsTotal != 3 || r.CIs != 3 || r.RelationsByType["runs_on"] != 1 || r.Version != "" {
		t.Errorf("report %+v", r)
	}
	var b strings.Builder
	_ = r.WriteText(&b)
	for _, want := range []string{"3 errors:", `cis[1] ("a"): duplicate id`, `relations[0] ("a -> c"): unknown target CI "c"`, "FAILED"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "connected components") {
		t.Error("components reported for a document that does not load")
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("cis: [{id: a, type: host, colour: red}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := CheckFile(bad, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Msg, `unknown field "colour"`) || r.Source != bad || r.Format != "native" {
		t.Errorf("report %+v", r)
	}
	if _, err := CheckFile(filepath.Join(dir, "missing.yaml"), "", nil); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := CheckFile(bad, "cmdbuild", nil); err == nil {
		t.Error("unknown format accepted")
	}
	// A native file read as an importer format: the importer's error is
	// reported.
	for name := range Importers {
		r, err := CheckFile(bad, name, nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.OK() && r.CIs == 0 {
			t.Logf("%s read the native file as an empty export", name)
		}
	}
}
