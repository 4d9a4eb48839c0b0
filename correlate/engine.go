package correlate

import (
	"container/heap"
	"encoding/hex"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/rules"
)

// InputFromDecision maps the rules stage's decision onto Input.
func InputFromDecision(d *rules.Decision) Input {
	return Input{Inhibited: d.Outcome == rules.OutcomeInhibited, InhibitedByCI: d.InhibitedByCI}
}

// reach is how a member CI reaches a CI by dependency.
type reach struct {
	hops   int
	origin string    // member CI the entry was reached from
	onset  time.Time // the origin's onset
}

// reaches keeps, per CI, the nearest and the latest member that reach it.
// An event relates only to members whose onsets are within Config.Window
// of its own, so that one long-lived alert on a hub (a site, a core
// switch) does not absorb every later failure beneath it; keeping the
// latest origin besides the nearest keeps that check exact for the common
// case at constant memory per CI.
type reaches struct{ near, late reach }

func (r *reaches) add(x reach) {
	if r.near.origin == "" || x.hops < r.near.hops || x.hops == r.near.hops && x.onset.After(r.near.onset) {
		r.near = x
	}
	if r.late.origin == "" || x.onset.After(r.late.onset) || x.onset.Equal(r.late.onset) && x.hops < r.late.hops {
		r.late = x
	}
}

// group is the engine's state of one incident.
type group struct {
	inc      Incident
	comp     int // topology component; -1 for a label group
	labelKey string
	last     time.Time // latest member onset: the window slides from it
	indexed  bool      // listed in Engine.byComp / byLabels

	reach   map[string]reaches // CIs within MaxHops of a member, by dependency
	ciDeps  map[string][]Dep   // member CI -> its dependencies
	explain map[string]int     // CI -> member CIs (other than itself) depending on it
	hopSum  map[string]int     // CI -> total hops of those dependencies
	onset   map[string]time.Time
	// firing maps the group's firing alerts (alert keys) to the hash of
	// the id of their latest member event.
	firing map[uint64]uint64
	// seen maps every alert of the group, firing or resolved, to the hash
	// of its latest member event id, so a redelivered event (Kafka after a
	// crash between a state write and an offset commit, or a first stage
	// that produced a batch twice) is recognised and not added again, even
	// after its alert resolved.
	seen map[uint64]uint64
	// sigFiring counts the firing alerts per signature key.
	sigFiring map[uint64]int
	keys      []uint64 // alert and signature keys indexed to this group

	quietSince time.Time
	// lastResolve is the latest resolution of a member alert.
	lastResolve time.Time
	bestMember  string
	bestOther   string
	merged      bool
	// openSeq is the engine's event sequence number when the group opened:
	// restored groups keep their opening order.
	openSeq uint64
	// queued is the deadline of g's pending entry in Engine.wakes.
	queued time.Time
	// savedMembers is how many of inc.Members the changelog holds as they
	// are, savedChunks how many member records it holds (see
	// AppendChanges). A merge reorders the members: it sets savedMembers
	// to 0.
	savedMembers, savedChunks int
}

// pending is an inhibited event that found no incident yet. It waits up to
// Config.Window (event time) for one to open: the inhibiting alert may
// reach the engine after its symptom.
type pending struct {
	ev   event.Event // a minimal copy: the caller's Labels are not kept
	t    time.Time
	comp int
	deps []Dep
}

// maxPending bounds the inhibited events waiting for an incident; past it
// the oldest is dropped (reported as unattached when it arrived).
const maxPending = 4096

// Engine groups events into incidents. It is not safe for concurrent use.
type Engine struct {
	cfg  Config
	topo func() Topology

	groups   []*group            // live groups, in opening order
	byComp   map[int][]*group    // joinable topology groups by component
	byLabels map[string]*group   // joinable label group by label key
	byKey    map[uint64]*group   // alert and CI-signature key -> group
	byID     map[string]*group   // incident id -> live group
	ciGroup  map[string][]*group // CI -> open groups with it as member (for inhibition)

	pending []pending // inhibited events waiting for their incident

	maxSeen   time.Time
	watermark time.Time
	seq       uint64
	// wakes queues the groups' deadlines (a hold-down ending, an incident
	// leaving the state), so Advance visits only the groups that are due.
	wakes wakeHeap
	// pruned is the watermark of the last pruning of the join indexes.
	pruned time.Time
	// dead counts the closed groups still in groups, removed in bulk.
	dead int

	deps []Dep // dependencies of the current event (read-only, from depCache)

	// dirty are the groups changed since the last AppendChanges, gone the
	// groups that left the state (closed or merged away) since.
	dirty map[*group]struct{}
	gone  []*group

	depCache map[string][]Dep // CI -> dependencies within MaxHops, for depTopo
	depTopo  Topology
	kb       []byte
	lkb      []byte // labelKey's

	// AppendChanges' scratch space: a record is encoded into enc (a
	// member record from members, a group's alert maps packed into
	// packed), then copied to its place in a recordArena.
	enc     []byte
	members []memberState
	packed  []byte
}

