package correlate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	// segmentio's encoder and decoder, drop-in for encoding/json, are about
	// twice as fast: checkpoints rewrite every changed record, and in a
	// storm they were a sixth of the daemon's CPU. It writes a
	// time.Duration as text ("1m30s") and reads both that and
	// encoding/json's nanoseconds, so records written before still restore.
	json "github.com/segmentio/encoding/json"

	"github.com/correlatord/correlatord/event"
)

// Durable state.
//
// The engine's state is its live groups plus a little engine-wide state
// (the event-time clock, the sequence counter, inhibited events waiting for
// an incident). AppendChanges turns what changed since its last call into
// keyed records for a compacted changelog, in the manner of a Kafka Streams
// state store: one record per changed group under "group/<incident id>",
// its members in records of memberChunk under "members/<incident id>/<n>",
// tombstones (nil values) for a group that left the state, and the engine
// record under "engine". Restore rebuilds an engine from the latest record
// of each key.
//
// Members are only ever appended, except by a merge: a checkpoint rewrites
// a group's last member record and those after it, not every member. In a
// storm every group changes between checkpoints, and rewriting all members
// of each made checkpoints grow with the square of an incident's size.
//
// Only what the engine cannot recompute is stored: the incident as
// reported, the member onsets, the firing alerts and the index keys. The
// topology indexes (reach, explain, hop sums) and the best candidates are
// rebuilt from the CMDB at restore, so a record is small and does not pin
// a topology version.

// StateRecord is one changelog entry. A nil Value deletes Key.
type StateRecord struct {
	Key   string
	Value []byte
}

// Changelog keys and versions.
const (
	stateKeyEngine       = "engine"
	stateKeyGroupPrefx   = "group/"
	stateKeyMembersPrefx = "members/"
	// stateVersion 2 keeps members in records of their own; version 1
	// records (members inside the group record) still restore. A build
	// that reads only version 1 refuses version 2 rather than restoring
	// incidents without members. Version 3 packs the alert maps (see
	// packedAlerts); a build that reads up to version 2 refuses it.
	stateVersion = 3
	// memberChunk is the number of members per member record.
	memberChunk = 128
	// stateEncoding leaves map keys unsorted and HTML unescaped: sorting
	// the keys of the alert maps was a tenth of the daemon's CPU in a
	// storm, and nothing compares records byte for byte.
	stateEncoding json.AppendFlags = 0
)

// IsStateKey reports whether key is one of the engine's changelog keys;
// callers sharing the changelog with other records use it to route them.
func IsStateKey(key string) bool {
	return key == stateKeyEngine || strings.HasPrefix(key, stateKeyGroupPrefx) || strings.HasPrefix(key, stateKeyMembersPrefx)
}

func membersKey(id string, chunk int) string {
	return stateKeyMembersPrefx + id + "/" + strconv.Itoa(chunk)
}

type memberState struct {
	Member
	Seq uint64 `json:"seq"`
}

type incidentState struct {
	Incident
	// Members is set in version 1 records only.
	Members []memberState `json:"Members"`
	// MemberCount and MemberChunks say which member records belong to
	// the group (version 2).
	MemberCount  int `json:"member_count,omitempty"`
	MemberChunks int `json:"member_chunks,omitempty"`
}

type groupState struct {
	V        int                  `json:"v"`
	Incident incidentState        `json:"incident"`
	LabelKey string               `json:"label_key,omitempty"`
	Last     time.Time            `json:"last"`
	Onset    map[string]time.Time `json:"onset,omitempty"`
	// The alert maps as versions 1 and 2 wrote them: JSON objects.
	Firing    map[uint64]uint64 `json:"firing,omitempty"`
	Seen      map[uint64]uint64 `json:"seen,omitempty"`
	SigFiring map[uint64]int    `json:"sig_firing,omitempty"`
	Keys      []uint64          `json:"keys,omitempty"`
	packedAlerts
	QuietSince  time.Time `json:"quiet_since"`
	LastResolve time.Time `json:"last_resolve"`
	OpenSeq     uint64    `json:"open_seq"`
}

