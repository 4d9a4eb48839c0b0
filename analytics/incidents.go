package analytics

import (
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
)

// The tables of migration 0005 hold the incidents stage's records. Their
// rows are few next to events (one per incident version, timeline entry or
// member), so the Append functions below favour plain code over the
// allocation-free tricks of appendEventRow.

// incidentColumns are the columns IncidentsTable writes, in Append's order.
var incidentColumns = []string{
	"id", "version", "partition_key", "title", "description", "category", "priority",
	"impact", "urgency", "service_class", "services", "cis",
	"root_cause_ci", "root_cause_confidence", "root_cause_suspected", "support_group", "assigned_to",
	"status", "auto_resolved", "opened_at", "acknowledged_at", "resolved_at", "closed_at", "updated_at",
	"reopened", "response_target_s", "resolution_target_s", "escalation_level",
	"response_breached", "resolution_breached", "change_id", "known_error_id", "problem_id",
	"event_count", "suppressed_count", "merged_from",
}

// IncidentsTable returns the Table of the incidents table (migration
// 0005), for NewWriter: one row per version of an incident, as an
// incidents.Change carries it. Times not set yet are written as 0
// (1970-01-01), durations as whole seconds, counts clamped to their
// column's range. The row keeps no reference to the incident.
func IncidentsTable() Table[*incidents.Incident] {
	return Table[*incidents.Incident]{
		Name:    "incidents",
		Columns: slices.Clone(incidentColumns),
		Append:  appendIncident,
	}
}

func appendIncident(b driver.Batch, p **incidents.Incident) error {
	in := *p
	return b.Append(
		in.ID,
		in.Version,
		in.PartitionKey,
		in.Title,
		in.Description,
		string(in.Category),
		string(in.Priority),
		clampU8(in.Impact),
		clampU8(in.Urgency),
		clampU8(in.ServiceClass),
		nonNil(in.Services),
		nonNil(in.CIs),
		in.RootCauseCI,
		in.RootCauseConfidence,
		boolCode(in.RootCauseSuspected),
		in.SupportGroup,
		in.AssignedTo,
		string(in.Status),
		boolCode(in.AutoResolved),
		chTime(in.OpenedAt),
		chTime(in.AcknowledgedAt),
		chTime(in.ResolvedAt),
		chTime(in.ClosedAt),
		chTime(in.UpdatedAt),
		clampU32(in.Reopened),
		durationSeconds(in.ResponseTarget),
		durationSeconds(in.ResolutionTarget),
		clampU8(in.EscalationLevel),
		boolCode(in.Breached(incidents.BreachResponse)),
		boolCode(in.Breached(incidents.BreachResolution)),
		in.ChangeID,
		in.KnownErrorID,
		in.ProblemID,
		clampU32(len(in.EventIDs)),
		clampU32(len(in.SuppressedEventIDs)),
		nonNil(in.MergedFrom),
	)
}

// TimelineKind says what a TimelineRow records.
type TimelineKind string

// The timeline kinds: the Enum8 values of incident_timeline.kind.
const (
	TimelineTransition TimelineKind = "transition"
	TimelineEscalation TimelineKind = "escalation"
	TimelineBreach     TimelineKind = "breach"
	TimelineComment    TimelineKind = "comment"
)

// TimelineRow is one entry of an incident's history in incident_timeline:
// a status transition, an escalation, an SLA breach or a comment. Fields
// that do not apply to its Kind are left zero. AppendTimeline builds them
// from an incident.
type TimelineRow struct {
	IncidentID string
	Kind       TimelineKind
	// Seq is the entry's index among the incident's entries of its Kind
	// (Incident.Transitions, Escalations, Breaches or Comments, lists that
	// only grow). With IncidentID, At and Kind it identifies the entry, so
	// a row written twice is merged.
	Seq int
	At  time.Time
	// Priority is the incident's priority when the row was written.
	Priority incidents.Priority

	// From and To are the statuses of a transition.
	From, To incidents.Status
	// By is who made a transition or a comment: "correlatord" for the
	// daemon, else the operator.
	By string
	// Note is a transition's note, an escalation's reason or a comment's
	// text.
	Note string
	// FromLevel and ToLevel are the escalation levels of an escalation.
	FromLevel, ToLevel int
	// Breach and Target are the missed target of a breach and its
	// duration.
	Breach incidents.BreachKind
	Target time.Duration
}

