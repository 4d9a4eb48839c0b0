package ingest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/config"
)

// KafkaConfig configures the Kafka consumer, the dead-letter producer and the
// producer behind the HTTP endpoints. Kafka is off when Brokers is empty.
type KafkaConfig struct {
	// Brokers are the bootstrap addresses (host:port). Empty: Kafka off, the
	// HTTP endpoints feed the pipeline in-process.
	Brokers []string `yaml:"brokers"`
	// Topics are consumed by the consumer group. Default [correlator.alerts].
	Topics []string `yaml:"topics"`
	// GroupID names the consumer group shared by every instance. Default
	// "correlatord".
	GroupID string `yaml:"group_id"`
	// IngestTopic, when set, receives what the HTTP endpoints accept, for
	// the consumer group (and anyone else) to read. Default empty: the HTTP
	// endpoints bind and key what they accept as the first stage does and
	// produce it straight to KeyedTopic, one Kafka hop fewer.
	IngestTopic string `yaml:"ingest_topic"`
	// DeadLetterTopic receives messages that could not be decoded, with the
	// reason in the correlator-error header. Default "correlator.deadletter".
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// ChangeTopic, when set, carries approved change records (JSON, one per
	// message) for the rules stage's change windows. It is read from the
	// beginning at every start, so keep it compacted by change id or with a
	// retention longer than rules.changes.retention. Default none.
	ChangeTopic string `yaml:"change_topic"`
	// LogTopics carry log records (plain text lines, or JSON from Vector,
	// Fluent Bit, Filebeat or OpenTelemetry; see the logs section),
	// consumed by the consumer group GroupID + "-logs". Default none.
	LogTopics []string `yaml:"log_topics"`
	// KeyedTopic is the internal topic onto which the first stage re-keys
	// normalized events by topology partition, so that the events that may
	// form one incident reach one instance. Default correlator.events.keyed.
	KeyedTopic string `yaml:"keyed_topic"`
	// StateTopic is the compacted changelog of the correlation state, one
	// partition per partition of KeyedTopic (created with as many). Default
	// correlator.state.
	StateTopic string `yaml:"state_topic"`
	// StateGroupID is the consumer group of the stateful stage that reads
	// KeyedTopic. Default GroupID + "-state".
	StateGroupID string `yaml:"state_group_id"`
	// Format of the consumed messages: auto, alertmanager-webhook,
	// alertmanager-v2 or events. Default auto.
	Format Format `yaml:"format"`
	// MaxMessageBytes is the largest message accepted; larger ones are
	// dead-lettered. Default 4 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// CommitInterval is how often durable offsets are committed. Default 1s.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// StateInterval is how often the stateful stage writes each
	// partition's changed state to the changelog and commits its offsets.
	// Notifications go out every CommitInterval regardless. A longer one
	// costs less in a storm, and more events to process again after a
	// crash. Default 5s; at least CommitInterval.
	StateInterval time.Duration `yaml:"state_interval"`
	// MaxBatchEvents bounds the events handed downstream in one call (the
	// stateful stage may go over it by the events of one message of the
	// keyed topic, which holds a batch). Default 5000.
	MaxBatchEvents int `yaml:"max_batch_events"`
	// FetchWait is how long the broker may hold a fetch of the keyed topic
	// until it has 1 MiB for the stateful stage. Each batch costs the stage,
	// the client and the broker about the same whatever its size, so under
	// load larger batches cost less per event; when the topic is
	// quiet, an event (or an operator's command) waits up to FetchWait
	// before it is processed. 0 hands over whatever has arrived at once.
	// Default 250ms; at most 5s.
	FetchWait *time.Duration `yaml:"fetch_wait"`
	// LocalHandoffEvents bounds the events the first stage holds for the
	// stateful stage of the same process (ingest.LocalHandoff), which then
	// takes them instead of decoding them from the keyed topic's messages.
	// They are held from their produce until their fetch: a stage that
	// falls behind by more holds no more, and decodes the rest. About 1 KB
	// each. Default 200000; 0 turns the hand-off off.
	LocalHandoffEvents *int `yaml:"local_handoff_events"`
	// StartOffset for a group with no committed offset: earliest or latest.
	// Default earliest, so nothing produced before the first start is missed.
	StartOffset string `yaml:"start_offset"`
	// CreateTopics creates the consumed, dead-letter and change topics at
	// start when they do not exist. A consumer group that joins before its
	// topic exists gets no partitions and kafka-go never rebalances it
	// (kafka-go issues #800 and #1314), so relying on auto-creation by the
	// first producer stalls ingest. Default true.
	CreateTopics *bool `yaml:"create_topics"`
	// TopicPartitions is the partition count of topics created at start.
	// Default 8.
	TopicPartitions int `yaml:"topic_partitions"`
	// TopicReplicationFactor of topics created at start; -1 takes the
	// broker's default.replication.factor. Default -1.
	TopicReplicationFactor int `yaml:"topic_replication_factor"`
	// SASL authentication; nil means none.
	SASL *SASLConfig `yaml:"sasl"`
	// TLS for the broker connections; nil means plaintext.
	TLS *config.TLSConfig `yaml:"tls"`
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// SASLConfig holds Kafka SASL credentials. The password may also come from
// PasswordFile or the CORRELATOR_KAFKA_SASL_PASSWORD environment variable.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism    string        `yaml:"mechanism"`
	Username     string        `yaml:"username"`
	Password     config.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
}

