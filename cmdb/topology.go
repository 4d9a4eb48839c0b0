package cmdb

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Node is the dense index of a CI in a Topology: its position in the
// document's cis list. Nodes are only meaningful for the Topology that gave
// them; the index-based methods take and return them to avoid string
// lookups on hot paths.
type Node int32

// NoNode is the Node of nothing.
const NoNode Node = -1

// DefaultMaxImpactEntries bounds the precomputed impacted-services index
// (4 bytes an entry): 32 Mi entries, 128 MiB.
const DefaultMaxImpactEntries = 32 << 20

// BuildOptions tune Build.
type BuildOptions struct {
	// Source names the file or URL in errors.
	Source string
	// BindLabels are the labels Bind tries, in order. Default
	// DefaultBindLabels.
	BindLabels []string
	// MaxImpactEntries bounds the impacted-services index: past it, Build
	// drops the index and ImpactedServices walks the graph on each call.
	// Zero means DefaultMaxImpactEntries; negative never builds the index.
	MaxImpactEntries int
}

// Topology is an immutable, validated CMDB: the CIs, the dependency graph in
// both directions, the binding table, connected components and the
// impacted-services index. Every method is safe for concurrent use, none
// takes a lock, and nothing it returns may be modified: CIs, their alias
// slices and attribute maps, and returned Node slices are shared by every
// reader (and attribute maps by CIs with equal attributes).
type Topology struct {
	cis []CI

	// Relations as given (duplicates included), for EachRelation.
	relSrc, relDst []int32
	relType        []uint16
	relTypes       []string

	// out lists the dependencies of each node (edges source -> target),
	// in the dependents; both sorted, without duplicates.
	out, in csr

	bind       bindTable
	bindLabels []string

	comp     []int32 // component of each node
	compSize []int32 // size of each component

	services []Node // nodes of type service, ascending
	impact   impactIndex

	version  string
	warnings problemList

	visits visitPool // idle query scratch, sized for this topology
}

// csr is a compressed sparse row adjacency: the neighbours of n are
// adj[start[n]:start[n+1]].
type csr struct {
	start []int32
	adj   []int32
}

func (c *csr) of(n int32) []int32 { return c.adj[c.start[n]:c.start[n+1]] }

// Empty returns a topology with no CIs: what a Store serves before its first
// successful load.
func Empty() *Topology {
	t, _ := Build(&Document{}, BuildOptions{})
	return t
}

// Build validates doc and builds its topology. It returns a
// *ValidationError (wrapping ErrInvalid) naming every problem: empty or
// duplicate ids, empty types, criticality outside 1..4, empty aliases,
// relations with an empty or unknown end, and self-relations. What is
// suspicious but usable becomes a warning (Warnings): cycles, aliases or
// names claimed by several CIs, ids that differ only in case, duplicate
// relations.
//
// Build fills defaults into doc (criticality 0 becomes DefaultCriticality)
// and the topology keeps doc.CIs: the caller must not modify doc afterwards.
// doc.Relations are not kept.
func Build(doc *Document, opts BuildOptions) (*Topology, error) {
	t, errs := build(doc, opts)
	if errs.total > 0 {
		return nil, &ValidationError{Source: opts.Source, Problems: errs.list, Total: errs.total}
	}
	return t, nil
}