// New returns an engine. cfg must have passed Validate (New applies
// SetDefaults). topo returns the current topology snapshot; it is called
// once per Process.
func New(cfg Config, topo func() Topology) *Engine {
	cfg.SetDefaults()
	return &Engine{
		cfg:      cfg,
		topo:     topo,
		byComp:   map[int][]*group{},
		byLabels: map[string]*group{},
		byKey:    map[uint64]*group{},
		byID:     map[string]*group{},
		ciGroup:  map[string][]*group{},
		depCache: map[string][]Dep{},
		dirty:    map[*group]struct{}{},
	}
}

func incidentID(eventID string) string {
	var b [8]byte
	h := xxhash.Sum64String(eventID)
	for i := range b {
		b[i] = byte(h >> (56 - 8*i))
	}
	return "INC-" + hex.EncodeToString(b[:])
}

// alertKey identifies one alert across its deliveries: a hash of the
// fingerprint (or, without one, of CI, alertname and event id). Keys are
// uint64 hashes built in a reused buffer, so the lookup does not allocate.
// eventKeys are an event's alertKey and sigKey, computed once per event:
// Process looks both up and join indexes them.
type eventKeys struct{ alert, sig uint64 }

func (e *Engine) keysOf(ev *event.Event) eventKeys {
	return eventKeys{alert: e.alertKey(ev), sig: e.sigKey(ev)}
}

func (e *Engine) alertKey(ev *event.Event) uint64 {
	e.kb = append(e.kb[:0], 'f', 0)
	if ev.Fingerprint != "" {
		e.kb = append(e.kb, ev.Fingerprint...)
	} else {
		e.kb = append(append(append(append(append(e.kb, ev.CI...), 0), ev.Labels.Get("alertname")...), 0), ev.ID...)
	}
	return xxhash.Sum64(e.kb)
}

// sigKey is the ISO 20000 "same incident" signature: same CI, same
// symptom (alertname, else fingerprint). Zero when the event has none.
func (e *Engine) sigKey(ev *event.Event) uint64 {
	if ev.CI == "" {
		return 0
	}
	sym := ev.Labels.Get("alertname")
	if sym == "" {
		sym = ev.Fingerprint
	}
	if sym == "" {
		return 0
	}
	e.kb = append(append(append(append(e.kb[:0], 's', 0), ev.CI...), 0), sym...)
	return xxhash.Sum64(e.kb)
}

// labelKey writes ev's group-by key (Config.GroupBy) into e.lkb and
// returns it. The bytes are e's until the next call: lookups with
// string(key) copy nothing, and only a new group makes the key a string.
func (e *Engine) labelKey(ev *event.Event) []byte {
	b := e.lkb[:0]
	for _, l := range e.cfg.GroupBy {
		b = append(b, l...)
		b = append(b, '=')
		b = append(b, ev.Labels.Get(l)...)
		b = append(b, 0)
	}
	e.lkb = b
	return b
}

// Process correlates one event that the rules stage passed on. now is the
// processing time, used for nothing but is kept for symmetry with the other
// stages (the engine runs on event time). Events later than
// Config.AllowedLateness behind the newest event are placed at the
// lateness bound. The returned updates are the caller's.
func (e *Engine) Process(ev *event.Event, in Input, now time.Time) []Update {
	_ = now
	t := ev.Time
	if t.After(e.maxSeen) {
		e.maxSeen = t
	}
	if lb := e.maxSeen.Add(-e.cfg.AllowedLateness); t.Before(lb) {
		t = lb
	}
	e.seq++
	if ev.Status == event.StatusResolved {
		return e.resolve(ev, t)
	}
	var ups []Update
	keys := e.keysOf(ev)
	ak, sk := keys.alert, keys.sig
	// Same alert again, or the same CI and symptom as an unresolved (or
	// recently resolved) incident: join it.
	g := e.byKey[ak]
	sameAlert := g != nil
	if sameAlert {
		if h, ok := g.seen[ak]; ok && h == xxhash.Sum64String(ev.ID) {
			return nil // the same event again: a redelivery, not news
		}
	}
	if g == nil && sk != 0 {
		g = e.byKey[sk]
	}
	var topo Topology
	if e.topo != nil {
		topo = e.topo()
	}
	comp, bound := -1, false
	if ev.CI != "" && topo != nil {
		comp, bound = topo.Component(ev.CI)
	}
	if bound && g != nil && !sameAlert && g.sigFiring[sk] == 0 && ev.CI != g.inc.RootCauseCI {
		// A recurrence of a symptom's signature (a new alert; none of the
		// incident's alerts with this CI and symptom still firing) while
		// the incident's root cause does not recur: a new failure around
		// a symptom CI, not a relapse. Correlate it by topology like any
		// new alert; otherwise one old incident absorbs every later
		// failure around its CIs for the reopen window. A duplicate of a
		// still firing alert, or a recurrence on the root cause itself,
		// keeps the ISO 20000 rule.
		g = nil
	}
	if g != nil {
		if g.inc.Status == StatusResolved {
			g.inc.Status = StatusOpen
			g.inc.ResolvedAt = time.Time{}
			g.inc.Reopened++
			ups = append(ups, Update{Kind: UpdateReopened, IncidentID: g.inc.ID, EventID: ev.ID, At: t})
		}
		return e.join(ups, g, ev, keys, t, in, Member{Reason: ReasonSameIncident, RelatedCI: ev.CI})
	}
	if !bound {
		return e.processUnbound(ups, ev, keys, t, in)
	}
	e.deps = e.depsOf(topo, ev.CI)
	related, rel := e.relatedGroups(ev.CI, comp, t)
	return e.place(ups, ev, keys, t, in, comp, related, rel)
}

