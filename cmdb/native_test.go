package cmdb

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// issueYAML is the example of the issue, in YAML.
const issueYAML = `
cis:
  - id: db-01
    type: database
    name: Orders DB primary
    criticality: 1
    support_group: dba
    aliases: [db-01.prod.example.com, 10.1.2.3]
    attributes: {site: dc1}
  - {id: orders-api, type: application}
relations:
  - {source: orders-api, target: db-01, type: depends_on}
`

// issueJSON is the same document in JSON.
const issueJSON = `{"cis": [
  {"id": "db-01", "type": "database", "name": "Orders DB primary", "criticality": 1,
   "support_group": "dba", "aliases": ["db-01.prod.example.com", "10.1.2.3"], "attributes": {"site": "dc1"}},
  {"id": "orders-api", "type": "application"}],
 "relations": [{"source": "orders-api", "target": "db-01", "type": "depends_on"}]}`

func issueDoc() *Document {
	return &Document{
		CIs: []CI{
			{ID: "db-01", Type: "database", Name: "Orders DB primary", Criticality: 1, SupportGroup: "dba",
				Aliases: []string{"db-01.prod.example.com", "10.1.2.3"}, Attributes: map[string]string{"site": "dc1"}},
			{ID: "orders-api", Type: "application"},
		},
		Relations: []Relation{{Source: "orders-api", Target: "db-01", Type: "depends_on"}},
	}
}

func TestDecodeNative(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode Decoder
		in     string
	}{
		{"yaml", DecodeNativeYAML, issueYAML},
		{"json", DecodeNativeJSON, issueJSON},
		{"sniff yaml", DecodeNative, issueYAML},
		{"sniff json", DecodeNative, issueJSON},
		{"sniff json after BOM and blank lines", DecodeNative, "\xef\xbb\xbf\n\n  " + issueJSON},
		{"yaml is a superset of json", DecodeNativeYAML, issueJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Decode twice: decoders must not keep state between calls.
			for range 2 {
				doc, err := tc.decode(strings.NewReader(tc.in))
				if err != nil {
					t.Fatal(err)
				}
				if want := issueDoc(); !reflect.DeepEqual(doc, want) {
					t.Fatalf("got  %+v\nwant %+v", doc, want)
				}
			}
		})
	}
}

