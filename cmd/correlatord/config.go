package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/common/config"
	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/incidents/notify"
	"github.com/correlatord/correlatord/ingest"
	"github.com/correlatord/correlatord/ingest/logs"
	"github.com/correlatord/correlatord/rules"
)

const defaultListenAddress = "127.0.0.1:9470"

// Config is the whole configuration file. Every field has a default, so an
// empty file (or none) is a valid configuration; docs/CONFIG.md lists them and
// examples/correlatord.yml shows every field.
type Config struct {
	// DataDir holds the daemon's local state. Default "data".
	DataDir string `yaml:"data_dir"`
	// ShutdownDelay is how long /readyz reports 503 before the daemon stops
	// taking work on SIGTERM, so load balancers move traffic away first.
	// Default 0s.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// ShutdownTimeout bounds the final flush and commit. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Ingest     ingest.PolicyConfig `yaml:"ingest"`
	HTTP       ingest.HTTPConfig   `yaml:"http"`
	Kafka      ingest.KafkaConfig  `yaml:"kafka"`
	ClickHouse analytics.Config    `yaml:"clickhouse"`
	CMDB       cmdb.Config         `yaml:"cmdb"`
	Rules      rules.Config        `yaml:"rules"`
	Correlate  correlate.Config    `yaml:"correlate"`
	Incidents  incidents.Config    `yaml:"incidents"`
	Notify     notify.Config       `yaml:"notify"`
	Logs       logs.Config         `yaml:"logs"`
}

// SetDefaults fills every field left empty with its documented default.
func (c *Config) SetDefaults() {
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	c.Ingest.SetDefaults()
	c.HTTP.SetDefaults()
	if c.Kafka.Enabled() {
		c.Kafka.SetDefaults()
	}
	if c.ClickHouse.SpillDir == "" {
		c.ClickHouse.SpillDir = filepath.Join(c.DataDir, "spill")
	}
	c.ClickHouse.SetDefaults()
	c.CMDB.SetDefaults()
	c.Rules.SetDefaults()
	c.Correlate.SetDefaults()
	c.Incidents.SetDefaults()
	if c.Notify.Outbox.Type == "" {
		// With Kafka the outbox is a topic every instance shares; without
		// it a file in the data directory.
		c.Notify.Outbox.Type = "file"
		if c.Kafka.Enabled() {
			c.Notify.Outbox.Type = "kafka"
		}
	}
	if c.Notify.Outbox.Type == "file" && c.Notify.Outbox.DataDir == "" {
		c.Notify.Outbox.DataDir = filepath.Join(c.DataDir, "notify")
	}
	c.Notify.SetDefaults()
	c.Logs.SetDefaults()
}

// Validate reports every wrong field at once, each named by its YAML path.
func (c *Config) Validate() error {
	var errs []error
	if c.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("shutdown_delay: must be >= 0, got %s", c.ShutdownDelay))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: must be > 0, got %s", c.ShutdownTimeout))
	}
	errs = append(errs, c.Ingest.Validate(), c.HTTP.Validate())
	if c.Kafka.Enabled() {
		errs = append(errs, c.Kafka.Validate())
	}
	if c.ClickHouse.Enabled() {
		errs = append(errs, c.ClickHouse.Validate())
	}
	if c.CMDB.Enabled() {
		errs = append(errs, c.CMDB.Validate())
	}
	errs = append(errs, c.Rules.Validate(), c.Correlate.Validate(), c.Incidents.Validate(c.Correlate.ReopenWindow))
	if len(c.Kafka.LogTopics) > 0 {
		errs = append(errs, c.Logs.Validate())
	}
	if c.Notify.Enabled() {
		errs = append(errs, c.Notify.Validate())
		if c.Notify.Outbox.Type == "kafka" && !c.Kafka.Enabled() {
			errs = append(errs, fmt.Errorf("notify.outbox.type: kafka needs kafka.brokers"))
		}
	}
	return errors.Join(errs...)
}

// eventDefaults are what ingest fills into events that leave fields out.
func (c *Config) eventDefaults() event.Defaults {
	return event.Defaults{Source: event.DefaultDefaults.Source, Severity: event.Severity(c.Ingest.DefaultSeverity)}
}

func (c *Config) policy() ingest.Policy {
	return ingest.Policy{MaxEventAge: c.Ingest.MaxEventAge, MaxFutureSkew: c.Ingest.MaxFutureSkew}
}

func (c *Config) limits() ingest.Limits {
	return ingest.Limits{MaxLabels: c.Ingest.MaxLabels, MaxLabelBytes: c.Ingest.MaxLabelBytes}
}

// parseConfig decodes YAML strictly: unknown fields are errors, so a typo in
// a key is reported instead of silently falling back to a default.
func parseConfig(data []byte) (*Config, error) {
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// A second document would be silently ignored otherwise.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document; the configuration is one document")
	}
	cfg.SetDefaults()
	cfg.secretsFromEnv(os.Getenv)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// secretsFromEnv fills the ClickHouse password from the environment when the
// file gives neither a password nor a password file, so a container can pass
// it without writing it into the configuration. (The Kafka SASL password and
// the ingest token are resolved where they are used, from the same kind of
// variables.)
func (c *Config) secretsFromEnv(getenv func(string) string) {
	if c.ClickHouse.Password == "" && c.ClickHouse.PasswordFile == "" {
		c.ClickHouse.Password = config.Secret(getenv("CORRELATOR_CLICKHOUSE_PASSWORD"))
	}
}

// loadConfig reads path, or returns the embedded defaults when path is
// empty. Secrets left out of the file are taken from the environment.
func loadConfig(path string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	cfg, err := parseConfig(data)
	if err != nil {
		if path == "" {
			path = "embedded defaults"
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}