// packedAlerts holds the alert maps of a group as version 3 writes them:
// little-endian 64-bit words, key then value, which JSON carries as
// base64. They hold an entry or two per alert, so a checkpoint in a storm
// writes them for every alert: as JSON objects of decimal strings, encoded
// through reflection, they were half of AppendChanges' time
// (BenchmarkAppendChanges).
type packedAlerts struct {
	FiringPacked    []byte `json:"firing_packed,omitempty"`
	SeenPacked      []byte `json:"seen_packed,omitempty"`
	SigFiringPacked []byte `json:"sig_firing_packed,omitempty"`
	KeysPacked      []byte `json:"keys_packed,omitempty"`
}

// packAlerts appends g's alert maps to buf and points s's packed fields at
// them.
func (s *groupState) packAlerts(buf []byte, g *group) []byte {
	start := len(buf)
	buf = appendPairs(buf, g.firing)
	firing := len(buf)
	buf = appendPairs(buf, g.seen)
	seen := len(buf)
	buf = appendPairs(buf, g.sigFiring)
	sig := len(buf)
	for _, k := range g.keys {
		buf = binary.LittleEndian.AppendUint64(buf, k)
	}
	s.FiringPacked, s.SeenPacked = buf[start:firing], buf[firing:seen]
	s.SigFiringPacked, s.KeysPacked = buf[seen:sig], buf[sig:]
	return buf
}

func appendPairs[V uint64 | int](buf []byte, m map[uint64]V) []byte {
	for k, v := range m {
		buf = binary.LittleEndian.AppendUint64(buf, k)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
	}
	return buf
}

// unpackAlerts fills s's alert maps from its packed fields.
func (s *groupState) unpackAlerts() error {
	for _, f := range []struct {
		name string
		b    []byte
		size int
	}{{"firing_packed", s.FiringPacked, 16}, {"seen_packed", s.SeenPacked, 16}, {"sig_firing_packed", s.SigFiringPacked, 16}, {"keys_packed", s.KeysPacked, 8}} {
		if len(f.b)%f.size != 0 {
			return fmt.Errorf("%s: %d bytes, not a whole number of %d-byte entries", f.name, len(f.b), f.size)
		}
	}
	s.Firing = unpackPairs(s.FiringPacked)
	s.Seen = unpackPairs(s.SeenPacked)
	s.SigFiring = make(map[uint64]int, len(s.SigFiringPacked)/16)
	for k, n := range unpackPairs(s.SigFiringPacked) {
		if n == 0 || n > math.MaxInt32 {
			return fmt.Errorf("sig_firing_packed: count %d", n)
		}
		s.SigFiring[k] = int(n)
	}
	s.Keys = nil
	for b := s.KeysPacked; len(b) > 0; b = b[8:] {
		s.Keys = append(s.Keys, binary.LittleEndian.Uint64(b))
	}
	return nil
}

func unpackPairs(b []byte) map[uint64]uint64 {
	m := make(map[uint64]uint64, len(b)/16)
	for ; len(b) > 0; b = b[16:] {
		m[binary.LittleEndian.Uint64(b)] = binary.LittleEndian.Uint64(b[8:])
	}
	return m
}

type pendingState struct {
	ID          string         `json:"id"`
	Time        time.Time      `json:"time"`
	Status      event.Status   `json:"status"`
	CI          string         `json:"ci"`
	Fingerprint string         `json:"fingerprint,omitempty"`
	AlertName   string         `json:"alertname,omitempty"`
	Severity    event.Severity `json:"severity,omitempty"`
	At          time.Time      `json:"at"`
}

type engineState struct {
	V         int            `json:"v"`
	MaxSeen   time.Time      `json:"max_seen"`
	Watermark time.Time      `json:"watermark"`
	Seq       uint64         `json:"seq"`
	Pending   []pendingState `json:"pending,omitempty"`
}

