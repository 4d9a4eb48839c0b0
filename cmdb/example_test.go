package cmdb

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/event"
)

const schemaPath = "../docs/schema/cmdb.schema.json"

func TestExampleTopology(t *testing.T) {
	r, err := CheckFile(exampleTopologyPath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	if !r.OK() || r.WarningsTotal != 0 {
		t.Fatalf("the example should load without errors or warnings:\n%s", b.String())
	}
	if r.Services != 3 || r.CIsByType["site"] != 2 || r.CIsByType["switch"] < 2 || r.CIsByType["host"] < 2 ||
		r.CIsByType["vm"] < 2 || r.CIsByType["database"] < 2 || r.CIsByType["application"] < 2 || r.Components != 1 {
		t.Errorf("the example is not the estate the docs describe: %+v", r)
	}

	topo := mustBuild(t, mustRead(t, exampleTopologyPath))
	for id, want := range map[string][]string{
		"dc1":          {"online-shop", "payments", "customer-support"},
		"orders-db":    {"online-shop", "customer-support"},
		"payments-db":  {"online-shop", "payments"},
		"auth-service": {"online-shop", "payments", "customer-support"},
		"vm-mq-01":     {"online-shop"},
	} {
		if got := topo.ImpactedServices(id); !slices.Equal(got, want) {
			t.Errorf("ImpactedServices(%s) = %v, want %v", id, got, want)
		}
	}
	for labels, want := range map[string]string{
		"instance=web-01.prod.example.com:9100":    "vm-web-01",
		"instance=orders-db.prod.example.com:5432": "orders-db",
		"instance=https://shop.example.com/":       "lb-shop",
		"host=10.20.1.2":                           "hv-dc2-02",
		"service=Orders API":                       "orders-api",
	} {
		k, v, _ := strings.Cut(labels, "=")
		if got, _ := topo.Bind(&event.Event{Labels: event.FromMap(map[string]string{k: v})}); got != want {
			t.Errorf("Bind(%s) = %q, want %q", labels, got, want)
		}
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadSchema(t *testing.T) map[string]any {
	var schema map[string]any
	if err := json.Unmarshal([]byte(mustRead(t, schemaPath)), &schema); err != nil {
		t.Fatal(err)
	}
	return schema
}

// TestSchemaMatchesModel checks that the schema's property names are the
// JSON names of Document, CI and Relation, no more and no fewer.
func TestSchemaMatchesModel(t *testing.T) {
	schema := loadSchema(t)
	defs := schema["$defs"].(map[string]any)
	for _, c := range []struct {
		name   string
		schema map[string]any
		typ    reflect.Type
	}{
		{"document", schema, reflect.TypeFor[Document]()},
		{"ci", defs["ci"].(map[string]any), reflect.TypeFor[CI]()},
		{"relation", defs["relation"].(map[string]any), reflect.TypeFor[Relation]()},
	} {
		var fields []string
		for f := range c.typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, name)
			if y, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); y != name {
				t.Errorf("%s.%s: yaml name %q differs from json name %q", c.typ.Name(), f.Name, y, name)
			}
		}
		var props []string
		for p := range c.schema["properties"].(map[string]any) {
			props = append(props, p)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%s: schema properties %v, Go fields %v", c.name, props, fields)
		}
		if c.schema["additionalProperties"] != false {
			t.Errorf("%s: schema allows unknown properties; the loader does not", c.name)
		}
		if req, ok := c.schema["required"].([]any); ok {
			for _, r := range req {
				if !slices.Contains(props, r.(string)) {
					t.Errorf("%s: required %v is not a property", c.name, r)
				}
			}
		}
	}
	// The decoders know exactly these fields.
	if !slices.Equal(sortedCopy(nativeCIFields), sortedCopy(propsOf(defs["ci"]))) ||
		!slices.Equal(sortedCopy(nativeRelFields), sortedCopy(propsOf(defs["relation"]))) ||
		!slices.Equal(sortedCopy(nativeDocFields), sortedCopy(propsOf(schema))) {
		t.Error("the decoders' field lists differ from the schema")
	}
}

func propsOf(s any) []string {
	var out []string
	for p := range s.(map[string]any)["properties"].(map[string]any) {
		out = append(out, p)
	}
	return out
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestDocumentsMatchSchema validates the example and the test documents
// against the schema with a validator of the keywords the schema uses.
func TestDocumentsMatchSchema(t *testing.T) {
	schema := loadSchema(t)
	for name, doc := range map[string]string{
		"examples/topology.yaml": mustRead(t, exampleTopologyPath),
		"issue yaml":             issueYAML,
		"issue json":             issueJSON,
		"small":                  smallYAML,
	} {
		var v any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if errs := validateSchema(schema, schema, v, ""); len(errs) > 0 {
			t.Errorf("%s does not match the schema: %v", name, errs)
		}
	}
	// And the schema rejects what the loader rejects.
	for _, bad := range []string{
		"cis: [{id: a, type: host, colour: red}]",
		"cis: [{id: a}]",
		"cis: [{id: a, type: host, criticality: 5}]",
		"cis: [{id: '', type: host}]",
		"relations: [{source: a}]",
		"services: []",
	} {
		var v any
		if err := yaml.Unmarshal([]byte(bad), &v); err != nil {
			t.Fatal(err)
		}
		if errs := validateSchema(schema, schema, v, ""); len(errs) == 0 {
			t.Errorf("the schema accepts %q", bad)
		}
	}
}

// validateSchema checks v against s (JSON Schema, the subset the CMDB
// schema uses). It fails the test on a keyword it does not know, so the
// schema cannot outgrow it unnoticed.
func validateSchema(root, s map[string]any, v any, path string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		return validateSchema(root, root["$defs"].(map[string]any)[name].(map[string]any), v, path)
	}
	for k := range s {
		switch k {
		case "$schema", "$id", "$defs", "title", "description", "type", "properties", "additionalProperties",
			"required", "items", "minLength", "minimum", "maximum":
		default:
			panic("validateSchema does not know keyword " + k)
		}
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("not an object")
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range m {
			if ps, ok := props[k]; ok {
				errs = append(errs, validateSchema(root, ps.(map[string]any), val, path+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("unknown property %q", k)
				}
			case map[string]any:
				errs = append(errs, validateSchema(root, ap, val, path+"."+k)...)
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := m[r.(string)]; !ok {
					bad("missing %q", r)
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("not an array")
			return errs
		}
		for i, e := range a {
			errs = append(errs, validateSchema(root, s["items"].(map[string]any), e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("not a string: %v", v)
			return errs
		}
		if ml, ok := s["minLength"].(float64); ok && float64(len(str)) < ml {
			bad("shorter than %v", ml)
		}
	case "integer":
		i, ok := v.(int)
		if !ok {
			bad("not an integer: %v", v)
			return errs
		}
		if m, ok := s["minimum"].(float64); ok && float64(i) < m {
			bad("below %v", m)
		}
		if m, ok := s["maximum"].(float64); ok && float64(i) > m {
			bad("above %v", m)
		}
	}
	return errs
}
