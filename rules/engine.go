package rules

import (
	"container/heap"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/correlatord/correlatord/event"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Config tunes the stages; NewEngine applies SetDefaults and Validate.
	// Config.Files is not read (the Manager loads the files).
	Config Config
	// Rules returns the current rule set, once per batch; required
	// (Manager.RuleSet, or a func returning a fixed one). It must not
	// return nil.
	Rules func() *RuleSet
	// Topology returns the current CMDB snapshot, once per batch; nil or
	// returning nil: no CMDB (ci.* matchers see empty values, topology
	// inhibition is off).
	Topology func() Topology
	// Changes holds the change records; nil: no change windows.
	Changes *ChangeStore
	// Registerer receives the metrics; nil registers nothing. Ignored
	// when Metrics is set.
	Registerer prometheus.Registerer
	// Metrics, when set, are shared with other engines (one per
	// partition); their counters and state gauges add up.
	Metrics *EngineMetrics
}

// Engine runs the rules stage: rules (classify, drop, set, enrich), then
// deduplication, flap detection, maintenance and change windows, inhibition
// and warning persistence, keeping bounded per-alert state keyed by the
// hash of the fingerprint.
//
// Time is an input: Process and Tick take `now`, the processing time (the
// wall clock live, the recorded receive time in replay), and the engine
// reads no clock, so a replay of the same batches at the same times gives
// the same decisions.
//
// Process and Tick may be called from several goroutines; they serialize
// on one mutex (the engine's state is one sequential history of alerts).
type Engine struct {
	cfg     Config
	rules   func() *RuleSet
	topo    func() Topology
	changes *ChangeStore
	m       *engineMetrics

	mu       sync.Mutex
	reported [numStateGauges]int // state gauge values last reported
	cur      *RuleSet
	alerts   map[uint64]alertState
	pending  map[uint64]struct{} // alerts with a pending warning
	// pendingQ orders the pending warnings by when they are due, so Tick
	// visits only those (a storm holds many thousands pending).
	pendingQ dueHeap
	flapping map[uint64]struct{} // alerts marked flapping
	inhib    []*inhibState       // aligned with cur.inhibits
	wcache   []windowCache       // aligned with cur.windows
	queued   []Deferred          // held resolutions of evicted alerts, emitted by the next Tick
	lastSweep,
	lastExpire int64
	// nextExpiry is a lower bound on when an alert of the state can next
	// be stale: makeRoom sweeps only from then on. Under a storm of new
	// alerts the state stays full of fresh ones, and a sweep every second
	// of event time visited it all for nothing: a fifth of the daemon's CPU.
	nextExpiry int64

	// Scratch reused by every event: the hot path does not allocate.
	ctx    evalCtx
	cands  []int32
	dig    *xxhash.Digest
	fps    []uint64
	counts batchCounts
}

// level says how an alert was passed on to correlation in its current
// firing episode.
type level uint8

const (
	notNotified level = iota
	asSymptom         // inhibited: joined another alert's incident
	asPrimary         // passed on as itself
)

// alertState is what the engine remembers of one alert (one fingerprint).
// Times are the engine's `now` in Unix nanoseconds.
type alertState struct {
	firstSeen, lastSeen int64
	lastChange          int64 // last state change (firing <-> resolved)
	pendingSince        int64 // warning pending since; 0: none
	persist             int64 // the pending warning's persist duration
	count               uint32
	firing              bool
	notified            level
	flapping            bool
	flapPassed          bool // the flapping alert was passed on once, flagged
	promoted            bool // the warning persisted and was passed on
	class               Class
	rule                string
	// changes are the alert's last state changes, kept once it changed
	// state: most alerts never do, and a slice in every alert made the
	// map's entries a fifth larger.
	changes *changeRing
	// held is the engine's copy of the last delivery of a pending warning
	// (promoted by Tick) or of a flapping alert's held resolution
	// (released by Tick once stable).
	held *event.Event
}

// changeRing holds the times of an alert's last Threshold+1 state changes,
// for flapping detection.
type changeRing struct {
	times  []int64
	ti, tn uint8 // next slot, slots filled
}

