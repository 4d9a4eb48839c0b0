package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"gopkg.in/yaml.v3"
)

// ChangeStatus is the state of a change record in the ITSM tool.
type ChangeStatus string

// The change statuses. Only approved changes reach the store in practice;
// cancelled and rejected ones are kept so that an update can cancel a
// change that was approved before.
const (
	ChangeApproved   ChangeStatus = "approved"
	ChangeInProgress ChangeStatus = "in_progress"
	ChangeCompleted  ChangeStatus = "completed"
	ChangeFailed     ChangeStatus = "failed"
	ChangeCancelled  ChangeStatus = "cancelled"
	ChangeRejected   ChangeStatus = "rejected"
)

// ParseChangeStatus maps the status words ITSM tools use onto the change
// statuses, case-insensitively (Implement, In Progress, Closed, Canceled...).
func ParseChangeStatus(s string) (ChangeStatus, bool) {
	switch strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(s))) {
	case "approved", "scheduled", "authorized", "authorised":
		return ChangeApproved, true
	case "in_progress", "implement", "implementing", "implementation", "started":
		return ChangeInProgress, true
	case "completed", "complete", "closed", "successful", "success", "review":
		return ChangeCompleted, true
	case "failed", "unsuccessful", "backed_out", "rolled_back":
		return ChangeFailed, true
	case "cancelled", "canceled", "withdrawn":
		return ChangeCancelled, true
	case "rejected", "declined":
		return ChangeRejected, true
	}
	return "", false
}

// implemented reports whether a change in this status was (or is being)
// carried out, so that events on its CIs during its window are expected.
func (s ChangeStatus) implemented() bool {
	switch s {
	case ChangeApproved, ChangeInProgress, ChangeCompleted, ChangeFailed:
		return true
	}
	return false
}

// ChangeRecord is an approved change (RFC) on configuration items. The
// window is [ActualStart, ActualEnd) where known, the planned one otherwise.
// Records in the store are immutable: an update replaces the record.
type ChangeRecord struct {
	ID           string       `json:"id"`
	CIs          []string     `json:"cis"`
	Status       ChangeStatus `json:"status"`
	PlannedStart time.Time    `json:"planned_start"`
	PlannedEnd   time.Time    `json:"planned_end"`
	ActualStart  time.Time    `json:"actual_start,omitzero"`
	ActualEnd    time.Time    `json:"actual_end,omitzero"`
	Summary      string       `json:"summary,omitempty"`
	// UpdatedAt orders updates of one change: an update older than the
	// record held is ignored (Kafka delivers at least once and a file
	// reload may carry an older copy). Zero: always applied.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Start returns when the change window starts: the actual start if known.
func (r *ChangeRecord) Start() time.Time {
	if !r.ActualStart.IsZero() {
		return r.ActualStart
	}
	return r.PlannedStart
}

// End returns when the change window ends: the actual end if known, else
// the planned end. A change that started at or after its planned end, with
// no actual end yet, runs its planned duration from its actual start
// instead: its window would otherwise be empty, never active (found by
// FuzzDecodeChange).
func (r *ChangeRecord) End() time.Time {
	if !r.ActualEnd.IsZero() {
		return r.ActualEnd
	}
	if !r.ActualStart.IsZero() && !r.PlannedEnd.After(r.ActualStart) {
		return r.ActualStart.Add(r.PlannedEnd.Sub(r.PlannedStart))
	}
	return r.PlannedEnd
}

// ErrInvalidChange is wrapped by every error about a change record.
var ErrInvalidChange = errors.New("invalid change record")

// changeDoc is the wire form of a change record (JSON message or an entry of
// a change file). Unknown fields are ignored: ITSM exports carry many more.
type changeDoc struct {
	ID           string   `json:"id" yaml:"id"`
	CIs          []string `json:"cis" yaml:"cis"`
	Status       string   `json:"status" yaml:"status"`
	PlannedStart string   `json:"planned_start" yaml:"planned_start"`
	PlannedEnd   string   `json:"planned_end" yaml:"planned_end"`
	ActualStart  string   `json:"actual_start" yaml:"actual_start"`
	ActualEnd    string   `json:"actual_end" yaml:"actual_end"`
	Summary      string   `json:"summary" yaml:"summary"`
	UpdatedAt    string   `json:"updated_at" yaml:"updated_at"`
}

// DecodeChange decodes one change record from a JSON object (a message of
// the change topic):
//
//	{"id":"CHG0042","cis":["db-01"],"status":"approved",
//	 "planned_start":"2026-11-02T20:00:00Z","planned_end":"2026-11-02T22:00:00Z"}
//
// Times are RFC 3339; status accepts the usual ITSM words
// (ParseChangeStatus). Errors wrap ErrInvalidChange and name the field.
func DecodeChange(b []byte) (ChangeRecord, error) {
	var d changeDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return ChangeRecord{}, fmt.Errorf("%w: not a JSON change object: %v", ErrInvalidChange, err)
	}
	if dec.More() {
		return ChangeRecord{}, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidChange)
	}
	return d.record()
}

