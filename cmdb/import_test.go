package cmdb

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// The golden files of the importers are rewritten with
//
//	go test ./cmdb -run 'ServiceNow|Backstage|NetBox' -update
//
// The flag is registered only if no other test file of the package has
// registered it already: two registrations would panic.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func impUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func impReadFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// impGolden compares doc with testdata/<path>, or rewrites it with -update.
func impGolden(t *testing.T, path string, doc *Document) {
	t.Helper()
	got, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	file := filepath.Join("testdata", path)
	if impUpdate() {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the decoded document (run with -update to accept):\n%s", file, impDiff(string(want), string(got)))
	}
}

// impDiff shows the first differing lines.
func impDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return ""
}

// impCheckDocument checks what every importer promises: a valid Document in
// canonical order. It does not use the package's validator on purpose, so
// that the importers' tests stand on their own.
func impCheckDocument(t testing.TB, doc *Document) {
	t.Helper()
	if doc == nil {
		t.Fatal("nil document without an error")
	}
	ids := map[string]bool{}
	for i, ci := range doc.CIs {
		switch {
		case ci.ID == "":
			t.Errorf("cis[%d]: empty id", i)
		case ids[ci.ID]:
			t.Errorf("cis[%d]: duplicate id %q", i, ci.ID)
		case ci.Type == "":
			t.Errorf("cis[%d] (%s): empty type", i, ci.ID)
		case ci.Criticality < 0 || ci.Criticality > LeastCritical:
			t.Errorf("cis[%d] (%s): criticality %d", i, ci.ID, ci.Criticality)
		case !slices.IsSorted(ci.Aliases) || len(slices.Compact(slices.Clone(ci.Aliases))) != len(ci.Aliases):
			t.Errorf("cis[%d] (%s): aliases not sorted and unique: %q", i, ci.ID, ci.Aliases)
		case slices.Contains(ci.Aliases, ""):
			t.Errorf("cis[%d] (%s): empty alias", i, ci.ID)
		}
		for k, v := range ci.Attributes {
			if k == "" || v == "" {
				t.Errorf("cis[%d] (%s): empty attribute %q=%q", i, ci.ID, k, v)
			}
		}
		if i > 0 && doc.CIs[i-1].ID >= ci.ID {
			t.Errorf("cis[%d] (%s): not sorted by id", i, ci.ID)
		}
		ids[ci.ID] = true
	}
	for i, r := range doc.Relations {
		switch {
		case !ids[r.Source]:
			t.Errorf("relations[%d]: source %q is not a CI", i, r.Source)
		case !ids[r.Target]:
			t.Errorf("relations[%d]: target %q is not a CI", i, r.Target)
		case r.Source == r.Target:
			t.Errorf("relations[%d]: %q relates to itself", i, r.Source)
		case r.Type == "":
			t.Errorf("relations[%d]: empty type", i)
		}
		if i > 0 {
			p := doc.Relations[i-1]
			if cmp.Or(strings.Compare(p.Source, r.Source), strings.Compare(p.Target, r.Target), strings.Compare(p.Type, r.Type)) >= 0 {
				t.Errorf("relations[%d]: not sorted, or a duplicate of the one before: %v", i, r)
			}
		}
	}
}

// impHasRelation reports whether doc has exactly the relation source → target
// of type typ.
func impHasRelation(doc *Document, source, target, typ string) bool {
	return slices.Contains(doc.Relations, Relation{Source: source, Target: target, Type: typ})
}

// impDependsOn reports whether source depends on target, directly or
// transitively: whether a failure of target impacts source.
func impDependsOn(doc *Document, source, target string) bool {
	next := map[string][]string{}
	for _, r := range doc.Relations {
		next[r.Source] = append(next[r.Source], r.Target)
	}
	seen := map[string]bool{source: true}
	stack := []string{source}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, m := range next[n] {
			if m == target {
				return true
			}
			if !seen[m] {
				seen[m] = true
				stack = append(stack, m)
			}
		}
	}
	return false
}

// impImpacted returns every CI a failure of id impacts, sorted.
func impImpacted(doc *Document, id string) []string {
	var out []string
	for _, ci := range doc.CIs {
		if ci.ID != id && impDependsOn(doc, ci.ID, id) {
			out = append(out, ci.ID)
		}
	}
	return out
}

func impCI(t testing.TB, doc *Document, id string) CI {
	t.Helper()
	for _, ci := range doc.CIs {
		if ci.ID == id {
			return ci
		}
	}
	t.Fatalf("no CI %q", id)
	return CI{}
}

