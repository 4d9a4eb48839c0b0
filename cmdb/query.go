package cmdb

import (
	"math"
	"slices"
	"sync/atomic"
)

// The graph queries walk the dense int32 adjacency with a visit state: a
// stamp per node instead of a visited set, so a query allocates nothing of
// its own size and clears nothing. A stamp is "visited in this query" when
// it is at least the query's base; breadth-first searches that need depths
// store base+depth.
//
// Visit states are kept by the topology in a few lock-free slots rather
// than a sync.Pool: a pool is emptied by every GC, and a state is 4 bytes a
// node (4 MB for a million CIs), so refilling it after each collection
// would put a megabyte-scale allocation and clear on the query path. A
// query takes a state from a slot (atomic swap) or makes one; it puts it
// back into an empty slot, or drops it when all are taken. The states go
// with their topology.

// visitSlots is how many idle visit states a topology keeps.
const visitSlots = 8

type visitPool struct {
	slots [visitSlots]atomic.Pointer[visitState]
}

// visitState is the scratch of one query.
type visitState struct {
	a, b  []uint32 // stamps of the two sides of a search; b made on demand
	base  uint32   // first stamp of the next query
	queue []int32
	next  []int32
	spare []int32
}

// begin starts a query that will use stamps base..base+span and returns
// base. Both sides are cleared when the stamps would wrap.
func (v *visitState) begin(span int) uint32 {
	if span < 0 || span > math.MaxUint32/4 {
		span = math.MaxUint32 / 4
	}
	if uint64(v.base)+2*uint64(span)+2 >= math.MaxUint32 {
		clear(v.a)
		clear(v.b)
		v.base = 1
	}
	base := v.base
	v.base += uint32(span) + 1
	return base
}

func (t *Topology) getVisit() *visitState {
	for i := range t.visits.slots {
		if v := t.visits.slots[i].Swap(nil); v != nil {
			return v
		}
	}
	return &visitState{a: make([]uint32, len(t.cis)), base: 1}
}

func (t *Topology) putVisit(v *visitState) {
	for i := range t.visits.slots {
		if t.visits.slots[i].CompareAndSwap(nil, v) {
			return
		}
	}
}

// walk appends to dst the nodes reachable from n over g within depth hops
// (all of them when depth < 1), breadth first, n excluded.
func (t *Topology) walk(dst []Node, g *csr, n Node, depth int) []Node {
	if n < 0 || int(n) >= len(t.cis) {
		return dst
	}
	if depth < 1 {
		depth = math.MaxInt
	}
	v := t.getVisit()
	defer t.putVisit(v)
	base := v.begin(0)
	v.a[n] = base
	v.queue = append(v.queue[:0], int32(n))
	for d := 0; d < depth && len(v.queue) > 0; d++ {
		v.next = v.next[:0]
		for _, u := range v.queue {
			for _, w := range g.of(u) {
				if v.a[w] != base {
					v.a[w] = base
					v.next = append(v.next, w)
					dst = append(dst, Node(w))
				}
			}
		}
		v.queue, v.next = v.next, v.queue
	}
	return dst
}

// AppendDependents appends the CIs that depend on n, directly or through
// others, within depth hops (all when depth < 1), nearest first. These are
// what a failure of n impacts.
func (t *Topology) AppendDependents(dst []Node, n Node, depth int) []Node {
	return t.walk(dst, &t.in, n, depth)
}

// AppendDependencies appends the CIs n depends on, within depth hops (all
// when depth < 1), nearest first: the candidate causes of a failure of n.
func (t *Topology) AppendDependencies(dst []Node, n Node, depth int) []Node {
	return t.walk(dst, &t.out, n, depth)
}

// Dependents returns the ids of the CIs that depend on id within depth hops
// (all when depth < 1), nearest first; nil for an unknown id.
func (t *Topology) Dependents(id string, depth int) []string {
	return t.ids(t.AppendDependents(nil, Node(t.lookupID(id)), depth))
}

// Dependencies returns the ids of the CIs id depends on within depth hops
// (all when depth < 1), nearest first; nil for an unknown id.
func (t *Topology) Dependencies(id string, depth int) []string {
	return t.ids(t.AppendDependencies(nil, Node(t.lookupID(id)), depth))
}

func (t *Topology) ids(ns []Node) []string {
	if len(ns) == 0 {
		return nil
	}
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = t.cis[n].ID
	}
	return out
}

// PathLen returns the number of relations on a shortest path between a and
// b, following relations either way (related CIs, not only dependent ones),
// if there is one of at most maxHops (any length when maxHops < 1). A node
// is at 0 hops from itself.
func (t *Topology) PathLen(a, b Node, maxHops int) (int, bool) {
	return t.hops(a, b, maxHops, false)
}

// DependsOnPathLen returns the number of relations on a shortest chain by
// which a depends on b (a -> ... -> b), if there is one of at most maxHops
// (any length when maxHops < 1).
func (t *Topology) DependsOnPathLen(a, b Node, maxHops int) (int, bool) {
	return t.hops(a, b, maxHops, true)
}