// Enabled reports whether Kafka is configured.
func (c *KafkaConfig) Enabled() bool { return len(c.Brokers) > 0 }

// SetDefaults fills every field left empty with its documented default.
func (c *KafkaConfig) SetDefaults() {
	if len(c.Topics) == 0 {
		c.Topics = []string{"correlator.alerts"}
	}
	if c.GroupID == "" {
		c.GroupID = "correlatord"
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = "correlator.deadletter"
	}
	if c.KeyedTopic == "" {
		c.KeyedTopic = "correlator.events.keyed"
	}
	if c.StateTopic == "" {
		c.StateTopic = "correlator.state"
	}
	if c.StateGroupID == "" {
		c.StateGroupID = c.GroupID + "-state"
	}
	if c.Format == "" {
		c.Format = FormatAuto
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 4 << 20
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.StateInterval == 0 {
		c.StateInterval = max(5*time.Second, c.CommitInterval)
	}
	if c.FetchWait == nil {
		wait := DefaultFetchWait
		c.FetchWait = &wait
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = 5000
	}
	if c.LocalHandoffEvents == nil {
		n := DefaultLocalHandoffEvents
		c.LocalHandoffEvents = &n
	}
	if c.StartOffset == "" {
		c.StartOffset = "earliest"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.CreateTopics == nil {
		yes := true
		c.CreateTopics = &yes
	}
	if c.TopicPartitions == 0 {
		c.TopicPartitions = 8
	}
	if c.TopicReplicationFactor == 0 {
		c.TopicReplicationFactor = -1
	}
}

// DefaultLocalHandoffEvents is kafka.local_handoff_events when unset: a
// few seconds of a storm at the rates the daemon accepts on 2 cores.
const DefaultLocalHandoffEvents = 200000

// Validate reports every wrong field, each named by its YAML path.
func (c *KafkaConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("kafka.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	for i, t := range c.Topics {
		if err := validTopic(t); err != nil {
			bad(fmt.Sprintf("topics[%d]", i), "%v", err)
		}
	}
	if c.IngestTopic != "" {
		if err := validTopic(c.IngestTopic); err != nil {
			bad("ingest_topic", "%v", err)
		}
	}
	if err := validTopic(c.DeadLetterTopic); err != nil {
		bad("dead_letter_topic", "%v", err)
	}
	if c.ChangeTopic != "" {
		if err := validTopic(c.ChangeTopic); err != nil {
			bad("change_topic", "%v", err)
		}
		for _, t := range c.Topics {
			if t == c.ChangeTopic {
				bad("change_topic", "%q is also consumed as alerts (topics)", t)
			}
		}
	}
	for _, t := range c.Topics {
		if t == c.DeadLetterTopic {
			bad("dead_letter_topic", "%q is also consumed (topics): dead letters would be read back", t)
		}
		if t == c.KeyedTopic {
			bad("keyed_topic", "%q is also consumed as input (topics): events would loop", t)
		}
		if t == c.StateTopic {
			bad("state_topic", "%q is also consumed as input (topics)", t)
		}
	}
	for i, t := range c.LogTopics {
		if err := validTopic(t); err != nil {
			bad(fmt.Sprintf("log_topics[%d]", i), "%v", err)
		}
		if slices.Contains(c.Topics, t) || t == c.KeyedTopic || t == c.StateTopic || t == c.DeadLetterTopic || t == c.ChangeTopic {
			bad(fmt.Sprintf("log_topics[%d]", i), "%q is used for something else already", t)
		}
	}
	if err := validTopic(c.KeyedTopic); err != nil {
		bad("keyed_topic", "%v", err)
	}
	if err := validTopic(c.StateTopic); err != nil {
		bad("state_topic", "%v", err)
	}
	if c.StateTopic == c.KeyedTopic || c.StateTopic == c.DeadLetterTopic || c.StateTopic == c.ChangeTopic {
		bad("state_topic", "%q must be a topic of its own", c.StateTopic)
	}
	if c.StateGroupID == c.GroupID {
		bad("state_group_id", "must differ from group_id (%q): the stages consume different topics", c.GroupID)
	}
	if c.GroupID == "" {
		bad("group_id", "must not be empty")
	}
	switch c.Format {
	case FormatAuto, FormatAlertmanagerWebhook, FormatAlertList, FormatEvents:
	default:
		bad("format", "%q is not one of auto, alertmanager-webhook, alertmanager-v2, events", c.Format)
	}
	if c.MaxMessageBytes < 1024 {
		bad("max_message_bytes", "must be at least 1024, got %d", c.MaxMessageBytes)
	}
	if c.CommitInterval < 10*time.Millisecond {
		bad("commit_interval", "must be at least 10ms, got %s", c.CommitInterval)
	}
	if c.StateInterval < c.CommitInterval {
		bad("state_interval", "must be at least commit_interval (%s), got %s", c.CommitInterval, c.StateInterval)
	}
	if w := c.FetchWait; w != nil && (*w < 0 || *w > maxFetchWait) {
		bad("fetch_wait", "must be between 0 and %s, got %s", maxFetchWait, *w)
	}
	if c.MaxBatchEvents < 1 {
		bad("max_batch_events", "must be > 0, got %d", c.MaxBatchEvents)
	}
	if n := c.LocalHandoffEvents; n != nil && *n < 0 {
		bad("local_handoff_events", "must be >= 0 (0 turns the hand-off off), got %d", *n)
	}
	if c.StartOffset != "earliest" && c.StartOffset != "latest" {
		bad("start_offset", "%q is not earliest or latest", c.StartOffset)
	}
	if c.DialTimeout <= 0 {
		bad("dial_timeout", "must be > 0, got %s", c.DialTimeout)
	}
	if c.TopicPartitions < 1 {
		bad("topic_partitions", "must be > 0, got %d", c.TopicPartitions)
	}
	if c.TopicReplicationFactor < -1 || c.TopicReplicationFactor == 0 {
		bad("topic_replication_factor", "must be -1 (the broker's default) or > 0, got %d", c.TopicReplicationFactor)
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			bad("sasl.mechanism", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			bad("sasl.username", "must not be empty")
		}
		if s.Password != "" && s.PasswordFile != "" {
			bad("sasl.password_file", "set either password or password_file, not both")
		}
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			bad("tls", "%v", err)
		}
	}
	return errors.Join(errs...)
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

// ResolvePassword returns the SASL password from the config, the password
// file, or the environment, in that order. The value is never logged.
func (s *SASLConfig) ResolvePassword() (string, error) {
	return ResolveSecret(s.Password, s.PasswordFile, "CORRELATOR_KAFKA_SASL_PASSWORD")
}

// ResolveSecret picks a secret from an inline value, else a file (trailing
// newline trimmed), else an environment variable. It names the file on error
// but never the secret.
func ResolveSecret(inline config.Secret, file, env string) (string, error) {
	if inline != "" {
		return string(inline), nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return os.Getenv(env), nil
}

// HTTPConfig configures the HTTP endpoints: ingest and the incidents API.
type HTTPConfig struct {
	// MaxBodyBytes bounds a request body; larger ones get 413. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BearerToken, when set, must be presented as "Authorization: Bearer
	// <token>" on the ingest endpoints. Also from BearerTokenFile or the
	// CORRELATOR_INGEST_TOKEN environment variable.
	BearerToken     config.Secret `yaml:"bearer_token"`
	BearerTokenFile string        `yaml:"bearer_token_file"`
	// Tokens are the API's bearer tokens, each with its roles. With any
	// token configured (here or as bearer_token, which acts as an
	// ingest-only token named "ingest"), every API endpoint needs one:
	// ingest endpoints the ingest role, reads the read role, operator
	// actions the operator role. Without any, reads are open and operator
	// actions are refused.
	Tokens []TokenConfig `yaml:"tokens"`
	// Timeout bounds handling one request, including the wait for the broker
	// acknowledgement or durability. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultFetchWait is kafka.fetch_wait's default, as long as an empty fetch
// waited before there was a fetch wait. In a storm of 500,000 alerts over
// HTTP it took the stateful stage's batches from about 150 to 400 events,
// and the CPU of the daemon and the broker down by 13% (median of 3
// interleaved runs; 100ms: 7%).
const DefaultFetchWait = 250 * time.Millisecond

// maxFetchWait bounds kafka.fetch_wait: longer, and an operator's command
// waits noticeably for the broker to hand it over.
const maxFetchWait = 5 * time.Second

// FetchWaitOrDefault is FetchWait, or its default when unset.
func (c KafkaConfig) FetchWaitOrDefault() time.Duration {
	if c.FetchWait == nil {
		return DefaultFetchWait
	}
	return *c.FetchWait
}

// The roles a token can have. Operator implies read.
const (
	RoleIngest   = "ingest"
	RoleRead     = "read"
	RoleOperator = "operator"
)

// MinTokenLength is the shortest token accepted in http.tokens, so that no
// token can be guessed in a practical number of tries.
const MinTokenLength = 16

// TokenConfig is one API bearer token.
type TokenConfig struct {
	// Name identifies the token's holder: it is logged (the token never
	// is) and recorded as who acted. Unique; "ingest" is taken by
	// bearer_token when that is set.
	Name string `yaml:"name"`
	// Token is the secret, at least 16 characters; or read it from
	// TokenFile (trailing newline trimmed). One of the two.
	Token     config.Secret `yaml:"token"`
	TokenFile string        `yaml:"token_file"`
	// Roles: ingest, read, operator (which implies read). At least one.
	Roles []string `yaml:"roles"`
}

// validTokenName: names end up in logs and incident timelines, so keep them
// to a plain charset.
func validTokenName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return false
		}
	}
	return true
}

// ValidToken reports what is wrong with a token value, never quoting it.
func ValidToken(tok string) error {
	if len(tok) < MinTokenLength {
		return fmt.Errorf("must be at least %d characters, got %d", MinTokenLength, len(tok))
	}
	for _, r := range tok {
		if r <= ' ' || r == 0x7f {
			return errors.New("must not contain spaces or control characters")
		}
	}
	return nil
}

// validateTokens checks http.tokens; values from token_file are checked when
// they are read.
func (c *HTTPConfig) validateTokens() []error {
	var errs []error
	names := map[string]int{}
	values := map[config.Secret]int{}
	legacy := c.BearerToken != "" || c.BearerTokenFile != ""
	for i, t := range c.Tokens {
		field := fmt.Sprintf("http.tokens[%d]", i)
		bad := func(sub, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s%s: %s", field, sub, fmt.Sprintf(format, args...)))
		}
		switch {
		case t.Name == "":
			bad(".name", "must not be empty")
		case !validTokenName(t.Name):
			bad(".name", "%q: use at most 64 letters, digits, '.', '_', '-' or '@'", t.Name)
		case legacy && t.Name == "ingest":
			bad(".name", `"ingest" is the name of http.bearer_token; choose another`)
		default:
			if j, dup := names[t.Name]; dup {
				bad(".name", "%q is used by http.tokens[%d] too", t.Name, j)
			}
			names[t.Name] = i
		}
		switch {
		case t.Token == "" && t.TokenFile == "":
			bad(".token", "set token or token_file")
		case t.Token != "" && t.TokenFile != "":
			bad(".token_file", "set either token or token_file, not both")
		case t.Token != "":
			if err := ValidToken(string(t.Token)); err != nil {
				bad(".token", "%v", err)
			} else if j, dup := values[t.Token]; dup {
				bad(".token", "same value as http.tokens[%d].token; give each client its own token", j)
			} else if t.Token == c.BearerToken {
				bad(".token", "same value as http.bearer_token; give each client its own token")
			}
			values[t.Token] = i
		}
		if len(t.Roles) == 0 {
			bad(".roles", "at least one of ingest, read, operator")
		}
		seen := map[string]bool{}
		for k, r := range t.Roles {
			switch r {
			case RoleIngest, RoleRead, RoleOperator:
			default:
				bad(fmt.Sprintf(".roles[%d]", k), "%q is not one of ingest, read, operator", r)
				continue
			}
			if seen[r] {
				bad(fmt.Sprintf(".roles[%d]", k), "%q is listed twice", r)
			}
			seen[r] = true
		}
	}
	return errs
}

// SetDefaults fills every field left empty with its documented default.
func (c *HTTPConfig) SetDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate reports every wrong field, each named by its YAML path.
func (c *HTTPConfig) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes: must be at least 1024, got %d", c.MaxBodyBytes))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("http.timeout: must be > 0, got %s", c.Timeout))
	}
	if c.BearerToken != "" && c.BearerTokenFile != "" {
		errs = append(errs, errors.New("http.bearer_token_file: set either bearer_token or bearer_token_file, not both"))
	}
	errs = append(errs, c.validateTokens()...)
	return errors.Join(errs...)
}

