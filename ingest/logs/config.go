package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/ingest/logtemplate"
)

// configPath is the YAML key the daemon's configuration nests Config under;
// Validate names fields by their full path from it.
const configPath = "logs"

// Formats of a log payload.
const (
	// FormatAuto reads a payload whose first non-blank byte is '{' as
	// JSON, one starting with '[' as JSON when it parses as such, anything
	// else as text.
	FormatAuto = "auto"
	// FormatText reads the payload as one record: the whole payload is the
	// message.
	FormatText = "text"
	// FormatJSON reads one JSON record, an array of records, JSON lines, or
	// an OpenTelemetry logs export (resourceLogs).
	FormatJSON = "json"
)

// Values of UnknownLevel.
const (
	UnknownLevelInfo   = "info"
	UnknownLevelReject = "reject"
)

// LevelOff disables a level threshold (MinLevel, NewTemplateLevel).
const LevelOff = "off"

// Defaults of Config.
const (
	DefaultMaxMessageBytes   = 64 << 10
	DefaultMaxRecords        = 100000
	DefaultAggregateWindow   = time.Minute
	DefaultMaxKeys           = 100000
	DefaultKeyTTL            = 6 * time.Hour
	DefaultGrace             = 10 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxFutureSkew     = 5 * time.Minute
	DefaultMaxPendingRows    = 1 << 20
	DefaultAnomalyFactor     = 10
	DefaultAnomalyMinCount   = 20
	DefaultBaselineWindow    = time.Hour
	DefaultAnomalyMinHistory = 15 * time.Minute
	DefaultAnomalyCooldown   = 30 * time.Minute
	// MaxWatchRules bounds watch_templates: the processor caches which
	// rules a template passes in one 64-bit mask per key.
	MaxWatchRules = 64
)

// Default field paths, tried in order; the first one a record has wins.
// Between them they cover Vector, Fluent Bit, Filebeat (ECS), the
// OpenTelemetry JSON export, journald and common application loggers. A
// path starting with resource. or scope. reads an OpenTelemetry record's
// resource or instrumentation scope.
var (
	DefaultMessagePaths = []string{"message", "msg", "log", "body", "MESSAGE"}
	DefaultTimePaths    = []string{"timestamp", "@timestamp", "time", "ts", "timeUnixNano", "observedTimeUnixNano", "date", "__REALTIME_TIMESTAMP"}
	DefaultLevelPaths   = []string{"level", "severity", "severityText", "severityNumber", "log.level", "levelname", "lvl", "loglevel", "PRIORITY"}
	DefaultHostPaths    = []string{
		"host", "hostname", "host.name", "host.hostname",
		"resource.attributes.host.name", "attributes.host.name",
		"kubernetes.host", "kubernetes.pod_node_name", "kubernetes.node.name",
		"resource.attributes.k8s.node.name", "_HOSTNAME",
	}
	DefaultServicePaths = []string{
		"service", "service.name",
		"resource.attributes.service.name", "attributes.service.name",
		"app", "kubernetes.labels.app.kubernetes.io/name", "kubernetes.labels.app",
		"kubernetes.pod_labels.app.kubernetes.io/name", "kubernetes.pod_labels.app",
		"SYSLOG_IDENTIFIER",
	}
	DefaultPodPaths = []string{
		"kubernetes.pod_name", "kubernetes.pod.name", "k8s.pod.name",
		"resource.attributes.k8s.pod.name", "attributes.k8s.pod.name", "pod",
	}
	DefaultNamespacePaths = []string{
		"kubernetes.namespace_name", "kubernetes.pod_namespace", "kubernetes.namespace",
		"k8s.namespace.name", "resource.attributes.k8s.namespace.name", "attributes.k8s.namespace.name", "namespace",
	}
	DefaultContainerPaths = []string{
		"kubernetes.container_name", "kubernetes.container.name", "k8s.container.name",
		"resource.attributes.k8s.container.name", "attributes.k8s.container.name", "container_name", "container",
	}
)

