package correlate

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config tunes the engine. The zero value is not valid; call SetDefaults.
type Config struct {
	// Window is how far apart the onsets of related events may be for them
	// to join one incident. The window slides: it is measured from the
	// latest onset in the incident.
	Window time.Duration `yaml:"window"`
	// MaxSpan bounds how long after its first onset an incident accepts
	// topology joins, however long the window keeps sliding.
	MaxSpan time.Duration `yaml:"max_span"`
	// MaxHops bounds the dependency path between related CIs.
	MaxHops int `yaml:"max_hops"`
	// SharedMaxHops bounds a relation through a shared dependency that is
	// not itself a member (the path a -> d <- b): default 2, siblings of one
	// direct dependency (hosts on one switch, apps on one database). Longer
	// shared paths mostly run through hubs (a site, a core router) that
	// every CI shares, and would join unrelated failures.
	SharedMaxHops int `yaml:"shared_max_hops"`
	// GroupBy are the labels that group events without a CI binding.
	GroupBy []string `yaml:"group_by"`
	// ResolveHoldDown is how long every member alert must stay resolved
	// before the incident is marked resolved.
	ResolveHoldDown time.Duration `yaml:"resolve_hold_down"`
	// ReopenWindow is how long after resolution a recurrence of the same
	// signature reopens the incident instead of opening a new one.
	ReopenWindow time.Duration `yaml:"reopen_window"`
	// AllowedLateness is how far behind the newest event time an event may
	// arrive and still be placed at its own time.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// MaxIdle bounds the state of an incident whose alerts never resolve:
	// an open incident with no new member event for MaxIdle of event time
	// is closed (UpdateClosed) with its alerts still firing. Default
	// MaxSpan + ResolveHoldDown.
	MaxIdle time.Duration `yaml:"max_idle"`

	// The daemon's settings around the engine (the engine reads neither).

	// PartitionBy is how the first stage keys events onto the keyed topic,
	// so that events that may form one incident reach one instance:
	// "component" (the CMDB connected component of the event's CI) or
	// "attribute:NAME" (a CI attribute such as site; CIs without it fall
	// back to their component). Events without a CI are keyed by GroupBy.
	PartitionBy string `yaml:"partition_by"`
	// IdleAdvance: a partition that receives no event for this long (wall
	// clock) moves its event-time clock on with the wall clock, so hold-downs
	// and windows end without traffic. Live processing equals replay as
	// long as no such gap occurs.
	IdleAdvance time.Duration `yaml:"idle_advance"`
}

// The defaults.
const (
	DefaultWindow          = 5 * time.Minute
	DefaultMaxSpan         = time.Hour
	DefaultMaxHops         = 3
	DefaultSharedMaxHops   = 2
	DefaultResolveHoldDown = 5 * time.Minute
	DefaultReopenWindow    = 30 * time.Minute
	DefaultAllowedLateness = time.Minute
	DefaultPartitionBy     = "component"
	DefaultIdleAdvance     = 30 * time.Second
)

// DefaultGroupBy is the label set that groups unbound events by default.
var DefaultGroupBy = []string{"cluster", "service", "job"}

// DefaultConfig returns a Config with every default set.
func DefaultConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxSpan == 0 {
		c.MaxSpan = DefaultMaxSpan
	}
	if c.MaxHops == 0 {
		c.MaxHops = DefaultMaxHops
	}
	if c.SharedMaxHops == 0 {
		c.SharedMaxHops = DefaultSharedMaxHops
	}
	if c.GroupBy == nil {
		c.GroupBy = append([]string(nil), DefaultGroupBy...)
	}
	if c.ResolveHoldDown == 0 {
		c.ResolveHoldDown = DefaultResolveHoldDown
	}
	if c.ReopenWindow == 0 {
		c.ReopenWindow = DefaultReopenWindow
	}
	if c.AllowedLateness == 0 {
		c.AllowedLateness = DefaultAllowedLateness
	}
	if c.MaxIdle == 0 {
		c.MaxIdle = c.MaxSpan + c.ResolveHoldDown
	}
	if c.PartitionBy == "" {
		c.PartitionBy = DefaultPartitionBy
	}
	if c.IdleAdvance == 0 {
		c.IdleAdvance = DefaultIdleAdvance
	}
}

// PartitionAttribute returns the CI attribute of PartitionBy
// "attribute:NAME", or "" for "component".
func (c *Config) PartitionAttribute() string {
	name, _ := strings.CutPrefix(c.PartitionBy, "attribute:")
	if name == c.PartitionBy {
		return ""
	}
	return name
}

// ErrConfig is wrapped by every error of Validate.
var ErrConfig = errors.New("invalid correlate config")

// Validate checks c after SetDefaults; errors name the field as
// correlate.<field>.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: correlate.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.Window <= 0 {
		bad("window", "must be positive, got %s", c.Window)
	}
	if c.MaxSpan < c.Window {
		bad("max_span", "must be at least correlate.window (%s), got %s", c.Window, c.MaxSpan)
	}
	if c.MaxHops < 1 || c.MaxHops > 16 {
		bad("max_hops", "must be 1 to 16, got %d", c.MaxHops)
	}
	if c.SharedMaxHops < 2 || c.SharedMaxHops > 2*c.MaxHops {
		bad("shared_max_hops", "must be 2 to twice correlate.max_hops, got %d", c.SharedMaxHops)
	}
	for i, l := range c.GroupBy {
		if l == "" {
			bad(fmt.Sprintf("group_by[%d]", i), "empty label name")
		}
	}
	if c.ResolveHoldDown < 0 {
		bad("resolve_hold_down", "must not be negative, got %s", c.ResolveHoldDown)
	}
	if c.ReopenWindow < 0 {
		bad("reopen_window", "must not be negative, got %s", c.ReopenWindow)
	}
	if c.AllowedLateness < 0 || c.AllowedLateness > c.Window {
		bad("allowed_lateness", "must be 0 to correlate.window (%s), got %s", c.Window, c.AllowedLateness)
	}
	if c.PartitionBy != "component" && (!strings.HasPrefix(c.PartitionBy, "attribute:") || c.PartitionAttribute() == "") {
		bad("partition_by", "%q is not component or attribute:NAME", c.PartitionBy)
	}
	if c.IdleAdvance < time.Second {
		bad("idle_advance", "must be at least 1s, got %s", c.IdleAdvance)
	}
	if c.MaxIdle < c.Window {
		bad("max_idle", "must be at least correlate.window (%s), got %s", c.Window, c.MaxIdle)
	}
	return errors.Join(errs...)
}