// AppendChanges appends to dst the records that bring a changelog up to
// date with the engine since the previous call (or since New or Restore),
// the engine record last, and returns the extended slice. Groups are
// written in opening order, so the order of the records is deterministic;
// map keys inside a record are not sorted (see stateEncoding).
func (e *Engine) AppendChanges(dst []StateRecord) ([]StateRecord, error) {
	for _, g := range e.gone {
		for n := range g.savedChunks {
			dst = append(dst, StateRecord{Key: membersKey(g.inc.ID, n)})
		}
		dst = append(dst, StateRecord{Key: stateKeyGroupPrefx + g.inc.ID})
	}
	clear(e.gone)
	e.gone = e.gone[:0]
	if len(e.dirty) > 0 {
		var arena recordArena
		for _, g := range e.groups {
			if _, ok := e.dirty[g]; !ok || g.merged {
				continue
			}
			var err error
			if dst, err = e.appendGroup(dst, g, &arena); err != nil {
				return dst, err
			}
		}
		clear(e.dirty)
	}
	es := engineState{V: stateVersion, MaxSeen: e.maxSeen, Watermark: e.watermark, Seq: e.seq}
	for _, p := range e.pending {
		es.Pending = append(es.Pending, pendingState{ID: p.ev.ID, Time: p.ev.Time, Status: p.ev.Status, CI: p.ev.CI,
			Fingerprint: p.ev.Fingerprint, AlertName: p.ev.Labels.Get("alertname"), Severity: p.ev.Severity, At: p.t})
	}
	v, err := json.Marshal(&es)
	if err != nil {
		return dst, fmt.Errorf("encode engine state: %w", err)
	}
	return append(dst, StateRecord{Key: stateKeyEngine, Value: v}), nil
}

// appendGroup appends g's records: the member records from the first one
// holding members not yet saved as they are, then the group record, which
// names them.
func (e *Engine) appendGroup(dst []StateRecord, g *group, arena *recordArena) ([]StateRecord, error) {
	n := len(g.inc.Members)
	chunks := (n + memberChunk - 1) / memberChunk
	for c := g.savedMembers / memberChunk; c < chunks; c++ {
		buf := e.members[:0]
		for _, m := range g.inc.Members[c*memberChunk : min((c+1)*memberChunk, n)] {
			buf = append(buf, memberState{Member: m, Seq: m.seq})
		}
		var err error
		e.enc, err = json.Append(e.enc[:0], buf, stateEncoding)
		clear(buf) // the scratch space keeps no strings alive
		e.members = buf[:0]
		if err != nil {
			return dst, fmt.Errorf("encode members of incident %s: %w", g.inc.ID, err)
		}
		dst = append(dst, StateRecord{Key: membersKey(g.inc.ID, c), Value: arena.copy(e.enc)})
	}
	for c := chunks; c < g.savedChunks; c++ { // only if members ever shrink
		dst = append(dst, StateRecord{Key: membersKey(g.inc.ID, c)})
	}
	s := &groupState{V: stateVersion, LabelKey: g.labelKey, Last: g.last, Onset: g.onset,
		QuietSince: g.quietSince, LastResolve: g.lastResolve, OpenSeq: g.openSeq}
	e.packed = s.packAlerts(e.packed[:0], g)
	s.Incident.Incident = g.inc
	// Members and their event ids (restored from the members) are in the
	// member records.
	s.Incident.Incident.Members, s.Incident.Incident.EventIDs = nil, nil
	s.Incident.MemberCount, s.Incident.MemberChunks = n, chunks
	var err error
	if e.enc, err = json.Append(e.enc[:0], s, stateEncoding); err != nil {
		return dst, fmt.Errorf("encode incident %s: %w", g.inc.ID, err)
	}
	g.savedMembers, g.savedChunks = n, chunks
	return append(dst, StateRecord{Key: stateKeyGroupPrefx + g.inc.ID, Value: arena.copy(e.enc)}), nil
}

