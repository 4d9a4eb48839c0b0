package incidents

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/rules"
)

// Notice is what receivers should hear about a change.
type Notice struct {
	// Kind is created, updated, escalated, resolved, reopened or closed.
	Kind   string
	Reason string
}

// Change is one new version of an incident or a problem, with what to
// notify. The pointers are copies the caller owns.
type Change struct {
	Incident *Incident
	Problem  *Problem
	Notices  []Notice
	// Transition is set when the change moved the incident's status.
	Transition *Transition
}

// ChangeSource looks up changes completed on a CI shortly before an
// incident's onset (*rules.ChangeStore).
type ChangeSource interface {
	CompletedBefore(ci string, at time.Time, within time.Duration) []rules.ChangeRecord
}

// Options are a Manager's collaborators. All may be nil but Metrics.
type Options struct {
	Config   Config
	Topology func() Topology
	Changes  ChangeSource
	KEDB     *KEDB
	Metrics  *Metrics
	// PartitionKey is recorded on every incident and problem, so an
	// operator action can be routed to the partition that owns it.
	PartitionKey func(in *correlate.Incident) string
	// NoChanges: nobody reads the changes (no analytics, no
	// notifications); Sync, Tick and Act keep the records but return no
	// Change, sparing a copy of every incident a storm touches.
	NoChanges bool
}

// Errors of operator actions.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("not allowed in the current status")
	ErrBadInput = errors.New("bad input")
)

// Manager keeps the incident and problem records of one partition. It is
// not safe for concurrent use: the partition's goroutine owns it.
type Manager struct {
	opts Options
	cfg  Config
	m    *Metrics

	incidents map[string]*Incident
	problems  map[string]*Problem
	// sigs lists, per signature (root-cause CI and category), the
	// incidents with it and their onsets, for recurrence.
	sigs map[string][]sigEntry
	// rate keeps the opening times of incidents per service (and per
	// root-cause CI as "ci/<id>"), for the rate-anomaly rule.
	rate map[string][]time.Time
	// known are the known errors raised from this partition's problems.
	known map[string]*KnownError
	// resEsc counts resolution-target escalations per incident.
	resEsc map[string]int
	// since is the onset of the first incident this partition saw: the
	// rate rule needs a baseline's worth of history, or every service
	// would look anomalous against a baseline of nothing at start-up.
	since time.Time

	dirtyInc  map[string]bool
	dirtyProb map[string]bool
	metaDirty bool

	// order is the ids of incidents in order, for Tick's deterministic
	// notification order: sorting them at every tick was 7% of a
	// partition's CPU in a replayed storm, whose event clock moves a second
	// every few batches. create inserts, Tick removes; a restore only adds
	// records, so a length that differs from the map's means it is stale.
	order []string
}

type sigEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// NewManager returns an empty manager.
func NewManager(opts Options) *Manager {
	opts.Config.SetDefaults()
	return &Manager{
		opts: opts, cfg: opts.Config, m: opts.Metrics,
		incidents: map[string]*Incident{}, problems: map[string]*Problem{},
		sigs: map[string][]sigEntry{}, rate: map[string][]time.Time{}, known: map[string]*KnownError{},
		resEsc: map[string]int{}, dirtyInc: map[string]bool{}, dirtyProb: map[string]bool{},
	}
}

func (m *Manager) topo() Topology {
	if m.opts.Topology == nil {
		return nil
	}
	return m.opts.Topology()
}

// Incident returns a copy of incident id.
func (m *Manager) Incident(id string) (*Incident, bool) {
	in, ok := m.incidents[id]
	if !ok {
		return nil, false
	}
	m.freshen(in)
	return in.clone(), true
}

