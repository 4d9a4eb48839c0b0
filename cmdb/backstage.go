package cmdb

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// DecodeBackstage decodes a Backstage software catalog into a Document; see
// DecodeBackstageStats.
func DecodeBackstage(r io.Reader) (*Document, error) {
	doc, _, err := DecodeBackstageStats(r)
	return doc, err
}

// BackstageStats counts the entities DecodeBackstageStats read, by kind as
// written in the input.
type BackstageStats struct {
	// Imported counts the entities that became CIs.
	Imported map[string]int
	// Ignored counts the entities of other kinds (Group, User, Domain,
	// Location, Template, …) and the documents whose apiVersion is not
	// backstage.io/*, such as Kubernetes manifests kept in the same file.
	Ignored map[string]int
}

// DecodeBackstageStats decodes a Backstage software catalog into a Document
// and says how many entities it imported and ignored.
//
// # Accepted input
//
// YAML (or JSON) in the descriptor format of catalog-info.yaml files: a
// stream of documents separated by "---", each an entity. A document may also
// be a sequence of entities, as GET /api/catalog/entities returns them, or a
// mapping {"items": [...]}, as GET /api/catalog/entities/by-query returns
// them. Empty documents are skipped.
//
// Entities of kind Component, Resource, System and API (apiVersion
// backstage.io/v1alpha1 or v1beta1) become CIs. Other kinds and documents
// with another apiVersion are counted in Ignored and otherwise skipped, with
// no error. The fields the Backstage catalog itself requires are required
// here too: apiVersion, kind and metadata.name on every document;
// spec.type, spec.lifecycle and spec.owner on Components and APIs; spec.type
// and spec.owner on Resources; spec.owner on Systems.
//
// # CIs
//
// The CI ID is the entity's full reference, "kind:namespace/name", lower
// case (Backstage compares references case-insensitively), such as
// "component:default/orders-api". The bare metadata.name is the CI's Name and
// an alias, as is the backstage.io/kubernetes-id annotation.
//
//	kind       spec.type                        CI type
//	System     (any)                            service: the business service at the top
//	Component  service, website, library        application
//	Component  anything else                    that type, lower case
//	Resource   database                         database
//	Resource   anything else                    that type, lower case
//	API        (any)                            api
//
// spec.owner becomes SupportGroup without its kind and namespace
// ("group:default/team-orders" → "team-orders"). Attributes: namespace,
// lifecycle, backstage_type (spec.type), title, system (the System's CI ID),
// domain (a System's spec.domain as written), tags
// (comma-separated), each label as "label.<key>", and the annotations
// listed in bsAnnotations.
//
// # Relations
//
// Entity references are "[kind:][namespace/]name". A missing namespace is the
// referring entity's own, as in Backstage ("default" unless the entity sets
// metadata.namespace); a missing kind is the field's default from the
// descriptor format. spec.dependsOn and spec.dependencyOf have no default
// kind in Backstage; a reference there without one resolves to the
// Component of that name, else the Resource of that name.
//
//	field                       relation (source depends on target)          Type
//	X spec.dependsOn: Y         X → Y                                        depends_on
//	X spec.dependencyOf: Y      Y → X                                        depends_on
//	X spec.system: S            S → X: a system fails when a part fails      member_of
//	X spec.subcomponentOf: P    P → X: so does a parent component            member_of
//	X spec.consumesApis: A      X → A: a consumer needs the API              depends_on
//	X spec.providesApis: A      A → X: an API is down when its provider is   depends_on
//
// Every reference must resolve to a Component, Resource, System or API in the
// same input; one that does not is an error naming the entity, the field and
// the reference. Two entities with the same reference are an error.
func DecodeBackstageStats(r io.Reader) (*Document, BackstageStats, error) {
	d := bsDecoder{
		stats: BackstageStats{Imported: map[string]int{}, Ignored: map[string]int{}},
		index: map[string]*bsEntity{},
	}
	if err := d.read(r); err != nil {
		return nil, BackstageStats{}, err
	}
	doc, err := d.build()
	if err != nil {
		return nil, BackstageStats{}, err
	}
	return doc, d.stats, nil
}

