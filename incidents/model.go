package incidents

import (
	"time"

	"github.com/correlatord/correlatord/correlate"
)

// Status is an incident's lifecycle state.
type Status string

// The statuses. Reopened behaves as in_progress; it says the incident came
// back after it was resolved.
const (
	StatusNew          Status = "new"
	StatusAcknowledged Status = "acknowledged"
	StatusInProgress   Status = "in_progress"
	StatusResolved     Status = "resolved"
	StatusClosed       Status = "closed"
	StatusReopened     Status = "reopened"
)

// Open reports whether s is before resolution.
func (s Status) Open() bool { return s != StatusResolved && s != StatusClosed }

// Escalation levels: the support lines, then the incident manager.
const (
	LevelLine1           = 1
	LevelLine2           = 2
	LevelLine3           = 3
	LevelIncidentManager = 4
)

// LevelName names an escalation level.
func LevelName(l int) string {
	switch l {
	case LevelLine1:
		return "line 1"
	case LevelLine2:
		return "line 2"
	case LevelLine3:
		return "line 3"
	case LevelIncidentManager:
		return "incident manager"
	}
	return "none"
}

// Transition is one status change.
type Transition struct {
	At   time.Time `json:"at"`
	From Status    `json:"from"`
	To   Status    `json:"to"`
	// By is "correlatord" for automatic transitions, else the operator.
	By   string `json:"by"`
	Note string `json:"note,omitempty"`
}

// Escalation is one step of the escalation policy.
type Escalation struct {
	At     time.Time `json:"at"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
}

// BreachKind says which target was missed.
type BreachKind string

// The breach kinds.
const (
	BreachResponse   BreachKind = "response"
	BreachResolution BreachKind = "resolution"
)

// Breach records a missed SLA target.
type Breach struct {
	Kind   BreachKind    `json:"kind"`
	At     time.Time     `json:"at"`
	Target time.Duration `json:"target_ns"`
}

// Comment is an operator's note.
type Comment struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Text string    `json:"text"`
}

// Incident is the ITSM record of one incident.
type Incident struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	// PartitionKey names the partition that owns the record (the daemon
	// puts the keyed topic's partition number), for routing actions.
	PartitionKey string   `json:"partition_key,omitempty"`
	Title        string   `json:"title"`
	Description  string   `json:"description"`
	Category     Category `json:"category"`
	// Impact and Urgency run from 1 (high) to 3 (low).
	Impact       int      `json:"impact"`
	Urgency      int      `json:"urgency"`
	Priority     Priority `json:"priority"`
	ServiceClass int      `json:"service_class"`
	Services     []string `json:"services"`
	CIs          []string `json:"cis"`

	RootCauseCI         string   `json:"root_cause_ci,omitempty"`
	RootCauseConfidence float64  `json:"root_cause_confidence"`
	RootCauseSuspected  bool     `json:"root_cause_suspected"`
	RootCauseExplains   []string `json:"root_cause_explains,omitempty"`
	SupportGroup        string   `json:"support_group,omitempty"`
	AssignedTo          string   `json:"assigned_to,omitempty"`

	Status Status `json:"status"`
	// AutoResolved: every alert cleared (the correlator resolved it), as
	// opposed to an operator's resolution.
	AutoResolved   bool      `json:"auto_resolved"`
	OpenedAt       time.Time `json:"opened_at"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ClosedAt       time.Time `json:"closed_at,omitzero"`
	UpdatedAt      time.Time `json:"updated_at"`
	Reopened       int       `json:"reopened"`

	ResponseTarget   time.Duration `json:"response_target_ns"`
	ResolutionTarget time.Duration `json:"resolution_target_ns"`
	EscalationLevel  int           `json:"escalation_level"`
	Escalations      []Escalation  `json:"escalations,omitempty"`
	Breaches         []Breach      `json:"breaches,omitempty"`
	Transitions      []Transition  `json:"transitions"`
	Comments         []Comment     `json:"comments,omitempty"`

	ChangeID     string `json:"change_id,omitempty"`
	KnownErrorID string `json:"known_error_id,omitempty"`
	Workaround   string `json:"workaround,omitempty"`
	ProblemID    string `json:"problem_id,omitempty"`

	// MergedInto is the incident this one was merged into (it is then
	// closed: the same incident, counted there).
	MergedInto string `json:"merged_into,omitempty"`

	// NotifiedAt is the event time of the incident's latest notification;
	// HeldUpdate the reasons of "updated" notifications held back since by
	// Config.UpdateInterval, sent with the next notification.
	NotifiedAt time.Time `json:"notified_at,omitzero"`
	HeldUpdate string    `json:"held_update,omitempty"`

	EventIDs           []string           `json:"event_ids"`
	SuppressedEventIDs []string           `json:"suppressed_event_ids"`
	MergedFrom         []string           `json:"merged_from"`
	Members            []correlate.Member `json:"-"`

	scan incidentScan // the manager's incremental view; not persisted
	// stale: Title and Description are behind the record; they are
	// written when a version is handed out (describe is not free, and a
	// storm refreshes an incident at every batch).
	stale bool
}

// Breached reports whether the incident missed a target of kind k.
func (in *Incident) Breached(k BreachKind) bool {
	for _, b := range in.Breaches {
		if b.Kind == k {
			return true
		}
	}
	return false
}

// ProblemStatus is a problem's lifecycle state.
type ProblemStatus string

// The problem statuses.
const (
	ProblemCandidate  ProblemStatus = "candidate"
	ProblemAccepted   ProblemStatus = "accepted"
	ProblemKnownError ProblemStatus = "known_error"
	ProblemResolved   ProblemStatus = "resolved"
	ProblemClosed     ProblemStatus = "closed"
	ProblemRejected   ProblemStatus = "rejected"
)

// ProblemReason says why a candidate was raised.
type ProblemReason string

// The reasons.
const (
	ReasonRecurring     ProblemReason = "recurring"
	ReasonMajorIncident ProblemReason = "major_incident"
	ReasonRateAnomaly   ProblemReason = "rate_anomaly"
)

// Problem is a problem record.
type Problem struct {
	ID           string        `json:"id"`
	Version      uint64        `json:"version"`
	PartitionKey string        `json:"partition_key,omitempty"`
	Status       ProblemStatus `json:"status"`
	Reason       ProblemReason `json:"reason"`
	Title        string        `json:"title"`
	// Signature: the root-cause CI and category (recurring), the service
	// or CI (rate), the incident (major).
	RootCauseCI string       `json:"root_cause_ci,omitempty"`
	Category    Category     `json:"category,omitempty"`
	Service     string       `json:"service,omitempty"`
	Incidents   []string     `json:"incidents"`
	RaisedAt    time.Time    `json:"raised_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Transitions []Transition `json:"transitions"`
	// RootCause and Workaround are recorded when it becomes a known error.
	RootCause    string `json:"root_cause,omitempty"`
	Workaround   string `json:"workaround,omitempty"`
	KnownErrorID string `json:"known_error_id,omitempty"`
	// Detail says what raised it: counts, rates and baselines.
	Detail string `json:"detail,omitempty"`
}