type windowCache struct {
	valid    bool
	open     bool
	from, to int64
}

// batchCounts are the counts of one batch, added to the metrics at its end:
// no map lookup or WithLabelValues per event.
type batchCounts struct {
	events     [numClasses][numOutcomes]uint64
	rules      []uint64
	touched    []int32
	windows    []uint64
	inhibits   []uint64
	resolution [numResolutionResults]uint64
	flapping   uint64
	deferred   [numDeferredReasons]uint64
	evicted    [numStates][numEvictReasons]uint64
}

// NewEngine returns an engine with empty state.
func NewEngine(opts EngineOptions) (*Engine, error) {
	if opts.Rules == nil {
		return nil, errors.New("rules engine: no rule set source")
	}
	cfg := opts.Config
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := opts.Metrics
	if m == nil {
		m = NewEngineMetrics(opts.Registerer)
	}
	en := &Engine{
		cfg:      cfg,
		rules:    opts.Rules,
		topo:     opts.Topology,
		changes:  opts.Changes,
		m:        m.m,
		alerts:   make(map[uint64]alertState, min(cfg.State.MaxAlerts, 4096)),
		pending:  map[uint64]struct{}{},
		flapping: map[uint64]struct{}{},
		dig:      xxhash.New(),
		cands:    make([]int32, 0, 64),
	}
	return en, nil
}

// sync adopts rule set rs if it is not the one in use: window caches are
// reset and inhibit sources carried over for the inhibit rules whose
// definition did not change.
func (en *Engine) sync(rs *RuleSet) {
	if rs == en.cur {
		return
	}
	old := map[string]*inhibState{}
	for _, s := range en.inhib {
		old[s.rule.key] = s
	}
	en.inhib = make([]*inhibState, len(rs.inhibits))
	for i := range rs.inhibits {
		r := &rs.inhibits[i]
		if s, ok := old[r.key]; ok {
			s.rule = r
			en.inhib[i] = s
		} else {
			en.inhib[i] = newInhibState(r)
		}
	}
	en.wcache = make([]windowCache, len(rs.windows))
	en.counts.rules = make([]uint64, len(rs.rules))
	en.counts.touched = en.counts.touched[:0]
	en.counts.windows = make([]uint64, len(rs.windows))
	en.counts.inhibits = make([]uint64, len(rs.inhibits))
	en.cur = rs
}

// ruleSet returns the current rule set, adopted.
func (en *Engine) ruleSet() *RuleSet {
	rs := en.rules()
	if rs == nil {
		rs = emptyRuleSet
	}
	en.sync(rs)
	return rs
}

var emptyRuleSet = Empty()

func (en *Engine) topology() Topology {
	if en.topo == nil {
		return nil
	}
	return en.topo()
}

// Process decides about each event in order and appends one Decision per
// event to out, which it returns.
//
// Ownership: Process may modify the events in place (severity, CI and
// labels, for set and enrich rules); it gives an event new labels rather
// than changing the ones it has, which other holders may share. It keeps no
// reference to the events or their labels once it returns: what it holds
// (pending warnings, held resolutions) it copies.
// The Decisions' strings stay valid forever.
//
// Events of kind log and change have no state: they are classified and
// windows and inhibition apply, but they are never deduplicated, flapping
// or pending.
func (en *Engine) Process(events []event.Event, now time.Time, out []Decision) []Decision {
	en.mu.Lock()
	defer en.mu.Unlock()
	rs := en.ruleSet()
	topo := en.topology()
	if en.changes != nil {
		// One read lock for the batch, not one per event.
		en.changes.mu.RLock()
		defer en.changes.mu.RUnlock()
	}
	nowNS := now.UnixNano()
	for i := range events {
		out = append(out, en.processOne(rs, topo, &events[i], now, nowNS))
	}
	en.flush(rs)
	return out
}

// fpHash is the state key of an alert: the hash of its fingerprint.
func fpHash(fp string) uint64 { return xxhash.Sum64String(fp) }

