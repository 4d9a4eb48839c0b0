package incidents

import (
	"fmt"
	"sort"
	"strings"
	"time"

	// segmentio's encoder and decoder, drop-in for encoding/json, are about
	// twice as fast: checkpoints rewrite every changed record, and in a
	// storm they were a sixth of the daemon's CPU. It writes a
	// time.Duration as text ("1m30s") and reads both that and
	// encoding/json's nanoseconds, so records written before still restore.
	json "github.com/segmentio/encoding/json"

	"github.com/correlatord/correlatord/correlate"
)

// Changelog keys of the incident stage, next to the correlator's in the
// partition's changelog.
const (
	keyIncident = "incident/"
	keyProblem  = "problem/"
	keyMeta     = "incidents"
	stateV      = 1
)

// IsStateKey reports whether key is one of the manager's changelog keys.
func IsStateKey(key string) bool {
	return key == keyMeta || strings.HasPrefix(key, keyIncident) || strings.HasPrefix(key, keyProblem)
}

type metaState struct {
	V      int                    `json:"v"`
	Sigs   map[string][]sigEntry  `json:"sigs,omitempty"`
	Rate   map[string][]time.Time `json:"rate,omitempty"`
	Known  []*KnownError          `json:"known,omitempty"`
	ResEsc map[string]int         `json:"res_esc,omitempty"`
	Since  time.Time              `json:"since"`
}

// AppendChanges appends the records that bring the changelog up to date
// (a tombstone for a forgotten record) and returns the extended slice.
func (m *Manager) AppendChanges(dst []correlate.StateRecord) ([]correlate.StateRecord, error) {
	ids := make([]string, 0, len(m.dirtyInc))
	for id := range m.dirtyInc {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		in, ok := m.incidents[id]
		if !ok {
			dst = append(dst, correlate.StateRecord{Key: keyIncident + id})
			continue
		}
		m.freshen(in)
		v, err := json.Marshal(in)
		if err != nil {
			return dst, fmt.Errorf("encode incident %s: %w", id, err)
		}
		dst = append(dst, correlate.StateRecord{Key: keyIncident + id, Value: v})
	}
	clear(m.dirtyInc)
	ids = ids[:0]
	for id := range m.dirtyProb {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p, ok := m.problems[id]
		if !ok {
			dst = append(dst, correlate.StateRecord{Key: keyProblem + id})
			continue
		}
		v, err := json.Marshal(p)
		if err != nil {
			return dst, fmt.Errorf("encode problem %s: %w", id, err)
		}
		dst = append(dst, correlate.StateRecord{Key: keyProblem + id, Value: v})
	}
	clear(m.dirtyProb)
	if m.metaDirty {
		ms := metaState{V: stateV, Sigs: m.sigs, Rate: m.rate, ResEsc: m.resEsc, Known: m.KnownErrors(), Since: m.since}
		v, err := json.Marshal(&ms)
		if err != nil {
			return dst, fmt.Errorf("encode incidents state: %w", err)
		}
		dst = append(dst, correlate.StateRecord{Key: keyMeta, Value: v})
		m.metaDirty = false
	}
	return dst, nil
}

// Restore loads the state from changelog records (in order; the latest of
// each key wins; nil deletes). Records of other owners are ignored.
func (m *Manager) Restore(records []correlate.StateRecord) error {
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
	for k, v := range latest {
		switch {
		case k == keyMeta:
			var ms metaState
			if err := json.Unmarshal(v, &ms); err != nil {
				return fmt.Errorf("incidents: restore %q: %w", k, err)
			}
			if ms.V != stateV {
				return fmt.Errorf("incidents: restore %q: state version %d, this build reads %d", k, ms.V, stateV)
			}
			if ms.Sigs != nil {
				m.sigs = ms.Sigs
			}
			if ms.Rate != nil {
				m.rate = ms.Rate
			}
			if ms.ResEsc != nil {
				m.resEsc = ms.ResEsc
			}
			m.since = ms.Since
			for i, ke := range ms.Known {
				if err := ke.compile(fmt.Sprintf("known[%d]", i)); err != nil {
					return fmt.Errorf("incidents: restore %q: %w", k, err)
				}
				m.known[ke.ID] = ke
			}
		case strings.HasPrefix(k, keyIncident):
			in := new(Incident)
			if err := json.Unmarshal(v, in); err != nil {
				return fmt.Errorf("incidents: restore %q: %w", k, err)
			}
			m.incidents[in.ID] = in
			if in.Status != StatusClosed {
				m.m.open.WithLabelValues(string(in.Priority), string(in.Status)).Inc()
			}
		case strings.HasPrefix(k, keyProblem):
			p := new(Problem)
			if err := json.Unmarshal(v, p); err != nil {
				return fmt.Errorf("incidents: restore %q: %w", k, err)
			}
			m.problems[p.ID] = p
			if p.Status != ProblemClosed && p.Status != ProblemRejected {
				m.m.problemsOpen.WithLabelValues(string(p.Status)).Inc()
			}
		}
	}
	return nil
}

// Close takes this partition's records out of the shared gauges: the
// partition moved to another instance, which counts them now.
func (m *Manager) Close() {
	for _, in := range m.incidents {
		if in.Status != StatusClosed {
			m.m.open.WithLabelValues(string(in.Priority), string(in.Status)).Dec()
		}
	}
	for _, p := range m.problems {
		if p.Status != ProblemClosed && p.Status != ProblemRejected {
			m.m.problemsOpen.WithLabelValues(string(p.Status)).Dec()
		}
	}
}
