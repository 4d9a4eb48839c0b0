package cmdb

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
)

func impDecodeBackstageFixture(t *testing.T) (*Document, BackstageStats) {
	t.Helper()
	doc, stats, err := DecodeBackstageStats(bytes.NewReader(impReadFixture(t, "backstage/catalog-info.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	impCheckDocument(t, doc)
	return doc, stats
}

func TestBackstageGolden(t *testing.T) {
	doc, _ := impDecodeBackstageFixture(t)
	impGolden(t, "backstage/catalog-info.golden.json", doc)
}

func TestBackstageStats(t *testing.T) {
	_, stats := impDecodeBackstageFixture(t)
	wantImported := map[string]int{"System": 2, "Component": 5, "Resource": 4, "API": 2}
	wantIgnored := map[string]int{"Domain": 1, "Group": 1, "User": 1, "Location": 1, "Template": 1, "Deployment": 1}
	if !maps.Equal(stats.Imported, wantImported) {
		t.Errorf("imported %v, want %v", stats.Imported, wantImported)
	}
	if !maps.Equal(stats.Ignored, wantIgnored) {
		t.Errorf("ignored %v, want %v", stats.Ignored, wantIgnored)
	}
}

func TestBackstageDirection(t *testing.T) {
	doc, _ := impDecodeBackstageFixture(t)
	for _, tc := range []struct {
		source, target, typ, why string
	}{
		{"component:default/orders-service", "resource:default/orders-db", RelDependsOn, "spec.dependsOn"},
		{"component:default/orders-service", "resource:default/orders-queue", RelDependsOn, "spec.dependsOn without a namespace"},
		{"component:default/orders-service", "component:default/orders-lib", RelDependsOn, "orders-lib spec.dependencyOf: orders-service"},
		{"resource:default/orders-queue", "resource:default/kafka-main", RelDependsOn, "a Resource's spec.dependsOn"},
		{"system:default/orders", "component:default/orders-service", RelMemberOf, "spec.system: the system fails when a part fails"},
		{"system:default/orders", "resource:default/orders-db", RelMemberOf, "a Resource's spec.system"},
		{"system:default/orders", "api:default/orders-api", RelMemberOf, "an API's spec.system"},
		{"component:default/orders-service", "component:default/orders-worker", RelMemberOf, "spec.subcomponentOf: the parent fails with a subcomponent"},
		{"component:default/orders-web", "api:default/orders-api", RelDependsOn, "spec.consumesApis: the consumer needs the API"},
		{"api:default/orders-api", "component:default/orders-service", RelDependsOn, "spec.providesApis: the API is down when its provider is"},
		{"component:default/orders-service", "api:payments/payments-api", RelDependsOn, "consumesApis across namespaces"},
		{"api:payments/payments-api", "component:payments/payments-gateway", RelDependsOn, "providesApis in the entity's own namespace"},
		{"system:payments/payments", "component:payments/payments-gateway", RelMemberOf, "spec.system defaults to the entity's namespace"},
		{"component:payments/payments-gateway", "resource:payments/payments-db", RelDependsOn, "dependencyOf in a namespace"},
	} {
		if !impHasRelation(doc, tc.source, tc.target, tc.typ) {
			t.Errorf("want %s %s %s (%s)", tc.source, tc.typ, tc.target, tc.why)
		}
	}
	// A failure of the payments database reaches the orders system through
	// the gateway, the payments API and the orders service.
	if !impDependsOn(doc, "system:default/orders", "resource:payments/payments-db") {
		t.Error("the orders system does not depend on the payments database")
	}
	if impDependsOn(doc, "resource:default/orders-db", "system:default/orders") {
		t.Error("the database depends on its system: a member_of relation is reversed")
	}
}

func TestBackstageCIs(t *testing.T) {
	doc, _ := impDecodeBackstageFixture(t)
	for _, tc := range []struct {
		id, typ, group string
		aliases        []string
	}{
		{"system:default/orders", TypeService, "team-orders", []string{"orders"}},
		{"system:payments/payments", TypeService, "team-payments", []string{"payments"}},
		{"component:default/orders-web", "application", "team-orders", []string{"orders-web"}},
		{"component:default/orders-service", "application", "team-orders", []string{"orders-service"}},
		{"component:default/orders-lib", "application", "team-orders", []string{"orders-lib"}},
		{"resource:default/orders-db", "database", "team-dba", []string{"orders-db"}},
		{"resource:default/orders-queue", "kafka-topic", "team-streaming", []string{"orders-queue"}},
		{"api:default/orders-api", "api", "team-orders", []string{"orders-api"}},
	} {
		ci := impCI(t, doc, tc.id)
		if ci.Type != tc.typ || ci.SupportGroup != tc.group || !slices.Equal(ci.Aliases, tc.aliases) {
			t.Errorf("%s: type %q group %q aliases %q, want %q %q %q", tc.id, ci.Type, ci.SupportGroup, ci.Aliases, tc.typ, tc.group, tc.aliases)
		}
	}
	attrs := impCI(t, doc, "component:default/orders-service").Attributes
	want := map[string]string{
		"namespace":                         "default",
		"lifecycle":                         "production",
		"backstage_type":                    "service",
		"title":                             "Orders Service",
		"system":                            "system:default/orders",
		"tags":                              "go,grpc",
		"label.tier":                        "1",
		"backstage.io/kubernetes-id":        "orders-service",
		"backstage.io/kubernetes-namespace": "orders",
		"pagerduty.com/service-id":          "P1ORD3R",
		"github.com/project-slug":           "example/orders-service",
	}
	if !maps.Equal(attrs, want) {
		t.Errorf("attributes %v, want %v", attrs, want)
	}
}

func TestBackstageAcceptedInputs(t *testing.T) {
	const comp = `{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "Web"}, "spec": {"type": "website", "lifecycle": "production", "owner": "user:default/jdoe", "dependsOn": ["Api"]}}`
	const api = `{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "api"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}}`
	want := []Relation{{Source: "component:default/web", Target: "component:default/api", Type: RelDependsOn}}
	for name, in := range map[string]string{
		"documents":            comp + "\n---\n" + api,
		"catalog API list":     "[" + comp + "," + api + "]",
		"catalog API by-query": `{"items": [` + comp + "," + api + `], "totalItems": 2, "pageInfo": {}}`,
		"empty documents":      "---\n---\n" + comp + "\n---\n\n---\n" + api + "\n...\n",
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := DecodeBackstage(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			impCheckDocument(t, doc)
			if len(doc.CIs) != 2 || !slices.Equal(doc.Relations, want) {
				t.Errorf("got %+v", doc)
			}
			// A dependsOn without a kind resolves to the Component; names are
			// case-insensitive in references and lower case in IDs.
			if web := impCI(t, doc, "component:default/web"); web.Name != "Web" || web.SupportGroup != "jdoe" {
				t.Errorf("web: %+v", web)
			}
		})
	}
}

// A reference without a kind in dependsOn resolves to the Component of that
// name, else the Resource.
func TestBackstageKindlessDependency(t *testing.T) {
	in := `
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a}
spec: {type: service, lifecycle: production, owner: t, dependsOn: [db, b]}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: db}
spec: {type: database, owner: t}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: b}
spec: {type: database, owner: t}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: b}
spec: {type: service, lifecycle: production, owner: t}
`
	doc, err := DecodeBackstage(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Relation{
		{Source: "component:default/a", Target: "component:default/b", Type: RelDependsOn},
		{Source: "component:default/a", Target: "resource:default/db", Type: RelDependsOn},
	}
	if !slices.Equal(doc.Relations, want) {
		t.Errorf("relations %v, want %v", doc.Relations, want)
	}
}

func TestBackstageBadInput(t *testing.T) {
	const head = "apiVersion: backstage.io/v1alpha1\n"
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{"backstage: empty input"}},
		{"malformed YAML", "apiVersion: [", []string{"document 1", "malformed YAML"}},
		{"tab indentation", head + "kind: Component\nmetadata:\n\tname: x\n", []string{"document 1", "malformed YAML"}},
		{"scalar document", "just text", []string{"document 1 (line 1)", "want an entity"}},
		{"list of scalars", "- a\n- b", []string{"document 1, item 0 (line 1)", "want an entity"}},
		{"missing apiVersion", "kind: Component\nmetadata: {name: x}", []string{"document 1 (line 1): apiVersion: missing or empty"}},
		{"missing kind", head + "metadata: {name: x}", []string{"document 1 (line 1): kind: missing or empty"}},
		{"missing metadata", head + "kind: System\nspec: {owner: t}", []string{"document 1 (line 1): metadata: missing"}},
		{"missing name", "---\n" + head + "kind: System\nmetadata: {title: X}\nspec: {owner: t}", []string{"document 1 (line 2): metadata.name: missing or empty"}},
		{"bad name", head + "kind: System\nmetadata: {name: a/b}\nspec: {owner: t}", []string{"metadata.name:", `"a/b"`}},
		{"bad namespace", head + "kind: System\nmetadata: {name: a, namespace: \"x y\"}\nspec: {owner: t}", []string{"metadata.namespace:", `"x y"`}},
		{"metadata not a mapping", head + "kind: System\nmetadata: [a]\nspec: {owner: t}", []string{"metadata: malformed"}},
		{"wrong shape in spec", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, dependsOn: resource:db}", []string{"document 1 (line 1) (component:default/web): spec: malformed", "line 4"}},
		{"missing owner", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production}", []string{"(component:default/web): spec.owner: missing or empty"}},
		{"missing lifecycle", head + "kind: API\nmetadata: {name: a}\nspec: {type: openapi, owner: t}", []string{"(api:default/a): spec.lifecycle: missing or empty"}},
		{"missing type", head + "kind: Resource\nmetadata: {name: r}\nspec: {owner: t}", []string{"(resource:default/r): spec.type: missing or empty"}},
		{"duplicate", head + "kind: System\nmetadata: {name: s}\nspec: {owner: t}\n---\n" + head + "kind: System\nmetadata: {name: S}\nspec: {owner: t}", []string{"document 2 (line 6) (system:default/s): metadata.name: duplicate: document 1 (line 1) (system:default/s)"}},
		{"unknown dependency", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, dependsOn: [resource:default/db]}", []string{"(component:default/web): spec.dependsOn[0]:", `"resource:default/db": no resource:default/db in the catalog`}},
		{"unknown kindless dependency", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, dependsOn: [db]}", []string{"spec.dependsOn[0]:", "no component or resource default/db"}},
		{"unknown system", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, system: shop}", []string{"(component:default/web): spec.system:", "no system:default/shop"}},
		{"unknown api", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, consumesApis: [a, b]}", []string{"spec.consumesApis[0]:", "no api:default/a"}},
		{"bad reference", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, dependsOn: [\"component:\"]}", []string{"spec.dependsOn[0]:", "not an entity reference"}},
		{"self reference", head + "kind: Component\nmetadata: {name: web}\nspec: {type: website, lifecycle: production, owner: t, dependsOn: [component:web]}", []string{"spec.dependsOn[0]:", "refers to the entity itself"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			impWantError(t, "backstage", DecodeBackstage, tc.in, tc.want)
		})
	}
}

func TestBackstageIgnoresOtherKinds(t *testing.T) {
	in := `
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: "not/a valid name"}
spec: {type: team, children: []}
---
apiVersion: v1
kind: ConfigMap
metadata: [not, an, entity, mapping]
`
	doc, stats, err := DecodeBackstageStats(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.CIs) != 0 || stats.Ignored["Group"] != 1 || stats.Ignored["ConfigMap"] != 1 {
		t.Errorf("doc %+v stats %+v", doc, stats)
	}
}

func FuzzDecodeBackstage(f *testing.F) {
	f.Add(impReadFixture(f, "backstage/catalog-info.yaml"))
	for _, s := range []string{
		``, `---`, `[]`, `{items: []}`, `a: &x [*x]`,
		"apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: s}\nspec: {owner: t}",
		"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: c, namespace: N}\nspec: {type: x, lifecycle: y, owner: z, system: n/s, dependsOn: [c2]}\n---\napiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: s, namespace: n}\nspec: {owner: t}",
	} {
		f.Add([]byte(s))
	}
	impAddFuzzSeeds(f, "backstage")
	f.Fuzz(func(t *testing.T, data []byte) {
		impFuzzCheck(t, DecodeBackstage, data)
	})
}