func defaultClass(s event.Severity) Class {
	switch r := s.Rank(); {
	case r >= 3:
		return ClassException
	case r == 1:
		return ClassInformational
	}
	return ClassWarning
}

func (en *Engine) processOne(rs *RuleSet, topo Topology, e *event.Event, now time.Time, nowNS int64) (d Decision) {
	ctx := &en.ctx
	ctx.reset(e, topo)
	persist := en.cfg.WarningPersist
	dropped := en.applyRules(rs, ctx, &d, &persist)
	if d.Class == ClassUnknown {
		d.Class = defaultClass(e.Severity)
	}
	defer func() { en.counts.events[d.Class][d.Outcome]++ }()

	if e.Kind != event.KindAlert && e.Kind != "" {
		en.stateless(rs, topo, e, now, nowNS, dropped, &d)
		return d
	}

	fp := fpHash(e.Fingerprint)
	st, exists := en.alerts[fp]
	firing := e.Status != event.StatusResolved
	if dropped && !exists {
		// Dropped noise keeps no state. Its resolution, unknown, is
		// dropped too: it was never passed on.
		d.Outcome = OutcomeDropped
		if !firing {
			en.counts.resolution[resolutionRecorded]++
		}
		return d
	}
	if !exists {
		if len(en.alerts) >= en.cfg.State.MaxAlerts {
			en.makeRoom(now, nowNS)
		}
		st = alertState{firstSeen: nowNS, firing: firing, lastChange: nowNS}
	}
	// A flapping alert quiet for long enough is stable again. Tick
	// normally releases its held resolution first; if an event beats it,
	// the event itself carries the final state (a resolution repeat passes
	// below; a new firing leaves the incident open, as it should be).
	if st.flapping && nowNS-st.lastChange >= int64(en.cfg.Flapping.Stable) {
		en.unflap(fp, &st)
	}
	detected := false
	if exists && st.firing != firing {
		detected = en.transition(fp, &st, nowNS)
	}
	st.lastSeen = nowNS
	d.Flapping = st.flapping

	if firing {
		en.firing(rs, topo, e, fp, &st, exists, now, nowNS, dropped, detected, persist, &d)
	} else {
		en.resolved(rs, e, fp, &st, exists, now, nowNS, dropped, &d)
	}
	d.DedupCount = st.count
	if st.firstSeen != 0 {
		d.FirstSeen = time.Unix(0, st.firstSeen).UTC()
	}
	en.alerts[fp] = st
	en.nextExpiry = min(en.nextExpiry, en.expiry(&st))
	if !dropped || !firing {
		en.trackSources(topo, e, fp, &st, nowNS, &d)
	}
	return d
}

// expiry is when st becomes stale, unless seen again: the time sweep
// evicts it from (a flapping resolved alert stays, which makes this a lower
// bound).
func (en *Engine) expiry(st *alertState) int64 {
	if st.firing {
		return st.lastSeen + int64(en.cfg.State.FiringTTL)
	}
	return st.lastSeen + int64(en.cfg.State.ResolvedTTL)
}