// relatedGroups returns the joinable groups of component comp that ci
// (with dependencies e.deps) relates to at t, with the explanations, and
// drops the groups whose windows closed from the component index.
func (e *Engine) relatedGroups(ci string, comp int, t time.Time) ([]*group, []Member) {
	var related []*group
	var rel []Member
	list := e.byComp[comp]
	k := 0
	for _, c := range list {
		if !e.joinable(c, t) {
			c.indexed = false
			continue
		}
		list[k] = c
		k++
		if m, ok := e.related(c, ci, t, e.deps); ok {
			related = append(related, c)
			rel = append(rel, m)
		} else if m, ok := e.suspect(c, ci, e.deps); ok {
			related = append(related, c)
			rel = append(rel, m)
		}
	}
	clear(list[k:])
	e.byComp[comp] = list[:k]
	return related, rel
}

// place joins ev to the related groups (merging them), or opens an
// incident when there is none.
func (e *Engine) place(ups []Update, ev *event.Event, keys eventKeys, t time.Time, in Input, comp int, related []*group, rel []Member) []Update {
	var g *group
	if len(related) == 0 && in.Inhibited && in.InhibitedByCI != "" {
		for _, c := range e.ciGroup[in.InhibitedByCI] {
			if c.inc.Status == StatusOpen {
				related = append(related, c)
				rel = append(rel, Member{RelatedCI: in.InhibitedByCI})
				break
			}
		}
	}
	if len(related) == 0 {
		if in.Inhibited {
			e.hold(ev, t, comp)
			return append(ups, Update{Kind: UpdateUnattached, EventID: ev.ID, At: t})
		}
		g = e.open(ev, t, comp, "")
		ups = append(ups, Update{Kind: UpdateOpened, IncidentID: g.inc.ID, EventID: ev.ID, At: t})
		ups = e.join(ups, g, ev, keys, t, in, Member{Reason: ReasonOpened})
		return e.attachPending(ups, g)
	}
	g = related[0]
	m := rel[0]
	for i, o := range related[1:] {
		if older(o, g) {
			g, m = o, rel[i+1]
		}
	}
	for _, o := range related {
		if o != g {
			ups = e.merge(ups, g, o, ev.ID, t)
		}
	}
	m.Reason = ReasonTopology
	return e.join(ups, g, ev, keys, t, in, m)
}

// maxDepCache bounds the dependency cache; past it the cache starts over.
const maxDepCache = 1 << 16

// depsOf returns the dependencies of ci within MaxHops from a cache kept
// per topology snapshot. The slice is shared and must not be modified.
// Topology values are compared to detect a new snapshot, so they must be
// comparable (a pointer, as *CMDB is).
func (e *Engine) depsOf(topo Topology, ci string) []Dep {
	if topo != e.depTopo {
		clear(e.depCache)
		e.depTopo = topo
	}
	if d, ok := e.depCache[ci]; ok {
		return d
	}
	if len(e.depCache) >= maxDepCache {
		clear(e.depCache)
	}
	d := topo.AppendDependencies(nil, ci, e.cfg.MaxHops)
	e.depCache[ci] = d
	return d
}

func (e *Engine) hold(ev *event.Event, t time.Time, comp int) {
	if len(e.pending) >= maxPending {
		e.pending = slices.Delete(e.pending, 0, 1)
	}
	p := pending{t: t, comp: comp, deps: e.deps}
	p.ev = event.Event{ID: ev.ID, Time: ev.Time, Status: ev.Status, CI: ev.CI, Fingerprint: ev.Fingerprint,
		Severity: ev.Severity, Labels: event.Labels{{Name: "alertname", Value: ev.Labels.Get("alertname")}}}
	e.pending = append(e.pending, p)
}

