package cmdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/correlatord/correlatord/event"
)

func addNativeSeeds(f *testing.F) {
	for _, s := range []string{
		issueYAML, issueJSON, smallYAML, bindYAML,
		`{"cis":[{"id":"a","type":"t","aliases":["x\u00e9"],"attributes":{"k":"v"}}],"relations":[{"source":"a","target":"a"}]}`,
		`{"cis":[{"id":"a","type":"service"},{"id":"b","type":"host","criticality":4}],"relations":[{"source":"a","target":"b"},{"source":"b","target":"a","type":""}]}`,
		"cis:\n  - <<: {id: a}\n    type: host\n",
		"{}", "", "null", "[]", `{"cis": null}`, "cis: [{id: '\xff', type: x}]",
	} {
		f.Add([]byte(s))
	}
}

// FuzzLoadNative: the native decoders never panic, and whatever decodes
// either builds or fails with a ValidationError; a built topology answers
// queries without panicking.
func FuzzLoadNative(f *testing.F) {
	addNativeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := DecodeNative(bytes.NewReader(data))
		if err != nil {
			if doc != nil {
				t.Fatal("a document with an error")
			}
			var de *DecodeError
			if !errors.As(err, &de) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode error %T %v is not a DecodeError", err, err)
			}
			return
		}
		r := Check(cloneDoc(doc))
		topo, err := Build(doc, BuildOptions{})
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Total == 0 || r.OK() {
				t.Fatalf("build error %v; check ok %v", err, r.OK())
			}
			return
		}
		if !r.OK() || r.Version != topo.Version() {
			t.Fatalf("check %+v disagrees with build", r)
		}
		// Whatever loads validates: ids unique and found, relations known.
		for i := range topo.Len() {
			n := Node(i)
			ci := topo.At(n)
			if got, ok := topo.Node(ci.ID); !ok || got != n {
				t.Fatalf("Node(%q) = %v, %v", ci.ID, got, ok)
			}
			if ci.Criticality < 1 || ci.Criticality > 4 {
				t.Fatalf("criticality %d", ci.Criticality)
			}
			if k, ok := topo.Lookup(strings.ToUpper(ci.ID)); ok && topo.ID(k) == "" {
				t.Fatal("lookup returned an empty id")
			}
			topo.Bind(&event.Event{CI: ci.ID, Labels: event.FromMap(map[string]string{"instance": ci.ID + ":1"})})
			topo.ImpactedServicesOf(n)
			topo.Dependents(ci.ID, 2)
			topo.Dependencies(ci.ID, 0)
			topo.ShortestPath(ci.ID, topo.ID(0), 3)
			topo.DependsOn(topo.ID(0), ci.ID, 0)
		}
		topo.EachRelation(func(r Relation) {
			if _, ok := topo.Node(r.Source); !ok {
				t.Fatalf("relation from unknown %q", r.Source)
			}
			if r.Type == "" || r.Source == r.Target {
				t.Fatalf("relation %+v", r)
			}
		})
	})
}

func cloneDoc(d *Document) *Document {
	c := &Document{CIs: append([]CI(nil), d.CIs...), Relations: append([]Relation(nil), d.Relations...)}
	return c
}

// FuzzNativeJSONMatchesStdlib: whatever the fast JSON decoder accepts,
// encoding/json (unknown fields disallowed) decodes to the same Document.
// The fast decoder may refuse more (duplicate fields, invalid UTF-8, field
// names in another case, a top-level null), never less.
func FuzzNativeJSONMatchesStdlib(f *testing.F) {
	addNativeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeNativeJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var want Document
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, data)
		}
		if dec.More() {
			t.Fatalf("fast decoder accepted trailing data: %q", data)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("fast decoder: %+v\nencoding/json: %+v\ninput %q", *got, want, data)
		}
	})
}