// firing handles a firing delivery of an alert.
func (en *Engine) firing(rs *RuleSet, topo Topology, e *event.Event, fp uint64, st *alertState, exists bool, now time.Time, nowNS int64, dropped, detected bool, persist time.Duration, d *Decision) {
	if exists && !st.firing {
		if st.notified == notNotified {
			// A new firing episode.
			st.firstSeen = nowNS
			st.count = 0
			st.promoted = false
		} else {
			// The resolution before this was held (flapping): for
			// correlation the alert never stopped firing.
			st.held = nil
		}
	}
	st.firing = true
	st.count++
	st.class, st.rule = d.Class, d.Rule
	if dropped {
		d.Outcome = OutcomeDropped
		return
	}
	sup := en.windows(rs, e, now, nowNS, d)
	switch {
	case sup != OutcomePass:
		d.Outcome = sup
		return
	case st.flapping && !detected:
		d.Outcome = OutcomeFlappingHeld
		return
	case d.Class == ClassInformational:
		d.Outcome = OutcomeRecorded
		return
	case d.Class == ClassWarning && !st.promoted:
		if st.pendingSince == 0 {
			st.pendingSince = nowNS
			st.persist = int64(persist)
			en.pending[fp] = struct{}{}
			heap.Push(&en.pendingQ, dueEntry{due: nowNS + st.persist, fp: fp})
		}
		if nowNS-st.pendingSince < st.persist {
			st.held = copyEvent(st.held, e)
			d.Outcome = OutcomeWarningPending
			return
		}
		// Persisted: promote on this delivery.
		en.promote(fp, st)
		d.Promoted = true
	}
	if st.pendingSince != 0 {
		// Pending as a warning, reclassified since (a reload).
		en.clearPending(fp, st)
	}
	// Exception, or a promoted warning: it goes on to correlation, as
	// itself or as a symptom of an inhibiting alert.
	lv := asPrimary
	d.Outcome = OutcomePass
	if en.inhibited(topo, e, fp, nowNS, d) {
		lv, d.Outcome = asSymptom, OutcomeInhibited
	}
	// A repeat is deduplicated, except the delivery that found the alert
	// flapping: correlation learns of the flapping once.
	if !en.cfg.Dedup.Disabled && st.notified >= lv && !detected && !d.Promoted {
		d.Outcome = OutcomeDeduplicated
		return
	}
	if detected {
		st.flapPassed = true
	}
	st.notified = max(st.notified, lv)
	d.Correlate = true
}

func (en *Engine) promote(fp uint64, st *alertState) {
	st.promoted = true
	en.clearPending(fp, st)
}

func (en *Engine) clearPending(fp uint64, st *alertState) {
	st.pendingSince = 0
	st.held = nil
	delete(en.pending, fp)
}

// resolved handles a resolution. Whatever suppresses it, a resolution of an
// alert that was passed on goes on (Correlate), and one of an alert the
// engine does not know goes on too unless a drop rule or the
// informational class says it was never passed on: after an eviction or a
// restart the engine cannot tell, and correlation ignores a resolution it
// has no incident for.
func (en *Engine) resolved(rs *RuleSet, e *event.Event, fp uint64, st *alertState, exists bool, now time.Time, nowNS int64, dropped bool, d *Decision) {
	wasFiring := exists && st.firing
	st.firing = false
	if st.pendingSince != 0 {
		// A warning that resolved before it persisted: recorded only.
		en.clearPending(fp, st)
	}
	if !exists {
		st.class, st.rule = d.Class, d.Rule
	}
	if st.flapping {
		d.Outcome = OutcomeFlappingHeld
		if st.notified != notNotified {
			// Held, and released by Tick once the alert is stable: the
			// resolution is delayed, never lost.
			st.held = copyEvent(st.held, e)
			en.counts.resolution[resolutionHeld]++
		} else {
			en.counts.resolution[resolutionRecorded]++
		}
		return
	}
	switch {
	case dropped:
		d.Outcome = OutcomeDropped
	default:
		if sup := en.windows(rs, e, now, nowNS, d); sup != OutcomePass {
			d.Outcome = sup
		} else if d.Class == ClassInformational {
			d.Outcome = OutcomeRecorded
		}
	}
	switch {
	case st.notified != notNotified:
		d.Correlate = true
	case !exists:
		d.Correlate = !dropped && d.Class != ClassInformational
	case !wasFiring:
		// A repeated resolution of a resolution already handled.
		if d.Outcome == OutcomePass {
			d.Outcome = OutcomeDeduplicated
		}
	default:
		if d.Outcome == OutcomePass {
			d.Outcome = OutcomeRecorded
		}
	}
	if d.Correlate {
		en.counts.resolution[resolutionPassed]++
	} else {
		en.counts.resolution[resolutionRecorded]++
	}
	st.notified = notNotified
	st.promoted = false
	st.flapPassed = false
}

