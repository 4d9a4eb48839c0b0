package analytics

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/correlatord/correlatord/event"
)

// EventRow is one row of the events table: a normalized event, when the
// daemon received it, and what the rules stage decided about it. The
// decision is kept as plain values so that this package, the last of the
// flow, needs no import of the rules package.
type EventRow struct {
	Event      event.Event
	ReceivedAt time.Time
	Decision   DecisionRecord
	// CIType is the type of Event.CI in the topology the event was
	// processed with (cmdb.CI.Type); empty when the CI is unknown. The
	// per-CI-type trends (events_per_minute) group by it.
	CIType string
}

// DecisionRecord is how the events table records the rules stage's decision
// about an event: every event is recorded, whatever was decided, so nothing
// is ever silently lost.
type DecisionRecord struct {
	Class       string // informational, warning, exception
	Outcome     string // pass, dropped, deduplicated, maintenance, change_window, inhibited, ...
	Rule        string // the rule that classified or dropped it
	Maintenance string // maintenance window name
	ChangeID    string // approved change active on its CI
	InhibitedBy string // fingerprint of the inhibiting alert
	Correlate   bool   // whether it went on to correlation
	Flapping    bool
	DedupCount  uint32 // deliveries of the alert in its firing episode
}

// eventColumns are the columns EventsTable writes, in Append's order. date
// is left out: it defaults to toDate(time) on the server.
var eventColumns = []string{
	"event_id", "time", "time_ms", "received_at", "source", "kind", "status", "severity",
	"ci", "fingerprint", "summary", "label_keys", "label_values", "annotation_keys", "annotation_values",
	"class", "outcome", "rule", "maintenance", "change_id", "inhibited_by", "correlate", "flapping", "dedup_count",
	"ci_type",
}

// EventsTable returns the Table of the events table (migrations 0001, 0004
// and 0006), for NewWriter. Labels and annotations are written as key/value
// arrays sorted by key, so a row's content does not depend on map order.
// Rows are expected to be normalized (event.Normalize); an unknown kind,
// status or severity is written as Normalize's default (alert, firing,
// warning) rather than failing, since a row that cannot be written would be
// retried forever.
func EventsTable() Table[EventRow] {
	return Table[EventRow]{
		Name:    "events",
		Columns: slices.Clone(eventColumns),
		Append:  appendEventRow,
		Encode:  encodeEventRow,
		Decode:  decodeEventRow,
	}
}

// encodeEventRow is the events table's spill codec (see spill.go). It
// keeps every field, so a decoded row equals the original.
func encodeEventRow(dst []byte, r *EventRow) []byte {
	e := &r.Event
	dst = appendSpillString(dst, e.ID)
	dst = appendSpillTime(dst, e.Time)
	dst = appendSpillString(dst, e.Source)
	dst = appendSpillString(dst, string(e.Kind))
	dst = appendSpillString(dst, string(e.Status))
	dst = appendSpillString(dst, string(e.Severity))
	dst = appendSpillString(dst, e.CI)
	dst = appendSpillLabels(dst, e.Labels)
	dst = appendSpillLabels(dst, e.Annotations)
	dst = appendSpillString(dst, e.Summary)
	dst = appendSpillString(dst, e.Fingerprint)
	dst = appendSpillTime(dst, r.ReceivedAt)
	d := &r.Decision
	dst = appendSpillString(dst, d.Class)
	dst = appendSpillString(dst, d.Outcome)
	dst = appendSpillString(dst, d.Rule)
	dst = appendSpillString(dst, d.Maintenance)
	dst = appendSpillString(dst, d.ChangeID)
	dst = appendSpillString(dst, d.InhibitedBy)
	dst = appendSpillBool(dst, d.Correlate)
	dst = appendSpillBool(dst, d.Flapping)
	dst = binary.AppendUvarint(dst, uint64(d.DedupCount))
	return appendSpillString(dst, r.CIType)
}

func decodeEventRow(rec []byte, r *EventRow) error {
	*r = EventRow{}
	rd := spillReader{b: rec}
	e := &r.Event
	e.ID = rd.string()
	e.Time = rd.time()
	e.Source = rd.string()
	e.Kind = event.Kind(rd.string())
	e.Status = event.Status(rd.string())
	e.Severity = event.Severity(rd.string())
	e.CI = rd.string()
	e.Labels = rd.labels()
	e.Annotations = rd.labels()
	e.Summary = rd.string()
	e.Fingerprint = rd.string()
	r.ReceivedAt = rd.time()
	d := &r.Decision
	d.Class = rd.string()
	d.Outcome = rd.string()
	d.Rule = rd.string()
	d.Maintenance = rd.string()
	d.ChangeID = rd.string()
	d.InhibitedBy = rd.string()
	d.Correlate = rd.bool()
	d.Flapping = rd.bool()
	dedup := rd.uvarint()
	if dedup > math.MaxUint32 {
		rd.fail()
	}
	d.DedupCount = uint32(dedup)
	r.CIType = rd.string()
	return rd.err()
}