// Config configures log ingestion: how records are decoded (Format, Fields,
// Text) and how the Processor turns them into events. It is decoded from
// the `logs:` key of the daemon's YAML configuration (unknown keys
// rejected; LoadConfig does it for a standalone document). A zero field
// means its default: call SetDefaults, then Validate.
//
// Like rules.Config, it has no UnmarshalYAML applying defaults: yaml.v3
// drops KnownFields(true) inside a custom unmarshaler.
type Config struct {
	// Format of a payload: auto (default), text or json.
	Format string `yaml:"format"`
	// Source, when set, is the source of every record instead of the
	// detected shipper (vector, fluentbit, filebeat, otel, json, text).
	Source string `yaml:"source"`
	// Fields are the JSON field paths read for each record field.
	Fields FieldsConfig `yaml:"fields"`
	// Text configures plain text records.
	Text TextConfig `yaml:"text"`
	// UnknownLevel says what a level field the decoder cannot read does:
	// info (default) takes the record as info; reject makes it a bad
	// record, for the dead-letter topic.
	UnknownLevel string `yaml:"unknown_level"`
	// MaxMessageBytes truncates longer messages (at a UTF-8 boundary).
	// Default 64 KiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxRecords bounds the records of one payload (an OpenTelemetry batch,
	// an array or JSON lines); a larger payload is rejected whole. Default
	// 100000.
	MaxRecords int `yaml:"max_records"`

	// MinLevel is the least level that makes a record an event (LogError).
	// Default error; off disables it.
	MinLevel string `yaml:"min_level"`
	// NewTemplateLevel is the least level at which a never-seen template
	// makes an event (LogNewTemplate). Default error; off disables it.
	NewTemplateLevel string `yaml:"new_template_level"`
	// WatchTemplates make an event (LogWatched) of every record whose
	// template matches, whatever its level.
	WatchTemplates []WatchRule `yaml:"watch_templates"`
	// AggregateWindow is how long repeats of one template on one CI are
	// folded into one event: the first is emitted at once, the rest counted
	// and emitted as one update when the window closes. Default 1m.
	AggregateWindow time.Duration `yaml:"aggregate_window"`
	// Anomaly configures rate anomaly detection.
	Anomaly AnomalyConfig `yaml:"anomaly"`

	// MaxKeys bounds the (CI, template) keys tracked; the least recently
	// seen is evicted past it (its open window and minute are emitted
	// first). Default 100000.
	MaxKeys int `yaml:"max_keys"`
	// KeyTTL drops a key, its baseline included, after this long without a
	// record (record time). Default 6h.
	KeyTTL time.Duration `yaml:"key_ttl"`
	// Grace is how long after a minute ends (in record time, the watermark)
	// its counts are closed, so that records from hosts with slightly
	// different clocks still land in their minute. Default 10s.
	Grace time.Duration `yaml:"grace"`
	// IdleTimeout: when no record has arrived for this long (processing
	// time), Tick advances the watermark to its own now, so that the last
	// minutes and windows of a quiet stream close. Default 30s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxFutureSkew caps record times at the processing time plus this, so
	// that one host with a clock far ahead cannot close everyone's minutes.
	// Default 5m.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// MaxPendingRows bounds the closed count rows waiting for Counts; the
	// oldest are dropped (and counted) past it. Default 1Mi.
	MaxPendingRows int `yaml:"max_pending_rows"`

	// Templates tunes the template miner (logtemplate.Config).
	Templates logtemplate.Config `yaml:"templates"`

	// Compiled by Validate.
	minLevel, newTemplateLevel Level
	watch                      []watchRule
}

// FieldsConfig lists, for each record field, the JSON paths tried in order;
// the first present wins. A dotted path reads nested objects
// (kubernetes.pod_name) and also matches a key that contains the dots
// literally ("log.level", "host.name"), and an OpenTelemetry attribute list
// ([{key, value}]) by key. A path that is given replaces the default list
// for its field.
type FieldsConfig struct {
	Message   []string `yaml:"message"`
	Timestamp []string `yaml:"timestamp"`
	Level     []string `yaml:"level"`
	Host      []string `yaml:"host"`
	Service   []string `yaml:"service"`
	Pod       []string `yaml:"pod"`
	Namespace []string `yaml:"namespace"`
	Container []string `yaml:"container"`
	// Extra paths are copied into Record.Extra, keyed by path, and into the
	// annotations of the events the record makes. Default none.
	Extra []string `yaml:"extra"`
}

