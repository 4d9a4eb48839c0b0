package notify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/config"
)

// configPath is the YAML key the daemon's configuration nests Config under;
// Validate names fields by their full path from it.
const configPath = "notify"

// Target types.
const (
	TypeWebhook    = "webhook"
	TypeServiceNow = "servicenow"
)

// Outbox types.
const (
	OutboxFile  = "file"
	OutboxKafka = "kafka"
)

// Defaults.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultInitialBackoff  = time.Second
	DefaultMaxBackoff      = 5 * time.Minute
	DefaultMaxAge          = 24 * time.Hour
	DefaultServiceNowTable = "incident"
	DefaultOutboxTopic     = "correlator.notifications"
	DefaultOutboxGroupID   = "correlatord-notify"
	DefaultMaxPending      = 100000
)

// Config configures outbound notifications. It is decoded from the
// `notify:` key of the daemon's YAML configuration (unknown keys rejected
// by the loader's KnownFields). A zero field means its default: call
// SetDefaults, then Validate. No targets: notifications are off.
type Config struct {
	// Targets receive the notifications their filters pass.
	Targets []TargetConfig `yaml:"targets"`
	// Retry says how failed deliveries are retried.
	Retry RetryConfig `yaml:"retry"`
	// Outbox says where notifications wait for delivery.
	Outbox OutboxConfig `yaml:"outbox"`
}

// RetryConfig is the dispatcher's retry policy: exponential backoff from
// InitialBackoff, doubling up to MaxBackoff, with jitter, until MaxAge after
// the notification was enqueued.
type RetryConfig struct {
	// InitialBackoff is the wait after the first failed attempt. Default 1s.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the wait between attempts (a receiver's Retry-After
	// may ask for longer). Default 5m.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxAge is how long after enqueueing a notification is given up on
	// for a target that keeps failing. Default 24h.
	MaxAge time.Duration `yaml:"max_age"`
}

// OutboxConfig selects the outbox. cmd builds the Kafka writer and reader
// from the daemon's kafka settings with Topic and GroupID.
type OutboxConfig struct {
	// Type is "kafka" or "file". Default kafka when the daemon has Kafka,
	// else file: cmd decides, this package only checks the value.
	Type string `yaml:"type"`
	// DataDir holds the file outbox (notify-outbox.db). Required for type
	// file.
	DataDir string `yaml:"data_dir"`
	// Topic is the Kafka outbox topic. Default correlator.notifications.
	Topic string `yaml:"topic"`
	// GroupID is the consumer group of the Kafka outbox runner. Default
	// correlatord-notify.
	GroupID string `yaml:"group_id"`
	// MaxPending bounds the file outbox; beyond it the oldest pending
	// notification is dropped and counted. Default 100000.
	MaxPending int `yaml:"max_pending"`
}