// build does Build, returning the topology (complete only without errors)
// and the errors; warnings are in the topology either way.
func build(doc *Document, opts BuildOptions) (*Topology, problemList) {
	var errs problemList
	t := &Topology{cis: doc.CIs, bindLabels: opts.BindLabels}
	if t.bindLabels == nil {
		t.bindLabels = DefaultBindLabels
	}
	n := len(doc.CIs)
	if n >= math.MaxInt32 || len(doc.Relations) >= math.MaxInt32 {
		errs.add("", "", "too large: at most %d CIs and %d relations", math.MaxInt32-1, math.MaxInt32-1)
		return t, errs
	}
	t.buildCIs(&errs)
	t.buildRelations(doc.Relations, &errs)
	if errs.total > 0 {
		return t, errs
	}
	t.buildGraph()
	t.buildComponents()
	order, sccStart, sccOf := t.stronglyConnected()
	t.warnCycles(order, sccStart)
	maxImpact := opts.MaxImpactEntries
	if maxImpact == 0 {
		maxImpact = DefaultMaxImpactEntries
	}
	for i := range t.cis {
		if t.cis[i].Type == TypeService {
			t.services = append(t.services, Node(i))
		}
	}
	if maxImpact > 0 {
		t.impact = t.buildImpact(order, sccStart, sccOf, maxImpact)
	}
	t.version = t.computeVersion()
	return t, errs
}

// buildCIs checks the CIs, fills defaults and builds the binding table.
func (t *Topology) buildCIs(errs *problemList) {
	keys, bytes := len(t.cis), 0
	for i := range t.cis {
		ci := &t.cis[i]
		keys += len(ci.Aliases)
		bytes += len(ci.ID) + len(ci.Name)
		for _, a := range ci.Aliases {
			bytes += len(a)
		}
		if ci.Name != "" {
			keys++
		}
	}
	t.bind = newBindTable(keys, bytes)
	for i := range t.cis {
		ci := &t.cis[i]
		if ci.Type == "" {
			errs.add(ciWhere(i), ci.ID, "empty type (service, application, host, vm, database, switch, site, ...)")
		}
		switch {
		case ci.Criticality == 0:
			ci.Criticality = DefaultCriticality
		case ci.Criticality < MostCritical || ci.Criticality > LeastCritical:
			errs.add(ciWhere(i), ci.ID, "criticality %d is outside %d..%d (%d is the most critical; leave it out for %d)",
				ci.Criticality, MostCritical, LeastCritical, MostCritical, DefaultCriticality)
		}
		for j, a := range ci.Aliases {
			if a == "" {
				errs.add(ciWhere(i), ci.ID, "aliases[%d] is empty", j)
			}
		}
		if len(ci.Aliases) > bindMaxAliases {
			errs.add(ciWhere(i), ci.ID, "%d aliases: at most %d", len(ci.Aliases), bindMaxAliases)
		}
		if ci.ID == "" {
			errs.add(ciWhere(i), "", "empty id: every CI needs a unique id")
			continue
		}
		if len(ci.ID) > bindMaxKey {
			errs.add(ciWhere(i), ci.ID[:64]+"...", "id longer than %d bytes", bindMaxKey)
			continue
		}
		h := bindHash(ci.ID)
		if j := t.lookupIDHash(h, ci.ID); j >= 0 {
			errs.add(ciWhere(i), ci.ID, "duplicate id: %s has it already", ciWhere(int(j)))
			continue
		}
		if j := t.lookupFoldHash(h, ci.ID); j >= 0 {
			t.warnings.add(ciWhere(i), ci.ID, "id differs only in case from the id of %s (%q): binding finds %s first",
				ciWhere(int(j)), t.cis[j].ID, ciWhere(int(j)))
		}
		t.bind.insert(h, int32(i), bindKeyID, ci.ID)
	}
	if errs.total > 0 {
		return
	}
	// Aliases, then names: the first claim of a key wins.
	for i := range t.cis {
		ci := &t.cis[i]
		for j, a := range ci.Aliases {
			if j >= bindMaxAliases {
				break
			}
			t.claim(a, int32(i), uint16(bindKeyAlias0+j), "alias")
		}
	}
	for i := range t.cis {
		if name := t.cis[i].Name; name != "" {
			t.claim(name, int32(i), bindKeyName, "name")
		}
	}
}

