package rules

import (
	"time"

	"github.com/correlatord/correlatord/event"
)

// Class is the ITIL event class a rule or the severity default gives an
// event (docs/RULES.md, DOMAIN.md "Event management").
type Class uint8

// The event classes. The zero value is ClassUnknown, never returned by the
// engine.
const (
	ClassUnknown Class = iota
	// ClassInformational events are recorded only.
	ClassInformational
	// ClassWarning events are recorded and become incidents only when they
	// persist past their persist duration.
	ClassWarning
	// ClassException events open or join an incident.
	ClassException
	numClasses
)

var classNames = [numClasses]string{"unknown", "informational", "warning", "exception"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// ParseClass maps a class name of a rule file onto a Class.
func ParseClass(s string) (Class, bool) {
	switch s {
	case "informational", "info":
		return ClassInformational, true
	case "warning":
		return ClassWarning, true
	case "exception":
		return ClassException, true
	}
	return ClassUnknown, false
}

// Outcome says what the rules stage did with an event. Every outcome is
// recorded; Decision.Correlate, not the outcome, says whether the event goes
// on to correlation (a resolution of an alert already passed on always does,
// whatever its outcome).
type Outcome uint8

// The outcomes, from the strongest suppression to a plain pass. When several
// apply, the first in this list wins and the others still show as tags
// (Decision.Maintenance, ChangeID, InhibitedBy).
const (
	// OutcomePass: the event goes on to correlation as itself.
	OutcomePass Outcome = iota
	// OutcomeDropped: a drop rule matched. Counted and recorded, never
	// correlated.
	OutcomeDropped
	// OutcomeMaintenance: the event is inside a maintenance window.
	OutcomeMaintenance
	// OutcomeChangeWindow: the event's CI is under an approved change.
	OutcomeChangeWindow
	// OutcomeFlappingHeld: the alert is flapping; the transition is held
	// until the alert is stable (Engine.Tick releases its final state).
	OutcomeFlappingHeld
	// OutcomeInhibited: another firing alert inhibits this one. The event
	// still goes on to correlation, as a symptom that joins the inhibiting
	// alert's incident, never as an incident of its own.
	OutcomeInhibited
	// OutcomeWarningPending: a warning-class alert that has not yet
	// persisted long enough; Engine.Tick promotes it once it has.
	OutcomeWarningPending
	// OutcomeRecorded: an informational event, or the resolution of an
	// alert that was never passed on. Recorded only.
	OutcomeRecorded
	// OutcomeDeduplicated: a repeat of an alert already passed on and still
	// firing; it updates the existing record (DedupCount, last seen).
	OutcomeDeduplicated
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"pass", "dropped", "maintenance", "change_window", "flapping_held",
	"inhibited", "warning_pending", "recorded", "deduplicated",
}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// ParseOutcome maps an outcome name (Outcome.String) back to an Outcome.
func ParseOutcome(s string) (Outcome, bool) {
	for i, n := range outcomeNames {
		if n == s {
			return Outcome(i), true
		}
	}
	return 0, false
}

// Decision is what the rules stage decided about one event. It holds no
// pointers the caller must manage: its strings point into the immutable
// rule set, the change store or the engine's state, and stay valid.
type Decision struct {
	// Class is the event class.
	Class Class
	// Outcome is what happened to the event.
	Outcome Outcome
	// Correlate says whether the event goes on to correlation. True for a
	// pass, an inhibited event (as a symptom), a promoted warning, and the
	// resolution of any alert that was passed on before, whatever the
	// outcome (suppression never loses a resolution).
	Correlate bool
	// Flapping marks an alert detected as flapping.
	Flapping bool
	// Promoted marks a warning-class alert that persisted past its persist
	// duration and now goes on to correlation.
	Promoted bool
	// Rule is the name of the last rule that classified or dropped the
	// event; empty when the severity default decided.
	Rule string
	// Maintenance is the name of the maintenance window the event is in.
	Maintenance string
	// ChangeID is the id of the approved change active on the event's CI.
	ChangeID string
	// InhibitedBy is the fingerprint of the inhibiting alert, and
	// InhibitedByCI its CI (topology-aware inhibition), InhibitRule the
	// inhibit rule's name.
	InhibitedBy   string
	InhibitedByCI string
	InhibitRule   string
	// DedupCount counts the firing deliveries of the alert in its current
	// episode, this one included: 1 for the first.
	DedupCount uint32
	// FirstSeen is when the current firing episode was first seen (the
	// engine's now at the time); zero for events without state (logs).
	FirstSeen time.Time
}

// Suppressed reports whether the decision suppresses the creation of an
// incident: anything but a pass or an inhibited (symptom) event.
func (d *Decision) Suppressed() bool {
	return d.Outcome != OutcomePass && d.Outcome != OutcomeInhibited
}

// Deferred is an event the engine held earlier and passes on later, from
// Engine.Tick: a warning-class alert that persisted (Decision.Promoted), or
// the final state of an alert that stopped flapping. Event is the engine's
// copy of the last delivery; the caller owns it.
type Deferred struct {
	Event    event.Event
	Decision Decision
}
