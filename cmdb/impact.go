package cmdb

import (
	"math/bits"
	"slices"
)

// impactIndex holds, for every node, the business services that depend on
// it transitively: the answer of ImpactedServices, precomputed.
//
// The sets are computed once per Topology over the condensation of the
// dependency graph (cycles collapse to one node: every member of a cycle
// impacts the same services), dependents before dependencies:
//
//	impacted(v) = {v if v is a service} ∪ ⋃ impacted(u) for u depending on v
//
// Equal sets are stored once and shared (hash-consed): most nodes inherit
// the set of their single dependent unchanged, and a host, its VMs and the
// applications on them usually impact the same few services. A query is
// then two slice indexings. The index is bounded (BuildOptions.
// MaxImpactEntries); a topology past the bound answers by walking the graph.
type impactIndex struct {
	set   []int32 // set id of each node; nil when there is no index
	start []int32 // set s is pool[start[s]:start[s+1]]; set 0 is empty
	pool  []Node
}

func (ix *impactIndex) of(n int32) []Node {
	s := ix.set[n]
	return ix.pool[ix.start[s]:ix.start[s+1]:ix.start[s+1]]
}

// buildImpact computes the index from the strongly connected components
// (order, start, sccOf as returned by stronglyConnected). It returns an
// empty index (set nil) when the sets would exceed maxEntries.
func (t *Topology) buildImpact(order, sccStart, sccOf []int32, maxEntries int) impactIndex {
	n := len(t.cis)
	ix := impactIndex{set: make([]int32, n), start: []int32{0, 0}}
	if len(t.services) == 0 {
		return ix // every set is empty
	}
	byHash := map[uint64]int32{} // hash -> first set id with it
	var chain []int32            // next set id with the same hash, by id
	chain = append(chain, -1, -1)

	nodeMark := make([]uint32, n) // service nodes seen in the union being built
	setMark := []uint32{0}        // sets seen among the dependents of a component, by id
	var epoch uint32
	var children []int32
	var union []Node
	for c := len(sccStart) - 2; c >= 0; c-- {
		members := order[sccStart[c]:sccStart[c+1]]
		epoch++
		children = children[:0]
		own := 0
		for _, m := range members {
			if t.cis[m].Type == TypeService {
				own++
			}
			for _, u := range t.in.of(m) {
				if sccOf[u] == int32(c) {
					continue
				}
				s := ix.set[u]
				if s == 0 {
					continue
				}
				if setMark[s] != epoch {
					setMark[s] = epoch
					children = append(children, s)
				}
			}
		}
		var id int32
		switch {
		case own == 0 && len(children) == 0:
			id = 0
		case own == 0 && len(children) == 1:
			id = children[0]
		default:
			union = union[:0]
			add := func(v Node) {
				if nodeMark[v] != epoch {
					nodeMark[v] = epoch
					union = append(union, v)
				}
			}
			for _, s := range children {
				for _, v := range ix.pool[ix.start[s]:ix.start[s+1]] {
					add(v)
				}
			}
			for _, m := range members {
				if t.cis[m].Type == TypeService {
					add(Node(m))
				}
			}
			slices.Sort(union)
			h := impactHash(union)
			id = -1
			first, ok := byHash[h]
			for s := first; ok && s >= 0; s = chain[s] {
				if slices.Equal(ix.pool[ix.start[s]:ix.start[s+1]], union) {
					id = s
					break
				}
			}
			if id < 0 {
				if len(ix.pool)+len(union) > maxEntries {
					return impactIndex{}
				}
				id = int32(len(ix.start) - 1)
				ix.pool = append(ix.pool, union...)
				ix.start = append(ix.start, int32(len(ix.pool)))
				setMark = append(setMark, 0)
				if ok {
					chain = append(chain, first)
				} else {
					chain = append(chain, -1)
				}
				byHash[h] = id
			}
		}
		for _, m := range members {
			ix.set[m] = id
		}
	}
	ix.pool = slices.Clip(ix.pool)
	ix.start = slices.Clip(ix.start)
	return ix
}

func impactHash(s []Node) uint64 {
	h := uint64(len(s))
	for _, v := range s {
		h = bits.RotateLeft64((h^uint64(uint32(v)))*hashMul, 29)
	}
	return h
}