// TextConfig configures plain text records.
type TextConfig struct {
	// Host is the host of every text record. Default none.
	Host string `yaml:"host"`
	// Service is the service of every text record. Default none.
	Service string `yaml:"service"`
	// DefaultLevel is the level of a record (text or JSON) whose level
	// cannot be read or guessed. Default info.
	DefaultLevel string `yaml:"default_level"`

	defaultLevel Level
}

// WatchRule makes an event of every record whose labels match all of its
// matchers.
type WatchRule struct {
	// Name identifies the rule; it is the watch label of its events.
	Name string `yaml:"name"`
	// Matchers use Alertmanager's syntax (name="v", name=~"re", !=, !~;
	// several in one string separated by commas) over the labels
	// template_id, template, level, host, instance, service, pod,
	// namespace, container, source, ci and param_0, param_1, ... (the
	// template's parameters of the record). All must match.
	Matchers []string `yaml:"matchers"`
	// Severity overrides the severity derived from the record's level:
	// critical, major, minor, warning or info. Default: from the level.
	Severity string `yaml:"severity"`
}

// AnomalyConfig configures rate anomaly detection: per (CI, template) the
// count of each minute is compared with an exponentially weighted moving
// average of the minutes before.
type AnomalyConfig struct {
	// Disabled turns detection off.
	Disabled bool `yaml:"disabled"`
	// Factor: a minute's count must be at least Factor times the baseline.
	// Default 10.
	Factor float64 `yaml:"factor"`
	// MinCount: and at least this many lines. Default 20.
	MinCount int `yaml:"min_count"`
	// BaselineWindow is the span of the moving average (alpha =
	// 2/(minutes+1)). Default 1h.
	BaselineWindow time.Duration `yaml:"baseline_window"`
	// MinHistory: no anomaly is reported for a key tracked for less than
	// this, as its baseline does not exist yet. Default 15m.
	MinHistory time.Duration `yaml:"min_history"`
	// Cooldown: at most one anomaly event per (CI, template) per Cooldown.
	// Default 30m.
	Cooldown time.Duration `yaml:"cooldown"`
}