// Incidents returns copies of every incident held, by opening time.
func (m *Manager) Incidents() []*Incident {
	out := make([]*Incident, 0, len(m.incidents))
	for _, in := range m.incidents {
		m.freshen(in)
		out = append(out, in.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].OpenedAt.Equal(out[j].OpenedAt) {
			return out[i].OpenedAt.Before(out[j].OpenedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Problems returns copies of every problem held, by raising time.
func (m *Manager) Problems() []*Problem {
	out := make([]*Problem, 0, len(m.problems))
	for _, p := range m.problems {
		out = append(out, p.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].RaisedAt.Equal(out[j].RaisedAt) {
			return out[i].RaisedAt.Before(out[j].RaisedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Problem returns a copy of problem id.
func (m *Manager) Problem(id string) (*Problem, bool) {
	p, ok := m.problems[id]
	if !ok {
		return nil, false
	}
	return p.clone(), true
}

// clone returns a copy that shares the lists' arrays, capped at their
// lengths. The manager only appends to a record's lists or replaces them
// whole (the correlator's views on every refresh), never writes into them,
// so copies stay what they were at no cost per member.
func (in *Incident) clone() *Incident {
	c := *in
	c.Services = capped(in.Services)
	c.CIs = capped(in.CIs)
	c.RootCauseExplains = capped(in.RootCauseExplains)
	c.Escalations = capped(in.Escalations)
	c.Breaches = capped(in.Breaches)
	c.Transitions = capped(in.Transitions)
	c.Comments = capped(in.Comments)
	c.EventIDs = capped(in.EventIDs)
	c.SuppressedEventIDs = capped(in.SuppressedEventIDs)
	c.MergedFrom = capped(in.MergedFrom)
	c.Members = capped(in.Members)
	return &c
}

func capped[T any](s []T) []T { return s[:len(s):len(s)] }

// incidentScan is what fill derived from the members and CIs it has seen
// of a record, so the next version only looks at the new ones.
type incidentScan struct {
	members, merged, cis int
	maxSev               event.Severity
	root, symptom        string
	services             map[string]bool
	crits                []int
	// category is what Categorize gave for catOf: it reads the symptom
	// word by word, and a storm refreshes an incident with every batch.
	category Category
	catOf    categoryInputs
}

type categoryInputs struct {
	ciType, symptom string
	sev             event.Severity
}

func (p *Problem) clone() *Problem {
	c := *p
	c.Incidents = slices.Clone(p.Incidents)
	c.Transitions = slices.Clone(p.Transitions)
	return &c
}

// batch collects one Sync's changes, one per record.
type batch struct {
	m       *Manager
	order   []string
	notices map[string][]Notice
	trans   map[string]*Transition
	probs   []string
	// now is the event-time clock of a batch from correlation or Tick,
	// whose "updated" notices are paced (Config.UpdateInterval); zero for
	// an operator action, whose notices go at once.
	now time.Time
}

func (b *batch) note(id string, n ...Notice) {
	if _, ok := b.notices[id]; !ok {
		b.order = append(b.order, id)
		b.notices[id] = nil
	}
	b.notices[id] = append(b.notices[id], n...)
}

func (b *batch) changes() []Change {
	var out []Change
	for _, id := range b.order {
		in, ok := b.m.incidents[id]
		if !ok {
			continue
		}
		in.Version++
		b.m.dirtyInc[id] = true
		if b.m.opts.NoChanges {
			continue
		}
		b.m.freshen(in)
		ns := b.m.pace(in, coalesce(b.notices[id]), b.now)
		out = append(out, Change{Incident: in.clone(), Notices: ns, Transition: b.trans[id]})
	}
	for _, id := range b.probs {
		if p, ok := b.m.problems[id]; ok {
			p.Version++
			b.m.dirtyProb[id] = true
			if !b.m.opts.NoChanges {
				out = append(out, Change{Problem: p.clone()})
			}
		}
	}
	return out
}

// pace holds back ns when it is only an "updated" notice within
// Config.UpdateInterval of in's latest notification (now zero: never),
// merging its reason into in.HeldUpdate. Otherwise ns goes, the held
// reasons with it, and in.NotifiedAt moves to now.
func (m *Manager) pace(in *Incident, ns []Notice, now time.Time) []Notice {
	if len(ns) == 0 {
		return ns
	}
	onlyUpdate := len(ns) == 1 && ns[0].Kind == "updated"
	if onlyUpdate && !now.IsZero() && !in.NotifiedAt.IsZero() && now.Sub(in.NotifiedAt) < m.cfg.UpdateInterval {
		in.HeldUpdate = mergeReasons(in.HeldUpdate, ns[0].Reason)
		m.m.updatesHeld.Inc()
		return nil
	}
	if in.HeldUpdate != "" {
		// The notification carries the incident as it is now: what was
		// held is in it. An "updated" notice also says why.
		for i := range ns {
			if ns[i].Kind == "updated" {
				ns[i].Reason = mergeReasons(in.HeldUpdate, ns[i].Reason)
			}
		}
		in.HeldUpdate = ""
	}
	if now.IsZero() {
		now = in.UpdatedAt
	}
	in.NotifiedAt = now
	return ns
}

// mergeReasons joins "; "-separated reasons, each once, in order.
func mergeReasons(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	parts := strings.Split(a, "; ")
	for _, r := range strings.Split(b, "; ") {
		if !slices.Contains(parts, r) {
			parts = append(parts, r)
		}
	}
	return strings.Join(parts, "; ")
}

// coalesce merges a batch's "updated" notices into one, so a storm of
// joins makes one notification per incident and batch.
func coalesce(ns []Notice) []Notice {
	var out []Notice
	upd := -1
	for _, n := range ns {
		if n.Kind == "updated" && upd >= 0 {
			if !slices.Contains([]string{out[upd].Reason}, n.Reason) {
				out[upd].Reason += "; " + n.Reason
			}
			continue
		}
		if n.Kind == "updated" {
			upd = len(out)
		}
		out = append(out, n)
	}
	return out
}

func (m *Manager) newBatch() *batch {
	return &batch{m: m, notices: map[string][]Notice{}, trans: map[string]*Transition{}}
}

// Sync applies the correlator's updates of one batch. snapshot returns
// the correlator's current view of an incident. now is the partition's
// event-time clock.
func (m *Manager) Sync(ups []correlate.Update, snapshot func(id string) (*correlate.Incident, bool), now time.Time) []Change {
	if len(ups) == 0 {
		return nil
	}
	b := m.newBatch()
	b.now = now
	final := map[string]*correlate.Incident{}
	var touched []string
	seen := map[string]bool{}
	touch := func(id string) {
		if !seen[id] {
			seen[id] = true
			touched = append(touched, id)
		}
	}
	joined := map[string]int{}
	for _, u := range ups {
		switch u.Kind {
		case correlate.UpdateUnattached:
		case correlate.UpdateClosed:
			final[u.IncidentID] = u.Incident
			touch(u.IncidentID)
		case correlate.UpdateJoined:
			joined[u.IncidentID]++
			touch(u.IncidentID)
		default:
			touch(u.IncidentID)
		}
	}
	view := func(id string) (*correlate.Incident, bool) {
		if c, ok := snapshot(id); ok {
			return c, true
		}
		c, ok := final[id]
		return c, ok && c != nil
	}
	// Records first (creation and content), then the lifecycle updates in
	// order.
	for _, id := range touched {
		c, ok := view(id)
		if !ok {
			continue
		}
		if _, exists := m.incidents[id]; !exists {
			m.create(b, c, now)
			continue
		}
		m.refresh(b, c, joined[id])
	}
	for _, u := range ups {
		in, ok := m.incidents[u.IncidentID]
		if !ok {
			continue
		}
		switch u.Kind {
		case correlate.UpdateMerged:
			if o, ok := m.incidents[u.Other]; ok && o.Status != StatusClosed {
				o.MergedInto = in.ID
				m.transition(b, o, StatusClosed, u.At, "correlatord", "merged into "+in.ID)
				b.note(o.ID, Notice{Kind: "closed", Reason: "merged into " + in.ID})
				m.m.closed.WithLabelValues("merged").Inc()
			}
		case correlate.UpdateResolved:
			if in.Status.Open() {
				in.AutoResolved = true
				m.resolve(b, in, u.At, "correlatord", "every alert cleared")
			}
		case correlate.UpdateReopened:
			if !in.Status.Open() {
				m.reopen(b, in, u.At, "correlatord", "the same signature recurred")
			}
		}
	}
	return b.changes()
}

// create opens a record for the correlator's incident c.
func (m *Manager) create(b *batch, c *correlate.Incident, now time.Time) {
	in := &Incident{ID: c.ID, Status: StatusNew, OpenedAt: c.OpenedAt, UpdatedAt: now, EscalationLevel: LevelLine1}
	if m.opts.PartitionKey != nil {
		in.PartitionKey = m.opts.PartitionKey(c)
	}
	m.incidents[in.ID] = in
	if i, found := slices.BinarySearch(m.order, in.ID); !found {
		m.order = slices.Insert(m.order, i, in.ID)
	}
	m.fill(in, c)
	in.ResponseTarget = m.cfg.ResponseTargets[in.Priority]
	in.ResolutionTarget = m.cfg.ResolutionTargets[in.Category][in.ServiceClass-1]
	t := Transition{At: in.OpenedAt, To: StatusNew, By: "correlatord", Note: "opened from " + c.EventIDs[0]}
	in.Transitions = append(in.Transitions, t)
	b.trans[in.ID] = &in.Transitions[len(in.Transitions)-1]
	m.changeInduced(in)
	m.matchKnownError(in)
	describe(in, m.topo())
	b.note(in.ID, Notice{Kind: "created", Reason: fmt.Sprintf("%s %s", in.Priority, in.Category)})
	m.m.created.WithLabelValues(string(in.Priority), serviceLabel(in)).Inc()
	m.m.open.WithLabelValues(string(in.Priority), string(in.Status)).Inc()
	if in.Priority.Rank() <= P1.Rank() {
		// ISO 20000: a major incident goes to the incident manager at
		// once.
		m.escalate(b, in, LevelIncidentManager, in.OpenedAt, fmt.Sprintf("%s incident: the incident manager takes it at creation", in.Priority))
	}
	m.track(b, in, now)
}

// refresh brings the record up to date with c.
func (m *Manager) refresh(b *batch, c *correlate.Incident, joined int) {
	in := m.incidents[c.ID]
	oldPrio, oldRoot := in.Priority, in.RootCauseCI
	m.fill(in, c)
	if in.Priority != oldPrio {
		m.m.open.WithLabelValues(string(oldPrio), string(in.Status)).Dec()
		m.m.open.WithLabelValues(string(in.Priority), string(in.Status)).Inc()
		b.note(in.ID, Notice{Kind: "updated", Reason: fmt.Sprintf("priority %s -> %s", oldPrio, in.Priority)})
		// Targets follow the priority; a higher priority at once goes to
		// the incident manager like a new one.
		in.ResponseTarget = m.cfg.ResponseTargets[in.Priority]
		in.ResolutionTarget = m.cfg.ResolutionTargets[in.Category][in.ServiceClass-1]
		if in.Priority == P1 && in.EscalationLevel < LevelIncidentManager && in.Status.Open() {
			m.escalate(b, in, LevelIncidentManager, in.UpdatedAt, "priority raised to P1")
		}
	}
	if in.RootCauseCI != oldRoot {
		b.note(in.ID, Notice{Kind: "updated", Reason: fmt.Sprintf("root cause %s -> %s", orDash(oldRoot), orDash(in.RootCauseCI))})
		m.retrack(in, oldRoot)
		if in.RootCauseCI != "" {
			m.checkRecurrence(b, signature(in.RootCauseCI, in.Category), in, in.UpdatedAt)
		}
	}
	if joined > 0 {
		b.note(in.ID, Notice{Kind: "updated", Reason: "new members"})
	}
	in.stale = true
	if _, ok := b.notices[in.ID]; !ok {
		b.note(in.ID) // the content changed (members) even when nothing is to be said
	}
}

// fill copies the correlator's view into in and classifies it.
func (m *Manager) fill(in *Incident, c *correlate.Incident) {
	// The correlator's snapshot is ours and its lists are never written
	// in place: the record takes them as they are.
	in.CIs, in.EventIDs, in.SuppressedEventIDs = c.CIs, c.EventIDs, c.SuppressedEventIDs
	in.MergedFrom, in.Members, in.RootCauseExplains = c.MergedFrom, c.Members, c.RootCauseExplains
	in.RootCauseCI, in.RootCauseConfidence, in.RootCauseSuspected = c.RootCauseCI, c.RootCauseConfidence, c.RootCauseSuspected
	topo := m.topo()
	// What the earlier versions' members and CIs gave is kept: lists only
	// grow, so only the new entries are looked at, except after a merge
	// (which reorders the members) or a restore.
	sc := &in.scan
	if len(c.Members) < sc.members || len(c.MergedFrom) != sc.merged || len(c.CIs) < sc.cis {
		*sc = incidentScan{}
		in.Services = nil // a new array: copies handed out share the old one
	}
	sc.merged = len(c.MergedFrom)
	for _, mb := range c.Members[sc.members:] {
		if mb.Severity.Rank() > sc.maxSev.Rank() {
			sc.maxSev = mb.Severity
		}
	}
	sc.members = len(c.Members)
	if sc.root != c.RootCauseCI || sc.symptom == "" {
		sc.root, sc.symptom = c.RootCauseCI, ""
		for _, mb := range c.Members {
			if mb.CI == c.RootCauseCI && mb.Symptom != "" {
				sc.symptom = mb.Symptom
				break
			}
		}
		if sc.symptom == "" && len(c.Members) > 0 {
			sc.symptom = c.Members[0].Symptom
		}
	}
	maxSev, symptom, ciType := sc.maxSev, sc.symptom, ""
	if topo != nil {
		if sc.services == nil {
			sc.services = map[string]bool{}
		}
		for _, ci := range c.CIs[sc.cis:] {
			for _, s := range topo.ImpactedServices(ci) {
				if !sc.services[s] {
					sc.services[s] = true
					in.Services = append(in.Services, s)
					if svc, ok := topo.CI(s); ok {
						sc.crits = append(sc.crits, svc.Criticality)
					}
				}
			}
		}
		if rc, ok := topo.CI(c.RootCauseCI); ok {
			ciType = rc.Type
			in.SupportGroup = rc.SupportGroup
		}
	}
	sc.cis = len(c.CIs)
	crits := sc.crits
	if cat := (categoryInputs{ciType, symptom, maxSev}); sc.category == "" || sc.catOf != cat {
		sc.category, sc.catOf = Categorize(ciType, symptom, maxSev), cat
	}
	in.Category = sc.category
	in.Impact, in.ServiceClass = ImpactOf(crits, len(in.Services), len(c.CIs))
	in.Urgency = UrgencyOf(maxSev)
	in.Priority = m.cfg.PriorityMatrix[in.Impact-1][in.Urgency-1]
}

// changeInduced flags in with the latest change completed on its root
// cause, or a CI the root cause depends on, within ChangeLookback before
// the onset.
func (m *Manager) changeInduced(in *Incident) {
	if m.opts.Changes == nil || in.RootCauseCI == "" {
		return
	}
	cis := []string{in.RootCauseCI}
	if topo := m.topo(); topo != nil {
		cis = append(cis, topo.Dependencies(in.RootCauseCI, 3)...)
	}
	var best *rules.ChangeRecord
	for _, ci := range cis {
		for _, ch := range m.opts.Changes.CompletedBefore(ci, in.OpenedAt, m.cfg.ChangeLookback) {
			if best == nil || ch.End().After(best.End()) {
				c := ch
				best = &c
			}
			break // the most recent first
		}
	}
	if best != nil {
		in.ChangeID = best.ID
		m.m.changeInduced.Inc()
	}
}

// matchLabels builds the labels known-error matchers see.
func (m *Manager) matchLabels(in *Incident) *matchLabels {
	l := &matchLabels{set: map[string]string{
		"root_cause_ci": in.RootCauseCI, "category": string(in.Category), "priority": string(in.Priority),
		"support_group": in.SupportGroup,
	}, services: in.Services}
	if topo := m.topo(); topo != nil {
		if ci, ok := topo.CI(in.RootCauseCI); ok {
			l.set["ci_type"] = ci.Type
		}
	}
	for _, mb := range in.Members {
		if mb.CI == in.RootCauseCI && mb.Symptom != "" {
			l.set["alertname"] = mb.Symptom
			break
		}
	}
	return l
}

// matchKnownError attaches the first known error that matches in: the
// file's entries in order, then those raised from this partition's
// problems by id.
func (m *Manager) matchKnownError(in *Incident) {
	l := m.matchLabels(in)
	var cands []*KnownError
	if m.opts.KEDB != nil {
		cands = append(cands, m.opts.KEDB.Entries()...)
	}
	ids := make([]string, 0, len(m.known))
	for id := range m.known {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cands = append(cands, m.known[id])
	}
	for _, k := range cands {
		if k.matches(l) {
			in.KnownErrorID, in.Workaround = k.ID, k.Workaround
			if k.ProblemID != "" {
				in.ProblemID = k.ProblemID
				if p, ok := m.problems[k.ProblemID]; ok && !slices.Contains(p.Incidents, in.ID) {
					p.Incidents = append(p.Incidents, in.ID)
					m.dirtyProb[p.ID] = true
				}
			}
			m.m.knownErrors.Inc()
			return
		}
	}
}

func signature(ci string, cat Category) string { return ci + "\x00" + string(cat) }

// track records in for recurrence and rate, and raises the candidates
// they call for.
func (m *Manager) track(b *batch, in *Incident, now time.Time) {
	if m.since.IsZero() || in.OpenedAt.Before(m.since) {
		m.since = in.OpenedAt
	}
	if in.RootCauseCI != "" {
		sig := signature(in.RootCauseCI, in.Category)
		m.sigs[sig] = append(m.sigs[sig], sigEntry{ID: in.ID, At: in.OpenedAt})
		m.checkRecurrence(b, sig, in, now)
		m.rate["ci/"+in.RootCauseCI] = append(m.rate["ci/"+in.RootCauseCI], in.OpenedAt)
	}
	for _, s := range in.Services {
		m.rate["service/"+s] = append(m.rate["service/"+s], in.OpenedAt)
	}
	m.metaDirty = true
}

// retrack moves in from the signature of its old root cause to its new.
func (m *Manager) retrack(in *Incident, oldRoot string) {
	if oldRoot != "" {
		for sig, es := range m.sigs {
			k := slices.IndexFunc(es, func(e sigEntry) bool { return e.ID == in.ID })
			if k >= 0 {
				m.sigs[sig] = slices.Delete(es, k, k+1)
				if len(m.sigs[sig]) == 0 {
					delete(m.sigs, sig)
				}
				break
			}
		}
	}
	if in.RootCauseCI != "" {
		sig := signature(in.RootCauseCI, in.Category)
		m.sigs[sig] = append(m.sigs[sig], sigEntry{ID: in.ID, At: in.OpenedAt})
	}
	m.metaDirty = true
}

func problemID(reason ProblemReason, key string) string {
	return "PRB-" + string(reason[:3]) + "-" + shortHash(key)
}

// openProblem returns the problem of this reason and key that is still
// being worked on, if any.
func (m *Manager) openProblem(id string) *Problem {
	p, ok := m.problems[id]
	if ok && p.Status != ProblemClosed && p.Status != ProblemRejected && p.Status != ProblemResolved {
		return p
	}
	return nil
}

// raise creates (or extends) a problem candidate.
func (m *Manager) raise(b *batch, reason ProblemReason, key string, incs []string, at time.Time, fill func(p *Problem)) *Problem {
	id := problemID(reason, key)
	if p := m.openProblem(id); p != nil {
		for _, i := range incs {
			if !slices.Contains(p.Incidents, i) {
				p.Incidents = append(p.Incidents, i)
			}
		}
		p.UpdatedAt = at
		if !slices.Contains(b.probs, id) {
			b.probs = append(b.probs, id)
		}
		return p
	}
	if old, ok := m.problems[id]; ok {
		// A closed one comes back: a new problem with a new id.
		id = fmt.Sprintf("%s-%d", id, len(old.Transitions))
	}
	p := &Problem{ID: id, Status: ProblemCandidate, Reason: reason, Incidents: slices.Clone(incs), RaisedAt: at, UpdatedAt: at,
		Transitions: []Transition{{At: at, To: Status(ProblemCandidate), By: "correlatord"}}}
	fill(p)
	m.problems[id] = p
	for _, i := range incs {
		if in, ok := m.incidents[i]; ok && in.ProblemID == "" {
			in.ProblemID = id
			b.note(i)
		}
	}
	b.probs = append(b.probs, id)
	m.m.problems.WithLabelValues(string(reason)).Inc()
	m.m.problemsOpen.WithLabelValues(string(ProblemCandidate)).Inc()
	return p
}

func (m *Manager) checkRecurrence(b *batch, sig string, in *Incident, now time.Time) {
	cut := in.OpenedAt.Add(-m.cfg.Problems.RecurrencePeriod)
	es := m.sigs[sig]
	var ids []string
	for _, e := range es {
		if !e.At.Before(cut) {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) < m.cfg.Problems.RecurrenceCount {
		return
	}
	m.raise(b, ReasonRecurring, sig, ids, now, func(p *Problem) {
		p.RootCauseCI, p.Category = in.RootCauseCI, in.Category
		p.Title = fmt.Sprintf("Recurring %s on %s", in.Category, in.RootCauseCI)
		p.Detail = fmt.Sprintf("%d incidents with root cause %s and category %s within %s", len(ids), in.RootCauseCI, in.Category, m.cfg.Problems.RecurrencePeriod)
		p.PartitionKey = in.PartitionKey
	})
}

func (m *Manager) transition(b *batch, in *Incident, to Status, at time.Time, by, note string) {
	from := in.Status
	if from == to {
		return
	}
	m.m.open.WithLabelValues(string(in.Priority), string(from)).Dec()
	if to != StatusClosed {
		m.m.open.WithLabelValues(string(in.Priority), string(to)).Inc()
	}
	in.Status = to
	in.UpdatedAt = at
	in.Transitions = append(in.Transitions, Transition{At: at, From: from, To: to, By: by, Note: note})
	b.trans[in.ID] = &in.Transitions[len(in.Transitions)-1]
	if to == StatusClosed {
		in.ClosedAt = at
	}
	b.note(in.ID)
}

func (m *Manager) resolve(b *batch, in *Incident, at time.Time, by, note string) {
	m.transition(b, in, StatusResolved, at, by, note)
	in.ResolvedAt = at
	how := "manual"
	if in.AutoResolved {
		how = "auto"
	}
	m.m.resolved.WithLabelValues(string(in.Priority), how).Inc()
	d := at.Sub(in.OpenedAt)
	m.m.timeToResolve.WithLabelValues(string(in.Priority), serviceLabel(in)).Observe(d.Seconds())
	if d > in.ResolutionTarget && !in.Breached(BreachResolution) {
		m.breach(in, BreachResolution, in.OpenedAt.Add(in.ResolutionTarget), in.ResolutionTarget)
	}
	if in.Category == CategoryOutage || in.Category == CategoryUnreachable {
		for _, s := range in.Services {
			m.m.downtime.WithLabelValues(s).Add(d.Seconds())
		}
	}
	b.note(in.ID, Notice{Kind: "resolved", Reason: note})
	if in.Priority.Rank() <= m.cfg.Problems.MajorPriority.Rank() {
		m.raise(b, ReasonMajorIncident, in.ID, []string{in.ID}, at, func(p *Problem) {
			p.RootCauseCI, p.Category = in.RootCauseCI, in.Category
			p.Title = fmt.Sprintf("Major incident review: %s", in.Title)
			p.Detail = fmt.Sprintf("%s incident resolved after %s", in.Priority, d.Round(time.Second))
			p.PartitionKey = in.PartitionKey
		})
	}
}

func (m *Manager) reopen(b *batch, in *Incident, at time.Time, by, note string) {
	m.transition(b, in, StatusReopened, at, by, note)
	in.ResolvedAt, in.ClosedAt, in.AutoResolved = time.Time{}, time.Time{}, false
	in.Reopened++
	m.m.reopened.Inc()
	b.note(in.ID, Notice{Kind: "reopened", Reason: note})
}

func (m *Manager) breach(in *Incident, k BreachKind, at time.Time, target time.Duration) {
	in.Breaches = append(in.Breaches, Breach{Kind: k, At: at, Target: target})
	m.m.breaches.WithLabelValues(string(in.Priority), string(k)).Inc()
}

func (m *Manager) escalate(b *batch, in *Incident, to int, at time.Time, reason string) {
	if to <= in.EscalationLevel {
		return
	}
	in.Escalations = append(in.Escalations, Escalation{At: at, From: in.EscalationLevel, To: to, Reason: reason})
	in.EscalationLevel = to
	m.m.escalations.WithLabelValues(levelLabel(to)).Inc()
	b.note(in.ID, Notice{Kind: "escalated", Reason: fmt.Sprintf("escalated to %s: %s", LevelName(to), reason)})
}

// Tick runs the timers up to now (the partition's clock): SLA targets and
// escalation, automatic closing, forgetting closed incidents, and the
// rate-anomaly rule.
func (m *Manager) Tick(now time.Time) []Change {
	b := m.newBatch()
	b.now = now
	if len(m.order) != len(m.incidents) {
		m.order = m.order[:0]
		for id := range m.incidents {
			m.order = append(m.order, id)
		}
		slices.Sort(m.order)
	}
	removed := false
	for _, id := range m.order {
		in := m.incidents[id]
		if in.HeldUpdate != "" && now.Sub(in.NotifiedAt) >= m.cfg.UpdateInterval {
			// Its interval is over: what was held goes (pace adds it).
			b.note(in.ID, Notice{Kind: "updated"})
		}
		switch {
		case in.Status.Open():
			m.slaTimers(b, in, now)
		case in.Status == StatusResolved:
			if at := in.ResolvedAt.Add(m.cfg.AutoCloseAfter); !now.Before(at) {
				m.transition(b, in, StatusClosed, at, "correlatord", fmt.Sprintf("closed automatically %s after resolution", m.cfg.AutoCloseAfter))
				b.note(in.ID, Notice{Kind: "closed", Reason: "automatic"})
				m.m.closed.WithLabelValues("auto").Inc()
			}
		case in.Status == StatusClosed:
			if now.Sub(in.ClosedAt) > m.cfg.ClosedRetention {
				delete(m.incidents, id)
				delete(m.resEsc, id)
				m.dirtyInc[id] = true // written as a tombstone
				removed = true
			}
		}
	}
	if removed {
		m.order = slices.DeleteFunc(m.order, func(id string) bool { _, ok := m.incidents[id]; return !ok })
	}
	m.rateAnomalies(b, now)
	m.prune(now)
	return b.changes()
}

// slaTimers records breaches and escalates: not acknowledged within the
// response target, one line up; not resolved within the resolution
// target, one line up, and one more at every further multiple of it,
// until the incident manager has it.
func (m *Manager) slaTimers(b *batch, in *Incident, now time.Time) {
	if in.AcknowledgedAt.IsZero() && !in.Breached(BreachResponse) {
		if at := in.OpenedAt.Add(in.ResponseTarget); !now.Before(at) {
			m.breach(in, BreachResponse, at, in.ResponseTarget)
			m.escalate(b, in, min(in.EscalationLevel+1, LevelIncidentManager), at,
				fmt.Sprintf("not acknowledged within the %s response target", in.ResponseTarget))
			b.note(in.ID)
		}
	}
	for {
		k := m.resEsc[in.ID] + 1
		at := in.OpenedAt.Add(time.Duration(k) * in.ResolutionTarget)
		if now.Before(at) || in.ResolutionTarget <= 0 {
			return
		}
		m.resEsc[in.ID] = k
		m.metaDirty = true
		if k == 1 && !in.Breached(BreachResolution) {
			m.breach(in, BreachResolution, at, in.ResolutionTarget)
		}
		m.escalate(b, in, min(in.EscalationLevel+1, LevelIncidentManager), at,
			fmt.Sprintf("not resolved within %d x the %s resolution target", k, in.ResolutionTarget))
		b.note(in.ID)
		if in.EscalationLevel >= LevelIncidentManager {
			// Nothing higher: stop counting steps.
			m.resEsc[in.ID] = 1 << 20
			return
		}
	}
}

// rateAnomalies raises a candidate for a service or CI whose incidents in
// the last RateWindow reach RateMinCount and RateFactor times its baseline
// (the mean count per RateWindow over the RateBaseline before).
func (m *Manager) rateAnomalies(b *batch, now time.Time) {
	pc := m.cfg.Problems
	if m.since.IsZero() || now.Sub(m.since) < pc.RateBaseline+pc.RateWindow {
		return
	}
	keys := make([]string, 0, len(m.rate))
	for k := range m.rate {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ts := m.rate[k]
		recent, base := 0, 0
		var ids []string
		for _, t := range ts {
			switch {
			case now.Sub(t) <= pc.RateWindow:
				recent++
			case now.Sub(t) <= pc.RateWindow+pc.RateBaseline:
				base++
			}
		}
		if recent < pc.RateMinCount {
			continue
		}
		baseline := float64(base) * float64(pc.RateWindow) / float64(pc.RateBaseline)
		if float64(recent) < pc.RateFactor*max(baseline, 1) {
			continue
		}
		for id, in := range m.incidents {
			if now.Sub(in.OpenedAt) <= pc.RateWindow && (k == "ci/"+in.RootCauseCI || slices.Contains(in.Services, k[len("service/"):])) {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		key := k
		m.raise(b, ReasonRateAnomaly, key, ids, now, func(p *Problem) {
			if name, ok := cutPrefix(key, "service/"); ok {
				p.Service = name
			} else if name, ok := cutPrefix(key, "ci/"); ok {
				p.RootCauseCI = name
			}
			p.Title = fmt.Sprintf("Incident rate on %s far above its baseline", key)
			p.Detail = fmt.Sprintf("%d incidents in the last %s; baseline %.2f per %s over the %s before", recent, pc.RateWindow, baseline, pc.RateWindow, pc.RateBaseline)
			for _, id := range ids {
				if in, ok := m.incidents[id]; ok && in.PartitionKey != "" {
					p.PartitionKey = in.PartitionKey
					break
				}
			}
		})
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// prune forgets recurrence and rate history older than it can matter.
func (m *Manager) prune(now time.Time) {
	pc := m.cfg.Problems
	for sig, es := range m.sigs {
		k := 0
		for _, e := range es {
			if now.Sub(e.At) <= pc.RecurrencePeriod {
				es[k] = e
				k++
			}
		}
		if k != len(es) {
			m.metaDirty = true
		}
		if k == 0 {
			delete(m.sigs, sig)
		} else {
			m.sigs[sig] = es[:k]
		}
	}
	keep := pc.RateWindow + pc.RateBaseline
	for key, ts := range m.rate {
		k := 0
		for _, t := range ts {
			if now.Sub(t) <= keep {
				ts[k] = t
				k++
			}
		}
		if k != len(ts) {
			m.metaDirty = true
		}
		if k == 0 {
			delete(m.rate, key)
		} else {
			m.rate[key] = ts[:k]
		}
	}
}