// claim inserts key for CI i unless a CI already has it, and warns when
// that CI is another one.
func (t *Topology) claim(key string, i int32, kind uint16, what string) {
	if len(key) > bindMaxKey {
		t.warnings.add(ciWhere(int(i)), t.cis[i].ID, "%s longer than %d bytes: not used for binding", what, bindMaxKey)
		return
	}
	h := bindHash(key)
	j := t.lookupFoldHash(h, key)
	if j < 0 {
		t.bind.insert(h, i, kind, key)
		return
	}
	if j == i {
		return
	}
	t.warnings.add(ciWhere(int(i)), t.cis[i].ID, "%s %q already names %s (%q) as its %s: events with it bind to %s",
		what, key, ciWhere(int(j)), t.cis[j].ID, t.keyKind(j, key), t.cis[j].ID)
}

// keyKind says which key of CI j matches key: id, alias or name.
func (t *Topology) keyKind(j int32, key string) string {
	ci := &t.cis[j]
	switch {
	case bindEqualFold(ci.ID, key):
		return "id"
	case slices.ContainsFunc(ci.Aliases, func(a string) bool { return bindEqualFold(a, key) }):
		return "alias"
	}
	return "name"
}

func relID(r *Relation) string { return r.Source + " -> " + r.Target }

// buildRelations resolves relation ends to nodes.
func (t *Topology) buildRelations(rels []Relation, errs *problemList) {
	m := len(rels)
	t.relSrc = make([]int32, m)
	t.relDst = make([]int32, m)
	t.relType = make([]uint16, m)
	typeIdx := map[string]uint16{}
	// Exports list relations grouped by source: resolve a repeated source
	// once.
	lastSrc, lastNode := "", int32(-1)
	for k := range rels {
		r := &rels[k]
		src := lastNode
		if r.Source != lastSrc || src < 0 {
			src = t.resolveEnd(r.Source, "source", k, r, errs)
			lastSrc, lastNode = r.Source, src
		}
		dst := t.resolveEnd(r.Target, "target", k, r, errs)
		if src >= 0 && src == dst {
			errs.add(relWhere(k), relID(r), "a CI cannot depend on itself")
		}
		typ := r.Type
		if typ == "" {
			typ = RelDependsOn
		}
		ti, ok := typeIdx[typ]
		if !ok {
			if len(t.relTypes) > math.MaxUint16 {
				errs.add(relWhere(k), relID(r), "more than %d relation types", math.MaxUint16+1)
				continue
			}
			ti = uint16(len(t.relTypes))
			typeIdx[typ] = ti
			t.relTypes = append(t.relTypes, typ)
		}
		t.relSrc[k], t.relDst[k], t.relType[k] = src, dst, ti
	}
}

func (t *Topology) resolveEnd(id, end string, k int, r *Relation, errs *problemList) int32 {
	if id == "" {
		errs.add(relWhere(k), relID(r), "empty %s: a relation needs the ids of both CIs", end)
		return -1
	}
	n := t.lookupID(id)
	if n >= 0 {
		return n
	}
	hint := ""
	if j := t.lookupFold(id); j >= 0 {
		hint = fmt.Sprintf(" (relations take ids; did you mean %q?)", t.cis[j].ID)
	}
	errs.add(relWhere(k), relID(r), "unknown %s CI %q%s", end, id, hint)
	return -1
}

