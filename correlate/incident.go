package correlate

import (
	"time"

	"github.com/correlatord/correlatord/event"
)

// Status is the lifecycle state of an incident.
type Status string

// The statuses.
const (
	StatusOpen     Status = "open"
	StatusResolved Status = "resolved"
)

// Reason says why an event joined an incident.
type Reason string

// The reasons.
const (
	// ReasonOpened: the event opened the incident.
	ReasonOpened Reason = "opened"
	// ReasonTopology: the event's CI is related to a member CI within
	// Config.MaxHops (a dependency either way, or a shared dependency).
	ReasonTopology Reason = "topology"
	// ReasonSameIncident: same CI and symptom as an unresolved incident
	// (ISO 20000), or a recurrence within the reopen window.
	ReasonSameIncident Reason = "same_incident"
	// ReasonLabels: an event without CI binding grouped by Config.GroupBy.
	ReasonLabels Reason = "labels"
	// ReasonSymptom: an inhibited event that joined as a symptom.
	ReasonSymptom Reason = "symptom"
)

// Member explains why one event is in an incident. Its JSON, under the Go
// field names, is the changelog's member record (state.go). Empty fields are
// left out: that shortens the record of an alert grouped by labels (no CI,
// no path) by a third, and a field left out reads back as the zero value it
// was, in this build and in those before it.
type Member struct {
	EventID string `json:",omitempty"`
	CI      string `json:",omitempty"`
	Reason  Reason `json:",omitempty"`
	// RelatedCI is the member CI the event was related to, for
	// ReasonTopology and ReasonSymptom.
	RelatedCI string `json:",omitempty"`
	// Path is the CI path from the event's CI to RelatedCI (through the
	// shared dependency, if that is how they relate), and Hops its length.
	Path []string `json:",omitempty"`
	Hops int      `json:",omitempty"`
	// Offset is the event's onset minus the incident's OpenedAt.
	Offset time.Duration `json:",omitempty"`
	// MergedFrom is the id of the incident the event was in before a merge
	// brought it here; empty when it joined this incident directly.
	MergedFrom string `json:",omitempty"`
	// Severity and Symptom (alertname) of the event: the incidents stage
	// derives urgency and category from them.
	Severity event.Severity `json:",omitempty"`
	Symptom  string         `json:",omitempty"`

	seq uint64
}

// Revision records one change of an incident's root-cause candidate.
type Revision struct {
	// At is the event time of the event that caused the revision.
	At         time.Time
	EventID    string
	CI         string
	Confidence float64
	Suspected  bool
}

// Incident is an incident candidate. Snapshots returned by the engine are
// copies the caller owns; their lists share arrays with the engine and must
// not be modified in place (appending is fine).
type Incident struct {
	// ID is "INC-" and a hash of the first event's id: deterministic.
	ID         string
	Status     Status
	OpenedAt   time.Time
	ResolvedAt time.Time
	// RootCauseCI is the root-cause candidate, RootCauseConfidence the share
	// of member CIs it explains (0 to 1), RootCauseExplains those CIs.
	// RootCauseSuspected marks a CI that is not alerting, named because it
	// is a common dependency that explains more members than any alerting
	// one.
	RootCauseCI         string
	RootCauseConfidence float64
	RootCauseSuspected  bool
	RootCauseExplains   []string
	RootCauseRevisions  []Revision
	// CIs are the member CIs in order of first appearance.
	CIs []string
	// EventIDs are the member events in arrival order.
	EventIDs []string
	// SuppressedEventIDs are the inhibited (symptom) members.
	SuppressedEventIDs []string
	// MergedFrom are the ids of incidents merged into this one.
	MergedFrom []string
	Members    []Member
	// Reopened counts the reopenings.
	Reopened int
}

// clone returns a copy that shares the lists' arrays, capped at their
// lengths: the engine only appends to these lists (which never writes
// into a copy's view) or replaces them whole (merge), so a snapshot costs
// no copy of an incident's members however large it grows.
func (in *Incident) clone() *Incident {
	c := *in
	c.RootCauseExplains = capped(in.RootCauseExplains)
	c.RootCauseRevisions = capped(in.RootCauseRevisions)
	c.CIs = capped(in.CIs)
	c.EventIDs = capped(in.EventIDs)
	c.SuppressedEventIDs = capped(in.SuppressedEventIDs)
	c.MergedFrom = capped(in.MergedFrom)
	c.Members = capped(in.Members)
	return &c
}

// capped limits s's capacity to its length, so an append to the result
// reallocates instead of writing into the shared array.
func capped[T any](s []T) []T { return s[:len(s):len(s)] }

// UpdateKind says what changed.
type UpdateKind string

// The update kinds.
const (
	UpdateOpened     UpdateKind = "opened"
	UpdateJoined     UpdateKind = "joined"
	UpdateMerged     UpdateKind = "merged"
	UpdateRootCause  UpdateKind = "root_cause"
	UpdateResolved   UpdateKind = "resolved"
	UpdateReopened   UpdateKind = "reopened"
	UpdateUnattached UpdateKind = "unattached"
	// UpdateClosed: the incident left the engine's state (resolved past
	// the reopen window, or Flush); Incident holds its final snapshot.
	UpdateClosed UpdateKind = "closed"
)

// Update is one change the engine made.
type Update struct {
	Kind       UpdateKind
	IncidentID string
	EventID    string
	// At is the event time (or watermark) at which the change happened.
	At time.Time
	// Other is the incident merged away, for UpdateMerged.
	Other string
	// Incident is a snapshot, set for UpdateClosed only.
	Incident *Incident
}

// Input is what the rules stage decided about an event, as far as the
// engine cares (rules.Decision maps onto it; see InputFromDecision).
type Input struct {
	// Inhibited marks a symptom: it joins an incident, never opens one.
	Inhibited bool
	// InhibitedByCI is the CI of the inhibiting alert, when known.
	InhibitedByCI string
}