// recordArena holds the values of one AppendChanges call's records in
// shared blocks. Encoding each record into a buffer of its own grew it by
// doubling: 94 MB allocated to write 14.5 MB of records for 50,000 alerts
// (BenchmarkAppendChanges). A block is freed once the last record in it is
// written and dropped.
type recordArena struct {
	block []byte
}

// arenaBlock is the size of an arena block; a value over a quarter of it
// gets an allocation of its own, so blocks waste at most a quarter.
const arenaBlock = 256 << 10

// copy returns a copy of b.
func (a *recordArena) copy(b []byte) []byte {
	if len(b) > arenaBlock/4 {
		return bytes.Clone(b)
	}
	if cap(a.block)-len(a.block) < len(b) {
		a.block = make([]byte, 0, arenaBlock)
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return a.block[start:len(a.block):len(a.block)]
}

// Restore replaces the state of e, which must be new (no event processed),
// with the one the records describe: records are in changelog order, the
// latest of each key wins and a nil value deletes. Records whose keys are
// not the engine's (see IsStateKey) are ignored. A record that does not
// decode fails the restore, naming its key: better to stop than to run on
// a state that silently lost incidents.
func (e *Engine) Restore(records []StateRecord) error {
	if len(e.groups) > 0 || e.seq > 0 {
		return fmt.Errorf("correlate: restore into an engine that has processed events")
	}
	latest := map[string][]byte{}
	for _, r := range records {
		if !IsStateKey(r.Key) {
			continue
		}
		if r.Value == nil {
			delete(latest, r.Key)
		} else {
			latest[r.Key] = r.Value
		}
	}
	var topo Topology
	if e.topo != nil {
		topo = e.topo()
	}
	if v, ok := latest[stateKeyEngine]; ok {
		var es engineState
		if err := json.Unmarshal(v, &es); err != nil {
			return fmt.Errorf("correlate: restore %q: %w", stateKeyEngine, err)
		}
		if err := checkStateVersion(es.V); err != nil {
			return fmt.Errorf("correlate: restore %q: %w", stateKeyEngine, err)
		}
		e.maxSeen, e.watermark, e.seq = es.MaxSeen, es.Watermark, es.Seq
		for _, p := range es.Pending {
			comp := -1
			var deps []Dep
			if topo != nil {
				if c, ok := topo.Component(p.CI); ok {
					comp = c
					deps = e.depsOf(topo, p.CI)
				}
			}
			e.pending = append(e.pending, pending{
				ev: event.Event{ID: p.ID, Time: p.Time, Status: p.Status, CI: p.CI, Fingerprint: p.Fingerprint,
					Severity: p.Severity, Labels: event.Labels{{Name: "alertname", Value: p.AlertName}}},
				t: p.At, comp: comp, deps: deps})
		}
	}
	var groups []*group
	for k, v := range latest {
		if !strings.HasPrefix(k, stateKeyGroupPrefx) {
			continue // the engine record, or members read with their group
		}
		var s groupState
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("correlate: restore %q: %w", k, err)
		}
		if err := checkStateVersion(s.V); err != nil {
			return fmt.Errorf("correlate: restore %q: %w", k, err)
		}
		if s.V >= 3 {
			if err := s.unpackAlerts(); err != nil {
				return fmt.Errorf("correlate: restore %q: %w", k, err)
			}
		}
		if s.V >= 2 {
			if err := restoreMembers(&s, strings.TrimPrefix(k, stateKeyGroupPrefx), latest); err != nil {
				return err
			}
		}
		groups = append(groups, e.restoreGroup(&s, topo))
	}
	slices.SortFunc(groups, func(a, b *group) int {
		if a.openSeq != b.openSeq {
			if a.openSeq < b.openSeq {
				return -1
			}
			return 1
		}
		return strings.Compare(a.inc.ID, b.inc.ID)
	})
	e.groups = groups
	for _, g := range groups {
		e.byID[g.inc.ID] = g
		for _, k := range g.keys {
			e.byKey[k] = g
		}
		for _, ci := range g.inc.CIs {
			e.ciGroup[ci] = append(e.ciGroup[ci], g)
		}
		if g.inc.Status != StatusOpen {
			continue
		}
		switch {
		case g.comp >= 0:
			e.byComp[g.comp] = append(e.byComp[g.comp], g)
		case g.labelKey != "":
			e.byLabels[g.labelKey] = g
		default:
			g.indexed = false
		}
	}
	for _, g := range groups {
		e.touch(g)
	}
	clear(e.dirty)
	e.gone = e.gone[:0]
	return nil
}