// TargetConfig configures one receiver.
type TargetConfig struct {
	// Name identifies the target in metrics (label target) and logs.
	// Letters, digits, '_' and '-'; unique.
	Name string `yaml:"name"`
	// Type is webhook or servicenow.
	Type string `yaml:"type"`
	// URL is the webhook's URL, or the ServiceNow instance URL
	// (https://acme.service-now.com).
	URL string `yaml:"url"`
	// Secret signs webhook bodies (X-Correlatord-Signature). Or SecretFile.
	Secret     config.Secret `yaml:"secret"`
	SecretFile string        `yaml:"secret_file"`
	// Username and Password (or PasswordFile): basic authentication.
	Username     string        `yaml:"username"`
	Password     config.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	// BearerToken (or BearerTokenFile): "Authorization: Bearer" instead.
	BearerToken     config.Secret `yaml:"bearer_token"`
	BearerTokenFile string        `yaml:"bearer_token_file"`
	// Headers are added to every request; they may carry credentials and
	// print as <secret>.
	Headers map[string]config.Secret `yaml:"headers"`
	// Table is the ServiceNow table. Default incident.
	Table string `yaml:"table"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// TLSConfig for the receiver's connection (custom CA, client cert).
	TLSConfig *config.TLSConfig `yaml:"tls_config"`
	// Kinds passes only these kinds; empty passes all.
	Kinds []Kind `yaml:"kinds"`
	// MinPriority, e.g. P3, passes only P1..P3; empty passes all. Beware
	// with servicenow: an incident whose priority drops below it before
	// it resolves keeps its record open.
	MinPriority string `yaml:"min_priority"`
}

// Enabled reports whether any target is configured.
func (c *Config) Enabled() bool { return len(c.Targets) > 0 }

// SetDefaults fills every field left empty with its documented default.
func (c *Config) SetDefaults() {
	if c.Retry.InitialBackoff == 0 {
		c.Retry.InitialBackoff = DefaultInitialBackoff
	}
	if c.Retry.MaxBackoff == 0 {
		c.Retry.MaxBackoff = DefaultMaxBackoff
	}
	if c.Retry.MaxAge == 0 {
		c.Retry.MaxAge = DefaultMaxAge
	}
	if c.Outbox.Topic == "" {
		c.Outbox.Topic = DefaultOutboxTopic
	}
	if c.Outbox.GroupID == "" {
		c.Outbox.GroupID = DefaultOutboxGroupID
	}
	if c.Outbox.MaxPending == 0 {
		c.Outbox.MaxPending = DefaultMaxPending
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Timeout == 0 {
			t.Timeout = DefaultTimeout
		}
		if t.Type == TypeServiceNow && t.Table == "" {
			t.Table = DefaultServiceNowTable
		}
	}
}

// reservedHeaders are set by the targets and cannot be configured.
var reservedHeaders = []string{"Content-Type", "User-Agent", HeaderSignature, HeaderEvent, HeaderIdempotencyKey}

// Validate reports every wrong field at once, each named by its YAML path
// (notify.targets[1].url: ...). Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", configPath, field, fmt.Sprintf(format, args...)))
	}
	r := c.Retry
	if r.InitialBackoff <= 0 {
		bad("retry.initial_backoff", "must be > 0, got %s", r.InitialBackoff)
	}
	if r.MaxBackoff < r.InitialBackoff {
		bad("retry.max_backoff", "must be at least initial_backoff (%s), got %s", r.InitialBackoff, r.MaxBackoff)
	}
	if r.MaxAge < r.MaxBackoff {
		bad("retry.max_age", "must be at least max_backoff (%s), got %s", r.MaxBackoff, r.MaxAge)
	}
	switch c.Outbox.Type {
	case "", OutboxKafka:
	case OutboxFile:
		if c.Outbox.DataDir == "" {
			bad("outbox.data_dir", "must be set for outbox type file")
		}
	default:
		bad("outbox.type", "%q is not one of kafka, file", c.Outbox.Type)
	}
	if err := validTopic(c.Outbox.Topic); err != nil {
		bad("outbox.topic", "%v", err)
	}
	if c.Outbox.GroupID == "" {
		bad("outbox.group_id", "must not be empty")
	}
	if c.Outbox.MaxPending < 1 {
		bad("outbox.max_pending", "must be > 0, got %d", c.Outbox.MaxPending)
	}
	seen := make(map[string]int)
	for i := range c.Targets {
		t := &c.Targets[i]
		tb := func(field, format string, args ...any) {
			bad(fmt.Sprintf("targets[%d].%s", i, field), format, args...)
		}
		switch {
		case t.Name == "":
			tb("name", "must not be empty")
		case !validName(t.Name):
			tb("name", "%q may hold only letters, digits, '_' and '-'", t.Name)
		default:
			if j, dup := seen[t.Name]; dup {
				tb("name", "%q is also the name of targets[%d]", t.Name, j)
			}
			seen[t.Name] = i
		}
		switch t.Type {
		case TypeWebhook, TypeServiceNow:
		case "":
			tb("type", "must be set to webhook or servicenow")
		default:
			tb("type", "%q is not one of webhook, servicenow", t.Type)
		}
		if u, err := url.Parse(t.URL); t.URL == "" {
			tb("url", "must not be empty")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL may carry a credential (Slack): show scheme and host only.
			tb("url", "%q is not an http:// or https:// URL", redactURL(t.URL))
		} else if t.Type == TypeServiceNow && (u.RawQuery != "" || u.Fragment != "") {
			tb("url", "the instance URL takes no query or fragment")
		}
		if t.Secret != "" && t.SecretFile != "" {
			tb("secret_file", "set either secret or secret_file, not both")
		}
		if t.Type == TypeServiceNow && (t.Secret != "" || t.SecretFile != "") {
			tb("secret", "is for webhooks; servicenow authenticates with username/password or bearer_token")
		}
		if t.Password != "" && t.PasswordFile != "" {
			tb("password_file", "set either password or password_file, not both")
		}
		if t.BearerToken != "" && t.BearerTokenFile != "" {
			tb("bearer_token_file", "set either bearer_token or bearer_token_file, not both")
		}
		hasBasic := t.Username != "" || t.Password != "" || t.PasswordFile != ""
		hasBearer := t.BearerToken != "" || t.BearerTokenFile != ""
		if hasBasic && t.Username == "" {
			tb("username", "must be set with password or password_file")
		}
		if hasBasic && hasBearer {
			tb("bearer_token", "set either username/password or bearer_token, not both")
		}
		if t.Type == TypeServiceNow && !hasBasic && !hasBearer {
			tb("username", "servicenow needs username and password (or password_file), or bearer_token")
		}
		for _, h := range sortedKeys(t.Headers) {
			canon := textproto.CanonicalMIMEHeaderKey(h)
			switch {
			case !validHeaderName(h):
				tb("headers", "%q is not a valid header name", h)
			case slices.Contains(reservedHeaders, canon):
				tb("headers", "%q is set by correlatord and cannot be configured", h)
			case canon == "Authorization" && (hasBasic || hasBearer):
				tb("headers", "Authorization is set by username/password or bearer_token; remove one")
			}
		}
		if t.Table != "" && t.Type != TypeServiceNow {
			tb("table", "is for servicenow targets")
		}
		if t.Table != "" && !validTable(t.Table) {
			tb("table", "%q is not a table name (lowercase letters, digits, '_')", t.Table)
		}
		if t.Timeout <= 0 {
			tb("timeout", "must be > 0, got %s", t.Timeout)
		}
		if t.TLSConfig != nil {
			if err := t.TLSConfig.Validate(); err != nil {
				tb("tls_config", "%v", err)
			}
		}
		for j, k := range t.Kinds {
			if !k.Valid() {
				tb(fmt.Sprintf("kinds[%d]", j), "%q is not one of created, updated, escalated, resolved, reopened, closed", k)
			} else if slices.Index(t.Kinds, k) < j {
				tb(fmt.Sprintf("kinds[%d]", j), "%q is listed twice", k)
			}
		}
		if t.MinPriority != "" && priorityRank(t.MinPriority) == 0 {
			tb("min_priority", "%q is not one of P1..P5", t.MinPriority)
		}
	}
	return errors.Join(errs...)
}

// Filter returns the target's filter.
func (t *TargetConfig) Filter() Filter {
	return Filter{Kinds: slices.Clone(t.Kinds), MinPriority: t.MinPriority}
}

// RouteOptions are what NewRoutes needs besides the configuration.
type RouteOptions struct {
	// Now reads the clock for Retry-After dates. Default time.Now.
	Now func() time.Time
	// Transport, when set, replaces the HTTP transport of every target
	// (tests); tls_config is then ignored.
	Transport http.RoundTripper
}

// NewRoutes builds a Route per configured target, reading secret files.
// Call SetDefaults and Validate first. Errors name the field but never a
// secret.
func NewRoutes(c *Config, opts RouteOptions) ([]Route, error) {
	routes := make([]Route, 0, len(c.Targets))
	for i := range c.Targets {
		t := &c.Targets[i]
		field := fmt.Sprintf("%s.targets[%d]", configPath, i)
		tgt, err := newTarget(t, field, opts)
		if err != nil {
			return nil, err
		}
		routes = append(routes, Route{Target: tgt, Filter: t.Filter()})
	}
	return routes, nil
}

func newTarget(t *TargetConfig, field string, opts RouteOptions) (Target, error) {
	secret, err := resolveSecret(t.Secret, t.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("%s.secret_file: %w", field, err)
	}
	password, err := resolveSecret(t.Password, t.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("%s.password_file: %w", field, err)
	}
	token, err := resolveSecret(t.BearerToken, t.BearerTokenFile)
	if err != nil {
		return nil, fmt.Errorf("%s.bearer_token_file: %w", field, err)
	}
	transport := opts.Transport
	if transport == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if t.TLSConfig != nil {
			tc, err := config.NewTLSConfig(t.TLSConfig)
			if err != nil {
				return nil, fmt.Errorf("%s.tls_config: %w", field, err)
			}
			tr.TLSClientConfig = tc
		}
		transport = tr
	}
	client := newHTTPClient(transport)
	switch t.Type {
	case TypeWebhook:
		headers := make(map[string]string, len(t.Headers)+1)
		for k, v := range t.Headers {
			headers[k] = string(v)
		}
		switch {
		case token != "":
			headers["Authorization"] = "Bearer " + token
		case t.Username != "":
			headers["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(t.Username+":"+password))
		}
		return NewWebhook(WebhookOptions{Name: t.Name, URL: t.URL, Secret: secret, Headers: headers,
			Timeout: t.Timeout, Client: client, Now: opts.Now})
	case TypeServiceNow:
		return NewServiceNow(ServiceNowOptions{Name: t.Name, BaseURL: t.URL, Table: t.Table,
			Username: t.Username, Password: password, BearerToken: token,
			Timeout: t.Timeout, Client: client, Now: opts.Now})
	}
	return nil, fmt.Errorf("%s.type: %q is not one of webhook, servicenow", field, t.Type)
}

// resolveSecret picks an inline secret, else the content of file (trailing
// newline trimmed). It names the file on error, never the secret.
func resolveSecret(inline config.Secret, file string) (string, error) {
	if inline != "" {
		return string(inline), nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

func validTable(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return s != "" && len(s) <= 80
}

// validHeaderName accepts RFC 9110 tokens.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			continue
		}
		return false
	}
	return true
}

func validTopic(t string) error {
	if t == "" {
		return errors.New("must not be empty")
	}
	if len(t) > 249 {
		return fmt.Errorf("%q is longer than Kafka's 249 characters", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q has %q; Kafka topics take only letters, digits, '.', '_' and '-'", t, r)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