// PolicyConfig says which events ingest accepts, whatever their transport.
type PolicyConfig struct {
	// MaxEventAge rejects events whose time is older than this relative to
	// the receiving clock; 0 turns the check off. Default 720h (30 days).
	MaxEventAge time.Duration `yaml:"max_event_age"`
	// MaxFutureSkew rejects events dated further ahead than this. Default 1h.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// MaxLabels bounds labels (and annotations) per event. Default 128.
	MaxLabels int `yaml:"max_labels"`
	// MaxLabelBytes bounds one label name or value. Default 8192.
	MaxLabelBytes int `yaml:"max_label_bytes"`
	// DefaultSeverity applies when an event and its labels give none.
	// Default warning.
	DefaultSeverity string `yaml:"default_severity"`
}

// SetDefaults fills every field left empty with its documented default.
func (c *PolicyConfig) SetDefaults() {
	if c.MaxEventAge == 0 {
		c.MaxEventAge = 720 * time.Hour
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = time.Hour
	}
	if c.MaxLabels == 0 {
		c.MaxLabels = 128
	}
	if c.MaxLabelBytes == 0 {
		c.MaxLabelBytes = 8192
	}
	if c.DefaultSeverity == "" {
		c.DefaultSeverity = "warning"
	}
}

// Validate reports every wrong field, each named by its YAML path.
func (c *PolicyConfig) Validate() error {
	var errs []error
	if c.MaxEventAge < 0 {
		errs = append(errs, fmt.Errorf("ingest.max_event_age: must be >= 0, got %s", c.MaxEventAge))
	}
	if c.MaxFutureSkew < 0 {
		errs = append(errs, fmt.Errorf("ingest.max_future_skew: must be >= 0, got %s", c.MaxFutureSkew))
	}
	if c.MaxLabels < 1 {
		errs = append(errs, fmt.Errorf("ingest.max_labels: must be > 0, got %d", c.MaxLabels))
	}
	if c.MaxLabelBytes < 16 {
		errs = append(errs, fmt.Errorf("ingest.max_label_bytes: must be at least 16, got %d", c.MaxLabelBytes))
	}
	switch c.DefaultSeverity {
	case "critical", "major", "minor", "warning", "info":
	default:
		errs = append(errs, fmt.Errorf("ingest.default_severity: %q is not one of critical, major, minor, warning, info", c.DefaultSeverity))
	}
	return errors.Join(errs...)
}
