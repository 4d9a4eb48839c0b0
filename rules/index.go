package rules

import "github.com/cespare/xxhash/v2"

// ruleIndex finds the rules an event can match without testing all of
// them. Each rule with an equality matcher (or a regexp that is a list of
// literals, severity=~"critical|major") is filed under the hash of
// (name, value) for each value; the rest are unindexed. An
// event's candidates are the rules filed under its own values of the
// indexed names plus the unindexed rules, merged in rule order, so the
// order semantics are exactly those of a linear scan.
type ruleIndex struct {
	names     []fieldRef
	buckets   map[uint64][]int32
	unindexed []int32
}

// fieldRef names a value of an event: a label, a field or a CI value.
type fieldRef struct {
	src  source
	name string
}

func indexKey(name int, value string) uint64 {
	return xxhash.Sum64String(value) ^ (uint64(name)+1)*0x9E3779B97F4A7C15
}

func buildIndex(rules []rule) ruleIndex {
	ix := ruleIndex{buckets: map[uint64][]int32{}}
	// How many rules could be filed under each (name, value): a rule is
	// filed under the matcher whose largest bucket is smallest, so that
	// env="prod", shared by many rules, does not make every production
	// event a candidate for all of them when alertname="X" can key them.
	type key struct {
		n fieldRef
		v string
	}
	share := map[key]int{}
	for ri := range rules {
		for mi := range rules[ri].matchers {
			m := &rules[ri].matchers[mi]
			if vals := m.indexValues(); vals != nil {
				for _, v := range vals {
					share[key{fieldRef{m.src, m.name}, v}]++
				}
			}
		}
	}
	nameIdx := map[fieldRef]int{}
	for ri := range rules {
		r := &rules[ri]
		best, bestCost := -1, 0
		for mi := range r.matchers {
			m := &r.matchers[mi]
			vals := m.indexValues()
			if vals == nil {
				continue
			}
			cost := 0
			for _, v := range vals {
				cost = max(cost, share[key{fieldRef{m.src, m.name}, v}])
			}
			cost *= len(vals)
			if m.src.needsCI() {
				// Keyed by a CMDB value, the rule costs every event a CI
				// lookup: only when nothing else can key it (it would be
				// evaluated, lookup included, for every event otherwise).
				cost += 1 << 30
			}
			if best < 0 || cost < bestCost {
				best, bestCost = mi, cost
			}
		}
		if best < 0 {
			ix.unindexed = append(ix.unindexed, int32(ri))
			continue
		}
		m := &r.matchers[best]
		n := fieldRef{m.src, m.name}
		ni, ok := nameIdx[n]
		if !ok {
			ni = len(ix.names)
			nameIdx[n] = ni
			ix.names = append(ix.names, n)
		}
		for _, v := range m.indexValues() {
			k := indexKey(ni, v)
			b := ix.buckets[k]
			if len(b) == 0 || b[len(b)-1] != int32(ri) {
				ix.buckets[k] = append(b, int32(ri))
			}
		}
	}
	return ix
}

// candidates appends to buf[:0] the indexes of the rules from rule from on
// that the event can match, in rule order.
func (ix *ruleIndex) candidates(c *evalCtx, from int32, buf []int32) []int32 {
	buf = buf[:0]
	sources := 0
	for ni := range ix.names {
		n := &ix.names[ni]
		b := ix.buckets[indexKey(ni, c.value(n.src, n.name))]
		if len(b) == 0 {
			continue
		}
		sources++
		for _, ri := range b {
			if ri >= from {
				buf = append(buf, ri)
			}
		}
	}
	if len(ix.unindexed) > 0 {
		sources++
		for _, ri := range ix.unindexed {
			if ri >= from {
				buf = append(buf, ri)
			}
		}
	}
	if sources <= 1 {
		return buf // one sorted list
	}
	// Insertion sort and dedupe: candidate lists are short.
	for i := 1; i < len(buf); i++ {
		for j := i; j > 0 && buf[j] < buf[j-1]; j-- {
			buf[j], buf[j-1] = buf[j-1], buf[j]
		}
	}
	out := buf[:0]
	for _, ri := range buf {
		if len(out) == 0 || ri != out[len(out)-1] {
			out = append(out, ri)
		}
	}
	return out
}
