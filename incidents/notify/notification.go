package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kind says what happened to an incident.
type Kind string

// The kinds of notification, in the order of an incident's lifecycle.
const (
	KindCreated   Kind = "created"   // a new incident
	KindUpdated   Kind = "updated"   // new members, priority or root-cause change
	KindEscalated Kind = "escalated" // moved to a higher support line or the incident manager
	KindResolved  Kind = "resolved"  // service restored
	KindReopened  Kind = "reopened"  // a resolved incident came back
	KindClosed    Kind = "closed"    // closed after resolution
)

// Kinds lists every kind, for metrics and validation.
var Kinds = []Kind{KindCreated, KindUpdated, KindEscalated, KindResolved, KindReopened, KindClosed}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Notification is one change of an incident, to be told to every matching
// target. It is what the outbox stores.
type Notification struct {
	// Key is the idempotency key: unique and deterministic per notification.
	// The producer builds it, for example incident id + ":" + version, so a
	// notification produced again after a crash carries the same key. It is
	// sent as the Idempotency-Key header.
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// IncidentID identifies the incident; the Kafka outbox keys messages by
	// it, and ServiceNow stores it as correlation_id.
	IncidentID string `json:"incident_id"`
	// At is when the change happened (event time of the incident).
	At time.Time `json:"at"`
	// Reason says why, for people: "new members", "priority P3 -> P2",
	// "escalated to line 2 (response target 15m missed)".
	Reason string `json:"reason,omitempty"`
	// Ticket is the incident as it is after the change.
	Ticket Ticket `json:"ticket"`
}

// Ticket is the state of an incident that receivers show.
type Ticket struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Status      string `json:"status,omitempty"`
	Category    string `json:"category,omitempty"`
	// Priority is "P1" (highest) .. "P5".
	Priority string `json:"priority,omitempty"`
	// Impact and Urgency are ITIL's 1 (high) .. 3 (low); 0 means unknown.
	Impact       int        `json:"impact,omitempty"`
	Urgency      int        `json:"urgency,omitempty"`
	RootCauseCI  string     `json:"root_cause_ci,omitempty"`
	SupportGroup string     `json:"support_group,omitempty"`
	AssignedTo   string     `json:"assigned_to,omitempty"`
	Services     []string   `json:"services,omitempty"`
	CIs          []string   `json:"cis,omitempty"`
	OpenedAt     time.Time  `json:"opened_at"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	// EscalationLevel is 0 (none), 1..3 (support lines) or 4 (incident
	// manager).
	EscalationLevel int    `json:"escalation_level,omitempty"`
	KnownErrorID    string `json:"known_error_id,omitempty"`
	ProblemID       string `json:"problem_id,omitempty"`
	ChangeID        string `json:"change_id,omitempty"`
	// Members is how many events the incident groups.
	Members int `json:"members,omitempty"`
}

// Limits on what Validate accepts, so one bad producer cannot make the
// outbox carry megabyte keys.
const (
	maxKeyBytes = 1024
	maxIDBytes  = 1024
)

// Validate reports the first field that makes n unusable: an empty or
// oversized key or incident id, an unknown kind, a priority other than
// P1..P5, impact or urgency outside 0..3.
func (n *Notification) Validate() error {
	switch {
	case n.Key == "":
		return errors.New("key: must not be empty")
	case len(n.Key) > maxKeyBytes:
		return fmt.Errorf("key: %d bytes is over the limit of %d", len(n.Key), maxKeyBytes)
	case !n.Kind.Valid():
		return fmt.Errorf("kind: %q is not one of created, updated, escalated, resolved, reopened, closed", n.Kind)
	case n.IncidentID == "":
		return errors.New("incident_id: must not be empty")
	case len(n.IncidentID) > maxIDBytes:
		return fmt.Errorf("incident_id: %d bytes is over the limit of %d", len(n.IncidentID), maxIDBytes)
	case n.Ticket.Priority != "" && priorityRank(n.Ticket.Priority) == 0:
		return fmt.Errorf("ticket.priority: %q is not one of P1..P5", n.Ticket.Priority)
	case n.Ticket.Impact < 0 || n.Ticket.Impact > 3:
		return fmt.Errorf("ticket.impact: %d is not 1..3 (or 0, unknown)", n.Ticket.Impact)
	case n.Ticket.Urgency < 0 || n.Ticket.Urgency > 3:
		return fmt.Errorf("ticket.urgency: %d is not 1..3 (or 0, unknown)", n.Ticket.Urgency)
	}
	return nil
}

// EncodeNotification returns n as JSON, the form the outboxes store and the
// webhook sends. It validates n first.
func EncodeNotification(n *Notification) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, fmt.Errorf("invalid notification: %w", err)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode notification %s: %w", n.Key, err)
	}
	return b, nil
}

// DecodeNotification decodes JSON written by EncodeNotification into n,
// which it resets first, and validates the result. Unknown fields are
// ignored rather than rejected: during a rolling upgrade an older runner may
// read what a newer producer wrote, and skipping such a notification would
// lose it. n does not keep a reference to data.
func DecodeNotification(data []byte, n *Notification) error {
	*n = Notification{}
	if err := json.Unmarshal(data, n); err != nil {
		*n = Notification{}
		return fmt.Errorf("decode notification: %w", err)
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("decode notification: %w", err)
	}
	return nil
}

// priorityRank returns 1..5 for "P1".."P5" and 0 for anything else.
func priorityRank(p string) int {
	if len(p) == 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '5' {
		return int(p[1] - '0')
	}
	return 0
}