// eventScratch holds the per-row buffers of appendEventRow. clickhouse-go
// copies every value during Append, so the buffers are reused; values are
// passed by pointer, which clickhouse-go accepts and which keeps them from
// being boxed on the heap.
type eventScratch struct {
	vals                [25]any
	correlate, flapping uint8
	timeMS              uint64
	labelKV, annoKV     []string
	labelPtrs, annoPtrs [2][]*string
}

var eventScratchPool = sync.Pool{New: func() any { return new(eventScratch) }}

func appendEventRow(b driver.Batch, r *EventRow) error {
	s := eventScratchPool.Get().(*eventScratch)
	defer eventScratchPool.Put(s)
	e := &r.Event
	ms := e.Time.UnixMilli()
	s.timeMS = uint64(max(ms, 0))
	s.labelKV = sortedPairs(s.labelKV[:0], e.Labels)
	s.annoKV = sortedPairs(s.annoKV[:0], e.Annotations)
	s.labelPtrs[0], s.labelPtrs[1] = pairPointers(s.labelPtrs[0][:0], s.labelPtrs[1][:0], s.labelKV)
	s.annoPtrs[0], s.annoPtrs[1] = pairPointers(s.annoPtrs[0][:0], s.annoPtrs[1][:0], s.annoKV)

	v := &s.vals
	v[0] = &e.ID
	v[1] = &e.Time
	v[2] = &s.timeMS
	v[3] = &r.ReceivedAt
	v[4] = &e.Source
	v[5] = kindCode(e.Kind)
	v[6] = statusCode(e.Status)
	v[7] = severityCode(e.Severity)
	v[8] = &e.CI
	v[9] = &e.Fingerprint
	v[10] = &e.Summary
	v[11] = s.labelPtrs[0]
	v[12] = s.labelPtrs[1]
	v[13] = s.annoPtrs[0]
	v[14] = s.annoPtrs[1]
	d := &r.Decision
	s.correlate, s.flapping = boolCode(d.Correlate), boolCode(d.Flapping)
	v[15] = &d.Class
	v[16] = &d.Outcome
	v[17] = &d.Rule
	v[18] = &d.Maintenance
	v[19] = &d.ChangeID
	v[20] = &d.InhibitedBy
	v[21] = &s.correlate
	v[22] = &s.flapping
	v[23] = &d.DedupCount
	v[24] = &r.CIType
	err := b.Append(v[:]...)
	// Keep no reference to the row in the pool.
	clear(v[:])
	clear(s.labelKV)
	clear(s.annoKV)
	return err
}

// sortedPairs appends to dst the names of ls, sorted as Labels are, then
// their values in the same order.
func sortedPairs(dst []string, ls event.Labels) []string {
	for _, l := range ls {
		dst = append(dst, l.Name)
	}
	for _, l := range ls {
		dst = append(dst, l.Value)
	}
	return dst
}

// sortedMapPairs is sortedPairs for a map.
func sortedMapPairs(dst []string, m map[string]string) []string {
	start := len(dst)
	for k := range m {
		dst = append(dst, k)
	}
	keys := dst[start:]
	slices.Sort(keys)
	for _, k := range keys {
		dst = append(dst, m[k])
	}
	return dst
}

// pairPointers splits kv, sorted keys followed by their values, into
// pointer slices, the form clickhouse-go appends to an Array(String)
// without boxing each element.
func pairPointers(keys, vals []*string, kv []string) ([]*string, []*string) {
	n := len(kv) / 2
	for i := 0; i < n; i++ {
		keys = append(keys, &kv[i])
		vals = append(vals, &kv[n+i])
	}
	return keys, vals
}

// Enum8 codes of the events table; the values are part of the schema.
func kindCode(k event.Kind) int8 {
	switch k {
	case event.KindLog:
		return 2
	case event.KindChange:
		return 3
	}
	return 1 // alert
}

func statusCode(s event.Status) int8 {
	if s == event.StatusResolved {
		return 2
	}
	return 1 // firing
}

func severityCode(s event.Severity) int8 {
	if r := s.Rank(); r > 0 {
		return int8(r)
	}
	if p, ok := event.ParseSeverity(string(s)); ok {
		return int8(p.Rank())
	}
	return int8(event.SeverityWarning.Rank())
}

func boolCode(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