// stateless decides about a log or change event.
func (en *Engine) stateless(rs *RuleSet, topo Topology, e *event.Event, now time.Time, nowNS int64, dropped bool, d *Decision) {
	if dropped {
		d.Outcome = OutcomeDropped
		return
	}
	if sup := en.windows(rs, e, now, nowNS, d); sup != OutcomePass {
		d.Outcome = sup
		return
	}
	if d.Class != ClassException {
		d.Outcome = OutcomeRecorded
		return
	}
	d.Outcome = OutcomePass
	if en.inhibited(topo, e, 0, nowNS, d) {
		d.Outcome = OutcomeInhibited
	}
	d.Correlate = true
}

// applyRules runs the rules in order over the event. It returns whether a
// drop rule matched; it sets the class and the deciding rule in d.
func (en *Engine) applyRules(rs *RuleSet, ctx *evalCtx, d *Decision, persist *time.Duration) bool {
	if len(rs.rules) == 0 {
		return false
	}
	cands := rs.index.candidates(ctx, 0, en.cands)
	dropped := false
	for i := 0; i < len(cands); i++ {
		ri := cands[i]
		r := &rs.rules[ri]
		if !ctx.matchAll(r.matchers) {
			continue
		}
		en.hit(ri)
		if r.drop {
			d.Rule = r.name
			dropped = true
			break
		}
		if r.class != ClassUnknown {
			d.Class, d.Rule = r.class, r.name
			*persist = en.cfg.WarningPersist
			if r.persist > 0 {
				*persist = r.persist
			}
		}
		if !r.cont {
			if r.mutates {
				mutate(r, ctx)
			}
			break
		}
		if r.mutates {
			mutate(r, ctx)
			// The event changed: the rules after this one are looked up
			// again with its new values.
			cands = rs.index.candidates(ctx, ri+1, cands)
			i = -1
		}
	}
	en.cands = cands
	return dropped
}

func (en *Engine) hit(ri int32) {
	c := &en.counts
	if c.rules[ri] == 0 {
		c.touched = append(c.touched, ri)
	}
	c.rules[ri]++
}

// mutate applies a rule's set and enrich actions to the event in place.
func mutate(r *rule, ctx *evalCtx) {
	e := ctx.e
	if r.severity != "" {
		e.Severity = r.severity
	}
	if r.setCI {
		e.CI = r.ci
		ctx.ciChanged()
	}
	// Set and Delete copy: the event's labels may be shared with other
	// holders of the event, which must not see the change.
	for _, lv := range r.labels {
		if lv.value == "" {
			e.Labels = e.Labels.Delete(lv.name)
			continue
		}
		e.Labels = e.Labels.Set(lv.name, lv.value)
	}
	for i, a := range r.enrich {
		if _, ok := e.Labels.Lookup(a); ok {
			continue // the source knows better than the CMDB
		}
		v := ctx.value(r.enrichSrc[i].src, r.enrichSrc[i].name)
		if v == "" {
			continue
		}
		e.Labels = e.Labels.Set(a, v)
	}
}

// windows reports whether a maintenance window or a change window
// suppresses the event at now, and tags d with the window and change.
func (en *Engine) windows(rs *RuleSet, e *event.Event, now time.Time, nowNS int64, d *Decision) Outcome {
	out := OutcomePass
	for wi := range rs.windows {
		w := &rs.windows[wi]
		if !en.windowOpen(wi, w, now, nowNS) {
			continue
		}
		if w.cis != nil {
			if _, ok := w.cis[e.CI]; !ok {
				continue
			}
		}
		if !en.ctx.matchAll(w.matchers) {
			continue
		}
		d.Maintenance = w.name
		en.counts.windows[wi]++
		out = OutcomeMaintenance
		break
	}
	if en.changes != nil && e.CI != "" {
		if r, ok := en.changes.activeLocked(e.CI, now); ok {
			d.ChangeID = r.ID
			if out == OutcomePass && !en.cfg.Changes.OpenIncidents {
				out = OutcomeChangeWindow
			}
		}
	}
	return out
}

