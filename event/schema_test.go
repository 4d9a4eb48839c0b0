package event

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestSchemaMatchesStruct keeps docs/schema/event.schema.json and Event in
// step: a field added to one and not the other fails here.
func TestSchemaMatchesStruct(t *testing.T) {
	data, err := os.ReadFile("../docs/schema/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Examples   []json.RawMessage          `json:"examples"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("schema is not valid JSON: %v", err)
	}
	var inSchema, inStruct []string
	for k := range schema.Properties {
		inSchema = append(inSchema, k)
	}
	rt := reflect.TypeFor[Event]()
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		inStruct = append(inStruct, name)
	}
	sort.Strings(inSchema)
	sort.Strings(inStruct)
	if !reflect.DeepEqual(inSchema, inStruct) {
		t.Errorf("schema properties %v != Event JSON fields %v", inSchema, inStruct)
	}
	for _, ex := range schema.Examples {
		var e Event
		dec := json.NewDecoder(strings.NewReader(string(ex)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("example does not decode: %v", err)
		}
		if err := Normalize(&e, DefaultDefaults); err != nil {
			t.Errorf("example is not a valid event: %v", err)
		}
	}
}