func (d *changeDoc) record() (ChangeRecord, error) {
	r := ChangeRecord{ID: d.ID, CIs: d.CIs, Summary: d.Summary}
	var errs []string
	bad := func(field, format string, args ...any) {
		errs = append(errs, field+": "+fmt.Sprintf(format, args...))
	}
	if d.ID == "" {
		bad("id", "missing")
	}
	if len(d.CIs) == 0 {
		bad("cis", "missing: the CI ids the change touches")
	}
	for i, ci := range d.CIs {
		if ci == "" {
			bad(fmt.Sprintf("cis[%d]", i), "empty CI id")
		}
	}
	if st, ok := ParseChangeStatus(d.Status); ok {
		r.Status = st
	} else {
		bad("status", "%q is not one of approved, in_progress, completed, failed, cancelled, rejected", d.Status)
	}
	parse := func(field, v string, required bool) time.Time {
		if v == "" {
			if required {
				bad(field, "missing (RFC 3339 time)")
			}
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			bad(field, "%q is not an RFC 3339 time", v)
		}
		return t
	}
	r.PlannedStart = parse("planned_start", d.PlannedStart, true)
	r.PlannedEnd = parse("planned_end", d.PlannedEnd, true)
	r.ActualStart = parse("actual_start", d.ActualStart, false)
	r.ActualEnd = parse("actual_end", d.ActualEnd, false)
	r.UpdatedAt = parse("updated_at", d.UpdatedAt, false)
	if !r.PlannedStart.IsZero() && !r.PlannedEnd.IsZero() && !r.PlannedEnd.After(r.PlannedStart) {
		bad("planned_end", "not after planned_start")
	}
	if !r.ActualStart.IsZero() && !r.ActualEnd.IsZero() && !r.ActualEnd.After(r.ActualStart) {
		bad("actual_end", "not after actual_start")
	}
	if len(errs) > 0 {
		id := ""
		if d.ID != "" {
			id = fmt.Sprintf(" %q", d.ID)
		}
		return ChangeRecord{}, fmt.Errorf("%w%s: %s", ErrInvalidChange, id, strings.Join(errs, "; "))
	}
	return r, nil
}

func (r *ChangeRecord) validate() error {
	d := changeDoc{ID: r.ID, CIs: r.CIs, Status: string(r.Status), Summary: r.Summary}
	f := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	d.PlannedStart, d.PlannedEnd = f(r.PlannedStart), f(r.PlannedEnd)
	d.ActualStart, d.ActualEnd, d.UpdatedAt = f(r.ActualStart), f(r.ActualEnd), f(r.UpdatedAt)
	_, err := d.record()
	return err
}

// LoadChangeFile reads a file holding a list of change records, in YAML or
// JSON (the same fields as DecodeChange). Errors name the file and the
// record.
func LoadChangeFile(path string) ([]ChangeRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("change file: %w", err)
	}
	return ParseChanges(path, data)
}

// ParseChanges parses the content of a change file; name is used in errors.
func ParseChanges(name string, data []byte) ([]ChangeRecord, error) {
	var docs []changeDoc
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &docs); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalidChange, err)
		}
	} else if err := yaml.Unmarshal(data, &docs); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalidChange, err)
	}
	out := make([]ChangeRecord, 0, len(docs))
	var errs []error
	for i := range docs {
		r, err := docs[i].record()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: [%d]: %w", name, i, err))
			continue
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Defaults of ChangeStoreOptions.
const (
	DefaultChangeRetention  = 30 * 24 * time.Hour
	DefaultChangeMaxRecords = 100000
)

// ChangeStoreOptions configure a ChangeStore.
type ChangeStoreOptions struct {
	// Retention: a record whose window ended longer ago is expired.
	// Default 30 days.
	Retention time.Duration
	// MaxRecords bounds the store; past it the records that ended first
	// are expired. Default 100000.
	MaxRecords int
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// ChangeStore holds change records by id and by CI. It is safe for
// concurrent use: the change topic's consumer applies records while the
// engine and the incidents stage query it. Records are immutable once
// stored, so the pointers Active returns stay valid.
type ChangeStore struct {
	opts ChangeStoreOptions

	mu   sync.RWMutex
	byID map[string]*ChangeRecord
	byCI map[string][]*ChangeRecord

	records prometheus.Gauge
	updates map[string]prometheus.Counter // by result
	expired prometheus.Counter
}

// NewChangeStore returns an empty store.
func NewChangeStore(opts ChangeStoreOptions) *ChangeStore {
	if opts.Retention <= 0 {
		opts.Retention = DefaultChangeRetention
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = DefaultChangeMaxRecords
	}
	f := promauto.With(opts.Registerer)
	updates := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_rules_change_updates_total",
		Help: "Change records applied to the change store, by result: applied, stale (older than the record held, ignored), invalid (rejected).",
	}, []string{"result"})
	s := &ChangeStore{
		opts: opts,
		byID: map[string]*ChangeRecord{},
		byCI: map[string][]*ChangeRecord{},
		records: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_rules_change_records",
			Help: "Change records held by the change store.",
		}),
		expired: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_rules_change_expired_total",
			Help: "Change records expired from the change store (past retention or over max records).",
		}),
		updates: map[string]prometheus.Counter{},
	}
	for _, r := range []string{"applied", "stale", "invalid"} {
		s.updates[r] = updates.WithLabelValues(r)
	}
	return s
}