// attachPending joins to g, just opened, the held inhibited events of its
// component that relate to it.
func (e *Engine) attachPending(ups []Update, g *group) []Update {
	k := 0
	for _, p := range e.pending {
		if p.comp == g.comp && e.joinable(g, p.t) {
			if m, ok := e.related(g, p.ev.CI, p.t, p.deps); ok {
				e.deps = p.deps
				ups = e.join(ups, g, &p.ev, e.keysOf(&p.ev), p.t, Input{Inhibited: true}, m)
				continue
			}
		}
		e.pending[k] = p
		k++
	}
	clear(e.pending[k:])
	e.pending = e.pending[:k]
	return ups
}

func older(a, b *group) bool {
	if !a.inc.OpenedAt.Equal(b.inc.OpenedAt) {
		return a.inc.OpenedAt.Before(b.inc.OpenedAt)
	}
	return a.inc.ID < b.inc.ID
}

// joinable reports whether g still accepts topology or label joins at t.
func (e *Engine) joinable(g *group, t time.Time) bool {
	return !g.merged && g.inc.Status == StatusOpen &&
		!t.After(g.last.Add(e.cfg.Window)) &&
		!t.Before(g.inc.OpenedAt.Add(-e.cfg.Window)) &&
		t.Sub(g.inc.OpenedAt) <= e.cfg.MaxSpan
}

// related reports whether ci (with its dependencies deps) is within MaxHops
// of a member of g, through a dependency either way or a shared one (within
// SharedMaxHops), with onsets within Window, and explains the nearest such
// relation.
func (e *Engine) related(g *group, ci string, t time.Time, deps []Dep) (Member, bool) {
	best, bestHops, bestVia := -2, e.cfg.MaxHops+1, reach{}
	try := func(i, h int, rs reaches) {
		for _, r := range [2]reach{rs.near, rs.late} {
			d := t.Sub(r.onset)
			if d < -e.cfg.Window || d > e.cfg.Window {
				continue
			}
			if h > 0 && r.hops > 0 && h+r.hops > e.cfg.SharedMaxHops {
				continue
			}
			if h+r.hops < bestHops {
				best, bestHops, bestVia = i, h+r.hops, r
			}
		}
	}
	if rs, ok := g.reach[ci]; ok {
		try(-1, 0, rs)
	}
	for i := range deps {
		if deps[i].Hops >= bestHops {
			break // nearest first: nothing better follows
		}
		if rs, ok := g.reach[deps[i].CI]; ok {
			try(i, deps[i].Hops, rs)
		}
	}
	if best == -2 {
		return Member{}, false
	}
	// Path: ci -> ... -> meeting CI <- ... <- origin member.
	var path []string
	meet := ci
	if best >= 0 {
		meet = deps[best].CI
		for i := best; i >= 0; i = deps[i].Parent {
			path = append(path, deps[i].CI)
		}
	}
	path = append(path, ci)
	slices.Reverse(path)
	if bestVia.origin != meet {
		od := g.ciDeps[bestVia.origin]
		for i := range od {
			if od[i].CI == meet {
				for j := od[i].Parent; j >= 0; j = od[j].Parent {
					path = append(path, od[j].CI)
				}
				break
			}
		}
		path = append(path, bestVia.origin)
	}
	return Member{RelatedCI: bestVia.origin, Path: path, Hops: bestHops}, true
}

// suspect reports whether ci depends, within MaxHops, on the not-alerting
// common dependency g names as its suspected root cause: the shared failing
// dependency. This joins, for example, the applications of a silent switch
// to the incident its hosts opened, although application to application
// runs over more hops than SharedMaxHops.
func (e *Engine) suspect(g *group, ci string, deps []Dep) (Member, bool) {
	rc := g.inc.RootCauseCI
	if !g.inc.RootCauseSuspected || rc == "" {
		return Member{}, false
	}
	for i := range deps {
		if deps[i].CI == rc {
			var path []string
			for j := i; j >= 0; j = deps[j].Parent {
				path = append(path, deps[j].CI)
			}
			path = append(path, ci)
			slices.Reverse(path)
			return Member{RelatedCI: rc, Path: path, Hops: deps[i].Hops}, true
		}
	}
	return Member{}, false
}

func (e *Engine) open(ev *event.Event, t time.Time, comp int, labelKey string) *group {
	g := &group{
		inc:      Incident{ID: incidentID(ev.ID), Status: StatusOpen, OpenedAt: t},
		comp:     comp,
		labelKey: labelKey,
		last:     t,
		indexed:  true,
		reach:    map[string]reaches{},
		ciDeps:   map[string][]Dep{},
		explain:  map[string]int{},
		hopSum:   map[string]int{},
		onset:    map[string]time.Time{},
		firing:   map[uint64]uint64{},
		seen:     map[uint64]uint64{},
		openSeq:  e.seq,

		sigFiring: map[uint64]int{},
	}
	e.groups = append(e.groups, g)
	e.byID[g.inc.ID] = g
	if comp >= 0 {
		e.byComp[comp] = append(e.byComp[comp], g)
	} else {
		e.byLabels[labelKey] = g
	}
	return g
}