// bsEntity is one entity of an imported kind.
type bsEntity struct {
	where     string // "document 3 (line 41)"
	kind      string // lower case: component, resource, system, api
	namespace string // lower case
	id        string // kind:namespace/name, lower case
	meta      bsMetadata
	spec      bsSpec
}

type bsEnvelope struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   yaml.Node `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
}

type bsMetadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Title       string            `yaml:"title"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	Tags        []string          `yaml:"tags"`
}

// bsSpec holds the spec fields of all imported kinds; each kind uses some.
type bsSpec struct {
	Type           string   `yaml:"type"`
	Lifecycle      string   `yaml:"lifecycle"`
	Owner          string   `yaml:"owner"`
	System         string   `yaml:"system"`
	Domain         string   `yaml:"domain"`
	SubcomponentOf string   `yaml:"subcomponentOf"`
	DependsOn      []string `yaml:"dependsOn"`
	DependencyOf   []string `yaml:"dependencyOf"`
	ProvidesAPIs   []string `yaml:"providesApis"`
	ConsumesAPIs   []string `yaml:"consumesApis"`
}

// bsAnnotations are the annotations copied into attributes: they name the
// entity in the systems events come from.
var bsAnnotations = []string{
	"backstage.io/kubernetes-id",
	"backstage.io/kubernetes-namespace",
	"backstage.io/kubernetes-label-selector",
	"pagerduty.com/service-id",
	"opsgenie.com/component-selector",
	"github.com/project-slug",
}

type bsDecoder struct {
	stats    BackstageStats
	entities []*bsEntity
	index    map[string]*bsEntity
	docs     int
}

func bsError(record, field, reason string, err error) error {
	return &ImportError{Format: "backstage", Record: record, Field: field, Reason: reason, Err: err}
}

func (d *bsDecoder) read(r io.Reader) error {
	ir := &importReader{r: r}
	dec := yaml.NewDecoder(ir)
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if rerr := ir.readError("backstage"); rerr != nil {
			return rerr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		d.docs++
		where := fmt.Sprintf("document %d", d.docs)
		if err != nil {
			return bsError(where, "", "malformed YAML", err)
		}
		if len(node.Content) == 0 {
			continue
		}
		root := node.Content[0]
		switch {
		case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
			continue
		case root.Kind == yaml.SequenceNode:
			if err := d.readList(where, root); err != nil {
				return err
			}
		case root.Kind == yaml.MappingNode && bsIsItems(root):
			if err := d.readList(where, bsValue(root, "items")); err != nil {
				return err
			}
		case root.Kind == yaml.MappingNode:
			if err := d.readEntity(fmt.Sprintf("%s (line %d)", where, root.Line), root); err != nil {
				return err
			}
		default:
			return bsError(fmt.Sprintf("%s (line %d)", where, root.Line), "", "want an entity (a mapping with apiVersion, kind, metadata and spec) or a list of entities", nil)
		}
	}
	if d.docs == 0 {
		return bsError("", "", "empty input: want catalog entities (YAML documents with apiVersion, kind, metadata and spec)", nil)
	}
	return nil
}

// bsIsItems reports whether a mapping is a catalog API page {"items": [...]}
// rather than an entity.
func bsIsItems(m *yaml.Node) bool {
	v := bsValue(m, "items")
	return v != nil && v.Kind == yaml.SequenceNode && bsValue(m, "kind") == nil
}

// bsValue returns the value of key in mapping m, or nil.
func bsValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func (d *bsDecoder) readList(where string, seq *yaml.Node) error {
	for i, item := range seq.Content {
		w := fmt.Sprintf("%s, item %d (line %d)", where, i, item.Line)
		if item.Kind != yaml.MappingNode {
			return bsError(w, "", "want an entity (a mapping with apiVersion, kind, metadata and spec)", nil)
		}
		if err := d.readEntity(w, item); err != nil {
			return err
		}
	}
	return nil
}

// bsKinds are the kinds imported, by lower-case name.
var bsKinds = map[string]bool{"component": true, "resource": true, "system": true, "api": true}