// Apply inserts or replaces (by id) one change record. A record older than
// the one held (UpdatedAt) is ignored. An invalid record is rejected with an
// error wrapping ErrInvalidChange.
func (s *ChangeStore) Apply(r ChangeRecord) error {
	if err := r.validate(); err != nil {
		s.updates["invalid"].Inc()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(r)
	s.records.Set(float64(len(s.byID)))
	return nil
}

// ApplyAll applies records in order; invalid ones are skipped and reported
// in the joined error.
func (s *ChangeStore) ApplyAll(rs []ChangeRecord) error {
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rs {
		if err := rs[i].validate(); err != nil {
			s.updates["invalid"].Inc()
			errs = append(errs, err)
			continue
		}
		s.apply(rs[i])
	}
	s.records.Set(float64(len(s.byID)))
	return errors.Join(errs...)
}

func (s *ChangeStore) apply(r ChangeRecord) {
	if old, ok := s.byID[r.ID]; ok {
		if !r.UpdatedAt.IsZero() && !old.UpdatedAt.IsZero() && r.UpdatedAt.Before(old.UpdatedAt) {
			s.updates["stale"].Inc()
			return
		}
		s.remove(old)
	}
	nr := r
	nr.CIs = append([]string(nil), r.CIs...)
	s.byID[nr.ID] = &nr
	for _, ci := range nr.CIs {
		s.byCI[ci] = append(s.byCI[ci], &nr)
	}
	s.updates["applied"].Inc()
	if len(s.byID) > s.opts.MaxRecords {
		s.evictOldest(len(s.byID) - s.opts.MaxRecords)
	}
}

// remove deletes r from both indexes; the caller holds the write lock, so
// no reader sees the slices change. r itself is not modified: a pointer
// Active returned earlier still reads the record as it was.
func (s *ChangeStore) remove(r *ChangeRecord) {
	delete(s.byID, r.ID)
	for _, ci := range r.CIs {
		list := s.byCI[ci]
		out := list[:0]
		for _, x := range list {
			if x != r {
				out = append(out, x)
			}
		}
		clear(list[len(out):])
		if len(out) == 0 {
			delete(s.byCI, ci)
		} else {
			s.byCI[ci] = out
		}
	}
}

func (s *ChangeStore) evictOldest(n int) {
	all := make([]*ChangeRecord, 0, len(s.byID))
	for _, r := range s.byID {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].End().Equal(all[j].End()) {
			return all[i].End().Before(all[j].End())
		}
		return all[i].ID < all[j].ID
	})
	for _, r := range all[:n] {
		s.remove(r)
	}
	s.expired.Add(float64(n))
}

// Expire removes the records whose window ended more than the retention
// before now, and returns how many.
func (s *ChangeStore) Expire(now time.Time) int {
	cut := now.Add(-s.opts.Retention)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.byID {
		if r.End().Before(cut) {
			s.remove(r)
			n++
		}
	}
	s.expired.Add(float64(n))
	s.records.Set(float64(len(s.byID)))
	return n
}

// Len returns the number of records held.
func (s *ChangeStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// Get returns the record with this id.
func (s *ChangeStore) Get(id string) (*ChangeRecord, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.byID[id]
	return r, ok
}

// Active returns the change whose window holds at on ci and that is
// approved, in progress, completed or failed (carried out), the latest
// started when several are. The record must not be modified. It does not
// allocate.
func (s *ChangeStore) Active(ci string, at time.Time) (*ChangeRecord, bool) {
	s.mu.RLock()
	r, ok := s.activeLocked(ci, at)
	s.mu.RUnlock()
	return r, ok
}

func (s *ChangeStore) activeLocked(ci string, at time.Time) (*ChangeRecord, bool) {
	var best *ChangeRecord
	for _, r := range s.byCI[ci] {
		if !r.Status.implemented() || at.Before(r.Start()) || !at.Before(r.End()) {
			continue
		}
		if best == nil || r.Start().After(best.Start()) || r.Start().Equal(best.Start()) && r.ID > best.ID {
			best = r
		}
	}
	return best, best != nil
}

// CompletedBefore returns copies of the changes on ci that were carried out
// (not cancelled or rejected) and whose window ended within `within` before
// at, the most recent first: the changes that may have caused an incident
// opened at `at`.
func (s *ChangeStore) CompletedBefore(ci string, at time.Time, within time.Duration) []ChangeRecord {
	from := at.Add(-within)
	s.mu.RLock()
	var out []ChangeRecord
	for _, r := range s.byCI[ci] {
		end := r.End()
		if r.Status.implemented() && !end.After(at) && !end.Before(from) {
			c := *r
			c.CIs = append([]string(nil), r.CIs...)
			out = append(out, c)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].End().Equal(out[j].End()) {
			return out[i].End().After(out[j].End())
		}
		return out[i].ID < out[j].ID
	})
	return out
}
