package rules

import (
	"strings"

	"github.com/correlatord/correlatord/event"
)

// inhibState holds the firing source alerts of one inhibit rule.
type inhibState struct {
	rule *inhibitRule
	// Equal-label form: sources by the hash of their equal labels' values,
	// and the hash each source fingerprint was filed under.
	sources map[uint64][]srcRef
	byFP    map[uint64]uint64
	// Topology form: the root alerts, in the order they fired, and their
	// position by fingerprint.
	roots   []srcRef
	rootIdx map[uint64]int
}

// srcRef is one inhibiting alert. Its strings are clones owned by the
// engine, handed out in Decisions.
type srcRef struct {
	fp       uint64
	fpStr    string
	ci       string
	lastSeen int64
}

func newInhibState(r *inhibitRule) *inhibState {
	return &inhibState{rule: r, sources: map[uint64][]srcRef{}, byFP: map[uint64]uint64{}, rootIdx: map[uint64]int{}}
}

func (s *inhibState) len() int { return len(s.byFP) + len(s.roots) }

var hashSep = []byte{0xff}

func (en *Engine) equalHash(e *event.Event, names []string) uint64 {
	en.dig.Reset()
	for _, n := range names {
		_, _ = en.dig.WriteString(e.Labels.Get(n))
		_, _ = en.dig.Write(hashSep)
	}
	return en.dig.Sum64()
}

// inhibited reports whether a firing source alert inhibits the event, and
// tags d with it. Alertmanager's semantics for the equal-label form: the
// target matchers match the event, a source (another alert) fires with the
// same values of the equal labels. Topology form: a root alert fires on
// the event's CI or on a CI the event's CI depends on within max_hops.
// Sources not seen for the firing TTL no longer inhibit.
func (en *Engine) inhibited(topo Topology, e *event.Event, fp uint64, nowNS int64, d *Decision) bool {
	ttl := int64(en.cfg.State.FiringTTL)
	for i, s := range en.inhib {
		if s.len() == 0 {
			continue
		}
		r := s.rule
		if !en.ctx.matchAll(r.target) {
			continue
		}
		var src *srcRef
		if r.topology {
			if topo == nil || e.CI == "" {
				continue
			}
			for j := range s.roots {
				x := &s.roots[j]
				if x.fp == fp || nowNS-x.lastSeen > ttl {
					continue
				}
				if x.ci == e.CI || topo.DependsOn(e.CI, x.ci, r.maxHops) {
					src = x
					break
				}
			}
		} else {
			list := s.sources[en.equalHash(e, r.equal)]
			for j := range list {
				if x := &list[j]; x.fp != fp && nowNS-x.lastSeen <= ttl {
					src = x
					break
				}
			}
		}
		if src != nil {
			d.InhibitedBy, d.InhibitedByCI, d.InhibitRule = src.fpStr, src.ci, r.name
			en.counts.inhibits[i]++
			return true
		}
	}
	return false
}

// trackSources files a firing alert as a source of the inhibit rules whose
// source matchers it matches, and removes a resolved one. A topology root
// must be an exception-class alert that was passed on to correlation: its
// incident is the one the symptoms join.
func (en *Engine) trackSources(topo Topology, e *event.Event, fp uint64, st *alertState, nowNS int64, d *Decision) {
	for _, s := range en.inhib {
		r := s.rule
		if !st.firing {
			if s.len() > 0 {
				s.remove(fp)
			}
			continue
		}
		if !en.ctx.matchAll(r.source) {
			continue
		}
		if r.topology {
			if e.CI == "" || d.Class != ClassException || st.notified == notNotified {
				continue
			}
			if k, ok := s.rootIdx[fp]; ok {
				s.roots[k].lastSeen = nowNS
				continue
			}
			if s.len() >= en.cfg.Inhibition.MaxSources {
				en.counts.evicted[stateInhibitSources][evictOverflow]++
				continue
			}
			s.rootIdx[fp] = len(s.roots)
			s.roots = append(s.roots, srcRef{fp: fp, fpStr: strings.Clone(e.Fingerprint), ci: strings.Clone(e.CI), lastSeen: nowNS})
			continue
		}
		h := en.equalHash(e, r.equal)
		if old, ok := s.byFP[fp]; ok {
			if old == h {
				list := s.sources[h]
				for j := range list {
					if list[j].fp == fp {
						list[j].lastSeen = nowNS
					}
				}
				continue
			}
			s.remove(fp) // its equal labels changed
		}
		if s.len() >= en.cfg.Inhibition.MaxSources {
			en.counts.evicted[stateInhibitSources][evictOverflow]++
			continue
		}
		s.byFP[fp] = h
		s.sources[h] = append(s.sources[h], srcRef{fp: fp, fpStr: strings.Clone(e.Fingerprint), ci: strings.Clone(e.CI), lastSeen: nowNS})
	}
}

func (s *inhibState) remove(fp uint64) {
	if h, ok := s.byFP[fp]; ok {
		delete(s.byFP, fp)
		list := s.sources[h]
		out := list[:0]
		for _, x := range list {
			if x.fp != fp {
				out = append(out, x)
			}
		}
		clear(list[len(out):])
		if len(out) == 0 {
			delete(s.sources, h)
		} else {
			s.sources[h] = out
		}
	}
	if k, ok := s.rootIdx[fp]; ok {
		delete(s.rootIdx, fp)
		// Keep the firing order: shift, then fix the positions after k.
		copy(s.roots[k:], s.roots[k+1:])
		s.roots[len(s.roots)-1] = srcRef{}
		s.roots = s.roots[:len(s.roots)-1]
		for j := k; j < len(s.roots); j++ {
			s.rootIdx[s.roots[j].fp] = j
		}
	}
}

// sweep removes sources not seen for ttl and returns how many.
func (s *inhibState) sweep(nowNS, ttl int64) int {
	var stale []uint64
	for _, list := range s.sources {
		for _, x := range list {
			if nowNS-x.lastSeen > ttl {
				stale = append(stale, x.fp)
			}
		}
	}
	for _, x := range s.roots {
		if nowNS-x.lastSeen > ttl {
			stale = append(stale, x.fp)
		}
	}
	for _, fp := range stale {
		s.remove(fp)
	}
	return len(stale)
}
