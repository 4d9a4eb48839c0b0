package incidents

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Priority is P1 (highest) to P5.
type Priority string

// The priorities.
const (
	P1 Priority = "P1"
	P2 Priority = "P2"
	P3 Priority = "P3"
	P4 Priority = "P4"
	P5 Priority = "P5"
)

// Priorities lists the priorities, highest first.
var Priorities = []Priority{P1, P2, P3, P4, P5}

// Rank is 1 for P1 to 5 for P5; 0 when p is not a priority.
func (p Priority) Rank() int { return slices.Index(Priorities, p) + 1 }

// Category is the symptom class of an incident.
type Category string

// The categories (the symptom rows of the SLA matrix).
const (
	CategoryOutage      Category = "outage"
	CategoryUnreachable Category = "unreachable"
	CategoryDegraded    Category = "degraded"
)

// Categories lists the categories.
var Categories = []Category{CategoryOutage, CategoryUnreachable, CategoryDegraded}

// DefaultUpdateInterval is Config.UpdateInterval's default.
const DefaultUpdateInterval = time.Minute

// Config tunes the incident stage. Call SetDefaults, then Validate.
type Config struct {
	// PriorityMatrix[impact-1][urgency-1] is the priority; impact and
	// urgency run from 1 (high) to 3 (low). Default the ITIL 3x3 matrix:
	// P1 P2 P3 / P2 P3 P4 / P3 P4 P5.
	PriorityMatrix [][]Priority `yaml:"priority_matrix"`
	// ResponseTargets is the time to acknowledge, by priority.
	ResponseTargets map[Priority]time.Duration `yaml:"response_targets"`
	// ResolutionTargets is the time to resolve by category and service
	// class (index 0 = class 1, the most critical). Default the ISO 20000
	// table: outage 10m/15m/30m, unreachable 15m/20m/40m, degraded
	// 20m/30m/60m.
	ResolutionTargets map[Category][]time.Duration `yaml:"resolution_targets"`
	// AutoCloseAfter closes a resolved incident this long after its
	// resolution (an operator may close it before). It must be at least
	// the correlator's reopen window, or a recurrence would find the
	// incident closed.
	AutoCloseAfter time.Duration `yaml:"auto_close_after"`
	// ClosedRetention is how long a closed incident stays in memory for
	// the API; analytics keep it for good.
	ClosedRetention time.Duration `yaml:"closed_retention"`
	// ChangeLookback: an incident whose root-cause CI, or a CI it depends
	// on, had a change completed within this before its onset is flagged
	// change-induced.
	ChangeLookback time.Duration `yaml:"change_lookback"`
	// UpdateInterval paces "updated" notifications from correlation (new
	// members, priority or root-cause changes): at most one per incident
	// per interval of event time, with the reasons of those held back
	// merged into it. Other notifications (created, escalated, resolved,
	// reopened, closed, operator actions) go at once and carry what was
	// held. Alertmanager's group_interval does the same for its groups:
	// without it a storm of alerts into a few incidents was a storm of
	// notifications, one per incident and batch.
	UpdateInterval time.Duration `yaml:"update_interval"`
	// Problems configures problem candidates.
	Problems ProblemConfig `yaml:"problems"`
	// KnownErrorsFile is a YAML file of known errors (the KEDB) with
	// matchers; reloaded on SIGHUP. Optional.
	KnownErrorsFile string `yaml:"known_errors_file"`
}

// ProblemConfig configures when problem candidates are raised.
type ProblemConfig struct {
	// RecurrenceCount incidents with one signature (root-cause CI and
	// category) within RecurrencePeriod raise a candidate. Default 3 in 7
	// days.
	RecurrenceCount  int           `yaml:"recurrence_count"`
	RecurrencePeriod time.Duration `yaml:"recurrence_period"`
	// MajorPriority: resolving an incident of this priority or higher
	// raises a major-incident review candidate. Default P1.
	MajorPriority Priority `yaml:"major_priority"`
	// RateFactor and RateMinCount: a service or CI with at least
	// RateMinCount incidents in the last RateWindow, and RateFactor times
	// its baseline rate (the mean over the RateBaseline before), raises a
	// candidate. Defaults 4x, 4, 24h, 7 days.
	RateFactor   float64       `yaml:"rate_factor"`
	RateMinCount int           `yaml:"rate_min_count"`
	RateWindow   time.Duration `yaml:"rate_window"`
	RateBaseline time.Duration `yaml:"rate_baseline"`
}

// DefaultPriorityMatrix is the ITIL 3x3 matrix.
func DefaultPriorityMatrix() [][]Priority {
	return [][]Priority{{P1, P2, P3}, {P2, P3, P4}, {P3, P4, P5}}
}