// TimelineMark counts the entries of an incident's timeline already turned
// into rows, per kind.
type TimelineMark struct {
	Transitions, Escalations, Breaches, Comments int
}

// AppendTimeline appends to dst a row for each entry of in's timeline past
// mark, and returns the extended slice and the mark after them. Keeping
// the mark of each incident between its versions writes each entry once;
// the zero mark gives the whole timeline, which is also correct (after a
// restart, say): a row written again is merged by incident_timeline's
// sorting key.
func AppendTimeline(dst []TimelineRow, in *incidents.Incident, mark TimelineMark) ([]TimelineRow, TimelineMark) {
	row := func(kind TimelineKind, seq int, at time.Time) TimelineRow {
		return TimelineRow{IncidentID: in.ID, Kind: kind, Seq: seq, At: at, Priority: in.Priority}
	}
	for i := min(mark.Transitions, len(in.Transitions)); i < len(in.Transitions); i++ {
		t := &in.Transitions[i]
		r := row(TimelineTransition, i, t.At)
		r.From, r.To, r.By, r.Note = t.From, t.To, t.By, t.Note
		dst = append(dst, r)
	}
	for i := min(mark.Escalations, len(in.Escalations)); i < len(in.Escalations); i++ {
		e := &in.Escalations[i]
		r := row(TimelineEscalation, i, e.At)
		r.FromLevel, r.ToLevel, r.Note = e.From, e.To, e.Reason
		dst = append(dst, r)
	}
	for i := min(mark.Breaches, len(in.Breaches)); i < len(in.Breaches); i++ {
		br := &in.Breaches[i]
		r := row(TimelineBreach, i, br.At)
		r.Breach, r.Target = br.Kind, br.Target
		dst = append(dst, r)
	}
	for i := min(mark.Comments, len(in.Comments)); i < len(in.Comments); i++ {
		c := &in.Comments[i]
		r := row(TimelineComment, i, c.At)
		r.By, r.Note = c.By, c.Text
		dst = append(dst, r)
	}
	return dst, TimelineMark{
		Transitions: len(in.Transitions), Escalations: len(in.Escalations),
		Breaches: len(in.Breaches), Comments: len(in.Comments),
	}
}

var timelineColumns = []string{
	"incident_id", "kind", "seq", "at", "at_ms", "priority", "from_status", "to_status",
	"actor", "note", "from_level", "to_level", "breach", "target_s",
}

// IncidentTimelineTable returns the Table of incident_timeline (migration
// 0005), for NewWriter. An unknown Kind is written as a comment rather
// than failing the batch.
func IncidentTimelineTable() Table[TimelineRow] {
	return Table[TimelineRow]{
		Name:    "incident_timeline",
		Columns: slices.Clone(timelineColumns),
		Append:  appendTimelineRow,
		Encode:  encodeTimelineRow,
		Decode:  decodeTimelineRow,
	}
}

// encodeTimelineRow is incident_timeline's spill codec (see spill.go).
func encodeTimelineRow(dst []byte, r *TimelineRow) []byte {
	dst = appendSpillString(dst, r.IncidentID)
	dst = appendSpillString(dst, string(r.Kind))
	dst = binary.AppendVarint(dst, int64(r.Seq))
	dst = appendSpillTime(dst, r.At)
	dst = appendSpillString(dst, string(r.Priority))
	dst = appendSpillString(dst, string(r.From))
	dst = appendSpillString(dst, string(r.To))
	dst = appendSpillString(dst, r.By)
	dst = appendSpillString(dst, r.Note)
	dst = binary.AppendVarint(dst, int64(r.FromLevel))
	dst = binary.AppendVarint(dst, int64(r.ToLevel))
	dst = appendSpillString(dst, string(r.Breach))
	return binary.AppendVarint(dst, int64(r.Target))
}