// SetDefaults fills every field left empty with its documented default.
func (c *Config) SetDefaults() {
	if c.Format == "" {
		c.Format = FormatAuto
	}
	f := &c.Fields
	setPaths := func(p *[]string, def []string) {
		if *p == nil {
			*p = append([]string(nil), def...)
		}
	}
	setPaths(&f.Message, DefaultMessagePaths)
	setPaths(&f.Timestamp, DefaultTimePaths)
	setPaths(&f.Level, DefaultLevelPaths)
	setPaths(&f.Host, DefaultHostPaths)
	setPaths(&f.Service, DefaultServicePaths)
	setPaths(&f.Pod, DefaultPodPaths)
	setPaths(&f.Namespace, DefaultNamespacePaths)
	setPaths(&f.Container, DefaultContainerPaths)
	if c.Text.DefaultLevel == "" {
		c.Text.DefaultLevel = "info"
	}
	if c.UnknownLevel == "" {
		c.UnknownLevel = UnknownLevelInfo
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.MinLevel == "" {
		c.MinLevel = "error"
	}
	if c.NewTemplateLevel == "" {
		c.NewTemplateLevel = "error"
	}
	if c.AggregateWindow == 0 {
		c.AggregateWindow = DefaultAggregateWindow
	}
	a := &c.Anomaly
	if a.Factor == 0 {
		a.Factor = DefaultAnomalyFactor
	}
	if a.MinCount == 0 {
		a.MinCount = DefaultAnomalyMinCount
	}
	if a.BaselineWindow == 0 {
		a.BaselineWindow = DefaultBaselineWindow
	}
	if a.MinHistory == 0 {
		a.MinHistory = DefaultAnomalyMinHistory
	}
	if a.Cooldown == 0 {
		a.Cooldown = DefaultAnomalyCooldown
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.KeyTTL == 0 {
		c.KeyTTL = DefaultKeyTTL
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if c.MaxPendingRows == 0 {
		c.MaxPendingRows = DefaultMaxPendingRows
	}
	c.Templates.SetDefaults()
}

// Validate reports every wrong field at once, each named by its YAML path
// (logs.anomaly.factor: ...), and compiles the levels and watch rules. Call
// SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", configPath, field, fmt.Sprintf(format, args...)))
	}
	switch c.Format {
	case FormatAuto, FormatText, FormatJSON:
	default:
		bad("format", "%q is not one of auto, text, json", c.Format)
	}
	if c.Source != "" && !validSource(c.Source) {
		bad("source", "%q must be letters, digits, '.', '_', '-' or '/'", c.Source)
	}
	for _, fp := range []struct {
		name  string
		paths []string
		need  bool
	}{
		{"message", c.Fields.Message, true}, {"timestamp", c.Fields.Timestamp, false},
		{"level", c.Fields.Level, false}, {"host", c.Fields.Host, false},
		{"service", c.Fields.Service, false}, {"pod", c.Fields.Pod, false},
		{"namespace", c.Fields.Namespace, false}, {"container", c.Fields.Container, false},
		{"extra", c.Fields.Extra, false},
	} {
		if fp.need && len(fp.paths) == 0 {
			bad("fields."+fp.name, "at least one path is needed: a record without a message is of no use")
		}
		for i, p := range fp.paths {
			if err := checkPath(p); err != nil {
				bad(fmt.Sprintf("fields.%s[%d]", fp.name, i), "%v", err)
			}
		}
	}
	var ok bool
	if c.Text.defaultLevel, ok = ParseLevel(c.Text.DefaultLevel); !ok || c.Text.DefaultLevel != c.Text.defaultLevel.String() {
		bad("text.default_level", "%q is not one of %s", c.Text.DefaultLevel, levelList)
	}
	switch c.UnknownLevel {
	case UnknownLevelInfo, UnknownLevelReject:
	default:
		bad("unknown_level", "%q is not one of info, reject", c.UnknownLevel)
	}
	if c.MaxMessageBytes < 256 {
		bad("max_message_bytes", "must be at least 256, got %d", c.MaxMessageBytes)
	}
	if c.MaxRecords < 1 {
		bad("max_records", "must be at least 1, got %d", c.MaxRecords)
	}
	if c.minLevel, ok = parseThreshold(c.MinLevel); !ok {
		bad("min_level", "%q is not one of %s, off", c.MinLevel, levelList)
	}
	if c.newTemplateLevel, ok = parseThreshold(c.NewTemplateLevel); !ok {
		bad("new_template_level", "%q is not one of %s, off", c.NewTemplateLevel, levelList)
	}
	if len(c.WatchTemplates) > MaxWatchRules {
		bad("watch_templates", "%d rules, at most %d are supported", len(c.WatchTemplates), MaxWatchRules)
	}
	c.watch = c.watch[:0]
	names := map[string]int{}
	for i := range c.WatchTemplates {
		field := fmt.Sprintf("watch_templates[%d]", i)
		w, err := compileWatch(&c.WatchTemplates[i])
		if err != nil {
			bad(field+err.field, "%s", err.msg)
			continue
		}
		if j, dup := names[w.name]; dup {
			bad(field+".name", "%q is also the name of watch_templates[%d]", w.name, j)
		}
		names[w.name] = i
		c.watch = append(c.watch, w)
	}
	if c.AggregateWindow < time.Second {
		bad("aggregate_window", "must be at least 1s, got %s", c.AggregateWindow)
	}
	a := &c.Anomaly
	if !(a.Factor >= 1) || math.IsInf(a.Factor, 0) {
		bad("anomaly.factor", "must be at least 1, got %v", a.Factor)
	}
	if a.MinCount < 1 {
		bad("anomaly.min_count", "must be at least 1, got %d", a.MinCount)
	}
	if a.BaselineWindow < 2*time.Minute {
		bad("anomaly.baseline_window", "must be at least 2m, got %s", a.BaselineWindow)
	}
	if a.MinHistory < time.Minute {
		bad("anomaly.min_history", "must be at least 1m, got %s", a.MinHistory)
	}
	if a.Cooldown < time.Minute {
		bad("anomaly.cooldown", "must be at least 1m, got %s", a.Cooldown)
	}
	if c.MaxKeys < 1 {
		bad("max_keys", "must be at least 1, got %d", c.MaxKeys)
	}
	if c.KeyTTL < time.Minute {
		bad("key_ttl", "must be at least 1m, got %s", c.KeyTTL)
	}
	if c.Grace < 0 || c.Grace >= time.Hour {
		bad("grace", "must be at least 0s and less than 1h, got %s", c.Grace)
	}
	if c.IdleTimeout < time.Second {
		bad("idle_timeout", "must be at least 1s, got %s", c.IdleTimeout)
	}
	if c.MaxFutureSkew < 0 {
		bad("max_future_skew", "must not be negative, got %s", c.MaxFutureSkew)
	}
	if c.MaxPendingRows < 1 {
		bad("max_pending_rows", "must be at least 1, got %d", c.MaxPendingRows)
	}
	if err := c.Templates.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s.templates.%w", configPath, e))
		}
	}
	return errors.Join(errs...)
}

