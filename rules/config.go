package rules

import (
	"errors"
	"fmt"
	"time"
)

// configPath is the YAML key the daemon's configuration nests Config under;
// Validate names fields by their full path from it.
const configPath = "rules"

// Defaults of Config.
const (
	DefaultPollInterval      = 30 * time.Second
	DefaultWarningPersist    = 10 * time.Minute
	DefaultFlappingThreshold = 4
	DefaultFlappingWindow    = 15 * time.Minute
	DefaultMaxAlerts         = 200000
	DefaultFiringTTL         = 24 * time.Hour
	DefaultResolvedTTL       = time.Hour
	DefaultMaxInhibitSources = 10000
)

// Config configures the rules stage. It is decoded from the `rules:` key of
// the daemon's YAML configuration (unknown keys rejected). A zero field
// means its default: call SetDefaults, then Validate. Booleans are named so
// that false is the default.
//
// There is deliberately no UnmarshalYAML applying defaults: yaml.v3 drops
// KnownFields(true) inside a custom unmarshaler (Node.Decode starts a new,
// lenient decoder), and rejecting unknown keys matters more.
type Config struct {
	// Files are rule files and directories (their *.yml and *.yaml files,
	// sorted), loaded in order. None: the severity defaults decide.
	Files []string `yaml:"files"`
	// PollInterval is how often the rule files (and the change file) are
	// checked for a change. Default 30s. SIGHUP reloads at once.
	PollInterval time.Duration `yaml:"poll_interval"`
	// WarningPersist is how long a warning-class alert must keep firing
	// before it becomes an incident, unless its rule says otherwise.
	// Default 10m.
	WarningPersist time.Duration  `yaml:"warning_persist"`
	Dedup          DedupConfig    `yaml:"dedup"`
	Flapping       FlappingConfig `yaml:"flapping"`
	Changes        ChangesConfig  `yaml:"changes"`
	Inhibition     InhibitConfig  `yaml:"inhibition"`
	State          StateConfig    `yaml:"state"`
}

// DedupConfig configures deduplication.
type DedupConfig struct {
	// Disabled passes every firing delivery on to correlation.
	Disabled bool `yaml:"disabled"`
}

// FlappingConfig configures flap detection.
type FlappingConfig struct {
	// Disabled turns flap detection off.
	Disabled bool `yaml:"disabled"`
	// Threshold: an alert that changes state more than Threshold times
	// within Window is flapping. Default 4, at most 64.
	Threshold int `yaml:"threshold"`
	// Window over which state changes are counted. Default 15m.
	Window time.Duration `yaml:"window"`
	// Stable is how long a flapping alert must not change state to be
	// stable again; its final state is then passed on. Default Window.
	Stable time.Duration `yaml:"stable"`
}

// ChangesConfig configures change windows.
type ChangesConfig struct {
	// File is a YAML or JSON list of change records, loaded with the rule
	// files; records also arrive from the change topic (cmd wiring).
	File string `yaml:"file"`
	// OpenIncidents lets events during a change open incidents; they are
	// still tagged with the change id. Default false: they are recorded
	// only.
	OpenIncidents bool `yaml:"open_incidents"`
	// Retention: change records that ended longer ago are expired; kept
	// that long so incidents can flag changes that may have caused them.
	// Default 30 days (720h).
	Retention time.Duration `yaml:"retention"`
	// MaxRecords bounds the change store. Default 100000.
	MaxRecords int `yaml:"max_records"`
}

// InhibitConfig configures inhibition.
type InhibitConfig struct {
	// MaxSources bounds the inhibiting alerts tracked per inhibit rule.
	// Default 10000.
	MaxSources int `yaml:"max_sources"`
}