func (d *bsDecoder) readEntity(where string, node *yaml.Node) error {
	var env bsEnvelope
	if err := node.Decode(&env); err != nil {
		return bsError(where, "", "malformed entity", err)
	}
	if env.APIVersion == "" {
		return bsError(where, "apiVersion", "missing or empty", nil)
	}
	if env.Kind == "" {
		return bsError(where, "kind", "missing or empty", nil)
	}
	kind := strings.ToLower(env.Kind)
	if !strings.HasPrefix(env.APIVersion, "backstage.io/") || !bsKinds[kind] {
		d.stats.Ignored[env.Kind]++
		return nil
	}
	e := &bsEntity{where: where, kind: kind}
	if env.Metadata.Kind == 0 {
		return bsError(where, "metadata", "missing", nil)
	}
	if err := env.Metadata.Decode(&e.meta); err != nil {
		return bsError(where, "metadata", "malformed", err)
	}
	if e.meta.Name == "" {
		return bsError(where, "metadata.name", "missing or empty", nil)
	}
	if err := bsCheckName(e.meta.Name, 63); err != nil {
		return bsError(where, "metadata.name", err.Error(), nil)
	}
	e.namespace = "default"
	if e.meta.Namespace != "" {
		if err := bsCheckName(e.meta.Namespace, 63); err != nil {
			return bsError(where, "metadata.namespace", err.Error(), nil)
		}
		e.namespace = strings.ToLower(e.meta.Namespace)
	}
	e.id = kind + ":" + e.namespace + "/" + strings.ToLower(e.meta.Name)
	e.where = where + " (" + e.id + ")"
	if env.Spec.Kind != 0 {
		if err := env.Spec.Decode(&e.spec); err != nil {
			return bsError(e.where, "spec", "malformed", err)
		}
	}
	var required []string
	switch kind {
	case "component", "api":
		required = []string{"type", "lifecycle", "owner"}
	case "resource":
		required = []string{"type", "owner"}
	case "system":
		required = []string{"owner"}
	}
	for _, f := range required {
		v := map[string]string{"type": e.spec.Type, "lifecycle": e.spec.Lifecycle, "owner": e.spec.Owner}[f]
		if v == "" {
			return bsError(e.where, "spec."+f, "missing or empty", nil)
		}
	}
	if prev, dup := d.index[e.id]; dup {
		return bsError(e.where, "metadata.name", "duplicate: "+prev.where+" has the same kind, namespace and name", nil)
	}
	d.index[e.id] = e
	d.entities = append(d.entities, e)
	d.stats.Imported[env.Kind]++
	return nil
}

// bsCheckName applies Backstage's default rule for names and namespaces:
// sequences of [a-zA-Z0-9] separated by one of [-_.], at most max long.
func bsCheckName(s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%q is longer than %d characters", s, limit)
	}
	prevSep := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		sep := c == '-' || c == '_' || c == '.'
		if !alnum && !sep || sep && prevSep {
			return fmt.Errorf("%q: want letters and digits, separated by single '-', '_' or '.'", s)
		}
		prevSep = sep
	}
	if prevSep {
		return fmt.Errorf("%q: want letters and digits, separated by single '-', '_' or '.'", s)
	}
	return nil
}

// resolve turns an entity reference written in entity e's field into the ID
// of an imported entity. defaultKind "" means the field has no default kind:
// the reference resolves to a Component, else a Resource, of that name.
func (d *bsDecoder) resolve(e *bsEntity, field, ref, defaultKind string) (string, error) {
	kind, rest, hasKind := strings.Cut(strings.ToLower(strings.TrimSpace(ref)), ":")
	if !hasKind {
		kind, rest = defaultKind, kind
	}
	ns, name, hasNS := strings.Cut(rest, "/")
	if !hasNS {
		ns, name = e.namespace, ns
	}
	if name == "" || ns == "" || hasKind && kind == "" || strings.ContainsAny(name, ":/") {
		return "", bsError(e.where, field, fmt.Sprintf("%q is not an entity reference [kind:][namespace/]name", ref), nil)
	}
	kinds := []string{kind}
	if kind == "" {
		kinds = []string{"component", "resource"}
	}
	for _, k := range kinds {
		id := k + ":" + ns + "/" + name
		if _, ok := d.index[id]; ok {
			if id == e.id {
				return "", bsError(e.where, field, fmt.Sprintf("%q refers to the entity itself", ref), nil)
			}
			return id, nil
		}
	}
	want := kinds[0] + ":" + ns + "/" + name
	if len(kinds) > 1 {
		want = "component or resource " + ns + "/" + name
	}
	return "", bsError(e.where, field, fmt.Sprintf("%q: no %s in the catalog", ref, want), nil)
}