// buildGraph builds both adjacencies, sorted and without duplicate edges,
// and warns about duplicate relations.
func (t *Topology) buildGraph() {
	n, m := len(t.cis), len(t.relSrc)
	start := make([]int32, n+1)
	for _, s := range t.relSrc {
		start[s+1]++
	}
	for i := range n {
		start[i+1] += start[i]
	}
	// Sort each node's targets with their types, to find duplicates.
	keys := make([]uint64, m)
	pos := slices.Clone(start[:n])
	for k, s := range t.relSrc {
		keys[pos[s]] = uint64(t.relDst[k])<<16 | uint64(t.relType[k])
		pos[s]++
	}
	pos = nil
	adj := make([]int32, 0, m)
	ostart := make([]int32, n+1)
	var dups int
	var examples []string
	for u := range n {
		seg := keys[start[u]:start[u+1]]
		slices.Sort(seg)
		last := int32(-1)
		for i, key := range seg {
			v := int32(key >> 16)
			if i > 0 && key == seg[i-1] {
				dups++
				if len(examples) < 3 {
					examples = append(examples, fmt.Sprintf("%s -> %s (%s)", t.cis[u].ID, t.cis[v].ID, t.relTypes[key&0xffff]))
				}
			}
			if v != last {
				adj = append(adj, v)
				last = v
			}
		}
		ostart[u+1] = int32(len(adj))
	}
	keys = nil
	if dups > 0 {
		t.warnings.add("", "", "%d relations repeat an earlier one (same source, target and type), e.g. %s", dups, strings.Join(examples, ", "))
	}
	t.out = csr{start: ostart, adj: slices.Clip(adj)}

	// The transpose, filled in ascending source order so that each list
	// comes out sorted.
	istart := make([]int32, n+1)
	for _, v := range t.out.adj {
		istart[v+1]++
	}
	for i := range n {
		istart[i+1] += istart[i]
	}
	iadj := make([]int32, len(t.out.adj))
	fill := slices.Clone(istart[:n])
	for u := range n {
		for _, v := range t.out.of(int32(u)) {
			iadj[fill[v]] = int32(u)
			fill[v]++
		}
	}
	t.in = csr{start: istart, adj: iadj}
}

// buildComponents labels the weakly connected components with union-find,
// numbering them in the order of their first CI.
func (t *Topology) buildComponents() {
	n := len(t.cis)
	parent := make([]int32, n)
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(x int32) int32 {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for u := range n {
		for _, v := range t.out.of(int32(u)) {
			a, b := find(int32(u)), find(v)
			if a != b {
				// Attach the later root to the earlier: deterministic, and
				// with path halving shallow enough.
				if a < b {
					parent[b] = a
				} else {
					parent[a] = b
				}
			}
		}
	}
	t.comp = make([]int32, n)
	for i := range n {
		r := find(int32(i))
		if r == int32(i) {
			t.comp[i] = int32(len(t.compSize))
			t.compSize = append(t.compSize, 0)
		} else {
			t.comp[i] = t.comp[r] // r < i: labelled already
		}
		t.compSize[t.comp[i]]++
	}
}

// stronglyConnected runs Tarjan's algorithm (iteratively) over the
// dependency edges. It returns the nodes grouped by component, components
// in the order found (each after every component it depends on), the start
// of each group in order, and the component of each node.
func (t *Topology) stronglyConnected() (order, start, sccOf []int32) {
	n := len(t.cis)
	index := make([]int32, n) // 1-based discovery index; 0 unvisited
	low := make([]int32, n)
	sccOf = make([]int32, n)
	for i := range sccOf {
		sccOf[i] = -1
	}
	order = make([]int32, 0, n)
	start = append(make([]int32, 0, 1024), 0)
	var stack []int32
	type frame struct{ v, e int32 }
	var calls []frame
	next := int32(1)
	visit := func(v int32) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		calls = append(calls, frame{v, t.out.start[v]})
	}
	for root := range int32(n) {
		if index[root] != 0 {
			continue
		}
		visit(root)
		for len(calls) > 0 {
			f := &calls[len(calls)-1]
			v := f.v
			if f.e < t.out.start[v+1] {
				w := t.out.adj[f.e]
				f.e++
				if index[w] == 0 {
					visit(w)
				} else if sccOf[w] < 0 { // on the stack
					low[v] = min(low[v], index[w])
				}
				continue
			}
			calls = calls[:len(calls)-1]
			if len(calls) > 0 {
				p := calls[len(calls)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				id := int32(len(start) - 1)
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					sccOf[w] = id
					order = append(order, w)
					if w == v {
						break
					}
				}
				start = append(start, int32(len(order)))
			}
		}
	}
	return order, start, sccOf
}