func (e *Engine) processUnbound(ups []Update, ev *event.Event, keys eventKeys, t time.Time, in Input) []Update {
	lk := e.labelKey(ev)
	g := e.byLabels[string(lk)]
	if g != nil && !e.joinable(g, t) {
		g.indexed = false
		delete(e.byLabels, g.labelKey)
		g = nil
	}
	if g != nil {
		return e.join(ups, g, ev, keys, t, in, Member{Reason: ReasonLabels})
	}
	if in.Inhibited {
		return append(ups, Update{Kind: UpdateUnattached, EventID: ev.ID, At: t})
	}
	g = e.open(ev, t, -1, string(lk))
	ups = append(ups, Update{Kind: UpdateOpened, IncidentID: g.inc.ID, EventID: ev.ID, At: t})
	return e.join(ups, g, ev, keys, t, in, Member{Reason: ReasonOpened})
}

// join adds ev to g with the explanation m.
func (e *Engine) join(ups []Update, g *group, ev *event.Event, keys eventKeys, t time.Time, in Input, m Member) []Update {
	if in.Inhibited && m.Reason != ReasonSameIncident {
		m.Reason = ReasonSymptom
	}
	m.EventID, m.CI, m.seq = ev.ID, ev.CI, e.seq
	m.Severity, m.Symptom = ev.Severity, ev.Labels.Get("alertname")
	m.Offset = t.Sub(g.inc.OpenedAt)
	if t.Before(g.inc.OpenedAt) {
		g.inc.OpenedAt = t // a late event moves the onset back
	}
	if t.After(g.last) {
		g.last = t
	}
	g.inc.Members = append(g.inc.Members, m)
	g.inc.EventIDs = append(g.inc.EventIDs, ev.ID)
	if in.Inhibited {
		g.inc.SuppressedEventIDs = append(g.inc.SuppressedEventIDs, ev.ID)
	}
	ak, sk := keys.alert, keys.sig
	if _, ok := g.firing[ak]; !ok && sk != 0 {
		g.sigFiring[sk]++
	}
	h := xxhash.Sum64String(ev.ID)
	g.firing[ak] = h
	g.seen[ak] = h
	g.quietSince = time.Time{}
	e.dirty[g] = struct{}{}
	if len(g.inc.Members) == 1 {
		// A join only moves a group's deadline later, but for its first
		// member, which gives a new group its first deadline.
		e.touch(g)
	}
	e.index(g, ak)
	if sk != 0 {
		e.index(g, sk)
	}
	if m.Reason != ReasonOpened {
		ups = append(ups, Update{Kind: UpdateJoined, IncidentID: g.inc.ID, EventID: ev.ID, At: t})
	}
	if ev.CI == "" || g.comp < 0 {
		return ups
	}
	if o, ok := g.onset[ev.CI]; ok {
		if t.Before(o) {
			g.onset[ev.CI] = t
		}
		return ups
	}
	g.onset[ev.CI] = t
	g.inc.CIs = append(g.inc.CIs, ev.CI)
	e.ciGroup[ev.CI] = append(e.ciGroup[ev.CI], g)
	deps := e.deps
	if m.Reason == ReasonSameIncident || (m.Reason == ReasonSymptom && m.Path == nil) {
		if topo := e.topo(); topo != nil {
			deps = e.depsOf(topo, ev.CI)
			e.deps = deps
		}
	}
	e.addCI(g, ev.CI, deps)
	return e.rootCause(ups, g, ev.ID, t, false)
}

func (e *Engine) index(g *group, key uint64) {
	if old, ok := e.byKey[key]; ok && old == g {
		return
	}
	e.byKey[key] = g
	g.keys = append(g.keys, key)
}

// addCI adds a member CI's dependencies to the reach and explain indexes.
func (e *Engine) addCI(g *group, ci string, deps []Dep) {
	g.ciDeps[ci] = deps
	on := g.onset[ci]
	e.reachAdd(g, ci, reach{0, ci, on})
	for _, d := range deps {
		e.reachAdd(g, d.CI, reach{d.Hops, ci, on})
		g.explain[d.CI]++
		g.hopSum[d.CI] += d.Hops
		e.consider(g, d.CI)
	}
	e.consider(g, ci)
}

func (e *Engine) reachAdd(g *group, ci string, r reach) {
	rs := g.reach[ci]
	rs.add(r)
	g.reach[ci] = rs
}

// consider updates the best member and best non-member candidates with c,
// whose explain count may have grown. Counts only grow between merges, so
// comparing the changed CIs with the current best keeps the best exact.
func (e *Engine) consider(g *group, c string) {
	if _, member := g.onset[c]; member {
		// A CI that became a member is no longer a non-member candidate.
		if g.bestOther == c {
			g.bestOther = ""
			for o := range g.explain {
				if _, m := g.onset[o]; !m && e.betterOther(g, o, g.bestOther) {
					g.bestOther = o
				}
			}
		}
		if e.betterMember(g, c, g.bestMember) {
			g.bestMember = c
		}
		return
	}
	if e.betterOther(g, c, g.bestOther) {
		g.bestOther = c
	}
}

