package cmdb

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"go.uber.org/zap"
)

// configPath is the YAML key the daemon's configuration nests Config under;
// Validate names fields by their full path from it.
const configPath = "cmdb"

// Defaults of Config.
const (
	DefaultFilePollInterval = 30 * time.Second
	DefaultURLPollInterval  = 5 * time.Minute
)

// Config configures where the CMDB comes from. It is decoded from the
// `cmdb:` key of the daemon's YAML configuration (unknown keys rejected). A
// zero field means its default: call SetDefaults, then Validate. Neither
// file nor url: no CMDB, every event stays unbound.
type Config struct {
	// File is a CMDB file, polled for changes every PollInterval and
	// reloaded on SIGHUP. Mutually exclusive with URL.
	File string `yaml:"file"`
	// URL is an http(s) URL fetched every PollInterval and on SIGHUP.
	URL string `yaml:"url"`
	// Format of the document: native (this package's YAML/JSON, the
	// default), servicenow, backstage or netbox.
	Format string `yaml:"format"`
	// PollInterval is how often the source is checked. Default 30s for a
	// file, 5m for a URL; "0s" after defaults is not allowed (use a long
	// interval and SIGHUP instead).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout bounds one fetch of URL. Default 1m.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBytes bounds the body fetched from URL. Default 1 GiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// HTTPConfig configures the client for URL: TLS, basic or bearer
	// authentication, OAuth2, proxy (Prometheus' http_config).
	HTTPConfig *config.HTTPClientConfig `yaml:"http_config"`
	// BindLabels are the labels tried, in order, to bind an event to a CI.
	// Default instance, host, hostname, node, pod, service, job.
	BindLabels []string `yaml:"bind_labels"`
}

// Enabled reports whether a CMDB source is configured.
func (c *Config) Enabled() bool { return c.File != "" || c.URL != "" }

// SetDefaults fills every field left empty with its documented default.
func (c *Config) SetDefaults() {
	if c.Format == "" {
		c.Format = FormatNative
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultFilePollInterval
		if c.URL != "" {
			c.PollInterval = DefaultURLPollInterval
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultURLTimeout
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultURLMaxBytes
	}
	if c.BindLabels == nil {
		c.BindLabels = append([]string(nil), DefaultBindLabels...)
	}
	if c.URL != "" && c.HTTPConfig == nil {
		hc := config.DefaultHTTPClientConfig
		c.HTTPConfig = &hc
	}
}

// Validate reports every wrong field at once, each named by its YAML path
// (cmdb.poll_interval: ...). Format names are checked against the native
// format and Importers.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", configPath, field, fmt.Sprintf(format, args...)))
	}
	if c.File != "" && c.URL != "" {
		bad("url", "set either file or url, not both")
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil:
			bad("url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad("url", "%q is not an http:// or https:// URL", u.Redacted())
		}
	}
	if _, err := LookupFormat(c.Format, nil); err != nil {
		bad("format", "%v", err)
	}
	if c.PollInterval < time.Second {
		bad("poll_interval", "must be at least 1s, got %s", c.PollInterval)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be > 0, got %s", c.Timeout)
	}
	if c.MaxBytes <= 0 {
		bad("max_bytes", "must be > 0, got %d", c.MaxBytes)
	}
	for i, l := range c.BindLabels {
		if l == "" {
			bad(fmt.Sprintf("bind_labels[%d]", i), "empty label name")
		}
	}
	if c.HTTPConfig != nil {
		if c.URL == "" {
			bad("http_config", "set without url")
		} else if err := c.HTTPConfig.Validate(); err != nil {
			bad("http_config", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// NewSource returns the configured source: a *FileSource or a *URLSource.
// formats may add or override decoders (nil is fine).
func (c *Config) NewSource(formats Formats) (Source, error) {
	switch {
	case c.File != "":
		return NewFileSource(c.File, c.Format, formats)
	case c.URL != "":
		var client = c.HTTPConfig
		if client == nil {
			hc := config.DefaultHTTPClientConfig
			client = &hc
		}
		hc, err := config.NewClientFromConfig(*client, "cmdb")
		if err != nil {
			return nil, fmt.Errorf("%s.http_config: %w", configPath, err)
		}
		return NewURLSource(URLOptions{URL: c.URL, Format: c.Format, Formats: formats, Client: hc, Timeout: c.Timeout, MaxBytes: c.MaxBytes})
	}
	return nil, fmt.Errorf("%s: neither file nor url is set", configPath)
}

// NewStore returns a Store for this configuration (see NewSource).
func (c *Config) NewStore(formats Formats, reg prometheus.Registerer, log *zap.Logger) (*Store, error) {
	src, err := c.NewSource(formats)
	if err != nil {
		return nil, err
	}
	return NewStore(StoreOptions{
		Source:       src,
		PollInterval: c.PollInterval,
		Build:        BuildOptions{BindLabels: c.BindLabels},
		Registerer:   reg,
		Logger:       log,
	})
}