func (en *Engine) windowOpen(wi int, w *window, now time.Time, nowNS int64) bool {
	c := &en.wcache[wi]
	if c.valid && nowNS >= c.from && nowNS < c.to {
		return c.open
	}
	open, from, to := w.sched.interval(now)
	*c = windowCache{valid: true, open: open, from: from.UnixNano(), to: to.UnixNano()}
	return open
}

// transition records a state change of the alert and reports whether it
// made the alert flapping.
func (en *Engine) transition(fp uint64, st *alertState, nowNS int64) bool {
	st.lastChange = nowNS
	if en.cfg.Flapping.Disabled {
		return false
	}
	n := en.cfg.Flapping.Threshold + 1
	r := st.changes
	if r == nil || len(r.times) != n {
		r = &changeRing{times: make([]int64, n)}
		st.changes = r
	}
	r.times[r.ti] = nowNS
	r.ti = uint8((int(r.ti) + 1) % n)
	if int(r.tn) < n {
		r.tn++
	}
	// More than Threshold changes within Window: the oldest of the last
	// Threshold+1 is inside the window.
	if st.flapping || int(r.tn) < n || nowNS-r.times[r.ti] > int64(en.cfg.Flapping.Window) {
		return false
	}
	st.flapping = true
	st.flapPassed = false
	en.flapping[fp] = struct{}{}
	en.counts.flapping++
	return true
}

func (en *Engine) unflap(fp uint64, st *alertState) {
	st.flapping = false
	st.flapPassed = false
	st.changes = nil
	st.held = nil
	delete(en.flapping, fp)
}

// copyEvent copies e into dst (allocated when nil). It reuses dst's labels
// and strings when they are equal to e's, so that keeping the copy of a
// repeated delivery costs no allocation. The strings that changed are
// cloned, as they may alias a decoder's buffer, into one allocation: one
// each was a tenth of the allocations of a storm in which a fifth of the
// alerts were pending warnings.
func copyEvent(dst *event.Event, e *event.Event) *event.Event {
	if dst == nil {
		dst = new(event.Event)
	}
	old := *dst
	*dst = *e
	keepLabels, keepAnnotations := sameLabels(old.Labels, e.Labels), sameLabels(old.Annotations, e.Annotations)
	size := changedBytes(old.ID, e.ID) + changedBytes(old.Fingerprint, e.Fingerprint) + changedBytes(old.CI, e.CI) +
		changedBytes(old.Source, e.Source) + changedBytes(old.Summary, e.Summary)
	if !keepLabels {
		size += labelBytes(e.Labels)
	}
	if !keepAnnotations {
		size += labelBytes(e.Annotations)
	}
	var p stringPacker
	p.b.Grow(size)
	dst.ID = p.cloneIfChanged(old.ID, e.ID)
	dst.Fingerprint = p.cloneIfChanged(old.Fingerprint, e.Fingerprint)
	dst.CI = p.cloneIfChanged(old.CI, e.CI)
	dst.Source = p.cloneIfChanged(old.Source, e.Source)
	dst.Summary = p.cloneIfChanged(old.Summary, e.Summary)
	dst.Labels = p.copyLabels(old.Labels, e.Labels, keepLabels)
	dst.Annotations = p.copyLabels(old.Annotations, e.Annotations, keepAnnotations)
	return dst
}

func changedBytes(old, s string) int {
	if old == s {
		return 0
	}
	return len(s)
}

func labelBytes(ls event.Labels) int {
	n := 0
	for _, l := range ls {
		n += len(l.Name) + len(l.Value)
	}
	return n
}

// sameLabels reports whether dst can stand for src: both non-nil with equal
// entries.
func sameLabels(dst, src event.Labels) bool {
	return dst != nil && src != nil && slices.Equal(dst, src)
}

// stringPacker clones strings into one buffer, grown once by its user to
// hold them all. A string it returns stays valid as more are written: a
// strings.Builder never changes bytes it holds, and it does not grow.
type stringPacker struct{ b strings.Builder }