func (d *bsDecoder) build() (*Document, error) {
	b := newImportBuilder()
	for _, e := range d.entities {
		b.add(e.ci())
	}
	type edge struct {
		field, defaultKind string
		refs               []string
		single             bool // the field holds one reference, not a list
		selfIsSource       bool
		typ                string
	}
	one := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	for _, e := range d.entities {
		var edges []edge
		switch e.kind {
		case "component":
			edges = []edge{
				{"spec.system", "system", one(e.spec.System), true, false, RelMemberOf},
				{"spec.subcomponentOf", "component", one(e.spec.SubcomponentOf), true, false, RelMemberOf},
				{"spec.dependsOn", "", e.spec.DependsOn, false, true, RelDependsOn},
				{"spec.dependencyOf", "", e.spec.DependencyOf, false, false, RelDependsOn},
				{"spec.consumesApis", "api", e.spec.ConsumesAPIs, false, true, RelDependsOn},
				{"spec.providesApis", "api", e.spec.ProvidesAPIs, false, false, RelDependsOn},
			}
		case "resource":
			edges = []edge{
				{"spec.system", "system", one(e.spec.System), true, false, RelMemberOf},
				{"spec.dependsOn", "", e.spec.DependsOn, false, true, RelDependsOn},
				{"spec.dependencyOf", "", e.spec.DependencyOf, false, false, RelDependsOn},
			}
		case "api":
			edges = []edge{{"spec.system", "system", one(e.spec.System), true, false, RelMemberOf}}
		}
		// A System's spec.domain names a Domain, which is not imported.
		for _, ed := range edges {
			for i, ref := range ed.refs {
				field := ed.field
				if !ed.single {
					field = fmt.Sprintf("%s[%d]", ed.field, i)
				}
				other, err := d.resolve(e, field, ref, ed.defaultKind)
				if err != nil {
					return nil, err
				}
				if ed.selfIsSource {
					b.relate(e.id, other, ed.typ)
				} else {
					b.relate(other, e.id, ed.typ)
				}
				if ed.field == "spec.system" {
					b.ci(e.id).Attributes["system"] = other
				}
			}
		}
	}
	return b.document(), nil
}

func (e *bsEntity) ci() CI {
	ci := CI{
		ID:      e.id,
		Name:    e.meta.Name,
		Aliases: []string{e.meta.Name},
		Attributes: map[string]string{
			"namespace":      e.namespace,
			"lifecycle":      e.spec.Lifecycle,
			"backstage_type": e.spec.Type,
			"title":          e.meta.Title,
			"domain":         e.spec.Domain,
		},
	}
	typ := strings.ToLower(e.spec.Type)
	switch e.kind {
	case "system":
		ci.Type = TypeService
	case "api":
		ci.Type = "api"
	case "component":
		ci.Type = typ
		if typ == "service" || typ == "website" || typ == "library" {
			ci.Type = "application"
		}
	case "resource":
		ci.Type = typ
	}
	owner := e.spec.Owner
	if i := strings.LastIndexByte(owner, ':'); i >= 0 {
		owner = owner[i+1:]
	}
	if i := strings.LastIndexByte(owner, '/'); i >= 0 {
		owner = owner[i+1:]
	}
	ci.SupportGroup = owner
	if len(e.meta.Tags) > 0 {
		tags := slices.Clone(e.meta.Tags)
		slices.Sort(tags)
		ci.Attributes["tags"] = strings.Join(slices.Compact(tags), ",")
	}
	for k, v := range e.meta.Labels {
		ci.Attributes["label."+k] = v
	}
	for _, k := range bsAnnotations {
		ci.Attributes[k] = e.meta.Annotations[k]
	}
	ci.Aliases = append(ci.Aliases, e.meta.Annotations["backstage.io/kubernetes-id"])
	return ci
}