// warnCycles warns about each group of CIs that depend on each other.
// Cycles are allowed (clusters and mutual dependencies exist), but they are
// often mistakes of direction, and impact inside them spreads to every
// member.
func (t *Topology) warnCycles(order, start []int32) {
	const members = 5
	for c := 0; c+1 < len(start); c++ {
		group := order[start[c]:start[c+1]]
		if len(group) < 2 {
			continue
		}
		ids := make([]int32, len(group))
		copy(ids, group)
		slices.Sort(ids)
		var b strings.Builder
		for i, v := range ids[:min(members, len(ids))] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.cis[v].ID)
		}
		if len(ids) > members {
			fmt.Fprintf(&b, " and %d more", len(ids)-members)
		}
		t.warnings.add("", t.cis[ids[0]].ID, "dependency cycle among %d CIs: %s", len(ids), b.String())
	}
}

// Len returns the number of CIs.
func (t *Topology) Len() int { return len(t.cis) }

// NumRelations returns the number of relations, duplicates included.
func (t *Topology) NumRelations() int { return len(t.relSrc) }

// Version returns a hash of the content (16 hex digits): CIs with every
// field after defaults, and relations. It does not depend on the order of
// CIs or relations in the document, so a re-export of the same CMDB keeps
// its version.
func (t *Topology) Version() string { return t.version }

// Warnings returns up to MaxProblems warnings found by Build, in the order
// found; WarningsTotal counts them all.
func (t *Topology) Warnings() []Problem { return t.warnings.list }

// WarningsTotal returns the number of warnings found by Build.
func (t *Topology) WarningsTotal() int { return t.warnings.total }

// BindLabels returns the labels Bind tries, in order.
func (t *Topology) BindLabels() []string { return t.bindLabels }

// EachCI calls f with each CI in document order. f must not modify it.
func (t *Topology) EachCI(f func(*CI)) {
	for i := range t.cis {
		f(&t.cis[i])
	}
}

// EachRelation calls f with each relation in document order, with the
// relation type defaulted.
func (t *Topology) EachRelation(f func(Relation)) {
	for k := range t.relSrc {
		f(Relation{Source: t.cis[t.relSrc[k]].ID, Target: t.cis[t.relDst[k]].ID, Type: t.relTypes[t.relType[k]]})
	}
}

// Node returns the node of the CI with exactly this id.
func (t *Topology) Node(id string) (Node, bool) {
	n := t.lookupID(id)
	return Node(n), n >= 0
}

// ID returns the id of node n.
func (t *Topology) ID(n Node) string { return t.cis[n].ID }

// At returns the CI of node n. It must not be modified.
func (t *Topology) At(n Node) *CI { return &t.cis[n] }

// CI returns the CI with this id (exactly), with its attributes. It must not
// be modified.
func (t *Topology) CI(id string) (*CI, bool) {
	n := t.lookupID(id)
	if n < 0 {
		return nil, false
	}
	return &t.cis[n], true
}

// Criticality returns the criticality of the CI with this id, 1 (most
// critical) to 4, defaults applied.
func (t *Topology) Criticality(id string) (int, bool) {
	n := t.lookupID(id)
	if n < 0 {
		return 0, false
	}
	return t.cis[n].Criticality, true
}

// SupportGroup returns the support group of the CI with this id (empty when
// it names none).
func (t *Topology) SupportGroup(id string) (string, bool) {
	n := t.lookupID(id)
	if n < 0 {
		return "", false
	}
	return t.cis[n].SupportGroup, true
}

// IsService reports whether node n is a business service (type service).
func (t *Topology) IsService(n Node) bool { return t.cis[n].Type == TypeService }

// Services returns the business services, in document order. The slice
// must not be modified.
func (t *Topology) Services() []Node { return t.services }