func (p *stringPacker) clone(s string) string {
	if s == "" {
		return ""
	}
	start := p.b.Len()
	p.b.WriteString(s)
	return p.b.String()[start:]
}

func (p *stringPacker) cloneIfChanged(old, s string) string {
	if old == s {
		return old
	}
	return p.clone(s)
}

// copyLabels returns src's copy: dst itself when same (sameLabels),
// otherwise dst refilled (or a new slice, when dst is too short) with
// cloned entries. dst is the engine's own: a held copy is never refilled
// once passed on.
func (p *stringPacker) copyLabels(dst, src event.Labels, same bool) event.Labels {
	switch {
	case src == nil:
		return nil
	case same:
		return dst
	}
	out := dst[:0]
	if out == nil || cap(dst) < len(src) {
		out = make(event.Labels, 0, len(src)) // not nil: empty labels stay {}
	}
	for _, l := range src {
		out = append(out, event.Label{Name: p.clone(l.Name), Value: p.clone(l.Value)})
	}
	clear(out[len(out):cap(out)]) // keeps no strings of an earlier delivery alive
	return out
}

// Tick advances the engine to now and appends to out what it passes on
// late: warnings that persisted (promoted), resolutions of flapping alerts
// that are stable again, and held resolutions of alerts evicted from the
// state. It also expires stale state and change records. Call it
// regularly (every few seconds live; in replay, at each batch's time
// before Process), with a now that does not go backwards.
func (en *Engine) Tick(now time.Time, out []Deferred) []Deferred {
	en.mu.Lock()
	defer en.mu.Unlock()
	rs := en.ruleSet()
	topo := en.topology()
	nowNS := now.UnixNano()

	out = append(out, en.queued...)
	clear(en.queued)
	en.queued = en.queued[:0]

	// Flapping alerts that became stable: pass their held resolution.
	for _, fp := range en.sortedKeys(en.flapping) {
		st := en.alerts[fp]
		if nowNS-st.lastChange < int64(en.cfg.Flapping.Stable) {
			continue
		}
		if !st.firing && st.notified != notNotified && st.held != nil {
			out = append(out, Deferred{Event: *st.held, Decision: Decision{
				Class: st.class, Outcome: OutcomePass, Correlate: true, Rule: st.rule,
				DedupCount: st.count, FirstSeen: time.Unix(0, st.firstSeen).UTC(),
			}})
			st.notified = notNotified
			en.counts.deferred[deferredFlapping]++
			en.counts.resolution[resolutionPassed]++
		}
		en.unflap(fp, &st)
		en.alerts[fp] = st
	}

	// Warnings that persisted: promote them, unless a window suppresses
	// them now (they stay pending and are checked again next Tick).
	if en.changes != nil {
		en.changes.mu.RLock()
	}
	// The due warnings, in fingerprint order (deterministic output).
	en.fps = en.fps[:0]
	for len(en.pendingQ) > 0 && en.pendingQ[0].due <= nowNS {
		e := heap.Pop(&en.pendingQ).(dueEntry)
		if st, ok := en.alerts[e.fp]; ok && st.pendingSince != 0 && st.pendingSince+st.persist == e.due {
			en.fps = append(en.fps, e.fp)
		}
	}
	slices.Sort(en.fps)
	en.fps = slices.Compact(en.fps)
	var again []uint64
	for _, fp := range en.fps {
		if _, ok := en.pending[fp]; !ok {
			continue
		}
		st := en.alerts[fp]
		if !st.firing || st.held == nil || st.class != ClassWarning {
			en.clearPending(fp, &st)
			en.alerts[fp] = st
			continue
		}
		ev := st.held
		var d Decision
		en.ctx.reset(ev, topo)
		if en.windows(rs, ev, now, nowNS, &d) != OutcomePass || st.flapping {
			again = append(again, fp) // suppressed now: checked again next Tick
			continue
		}
		d.Class, d.Rule, d.Promoted, d.Correlate = ClassWarning, st.rule, true, true
		d.Outcome = OutcomePass
		lv := asPrimary
		if en.inhibited(topo, ev, fp, nowNS, &d) {
			lv, d.Outcome = asSymptom, OutcomeInhibited
		}
		d.DedupCount, d.FirstSeen = st.count, time.Unix(0, st.firstSeen).UTC()
		out = append(out, Deferred{Event: *ev, Decision: d})
		en.promote(fp, &st)
		st.notified = max(st.notified, lv)
		en.alerts[fp] = st
		en.counts.deferred[deferredPromoted]++
	}
	for _, fp := range again {
		// Keep the entry valid for the check above: due stays
		// pendingSince+persist, which is already past.
		st := en.alerts[fp]
		heap.Push(&en.pendingQ, dueEntry{due: st.pendingSince + st.persist, fp: fp})
	}
	if en.changes != nil {
		en.changes.mu.RUnlock()
	}

	if nowNS-en.lastSweep >= int64(time.Minute) || nowNS < en.lastSweep {
		en.sweep(nowNS)
	}
	if en.changes != nil && (nowNS-en.lastExpire >= int64(time.Minute) || nowNS < en.lastExpire) {
		en.lastExpire = nowNS
		en.changes.Expire(now)
	}
	en.flush(rs)
	return out
}