// LoadConfig decodes a standalone logs configuration (the body of the
// `logs:` key) strictly, applies the defaults and validates it.
func LoadConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty document is io.EOF: every default.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%s: %w", configPath, err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var levelList = "trace, debug, info, warn, error, fatal, critical"

// parseThreshold reads a normalised level name or off.
func parseThreshold(s string) (Level, bool) {
	if s == LevelOff {
		return LevelNone, true
	}
	l, ok := ParseLevel(s)
	return l, ok && l.String() == s
}

func validSource(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return false
		}
	}
	return len(s) <= 64
}

func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
		return fmt.Errorf("%q has an empty segment", p)
	}
	if len(p) > 256 {
		return fmt.Errorf("path of %d bytes, at most 256", len(p))
	}
	if strings.Count(p, ".") > 8 {
		return fmt.Errorf("%q has more than 9 segments", p)
	}
	return nil
}

// watchRule is a compiled WatchRule.
type watchRule struct {
	name     string
	severity event.Severity // empty: from the level
	// static matchers read labels fixed per template (template_id,
	// template): their result is cached per key and template text.
	static  []watchMatcher
	dynamic []watchMatcher
}

// Label sources a watch matcher reads.
const (
	wsTemplateID uint8 = iota
	wsTemplate
	wsLevel
	wsHost
	wsService
	wsPod
	wsNamespace
	wsContainer
	wsSource
	wsCI
	wsParam
)

var watchLabels = map[string]uint8{
	"template_id": wsTemplateID, "template": wsTemplate, "level": wsLevel,
	"host": wsHost, "instance": wsHost, "service": wsService, "pod": wsPod,
	"namespace": wsNamespace, "container": wsContainer, "source": wsSource, "ci": wsCI,
}

type watchMatcher struct {
	src   uint8
	param int
	m     *labels.Matcher
}

type watchError struct{ field, msg string }

func compileWatch(r *WatchRule) (watchRule, *watchError) {
	w := watchRule{name: r.Name}
	if r.Name == "" {
		return w, &watchError{".name", "must not be empty"}
	}
	if !validSource(r.Name) {
		return w, &watchError{".name", fmt.Sprintf("%q must be letters, digits, '.', '_', '-' or '/'", r.Name)}
	}
	if r.Severity != "" {
		s := event.Severity(r.Severity)
		if !s.Valid() {
			return w, &watchError{".severity", fmt.Sprintf("%q is not one of critical, major, minor, warning, info", r.Severity)}
		}
		w.severity = s
	}
	if len(r.Matchers) == 0 {
		return w, &watchError{".matchers", "at least one is needed, or every record would match"}
	}
	for i, s := range r.Matchers {
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			return w, &watchError{fmt.Sprintf(".matchers[%d]", i), err.Error()}
		}
		if len(ms) == 0 {
			return w, &watchError{fmt.Sprintf(".matchers[%d]", i), "empty matcher"}
		}
		for _, m := range ms {
			wm := watchMatcher{m: m}
			if src, ok := watchLabels[m.Name]; ok {
				wm.src = src
			} else if n, ok := strings.CutPrefix(m.Name, "param_"); ok && isIndex(n) {
				wm.src = wsParam
				wm.param, _ = strconv.Atoi(n)
			} else {
				return w, &watchError{fmt.Sprintf(".matchers[%d]", i), fmt.Sprintf(
					"unknown label %q; watch matchers read template_id, template, level, host, instance, service, pod, namespace, container, source, ci and param_0, param_1, ...", m.Name)}
			}
			if wm.src <= wsTemplate {
				w.static = append(w.static, wm)
			} else {
				w.dynamic = append(w.dynamic, wm)
			}
		}
	}
	return w, nil
}

func isIndex(s string) bool {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
