package correlate

import "github.com/correlatord/correlatord/cmdb"

// Dep is a CI reached by following dependencies from an origin CI.
type Dep struct {
	// CI is the dependency's id.
	CI string
	// Hops is the number of relations from the origin.
	Hops int
	// Parent is the index, in the same slice, of the Dep this one was
	// reached from; -1 when reached directly from the origin.
	Parent int
}

// Topology is the part of the CMDB the engine uses, by CI id. It must be an
// immutable snapshot: the engine may call it at any time while it holds it.
// Implementations need not be safe for concurrent use beyond what one
// Engine does (one goroutine). Values must be comparable (use a pointer):
// the engine caches dependencies per snapshot and compares snapshots to
// know when to drop the cache.
type Topology interface {
	// Component returns the connected component of ci; false when ci is
	// unknown.
	Component(ci string) (int, bool)
	// AppendDependencies appends to dst the CIs ci depends on within
	// maxHops relations, nearest first, each once at its shortest
	// distance, and returns the extended slice. Parent indices are
	// relative to the appended part.
	AppendDependencies(dst []Dep, ci string, maxHops int) []Dep
}

// CMDB adapts a *cmdb.Topology to Topology. It keeps scratch buffers, so
// one CMDB value serves one Engine.
type CMDB struct {
	T *cmdb.Topology

	layer, next []cmdb.Node
	seen        map[cmdb.Node]int
}

// NewCMDB returns the adapter for t.
func NewCMDB(t *cmdb.Topology) *CMDB { return &CMDB{T: t, seen: map[cmdb.Node]int{}} }

// Component implements Topology.
func (c *CMDB) Component(ci string) (int, bool) { return c.T.Component(ci) }

// AppendDependencies implements Topology with a layered breadth-first walk
// over the cmdb's one-hop dependency query.
func (c *CMDB) AppendDependencies(dst []Dep, ci string, maxHops int) []Dep {
	n, ok := c.T.Node(ci)
	if !ok {
		return dst
	}
	base := len(dst)
	clear(c.seen)
	c.seen[n] = -1
	c.layer = append(c.layer[:0], n)
	for h := 1; h <= maxHops && len(c.layer) > 0; h++ {
		c.next = c.next[:0]
		for _, u := range c.layer {
			parent := c.seen[u]
			start := len(c.next)
			c.next = c.T.AppendDependencies(c.next, u, 1)
			k := start
			for _, v := range c.next[start:] {
				if _, dup := c.seen[v]; dup {
					continue
				}
				c.seen[v] = len(dst) - base
				dst = append(dst, Dep{CI: c.T.ID(v), Hops: h, Parent: parent})
				c.next[k] = v
				k++
			}
			c.next = c.next[:k]
		}
		c.layer, c.next = c.next, c.layer
	}
	return dst
}