func (en *Engine) sortedKeys(m map[uint64]struct{}) []uint64 {
	en.fps = en.fps[:0]
	for k := range m {
		en.fps = append(en.fps, k)
	}
	slices.Sort(en.fps) // deterministic output order
	return en.fps
}

// sweep evicts the alerts not seen for their TTL and stale inhibit
// sources.
func (en *Engine) sweep(nowNS int64) {
	en.lastSweep = nowNS
	en.nextExpiry = math.MaxInt64
	for fp, st := range en.alerts {
		exp := en.expiry(&st)
		if nowNS > exp && (st.firing || !st.flapping) {
			en.evict(fp, &st, evictExpired)
			continue
		}
		en.nextExpiry = min(en.nextExpiry, exp)
	}
	for _, s := range en.inhib {
		en.counts.evicted[stateInhibitSources][evictExpired] += uint64(s.sweep(nowNS, int64(en.cfg.State.FiringTTL)))
	}
}

// makeRoom evicts alerts when the state is full: the stale ones first,
// then the least recently seen of a sample.
func (en *Engine) makeRoom(now time.Time, nowNS int64) {
	// Sweep only once something may be stale, and at most once a second
	// of `now`: under a storm of new alerts the state stays full, and a
	// sweep per batch would cost O(state).
	if nowNS > en.nextExpiry && nowNS-en.lastSweep >= int64(time.Second) || nowNS < en.lastSweep {
		en.sweep(nowNS)
	}
	for len(en.alerts) >= en.cfg.State.MaxAlerts {
		var victim uint64
		var vst alertState
		n := 0
		for fp, st := range en.alerts {
			if n == 0 || st.lastSeen < vst.lastSeen {
				victim, vst = fp, st
			}
			if n++; n == 8 {
				break
			}
		}
		en.evict(victim, &vst, evictOverflow)
	}
}

func (en *Engine) evict(fp uint64, st *alertState, reason evictReason) {
	if st.flapping && !st.firing && st.notified != notNotified && st.held != nil {
		// Never lose a resolution: pass the held one on at the next Tick.
		en.queued = append(en.queued, Deferred{Event: *st.held, Decision: Decision{
			Class: st.class, Outcome: OutcomePass, Correlate: true, Rule: st.rule,
			DedupCount: st.count, FirstSeen: time.Unix(0, st.firstSeen).UTC(),
		}})
		en.counts.deferred[deferredEvicted]++
		en.counts.resolution[resolutionPassed]++
	}
	delete(en.alerts, fp)
	delete(en.pending, fp)
	delete(en.flapping, fp)
	en.counts.evicted[stateAlerts][reason]++
}

// dueEntry is a pending warning in Engine.pendingQ.
type dueEntry struct {
	due int64 // pendingSince + persist, Unix nanoseconds
	fp  uint64
}

type dueHeap []dueEntry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].fp < h[j].fp
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