func (e *Engine) betterMember(g *group, a, b string) bool {
	if b == "" {
		return true
	}
	if a == b {
		return false
	}
	if ea, eb := g.explain[a], g.explain[b]; ea != eb {
		return ea > eb
	}
	if oa, ob := g.onset[a], g.onset[b]; !oa.Equal(ob) {
		return oa.Before(ob)
	}
	return a < b
}

func (e *Engine) betterOther(g *group, a, b string) bool {
	if b == "" {
		return true
	}
	if a == b {
		return false
	}
	if ea, eb := g.explain[a], g.explain[b]; ea != eb {
		return ea > eb
	}
	if ha, hb := g.hopSum[a], g.hopSum[b]; ha != hb {
		return ha < hb
	}
	return a < b
}

// rootCause decides between the best alerting member and the best
// not-alerting common dependency and records a revision when it changes.
func (e *Engine) rootCause(ups []Update, g *group, eventID string, t time.Time, force bool) []Update {
	n := len(g.onset)
	if n == 0 || g.bestMember == "" {
		return ups
	}
	ci, suspected := g.bestMember, false
	cover := g.explain[ci] + 1
	if o := g.bestOther; o != "" && g.explain[o] >= 2 && g.explain[o] > cover {
		ci, suspected, cover = o, true, g.explain[o]
	}
	conf := float64(cover) / float64(n)
	if suspected {
		conf *= 0.8 // an inferred cause is less certain than an alerting one
	}
	if !force && ci == g.inc.RootCauseCI && suspected == g.inc.RootCauseSuspected && conf == g.inc.RootCauseConfidence {
		return ups
	}
	changed := ci != g.inc.RootCauseCI || suspected != g.inc.RootCauseSuspected
	g.inc.RootCauseCI, g.inc.RootCauseSuspected, g.inc.RootCauseConfidence = ci, suspected, conf
	if changed {
		g.inc.RootCauseRevisions = append(g.inc.RootCauseRevisions, Revision{At: t, EventID: eventID, CI: ci, Confidence: conf, Suspected: suspected})
		ups = append(ups, Update{Kind: UpdateRootCause, IncidentID: g.inc.ID, EventID: eventID, At: t})
	}
	return ups
}

// merge moves o into g; g is the older incident and keeps its id.
func (e *Engine) merge(ups []Update, g, o *group, eventID string, t time.Time) []Update {
	o.merged = true
	o.indexed = false
	// New arrays, not in place: snapshots handed out share the old ones
	// (see snapshot).
	members := make([]Member, 0, len(g.inc.Members)+len(o.inc.Members))
	members = append(members, g.inc.Members...)
	for _, m := range o.inc.Members {
		if m.MergedFrom == "" {
			m.MergedFrom = o.inc.ID
		}
		m.Offset += o.inc.OpenedAt.Sub(g.inc.OpenedAt)
		members = append(members, m)
	}
	slices.SortStableFunc(members, func(a, b Member) int {
		if a.seq < b.seq {
			return -1
		}
		if a.seq > b.seq {
			return 1
		}
		return 0
	})
	g.inc.Members = members
	g.savedMembers = 0
	ids := make([]string, len(members))
	for i := range members {
		ids[i] = members[i].EventID
	}
	g.inc.EventIDs = ids
	g.inc.SuppressedEventIDs = append(g.inc.SuppressedEventIDs, o.inc.SuppressedEventIDs...)
	g.inc.MergedFrom = append(append(g.inc.MergedFrom, o.inc.ID), o.inc.MergedFrom...)
	if o.inc.OpenedAt.Before(g.inc.OpenedAt) {
		g.inc.OpenedAt = o.inc.OpenedAt
	}
	if o.last.After(g.last) {
		g.last = o.last
	}
	if o.lastResolve.After(g.lastResolve) {
		g.lastResolve = o.lastResolve
	}
	for k, h := range o.firing {
		g.firing[k] = h
	}
	for k, h := range o.seen {
		g.seen[k] = h
	}
	e.dirty[g] = struct{}{}
	delete(e.dirty, o)
	delete(e.byID, o.inc.ID)
	e.dead++
	e.gone = append(e.gone, o)
	for k, n := range o.sigFiring {
		g.sigFiring[k] += n
	}
	for _, k := range o.keys {
		if e.byKey[k] == o {
			e.index(g, k)
		}
	}
	for _, ci := range o.inc.CIs {
		gs := e.ciGroup[ci]
		gs = slices.DeleteFunc(gs, func(x *group) bool { return x == o })
		if ot, ok := g.onset[ci]; ok {
			if o.onset[ci].Before(ot) {
				g.onset[ci] = o.onset[ci]
			}
			e.ciGroup[ci] = gs
			continue
		}
		e.ciGroup[ci] = append(gs, g)
		g.onset[ci] = o.onset[ci]
		g.inc.CIs = append(g.inc.CIs, ci)
		e.addCI(g, ci, o.ciDeps[ci])
	}
	// Recompute the best candidates from scratch: onsets may have moved.
	g.bestMember, g.bestOther = "", ""
	for c := range g.onset {
		if e.betterMember(g, c, g.bestMember) {
			g.bestMember = c
		}
	}
	for c := range g.explain {
		if _, m := g.onset[c]; !m && e.betterOther(g, c, g.bestOther) {
			g.bestOther = c
		}
	}
	e.touch(g)
	ups = append(ups, Update{Kind: UpdateMerged, IncidentID: g.inc.ID, Other: o.inc.ID, EventID: eventID, At: t})
	return e.rootCause(ups, g, eventID, t, false)
}