// SetDefaults fills every zero field.
func (c *Config) SetDefaults() {
	if c.PriorityMatrix == nil {
		c.PriorityMatrix = DefaultPriorityMatrix()
	}
	if c.ResponseTargets == nil {
		c.ResponseTargets = map[Priority]time.Duration{
			P1: 5 * time.Minute, P2: 15 * time.Minute, P3: 30 * time.Minute, P4: 2 * time.Hour, P5: 8 * time.Hour,
		}
	}
	if c.ResolutionTargets == nil {
		m := time.Minute
		c.ResolutionTargets = map[Category][]time.Duration{
			CategoryOutage:      {10 * m, 15 * m, 30 * m},
			CategoryUnreachable: {15 * m, 20 * m, 40 * m},
			CategoryDegraded:    {20 * m, 30 * m, 60 * m},
		}
	}
	if c.AutoCloseAfter == 0 {
		c.AutoCloseAfter = 24 * time.Hour
	}
	if c.ClosedRetention == 0 {
		c.ClosedRetention = 24 * time.Hour
	}
	if c.ChangeLookback == 0 {
		c.ChangeLookback = 2 * time.Hour
	}
	if c.UpdateInterval == 0 {
		c.UpdateInterval = DefaultUpdateInterval
	}
	p := &c.Problems
	if p.RecurrenceCount == 0 {
		p.RecurrenceCount = 3
	}
	if p.RecurrencePeriod == 0 {
		p.RecurrencePeriod = 7 * 24 * time.Hour
	}
	if p.MajorPriority == "" {
		p.MajorPriority = P1
	}
	if p.RateFactor == 0 {
		p.RateFactor = 4
	}
	if p.RateMinCount == 0 {
		p.RateMinCount = 4
	}
	if p.RateWindow == 0 {
		p.RateWindow = 24 * time.Hour
	}
	if p.RateBaseline == 0 {
		p.RateBaseline = 7 * 24 * time.Hour
	}
}

// ErrConfig is wrapped by every error of Validate.
var ErrConfig = errors.New("invalid incidents config")

// Validate checks c after SetDefaults; errors name the field as
// incidents.<field>. reopenWindow is the correlator's.
func (c *Config) Validate(reopenWindow time.Duration) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: incidents.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...)))
	}
	if len(c.PriorityMatrix) != 3 {
		bad("priority_matrix", "must have 3 rows (impact 1 to 3), got %d", len(c.PriorityMatrix))
	}
	for i, row := range c.PriorityMatrix {
		if len(row) != 3 {
			bad(fmt.Sprintf("priority_matrix[%d]", i), "must have 3 columns (urgency 1 to 3), got %d", len(row))
		}
		for j, p := range row {
			if p.Rank() == 0 {
				bad(fmt.Sprintf("priority_matrix[%d][%d]", i, j), "%q is not P1 to P5", p)
			}
		}
	}
	for _, p := range Priorities {
		if d, ok := c.ResponseTargets[p]; !ok || d <= 0 {
			bad("response_targets."+string(p), "must be set and positive, got %s", d)
		}
	}
	for p := range c.ResponseTargets {
		if p.Rank() == 0 {
			bad("response_targets", "%q is not P1 to P5", p)
		}
	}
	for _, cat := range Categories {
		ts := c.ResolutionTargets[cat]
		if len(ts) != 3 {
			bad("resolution_targets."+string(cat), "must list 3 targets (service class 1 to 3), got %d", len(ts))
		}
		for i, d := range ts {
			if d <= 0 {
				bad(fmt.Sprintf("resolution_targets.%s[%d]", cat, i), "must be positive, got %s", d)
			}
		}
	}
	for cat := range c.ResolutionTargets {
		if !slices.Contains(Categories, cat) {
			bad("resolution_targets", "%q is not one of outage, unreachable, degraded", cat)
		}
	}
	if c.AutoCloseAfter < reopenWindow {
		bad("auto_close_after", "must be at least correlate.reopen_window (%s), got %s", reopenWindow, c.AutoCloseAfter)
	}
	if c.ClosedRetention < 0 {
		bad("closed_retention", "must not be negative, got %s", c.ClosedRetention)
	}
	if c.ChangeLookback < 0 {
		bad("change_lookback", "must not be negative, got %s", c.ChangeLookback)
	}
	if c.UpdateInterval < 0 {
		bad("update_interval", "must not be negative, got %s", c.UpdateInterval)
	}
	p := &c.Problems
	if p.RecurrenceCount < 2 {
		bad("problems.recurrence_count", "must be at least 2, got %d", p.RecurrenceCount)
	}
	if p.RecurrencePeriod <= 0 {
		bad("problems.recurrence_period", "must be positive, got %s", p.RecurrencePeriod)
	}
	if p.MajorPriority.Rank() == 0 {
		bad("problems.major_priority", "%q is not P1 to P5", p.MajorPriority)
	}
	if p.RateFactor <= 1 {
		bad("problems.rate_factor", "must be above 1, got %g", p.RateFactor)
	}
	if p.RateMinCount < 1 {
		bad("problems.rate_min_count", "must be at least 1, got %d", p.RateMinCount)
	}
	if p.RateWindow <= 0 || p.RateBaseline < p.RateWindow {
		bad("problems.rate_baseline", "must be at least problems.rate_window (%s), got %s", p.RateWindow, p.RateBaseline)
	}
	return errors.Join(errs...)
}