// StateConfig bounds the per-alert state (dedup, flapping, pending
// warnings, what was passed on).
type StateConfig struct {
	// MaxAlerts bounds the alerts tracked. Past it the stale entries are
	// evicted first, then arbitrary ones; an evicted alert's resolution is
	// still passed on (an unknown resolution always is). Default 200000.
	MaxAlerts int `yaml:"max_alerts"`
	// FiringTTL: a firing alert not seen for this long is forgotten.
	// Longer than the senders' resend interval (Alertmanager's
	// repeat_interval, 4h by default). Default 24h.
	FiringTTL time.Duration `yaml:"firing_ttl"`
	// ResolvedTTL: a resolved alert is remembered this long, for flap
	// detection. Default 1h, at least the flapping window.
	ResolvedTTL time.Duration `yaml:"resolved_ttl"`
}

// SetDefaults fills every field left zero with its documented default.
func (c *Config) SetDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.WarningPersist == 0 {
		c.WarningPersist = DefaultWarningPersist
	}
	if c.Flapping.Threshold == 0 {
		c.Flapping.Threshold = DefaultFlappingThreshold
	}
	if c.Flapping.Window == 0 {
		c.Flapping.Window = DefaultFlappingWindow
	}
	if c.Flapping.Stable == 0 {
		c.Flapping.Stable = c.Flapping.Window
	}
	if c.Changes.Retention == 0 {
		c.Changes.Retention = DefaultChangeRetention
	}
	if c.Changes.MaxRecords == 0 {
		c.Changes.MaxRecords = DefaultChangeMaxRecords
	}
	if c.Inhibition.MaxSources == 0 {
		c.Inhibition.MaxSources = DefaultMaxInhibitSources
	}
	if c.State.MaxAlerts == 0 {
		c.State.MaxAlerts = DefaultMaxAlerts
	}
	if c.State.FiringTTL == 0 {
		c.State.FiringTTL = DefaultFiringTTL
	}
	if c.State.ResolvedTTL == 0 {
		c.State.ResolvedTTL = max(DefaultResolvedTTL, c.Flapping.Window)
	}
}

// Validate reports every wrong field at once, each named by its YAML path
// (rules.flapping.window: ...). Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", configPath, field, fmt.Sprintf(format, args...)))
	}
	for i, f := range c.Files {
		if f == "" {
			bad(fmt.Sprintf("files[%d]", i), "empty path")
		}
	}
	if c.PollInterval < time.Second {
		bad("poll_interval", "must be at least 1s, got %s", c.PollInterval)
	}
	if c.WarningPersist <= 0 {
		bad("warning_persist", "must be > 0, got %s", c.WarningPersist)
	}
	if c.Flapping.Threshold < 1 || c.Flapping.Threshold > 64 {
		bad("flapping.threshold", "must be between 1 and 64, got %d", c.Flapping.Threshold)
	}
	if c.Flapping.Window <= 0 {
		bad("flapping.window", "must be > 0, got %s", c.Flapping.Window)
	}
	if c.Flapping.Stable <= 0 {
		bad("flapping.stable", "must be > 0, got %s", c.Flapping.Stable)
	}
	if c.Changes.Retention <= 0 {
		bad("changes.retention", "must be > 0, got %s", c.Changes.Retention)
	}
	if c.Changes.MaxRecords <= 0 {
		bad("changes.max_records", "must be > 0, got %d", c.Changes.MaxRecords)
	}
	if c.Inhibition.MaxSources <= 0 {
		bad("inhibition.max_sources", "must be > 0, got %d", c.Inhibition.MaxSources)
	}
	if c.State.MaxAlerts <= 0 {
		bad("state.max_alerts", "must be > 0, got %d", c.State.MaxAlerts)
	}
	if c.State.FiringTTL <= 0 {
		bad("state.firing_ttl", "must be > 0, got %s", c.State.FiringTTL)
	}
	if c.State.ResolvedTTL <= 0 {
		bad("state.resolved_ttl", "must be > 0, got %s", c.State.ResolvedTTL)
	} else if !c.Flapping.Disabled && c.State.ResolvedTTL < c.Flapping.Window {
		bad("state.resolved_ttl", "%s is shorter than flapping.window %s: resolved alerts would be forgotten before their flapping is counted", c.State.ResolvedTTL, c.Flapping.Window)
	}
	return errors.Join(errs...)
}