func (e *Engine) resolve(ev *event.Event, t time.Time) []Update {
	ak := e.alertKey(ev)
	g := e.byKey[ak]
	if g == nil {
		return nil
	}
	if _, ok := g.firing[ak]; !ok {
		return nil
	}
	delete(g.firing, ak)
	e.dirty[g] = struct{}{}
	if t.After(g.lastResolve) {
		g.lastResolve = t
	}
	if sk := e.sigKey(ev); sk != 0 && g.sigFiring[sk] > 0 {
		if g.sigFiring[sk]--; g.sigFiring[sk] == 0 {
			delete(g.sigFiring, sk)
		}
	}
	if len(g.firing) == 0 {
		g.quietSince = t
	}
	e.touch(g)
	return nil
}

// touch queues g's next deadline, unless an earlier one is queued.
func (e *Engine) touch(g *group) {
	d := e.deadline(g)
	if d.IsZero() || g.merged || (!g.queued.IsZero() && !d.Before(g.queued)) {
		return
	}
	g.queued = d
	heap.Push(&e.wakes, wakeEntry{at: d, seq: g.openSeq, g: g})
}

// deadline is the earliest watermark at which Advance may change g: a
// hold-down ending, its reopen window or max idle running out; zero when
// there is none.
func (e *Engine) deadline(g *group) time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	switch {
	case g.merged:
		return d
	case g.inc.Status == StatusResolved:
		// Closing needs the watermark past the end (After): one tick on.
		earliest(g.inc.ResolvedAt.Add(e.cfg.ReopenWindow + 1))
	case len(g.firing) == 0 && !g.quietSince.IsZero():
		earliest(g.quietSince.Add(e.cfg.ResolveHoldDown))
	case len(g.firing) > 0:
		earliest(e.lastActivity(g).Add(e.cfg.MaxIdle + 1))
	}
	return d
}

// Advance moves the watermark: it closes windows, marks incidents resolved
// whose alerts all stayed resolved for Config.ResolveHoldDown, and drops
// resolved incidents past Config.ReopenWindow (UpdateClosed). A watermark
// behind the current one is ignored.
func (e *Engine) Advance(watermark time.Time) []Update {
	if !watermark.After(e.watermark) {
		return nil
	}
	e.watermark = watermark
	e.prunePending(watermark)
	var ups []Update
	// Only the groups whose deadline has come are visited: a live
	// partition advances every second of event time, and in a storm
	// thousands of groups wait for their reopen window to end.
	for len(e.wakes) > 0 && !watermark.Before(e.wakes[0].at) {
		w := heap.Pop(&e.wakes).(wakeEntry)
		g := w.g
		if g.merged || !w.at.Equal(g.queued) {
			continue // closed, merged away, or queued again earlier
		}
		g.queued = time.Time{}
		ups = e.due(ups, g, watermark)
		if !g.merged {
			e.touch(g)
		}
	}
	// Closed windows leave the join indexes lazily (relatedGroups and
	// processUnbound skip them), and here at most once a window.
	if watermark.Sub(e.pruned) >= e.cfg.Window {
		e.pruned = watermark
		e.prune(watermark)
	}
	if e.dead > 64 && e.dead > len(e.groups)/2 {
		e.groups = slices.DeleteFunc(e.groups, func(g *group) bool { return g.merged })
		e.dead = 0
	}
	return ups
}