func decodeTimelineRow(rec []byte, r *TimelineRow) error {
	rd := spillReader{b: rec}
	*r = TimelineRow{
		IncidentID: rd.string(),
		Kind:       TimelineKind(rd.string()),
		Seq:        rd.int(),
		At:         rd.time(),
		Priority:   incidents.Priority(rd.string()),
		From:       incidents.Status(rd.string()),
		To:         incidents.Status(rd.string()),
		By:         rd.string(),
		Note:       rd.string(),
		FromLevel:  rd.int(),
		ToLevel:    rd.int(),
		Breach:     incidents.BreachKind(rd.string()),
		Target:     time.Duration(rd.varint()),
	}
	return rd.err()
}

func appendTimelineRow(b driver.Batch, r *TimelineRow) error {
	at := chTime(r.At)
	return b.Append(
		r.IncidentID,
		timelineKindCode(r.Kind),
		clampU32(r.Seq),
		at,
		uint64(max(r.At.UnixMilli(), 0)),
		string(r.Priority),
		string(r.From),
		string(r.To),
		r.By,
		r.Note,
		clampU8(r.FromLevel),
		clampU8(r.ToLevel),
		string(r.Breach),
		durationSeconds(r.Target),
	)
}

// timelineKindCode returns the Enum8 code of incident_timeline.kind.
func timelineKindCode(k TimelineKind) int8 {
	switch k {
	case TimelineTransition:
		return 1
	case TimelineEscalation:
		return 2
	case TimelineBreach:
		return 3
	}
	return 4 // comment
}

// MemberRow is one row of incident_members: an event of an incident and
// why it is there. AddedAt is when the row's incident version was made
// (Incident.UpdatedAt); since a row written again replaces the earlier
// one, it should be derived from the incident, not from a clock.
type MemberRow struct {
	IncidentID string
	Member     correlate.Member
	AddedAt    time.Time
}

var memberColumns = []string{
	"incident_id", "event_id", "ci", "reason", "related_ci", "path", "hops", "offset_s",
	"merged_from", "severity", "symptom", "added_at",
}

// IncidentMembersTable returns the Table of incident_members (migration
// 0005), for NewWriter. Offset is written in seconds, as a float.
func IncidentMembersTable() Table[MemberRow] {
	return Table[MemberRow]{
		Name:    "incident_members",
		Columns: slices.Clone(memberColumns),
		Append:  appendMemberRow,
		Encode:  encodeMemberRow,
		Decode:  decodeMemberRow,
	}
}

// encodeMemberRow is incident_members' spill codec (see spill.go). It
// keeps every exported field; correlate's internal ordering of members is
// not written to ClickHouse and is lost.
func encodeMemberRow(dst []byte, r *MemberRow) []byte {
	m := &r.Member
	dst = appendSpillString(dst, r.IncidentID)
	dst = appendSpillString(dst, m.EventID)
	dst = appendSpillString(dst, m.CI)
	dst = appendSpillString(dst, string(m.Reason))
	dst = appendSpillString(dst, m.RelatedCI)
	dst = appendSpillStrings(dst, m.Path)
	dst = binary.AppendVarint(dst, int64(m.Hops))
	dst = binary.AppendVarint(dst, int64(m.Offset))
	dst = appendSpillString(dst, m.MergedFrom)
	dst = appendSpillString(dst, string(m.Severity))
	dst = appendSpillString(dst, m.Symptom)
	return appendSpillTime(dst, r.AddedAt)
}

