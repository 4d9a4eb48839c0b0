package rules

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.WarningPersist != 10*time.Minute || c.Flapping.Threshold != 4 || c.Flapping.Stable != c.Flapping.Window ||
		c.State.MaxAlerts != DefaultMaxAlerts || c.Changes.Retention != 30*24*time.Hour || c.PollInterval != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigYAMLIsStrict(t *testing.T) {
	var doc struct {
		Rules Config `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte("rules:\n  files: [a.yml]\n  flaping: {threshold: 3}\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err == nil || !strings.Contains(err.Error(), "flaping") {
		t.Errorf("unknown key accepted: %v", err)
	}
	dec = yaml.NewDecoder(bytes.NewReader([]byte("rules:\n  files: [a.yml]\n  warning_persist: 5m\n  flapping: {threshold: 3, window: 5m}\n  changes: {open_incidents: true}\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	doc.Rules.SetDefaults()
	if doc.Rules.WarningPersist != 5*time.Minute || doc.Rules.Flapping.Stable != 5*time.Minute || !doc.Rules.Changes.OpenIncidents {
		t.Errorf("%+v", doc.Rules)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		edit  func(*Config)
		field string
	}{
		{func(c *Config) { c.Files = []string{""} }, "rules.files[0]"},
		{func(c *Config) { c.PollInterval = time.Millisecond }, "rules.poll_interval"},
		{func(c *Config) { c.WarningPersist = -1 }, "rules.warning_persist"},
		{func(c *Config) { c.Flapping.Threshold = 65 }, "rules.flapping.threshold"},
		{func(c *Config) { c.Flapping.Window = -1 }, "rules.flapping.window"},
		{func(c *Config) { c.Flapping.Stable = -1 }, "rules.flapping.stable"},
		{func(c *Config) { c.Changes.Retention = -1 }, "rules.changes.retention"},
		{func(c *Config) { c.Changes.MaxRecords = -1 }, "rules.changes.max_records"},
		{func(c *Config) { c.Inhibition.MaxSources = -1 }, "rules.inhibition.max_sources"},
		{func(c *Config) { c.State.MaxAlerts = -1 }, "rules.state.max_alerts"},
		{func(c *Config) { c.State.FiringTTL = -1 }, "rules.state.firing_ttl"},
		{func(c *Config) { c.State.ResolvedTTL = time.Minute }, "rules.state.resolved_ttl"},
	}
	for _, tc := range cases {
		var c Config
		c.SetDefaults()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
}