// checkStateVersion accepts the record versions this build reads.
func checkStateVersion(v int) error {
	if v < 1 || v > stateVersion {
		return fmt.Errorf("state version %d, this build reads 1 to %d", v, stateVersion)
	}
	return nil
}

// restoreMembers fills s's members, and their event ids, from the member
// records the group record names. A missing or short one fails the
// restore: the incident would lose members.
func restoreMembers(s *groupState, id string, latest map[string][]byte) error {
	in := &s.Incident
	in.Members = make([]memberState, 0, in.MemberCount)
	for c := range in.MemberChunks {
		k := membersKey(id, c)
		v, ok := latest[k]
		if !ok {
			return fmt.Errorf("correlate: restore %q: member record %q missing", stateKeyGroupPrefx+id, k)
		}
		var chunk []memberState
		if err := json.Unmarshal(v, &chunk); err != nil {
			return fmt.Errorf("correlate: restore %q: %w", k, err)
		}
		in.Members = append(in.Members, chunk...)
	}
	if len(in.Members) != in.MemberCount {
		return fmt.Errorf("correlate: restore %q: %d members in its records, want %d", stateKeyGroupPrefx+id, len(in.Members), in.MemberCount)
	}
	in.EventIDs = make([]string, len(in.Members))
	for i := range in.Members {
		in.EventIDs[i] = in.Members[i].EventID
	}
	return nil
}

// restoreGroup rebuilds a group from its record, recomputing the topology
// indexes against topo.
func (e *Engine) restoreGroup(s *groupState, topo Topology) *group {
	g := &group{
		inc: s.Incident.Incident, comp: -1, labelKey: s.LabelKey, last: s.Last, indexed: true,
		reach: map[string]reaches{}, ciDeps: map[string][]Dep{}, explain: map[string]int{}, hopSum: map[string]int{},
		onset: s.Onset, firing: s.Firing, seen: s.Seen, sigFiring: s.SigFiring, keys: s.Keys,
		quietSince: s.QuietSince, lastResolve: s.LastResolve, openSeq: s.OpenSeq,
		// What the changelog holds as it is: nothing of a version 1 record.
		savedMembers: s.Incident.MemberCount, savedChunks: s.Incident.MemberChunks,
	}
	if g.onset == nil {
		g.onset = map[string]time.Time{}
	}
	if g.firing == nil {
		g.firing = map[uint64]uint64{}
	}
	if g.seen == nil {
		g.seen = map[uint64]uint64{}
	}
	if g.sigFiring == nil {
		g.sigFiring = map[uint64]int{}
	}
	g.inc.Members = make([]Member, len(s.Incident.Members))
	for i, m := range s.Incident.Members {
		g.inc.Members[i] = m.Member
		g.inc.Members[i].seq = m.Seq
	}
	if s.LabelKey == "" && len(g.inc.CIs) > 0 && topo != nil {
		if c, ok := topo.Component(g.inc.CIs[0]); ok {
			g.comp = c
		}
	}
	for _, ci := range g.inc.CIs {
		var deps []Dep
		if topo != nil {
			deps = e.depsOf(topo, ci)
		}
		e.addCI(g, ci, deps)
	}
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
	return g
}