func decodeMemberRow(rec []byte, r *MemberRow) error {
	rd := spillReader{b: rec}
	*r = MemberRow{
		IncidentID: rd.string(),
		Member: correlate.Member{
			EventID:    rd.string(),
			CI:         rd.string(),
			Reason:     correlate.Reason(rd.string()),
			RelatedCI:  rd.string(),
			Path:       rd.strings(),
			Hops:       rd.int(),
			Offset:     time.Duration(rd.varint()),
			MergedFrom: rd.string(),
			Severity:   event.Severity(rd.string()),
			Symptom:    rd.string(),
		},
		AddedAt: rd.time(),
	}
	return rd.err()
}

func appendMemberRow(b driver.Batch, r *MemberRow) error {
	m := &r.Member
	return b.Append(
		r.IncidentID,
		m.EventID,
		m.CI,
		string(m.Reason),
		m.RelatedCI,
		nonNil(m.Path),
		clampU8(m.Hops),
		m.Offset.Seconds(),
		m.MergedFrom,
		string(m.Severity),
		m.Symptom,
		chTime(r.AddedAt),
	)
}

var problemColumns = []string{
	"id", "version", "partition_key", "status", "reason", "title", "root_cause_ci", "category",
	"service", "incidents", "raised_at", "updated_at", "root_cause", "workaround", "known_error_id",
	"detail", "transition_at", "transition_to",
}

// ProblemsTable returns the Table of the problems table (migration 0005),
// for NewWriter: one row per version of a problem. transition_at and
// transition_to are the times and target statuses of its Transitions; a
// problem without transitions is given one, to its status at RaisedAt, so
// that its history is never empty.
func ProblemsTable() Table[*incidents.Problem] {
	return Table[*incidents.Problem]{
		Name:    "problems",
		Columns: slices.Clone(problemColumns),
		Append:  appendProblem,
	}
}

func appendProblem(b driver.Batch, pp **incidents.Problem) error {
	p := *pp
	var (
		ats []time.Time
		tos []string
	)
	if len(p.Transitions) == 0 {
		ats, tos = []time.Time{chTime(p.RaisedAt)}, []string{string(p.Status)}
	} else {
		ats, tos = make([]time.Time, len(p.Transitions)), make([]string, len(p.Transitions))
		for i, t := range p.Transitions {
			ats[i], tos[i] = chTime(t.At), string(t.To)
		}
	}
	return b.Append(
		p.ID,
		p.Version,
		p.PartitionKey,
		string(p.Status),
		string(p.Reason),
		p.Title,
		p.RootCauseCI,
		string(p.Category),
		p.Service,
		nonNil(p.Incidents),
		chTime(p.RaisedAt),
		chTime(p.UpdatedAt),
		p.RootCause,
		p.Workaround,
		p.KnownErrorID,
		p.Detail,
		ats,
		tos,
	)
}

// The range of a ClickHouse DateTime.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(math.MaxUint32, 0).UTC()
)

// chTime returns t as a DateTime column stores it: the zero time (not set)
// and anything before 1970 as 0, anything past 2106 as the largest
// DateTime, rather than the wrapped values an out-of-range time would get.
func chTime(t time.Time) time.Time {
	switch {
	case t.Before(minDateTime):
		return minDateTime
	case t.After(maxDateTime):
		return maxDateTime
	}
	return t.UTC()
}

func clampU8(n int) uint8 { return uint8(min(max(n, 0), math.MaxUint8)) }

func clampU32(n int) uint32 { return uint32(min(max(n, 0), math.MaxUint32)) }

// durationSeconds returns d in whole seconds, clamped to a UInt32.
func durationSeconds(d time.Duration) uint32 {
	return uint32(min(max(d/time.Second, 0), math.MaxUint32))
}

// nonNil returns s, or an empty slice for nil, which an Array column needs.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