// ShortestPath is PathLen by id; false when either id is unknown.
func (t *Topology) ShortestPath(a, b string, maxHops int) (hops int, ok bool) {
	return t.PathLen(Node(t.lookupID(a)), Node(t.lookupID(b)), maxHops)
}

// DependsOn is DependsOnPathLen by id: whether a depends on b within maxHops
// relations, and through how many; false when either id is unknown.
func (t *Topology) DependsOn(a, b string, maxHops int) (hops int, ok bool) {
	return t.DependsOnPathLen(Node(t.lookupID(a)), Node(t.lookupID(b)), maxHops)
}

// hops is a bidirectional breadth-first search: a forward from a, b
// backward from b, expanding the smaller frontier one whole layer at a time.
// The first layer that meets the other side gives the shortest length:
// before it, no node was within dA of a and dB of b, so the path is longer
// than dA+dB, and every meeting in layer dA+1 is at exactly dA+1+dB.
func (t *Topology) hops(a, b Node, maxHops int, directed bool) (int, bool) {
	n := Node(len(t.cis))
	if a < 0 || b < 0 || a >= n || b >= n {
		return 0, false
	}
	if a == b {
		return 0, true
	}
	if t.comp[a] != t.comp[b] {
		return 0, false
	}
	if maxHops < 1 || maxHops > len(t.cis) {
		maxHops = len(t.cis)
	}
	v := t.getVisit()
	defer t.putVisit(v)
	if v.b == nil {
		// Stamps start below any base, so a new side is all unvisited.
		v.b = make([]uint32, len(t.cis))
	}
	base := v.begin(maxHops)
	v.a[a], v.b[b] = base, base
	fa := append(v.queue[:0], int32(a))
	fb := append(v.next[:0], int32(b))
	spare := v.spare[:0]
	defer func() { v.queue, v.next, v.spare = fa[:0], fb[:0], spare[:0] }()
	da, db := 0, 0
	for da+db < maxHops && len(fa) > 0 && len(fb) > 0 {
		// Expand the side with the smaller frontier: forward from a along
		// dependencies, or backward from b along dependents; undirected,
		// both ways from either.
		forward := len(fa) <= len(fb)
		front, mine, theirs, d := fa, v.a, v.b, da
		g1, g2 := &t.out, &t.in
		if !forward {
			front, mine, theirs, d = fb, v.b, v.a, db
			g1, g2 = &t.in, &t.out
		}
		if directed {
			g2 = nil
		}
		next := spare[:0]
		stamp := base + uint32(d) + 1
		for _, u := range front {
			for _, g := range [2]*csr{g1, g2} {
				if g == nil {
					continue
				}
				for _, w := range g.of(u) {
					if theirs[w] >= base {
						return d + 1 + int(theirs[w]-base), true
					}
					if mine[w] < base {
						mine[w] = stamp
						next = append(next, w)
					}
				}
			}
		}
		spare = front
		if forward {
			fa, da = next, da+1
		} else {
			fb, db = next, db+1
		}
	}
	return 0, false
}

// ImpactedServicesOf returns the business services (CIs of type service)
// that depend on n, directly or transitively, n itself included when it is
// a service, in document order. The slice is shared: do not modify it.
// With the index (the default) this is two slice indexings; a topology
// whose index was dropped walks the dependents.
func (t *Topology) ImpactedServicesOf(n Node) []Node {
	if n < 0 || int(n) >= len(t.cis) {
		return nil
	}
	if t.impact.set != nil {
		return t.impact.of(int32(n))
	}
	return t.impactedWalk(n)
}

func (t *Topology) impactedWalk(n Node) []Node {
	var out []Node
	if t.IsService(n) {
		out = append(out, n)
	}
	v := t.getVisit()
	defer t.putVisit(v)
	base := v.begin(0)
	v.a[n] = base
	q := append(v.queue[:0], int32(n))
	for i := 0; i < len(q); i++ {
		for _, w := range t.in.of(q[i]) {
			if v.a[w] != base {
				v.a[w] = base
				q = append(q, w)
				if t.cis[w].Type == TypeService {
					out = append(out, Node(w))
				}
			}
		}
	}
	v.queue = q
	slices.Sort(out)
	return out
}

// ImpactedServices returns the ids of the business services that depend on
// id, directly or transitively (id itself when it is a service), in
// document order; nil for an unknown id or when none does.
func (t *Topology) ImpactedServices(id string) []string {
	return t.ids(t.ImpactedServicesOf(Node(t.lookupID(id))))
}

// ComponentOf returns the connected component of n (relations followed
// either way), numbered from 0 in the order of their first CI. CIs in
// different components share no incident; the numbering is stable for a
// given document, so instances can partition work by it.
func (t *Topology) ComponentOf(n Node) int { return int(t.comp[n]) }

// Component returns the connected component of the CI with this id.
func (t *Topology) Component(id string) (int, bool) {
	n := t.lookupID(id)
	if n < 0 {
		return 0, false
	}
	return int(t.comp[n]), true
}

// Components returns the number of connected components.
func (t *Topology) Components() int { return len(t.compSize) }

// ComponentSize returns the number of CIs in component c.
func (t *Topology) ComponentSize(c int) int { return int(t.compSize[c]) }
