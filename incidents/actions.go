package incidents

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Action is an operator action.
type Action string

// The actions on incidents, then on problems.
const (
	ActAcknowledge Action = "acknowledge"
	ActStart       Action = "start"
	ActAssign      Action = "assign"
	ActComment     Action = "comment"
	ActResolve     Action = "resolve"
	ActClose       Action = "close"
	ActReopen      Action = "reopen"

	ActAcceptProblem  Action = "accept"
	ActRejectProblem  Action = "reject"
	ActKnownError     Action = "known_error"
	ActResolveProblem Action = "resolve_problem"
	ActCloseProblem   Action = "close_problem"
)

// ProblemAction reports whether a acts on a problem.
func (a Action) ProblemAction() bool {
	switch a {
	case ActAcceptProblem, ActRejectProblem, ActKnownError, ActResolveProblem, ActCloseProblem:
		return true
	}
	return false
}

// Command is an operator action, as it travels to the partition that owns
// the record.
type Command struct {
	ID         string    `json:"id"`
	Action     Action    `json:"action"`
	IncidentID string    `json:"incident_id,omitempty"`
	ProblemID  string    `json:"problem_id,omitempty"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	Note       string    `json:"note,omitempty"`
	AssignTo   string    `json:"assign_to,omitempty"`
	// RootCause, Workaround and Matchers record a known error.
	RootCause  string   `json:"root_cause,omitempty"`
	Workaround string   `json:"workaround,omitempty"`
	Matchers   []string `json:"matchers,omitempty"`
}

// Validate checks what can be checked without the record.
func (c *Command) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
	}
	if c.By == "" {
		return bad("by: who acts must be known")
	}
	switch c.Action {
	case ActAcknowledge, ActStart, ActResolve, ActClose, ActReopen:
	case ActAssign:
		if strings.TrimSpace(c.AssignTo) == "" {
			return bad("assign_to: must not be empty")
		}
	case ActComment:
		if strings.TrimSpace(c.Note) == "" {
			return bad("note: a comment needs text")
		}
	case ActAcceptProblem, ActRejectProblem, ActResolveProblem, ActCloseProblem:
	case ActKnownError:
		if strings.TrimSpace(c.RootCause) == "" || strings.TrimSpace(c.Workaround) == "" {
			return bad("root_cause and workaround: a known error records both")
		}
		if len(c.Matchers) == 0 {
			return bad("matchers: a known error needs at least one, or it would match every incident")
		}
		k := KnownError{ID: "x", Matchers: c.Matchers}
		if err := k.compile("matchers"); err != nil {
			return bad("%v", err)
		}
	default:
		return bad("action: %q is not one of acknowledge, start, assign, comment, resolve, close, reopen, accept, reject, known_error, resolve_problem, close_problem", c.Action)
	}
	if c.Action.ProblemAction() && c.ProblemID == "" {
		return bad("problem_id: must be set for %s", c.Action)
	}
	if !c.Action.ProblemAction() && c.IncidentID == "" {
		return bad("incident_id: must be set for %s", c.Action)
	}
	if len(c.Note) > 10000 {
		return bad("note: %d bytes, at most 10000", len(c.Note))
	}
	return nil
}

// Act applies an operator action. Errors wrap ErrNotFound, ErrConflict or
// ErrBadInput; nothing changes on error.
func (m *Manager) Act(c Command) ([]Change, error) {
	changes, err := m.act(c)
	result := "ok"
	if err != nil {
		result = "rejected"
	}
	m.m.operatorAction.WithLabelValues(string(c.Action), result).Inc()
	return changes, err
}

func (m *Manager) act(c Command) ([]Change, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := m.newBatch()
	if c.Action.ProblemAction() {
		if err := m.actProblem(b, c); err != nil {
			return nil, err
		}
		return b.changes(), nil
	}
	in, ok := m.incidents[c.IncidentID]
	if !ok {
		return nil, fmt.Errorf("%w: incident %s", ErrNotFound, c.IncidentID)
	}
	conflict := func() error {
		return fmt.Errorf("%w: %s an incident that is %s", ErrConflict, c.Action, in.Status)
	}
	switch c.Action {
	case ActAcknowledge:
		if in.Status != StatusNew && in.Status != StatusReopened {
			return nil, conflict()
		}
		m.acknowledged(in, c.At)
		m.transition(b, in, StatusAcknowledged, c.At, c.By, c.Note)
	case ActStart:
		if !in.Status.Open() || in.Status == StatusInProgress {
			return nil, conflict()
		}
		m.acknowledged(in, c.At)
		m.transition(b, in, StatusInProgress, c.At, c.By, c.Note)
	case ActAssign:
		if !in.Status.Open() {
			return nil, conflict()
		}
		in.AssignedTo = c.AssignTo
		in.UpdatedAt = c.At
		b.note(in.ID, Notice{Kind: "updated", Reason: "assigned to " + c.AssignTo})
	case ActComment:
		in.Comments = append(in.Comments, Comment{At: c.At, By: c.By, Text: c.Note})
		in.UpdatedAt = c.At
		b.note(in.ID)
	case ActResolve:
		if !in.Status.Open() {
			return nil, conflict()
		}
		m.acknowledged(in, c.At)
		in.AutoResolved = false
		m.resolve(b, in, c.At, c.By, orDash(c.Note))
	case ActClose:
		if in.Status != StatusResolved {
			return nil, conflict()
		}
		m.transition(b, in, StatusClosed, c.At, c.By, c.Note)
		b.note(in.ID, Notice{Kind: "closed", Reason: "closed by " + c.By})
		m.m.closed.WithLabelValues("manual").Inc()
	case ActReopen:
		if in.Status.Open() {
			return nil, conflict()
		}
		m.reopen(b, in, c.At, c.By, orDash(c.Note))
	}
	return b.changes(), nil
}

// acknowledged records the first response.
func (m *Manager) acknowledged(in *Incident, at time.Time) {
	if !in.AcknowledgedAt.IsZero() {
		return
	}
	in.AcknowledgedAt = at
	m.m.timeToAck.WithLabelValues(string(in.Priority)).Observe(at.Sub(in.OpenedAt).Seconds())
}

var problemMoves = map[Action]struct {
	from []ProblemStatus
	to   ProblemStatus
}{
	ActAcceptProblem:  {[]ProblemStatus{ProblemCandidate}, ProblemAccepted},
	ActRejectProblem:  {[]ProblemStatus{ProblemCandidate}, ProblemRejected},
	ActKnownError:     {[]ProblemStatus{ProblemCandidate, ProblemAccepted}, ProblemKnownError},
	ActResolveProblem: {[]ProblemStatus{ProblemAccepted, ProblemKnownError}, ProblemResolved},
	ActCloseProblem:   {[]ProblemStatus{ProblemResolved, ProblemRejected}, ProblemClosed},
}

func (m *Manager) actProblem(b *batch, c Command) error {
	p, ok := m.problems[c.ProblemID]
	if !ok {
		return fmt.Errorf("%w: problem %s", ErrNotFound, c.ProblemID)
	}
	mv := problemMoves[c.Action]
	if !slices.Contains(mv.from, p.Status) {
		return fmt.Errorf("%w: %s a problem that is %s", ErrConflict, c.Action, p.Status)
	}
	if c.Action == ActKnownError {
		k := &KnownError{ID: "KE-" + p.ID[len("PRB-"):], Title: p.Title, RootCause: c.RootCause, Workaround: c.Workaround,
			ProblemID: p.ID, Matchers: slices.Clone(c.Matchers)}
		if err := k.compile("matchers"); err != nil {
			return fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		m.known[k.ID] = k
		p.RootCause, p.Workaround, p.KnownErrorID = c.RootCause, c.Workaround, k.ID
		m.metaDirty = true
	}
	m.m.problemsOpen.WithLabelValues(string(p.Status)).Dec()
	if mv.to != ProblemClosed && mv.to != ProblemRejected {
		m.m.problemsOpen.WithLabelValues(string(mv.to)).Inc()
	}
	p.Transitions = append(p.Transitions, Transition{At: c.At, From: Status(p.Status), To: Status(mv.to), By: c.By, Note: c.Note})
	p.Status = mv.to
	p.UpdatedAt = c.At
	b.probs = append(b.probs, p.ID)
	return nil
}

// KnownErrors returns the known errors raised from this partition's
// problems.
func (m *Manager) KnownErrors() []*KnownError {
	out := make([]*KnownError, 0, len(m.known))
	for _, k := range m.known {
		c := *k
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *KnownError) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func shortHash(s string) string {
	var b [6]byte
	h := xxhash.Sum64String(s)
	for i := range b {
		b[i] = byte(h >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}