// impFuzzCheck decodes data twice: both runs must agree, and a Document must
// be valid.
func impFuzzCheck(t *testing.T, decode func(io.Reader) (*Document, error), data []byte) {
	doc1, err1 := decode(bytes.NewReader(data))
	doc2, err2 := decode(bytes.NewReader(data))
	if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
		t.Fatalf("non-deterministic error: %v / %v", err1, err2)
	}
	if err1 != nil {
		var ie *ImportError
		if !errors.As(err1, &ie) || !errors.Is(err1, ErrInvalid) {
			t.Fatalf("error %v (%T) is not an *ImportError and ErrInvalid", err1, err1)
		}
		if doc1 != nil {
			t.Fatal("document returned with an error")
		}
		return
	}
	if !reflect.DeepEqual(doc1, doc2) {
		t.Fatal("non-deterministic document")
	}
	impCheckDocument(t, doc1)
}

func TestImportersRegistered(t *testing.T) {
	for _, name := range []string{"servicenow", "backstage", "netbox"} {
		if Importers[name] == nil {
			t.Errorf("Importers[%q] missing", name)
		}
	}
}

func TestImportErrorMessage(t *testing.T) {
	base := errors.New("boom")
	for _, tc := range []struct {
		err  *ImportError
		want string
	}{
		{&ImportError{Format: "netbox", Reason: "empty input"}, "netbox: empty input"},
		{&ImportError{Format: "servicenow", Record: "cmdb_ci[3]", Field: "name", Reason: "missing or empty"}, "servicenow: cmdb_ci[3]: name: missing or empty"},
		{&ImportError{Format: "backstage", Record: "document 2", Reason: "malformed YAML", Err: base}, "backstage: document 2: malformed YAML: boom"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, ErrInvalid) {
			t.Errorf("%v is not ErrInvalid", tc.err)
		}
	}
	if err := (&ImportError{Err: base}); !errors.Is(err, base) {
		t.Error("Unwrap does not reach the underlying error")
	}
}

// A failure to read the input is returned as such, not as invalid content.
func TestImportReadError(t *testing.T) {
	boom := errors.New("connection reset")
	for name, decode := range Importers {
		t.Run(name, func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(`{"result": [`), iotest.ErrReader(boom))
			_, err := decode(r)
			if !errors.Is(err, boom) {
				t.Fatalf("got %v, want the read error", err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("read error %v reported as invalid content", err)
			}
			if !strings.HasPrefix(err.Error(), name+": read: ") {
				t.Errorf("error %q does not name the importer", err)
			}
		})
	}
}

// impWantError decodes in and wants an *ImportError of the format whose
// message contains the wanted parts in order.
func impWantError(t *testing.T, format string, decode func(io.Reader) (*Document, error), in string, want []string) {
	t.Helper()
	doc, err := decode(strings.NewReader(in))
	if err == nil {
		t.Fatalf("no error; document %+v", doc)
	}
	if doc != nil {
		t.Error("document returned with an error")
	}
	var ie *ImportError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
		t.Errorf("%T %v is not an *ImportError", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, format+": ") {
		t.Errorf("%q does not name the format", msg)
	}
	rest := msg
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("error %q: want %q (in order: %q)", msg, w, want)
		}
		rest = rest[i+len(w):]
	}
}

// impAddFuzzSeeds adds the regression inputs kept in
// testdata/<format>/fuzz/<FuzzName>/, in the "go test fuzz v1" format that
// go test -fuzz writes to testdata/fuzz. They are moved here so that each
// importer's test data stays under its own directory.
func impAddFuzzSeeds(f *testing.F, format string) {
	dir := filepath.Join("testdata", format, "fuzz", f.Name())
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			f.Fatalf("%s: not a go test fuzz v1 file", e.Name())
		}
		lit, ok := strings.CutPrefix(lines[1], "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		s, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			f.Fatalf("%s: want one []byte value", e.Name())
		}
		f.Add([]byte(s))
	}
}

// impCompact re-encodes JSON without white space. Fuzz seeds are kept small:
// the fuzzer minimises every input that finds new coverage, and minimising
// a fixture of tens of kilobytes takes the whole fuzzing budget.
func impCompact(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkImport(b *testing.B) {
	for _, bc := range []struct {
		name, fixture string
		decode        func(io.Reader) (*Document, error)
	}{
		{"servicenow", "servicenow/bundle.json", DecodeServiceNow},
		{"backstage", "backstage/catalog-info.yaml", DecodeBackstage},
		{"netbox", "netbox/bundle.json", DecodeNetBox},
	} {
		data := impReadFixture(b, bc.fixture)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := bc.decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