func TestDecodeNativeJSONDetails(t *testing.T) {
	in := `{"cis":[{"id":"a\u00e9\ud83d\ude00\"\\\/\n","type":"t","name":null,"aliases":[],"attributes":{}},
	{"id":"b","type":"t","aliases":null,"attributes":null,"criticality":null}],"relations":null}`
	doc, err := DecodeNativeJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := doc.CIs[0].ID, "aé😀\"\\/\n"; got != want {
		t.Errorf("id = %q, want %q", got, want)
	}
	if doc.CIs[0].Aliases == nil || len(doc.CIs[0].Aliases) != 0 {
		t.Errorf("aliases [] = %#v, want empty non-nil (as encoding/json)", doc.CIs[0].Aliases)
	}
	if doc.CIs[1].Aliases != nil || doc.CIs[1].Attributes != nil {
		t.Errorf("null aliases/attributes should stay nil: %#v", doc.CIs[1])
	}
	// A lone surrogate becomes U+FFFD, as encoding/json does.
	doc, err = DecodeNativeJSON(strings.NewReader(`{"cis":[{"id":"x\ud800y","type":"t"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.CIs[0].ID; got != "x\uFFFDy" {
		t.Errorf("lone surrogate: %q", got)
	}
	// Equal attribute sets share a map; strings survive the slab.
	var b strings.Builder
	b.WriteString(`{"cis":[`)
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":"ci-` + strings.Repeat("x", i%50) + strconv.Itoa(i) + `","type":"host","attributes":{"site":"dc1","env":"prod"}}`)
	}
	b.WriteString(`]}`)
	doc, err = DecodeNativeJSON(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, ci := range doc.CIs {
		if want := "ci-" + strings.Repeat("x", i%50) + strconv.Itoa(i); ci.ID != want {
			t.Fatalf("cis[%d].id = %q, want %q", i, ci.ID, want)
		}
		if reflect.ValueOf(ci.Attributes).Pointer() != reflect.ValueOf(doc.CIs[0].Attributes).Pointer() {
			t.Fatalf("cis[%d] does not share the attribute map of cis[0]", i)
		}
	}
}

func TestDecodeNativeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{"yaml unknown top field", "cis: []\nservices: []\n", []string{"line 2", `unknown field "services"`}},
		{"yaml unknown ci field", "cis:\n  - id: a\n    type: host\n    owner: bob\n", []string{"line 4", "cis[0]", `unknown field "owner"`}},
		{"yaml unknown relation field", "cis: []\nrelations:\n  - {source: a, target: b, weight: 3}\n", []string{"relations[0]", `unknown field "weight"`}},
		{"yaml unknown field via merge", "base: &b {id: a, type: host, colour: red}\n", []string{`unknown field "base"`}},
		{"yaml merge key checked", "cis:\n  - <<: {id: a, colour: red}\n    type: host\n", []string{"cis[0]", `unknown field "colour"`}},
		{"yaml duplicate field", "cis:\n  - id: a\n    id: b\n", []string{"cis[0]", `duplicate field "id"`}},
		{"yaml wrong type", "cis:\n  - id: a\n    type: host\n    criticality: high\n", []string{"line 4", "high"}},
		{"yaml cis not a list", "cis: {id: a}\n", []string{"cis", "expected a list"}},
		{"yaml ci not a mapping", "cis:\n  - a\n", []string{"cis[0]", "expected a mapping"}},
		{"yaml attributes not a mapping", "cis:\n  - {id: a, type: h, attributes: [x]}\n", []string{"cis[0].attributes", "mapping"}},
		{"yaml two documents", "cis: []\n---\ncis: []\n", []string{"more than one YAML document"}},
		{"yaml syntax", "cis: [\n", []string{"line"}},
		{"empty", "", []string{"empty document"}},
		{"only comments", "# nothing\n", []string{"empty document"}},
		{"json unknown top field", `{"cis": [], "extra": 1}`, []string{`unknown field "extra"`}},
		{"json unknown ci field", "{\"cis\": [\n{\"id\": \"a\", \"owner\": \"bob\"}]}", []string{"line 2", "cis[0]", `unknown field "owner"`}},
		{"json unknown relation field", `{"relations": [{"source": "a", "weight": 3}]}`, []string{"relations[0]", `unknown field "weight"`}},
		{"json duplicate field", `{"cis": [{"id": "a", "id": "b"}]}`, []string{"cis[0]", `duplicate field "id"`}},
		{"json duplicate top field", `{"cis": [], "cis": []}`, []string{`duplicate field "cis"`}},
		{"json duplicate attribute", `{"cis": [{"id": "a", "attributes": {"k": "1", "k": "2"}}]}`, []string{"cis[0].attributes", `duplicate key "k"`}},
		{"json fractional criticality", `{"cis": [{"id": "a", "criticality": 1.5}]}`, []string{"cis[0].criticality", "integer"}},
		{"json string criticality", `{"cis": [{"id": "a", "criticality": "1"}]}`, []string{"cis[0].criticality", "expected an integer"}},
		{"json number id", `{"cis": [{"id": 7}]}`, []string{"cis[0].id", "expected a string, found a number"}},
		{"json alias not a string", `{"cis": [{"id": "a", "aliases": ["x", 1]}]}`, []string{"cis[0].aliases[1]", "expected a string"}},
		{"json attribute not a string", `{"cis": [{"id": "a", "attributes": {"rack": 12}}]}`, []string{"cis[0].attributes.rack", "expected a string"}},
		{"json trailing data", `{"cis": []} {}`, []string{"after the document"}},
		{"json truncated", `{"cis": [{"id": "a"`, []string{"expected"}},
		{"json unterminated string", `{"cis": [{"id": "a`, []string{"unterminated string"}},
		{"json bad escape", `{"cis": [{"id": "a\x"}]}`, []string{"invalid escape"}},
		{"json control character", "{\"cis\": [{\"id\": \"a\tb\"}]}", []string{"control character"}},
		{"json invalid utf-8", "{\"cis\": [{\"id\": \"a\xffb\"}]}", []string{"cis[0].id", "UTF-8"}},
		{"json top not object", `[1]`, []string{}}, // read as YAML by DecodeNative: no mapping
		{"json leading zero", `{"cis": [{"id": "a", "criticality": 01}]}`, []string{"leading zero"}},
		{"json bad literal", `{"cis": nul}`, []string{"invalid literal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := DecodeNative(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("no error; decoded %+v", doc)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// oneByteReader returns one byte per Read, to exercise every refill path of
// the JSON scanner.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, errEOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestDecodeNativeJSONOneByteReads(t *testing.T) {
	in := `{"cis":[{"id":"a\u00e9\ud83d\ude00","type":"host","criticality":2,"aliases":["x\ty"],"attributes":{"k":"v\""}}],"relations":[]}`
	want, err := DecodeNativeJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeNativeJSON(&oneByteReader{in})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("one byte at a time: %+v, want %+v", got, want)
	}
}