// due applies to g what its deadline brought at the watermark.
func (e *Engine) due(ups []Update, g *group, watermark time.Time) []Update {
	if g.inc.Status == StatusOpen && len(g.firing) == 0 && !g.quietSince.IsZero() {
		if at := g.quietSince.Add(e.cfg.ResolveHoldDown); !watermark.Before(at) {
			g.inc.Status = StatusResolved
			g.inc.ResolvedAt = at
			e.dirty[g] = struct{}{}
			ups = append(ups, Update{Kind: UpdateResolved, IncidentID: g.inc.ID, At: at})
		}
	}
	// An incident whose alerts never resolve (a lost resolution, a stuck
	// alert) leaves the state after MaxIdle without a new member or
	// resolution. One whose alerts all resolved takes the hold-down path
	// above instead.
	if g.inc.Status == StatusOpen && len(g.firing) > 0 && watermark.After(e.lastActivity(g).Add(e.cfg.MaxIdle)) {
		return append(ups, e.close(g, watermark))
	}
	if g.inc.Status == StatusResolved && watermark.After(g.inc.ResolvedAt.Add(e.cfg.ReopenWindow)) {
		return append(ups, e.close(g, watermark))
	}
	return ups
}

// wakeEntry is a group's deadline in Engine.wakes, ordered by time, then
// by the group's opening sequence, so the order of updates does not depend
// on the heap's history (a restored engine gives the same order).
type wakeEntry struct {
	at  time.Time
	seq uint64
	g   *group
}

type wakeHeap []wakeEntry

func (h wakeHeap) Len() int { return len(h) }
func (h wakeHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h wakeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)   { *h = append(*h, x.(wakeEntry)) }
func (h *wakeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = wakeEntry{}
	*h = old[:len(old)-1]
	return x
}

// prunePending drops the inhibited events that waited a window for their
// incident in vain.
func (e *Engine) prunePending(watermark time.Time) {
	k := 0
	for _, p := range e.pending {
		if !watermark.After(p.t.Add(e.cfg.Window)) {
			e.pending[k] = p
			k++
		}
	}
	clear(e.pending[k:])
	e.pending = e.pending[:k]
}

// lastActivity is the latest event time of g: its latest member onset, or
// the latest resolution of one of its alerts.
func (e *Engine) lastActivity(g *group) time.Time {
	if g.lastResolve.After(g.last) {
		return g.lastResolve
	}
	return g.last
}

// prune drops groups whose windows closed from the join indexes.
func (e *Engine) prune(wm time.Time) {
	for c, list := range e.byComp {
		list = slices.DeleteFunc(list, func(g *group) bool {
			return g.merged || g.inc.Status != StatusOpen || wm.After(g.last.Add(e.cfg.Window)) || wm.Sub(g.inc.OpenedAt) > e.cfg.MaxSpan
		})
		if len(list) == 0 {
			delete(e.byComp, c)
		} else {
			e.byComp[c] = list
		}
	}
	for k, g := range e.byLabels {
		if g.merged || g.inc.Status != StatusOpen || wm.After(g.last.Add(e.cfg.Window)) {
			delete(e.byLabels, k)
		}
	}
}

func (e *Engine) close(g *group, at time.Time) Update {
	for _, k := range g.keys {
		if e.byKey[k] == g {
			delete(e.byKey, k)
		}
	}
	for _, ci := range g.inc.CIs {
		gs := slices.DeleteFunc(e.ciGroup[ci], func(x *group) bool { return x == g })
		if len(gs) == 0 {
			delete(e.ciGroup, ci)
		} else {
			e.ciGroup[ci] = gs
		}
	}
	g.merged = true // no longer live
	e.dead++
	delete(e.byID, g.inc.ID)
	delete(e.dirty, g)
	e.gone = append(e.gone, g)
	return Update{Kind: UpdateClosed, IncidentID: g.inc.ID, At: at, Incident: e.snapshot(g)}
}

// Flush ends the input: every live incident is closed and returned in an
// UpdateClosed, and the engine is empty again.
func (e *Engine) Flush() []Update {
	var ups []Update
	for _, g := range e.groups {
		if !g.merged {
			ups = append(ups, e.close(g, e.maxSeen))
		}
	}
	e.groups = nil
	e.pending = nil
	e.wakes = nil
	e.dead = 0
	clear(e.byID)
	clear(e.byComp)
	clear(e.byLabels)
	clear(e.byKey)
	clear(e.ciGroup)
	return ups
}

// Snapshot returns a snapshot of the live incident id; false when it is
// not in the state (closed, merged away, or never seen).
func (e *Engine) Snapshot(id string) (*Incident, bool) {
	g, ok := e.byID[id]
	if !ok {
		return nil, false
	}
	return e.snapshot(g), true
}

// Incidents returns snapshots of the live incidents, in opening order.
func (e *Engine) Incidents() []*Incident {
	var out []*Incident
	for _, g := range e.groups {
		if !g.merged {
			out = append(out, e.snapshot(g))
		}
	}
	return out
}

func (e *Engine) snapshot(g *group) *Incident {
	c := g.inc.clone()
	c.RootCauseExplains = nil
	if rc := g.inc.RootCauseCI; rc != "" {
		for _, ci := range g.inc.CIs {
			if ci == rc {
				continue
			}
			for _, d := range g.ciDeps[ci] {
				if d.CI == rc {
					c.RootCauseExplains = append(c.RootCauseExplains, ci)
					break
				}
			}
		}
	}
	return c
}
