package analytics

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/common/config"
)

// configPath is the YAML key the daemon's configuration nests Config under;
// Validate names fields by their full path from it.
const configPath = "clickhouse"

// Defaults of Config, applied by SetDefaults to fields left at zero.
const (
	DefaultDatabase        = "correlator"
	DefaultUsername        = "default"
	DefaultDialTimeout     = 5 * time.Second
	DefaultBatchMaxRows    = 20000
	DefaultBatchMaxWait    = time.Second
	DefaultBufferRows      = 200000
	DefaultInitialBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
	DefaultInsertTimeout   = 30 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultSpillMaxBytes bounds each table's spill files when SpillDir
	// is set.
	DefaultSpillMaxBytes = 1 << 30
)

// SpillOff as SpillDir turns spilling off where a default would set a
// directory (the daemon defaults it to <data_dir>/spill).
const SpillOff = "off"

// Config configures the ClickHouse connection and the batched writers. It is
// decoded from the `clickhouse:` key of the daemon's YAML configuration
// (gopkg.in/yaml.v3, unknown keys rejected). A zero field means its default:
// call SetDefaults, then Validate.
type Config struct {
	// Addr lists host:port addresses of the ClickHouse native protocol
	// (port 9000, or 9440 with TLS). Empty, the default, turns analytics off.
	Addr []string `yaml:"addr"`
	// Database holds the daemon's tables; Migrate creates it. Default
	// "correlator". Letters, digits and underscores only.
	Database string `yaml:"database"`
	// Username to authenticate as. Default "default".
	Username string `yaml:"username"`
	// Password of Username. Default empty. It prints as <secret>. The daemon
	// also takes it from the environment variable
	// CORRELATOR_CLICKHOUSE_PASSWORD, which it puts here. Mutually exclusive
	// with PasswordFile.
	Password config.Secret `yaml:"password"`
	// PasswordFile names a file holding the password, read by Open (a
	// trailing newline is ignored). Default none.
	PasswordFile string `yaml:"password_file"`
	// TLS, when set, encrypts the connection (Prometheus' tls_config: ca_file,
	// cert_file, key_file, server_name, insecure_skip_verify, min_version).
	// Default nil: plaintext.
	TLS *config.TLSConfig `yaml:"tls"`
	// DialTimeout bounds establishing one connection, TLS and handshake
	// included. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Batch bounds the size of one INSERT.
	Batch BatchConfig `yaml:"batch"`
	// BufferRows bounds, per table, the rows held in memory waiting to be
	// written. When ClickHouse is slow or down and the buffer is full,
	// Writer.Append spills to SpillDir if set and, once that is full too,
	// blocks (backpressure reaches the Kafka consumer, which stops
	// fetching). Default 200000; at least Batch.MaxRows.
	BufferRows int `yaml:"buffer_rows"`
	// Retry paces the retries of a failed INSERT.
	Retry RetryConfig `yaml:"retry"`
	// InsertTimeout bounds one INSERT attempt; past it the attempt counts as
	// failed and is retried (ReplacingMergeTree removes the duplicate if it
	// had in fact been stored). Default 30s.
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// ShutdownTimeout bounds the last flush of buffered rows when the daemon
	// stops. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// SpillDir, when set, is where a table's rows go once its BufferRows
	// are held in memory: Append writes them to files in SpillDir/<table>
	// instead of blocking, and they are written to ClickHouse, in order,
	// after the rows in memory. The spill relieves memory; it is not
	// durable storage: a spilled row is no more durable than one in
	// memory, offsets are committed only once rows are in ClickHouse, and
	// the files a stopped or crashed process leaves are deleted at the next
	// start (Kafka redelivers those rows). Only one process may use the
	// directory. Empty or "off": no spill, Append blocks beyond
	// BufferRows. The daemon defaults it to <data_dir>/spill.
	SpillDir string `yaml:"spill_dir"`
	// SpillMaxBytes bounds, per table, the bytes of its spill files.
	// Beyond it Append blocks, as without a spill. Default 1 GiB when
	// SpillDir is set.
	SpillMaxBytes int64 `yaml:"spill_max_bytes"`
}

// BatchConfig bounds one INSERT: a batch is sent when it holds MaxRows rows
// or MaxWait after its first row, whichever comes first.
type BatchConfig struct {
	// MaxRows is the most rows one INSERT carries. Default 20000.
	MaxRows int `yaml:"max_rows"`
	// MaxWait is the longest a row waits for its batch to fill. Default 1s.
	MaxWait time.Duration `yaml:"max_wait"`
}

// RetryConfig paces the retries of a failed INSERT: exponential backoff with
// jitter from InitialBackoff, doubling up to MaxBackoff. A batch is retried
// until it is written or the daemon stops; rows are never dropped.
type RetryConfig struct {
	// InitialBackoff is the pause after the first failure. Default 200ms.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the pause between attempts. Default 30s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// SetDefaults fills the fields left at zero with their defaults. It leaves
// Addr alone: no address means analytics is off.
func (c *Config) SetDefaults() {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Batch.MaxRows == 0 {
		c.Batch.MaxRows = DefaultBatchMaxRows
	}
	if c.Batch.MaxWait == 0 {
		c.Batch.MaxWait = DefaultBatchMaxWait
	}
	if c.BufferRows == 0 {
		c.BufferRows = max(DefaultBufferRows, c.Batch.MaxRows)
	}
	if c.Retry.InitialBackoff == 0 {
		c.Retry.InitialBackoff = DefaultInitialBackoff
	}
	if c.Retry.MaxBackoff == 0 {
		c.Retry.MaxBackoff = max(DefaultMaxBackoff, c.Retry.InitialBackoff)
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.spillOn() && c.SpillMaxBytes == 0 {
		c.SpillMaxBytes = DefaultSpillMaxBytes
	}
}

// spillOn reports whether SpillDir turns spilling on.
func (c *Config) spillOn() bool { return c.SpillDir != "" && c.SpillDir != SpillOff }

// Enabled reports whether analytics is configured: at least one address.
func (c *Config) Enabled() bool { return len(c.Addr) > 0 }

// Validate checks the configuration, after SetDefaults. It reports every
// problem, each naming its YAML field (clickhouse.batch.max_rows: ...).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", configPath, field, fmt.Sprintf(format, args...)))
	}
	for i, a := range c.Addr {
		if err := checkAddr(a); err != nil {
			bad(fmt.Sprintf("addr[%d]", i), "%v", err)
		}
	}
	if !validIdentifier(c.Database) {
		bad("database", "must be letters, digits and underscores, not starting with a digit, got %q", c.Database)
	}
	if c.Username == "" {
		bad("username", "must not be empty")
	}
	if c.Password != "" && c.PasswordFile != "" {
		bad("password_file", "set together with clickhouse.password (or CORRELATOR_CLICKHOUSE_PASSWORD): use one")
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			bad("tls", "%v", err)
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be > 0, got %s", d)
		}
	}
	positive("dial_timeout", c.DialTimeout)
	if c.Batch.MaxRows <= 0 {
		bad("batch.max_rows", "must be > 0, got %d", c.Batch.MaxRows)
	}
	positive("batch.max_wait", c.Batch.MaxWait)
	if c.BufferRows <= 0 {
		bad("buffer_rows", "must be > 0, got %d", c.BufferRows)
	} else if c.BufferRows < c.Batch.MaxRows {
		bad("buffer_rows", "must be >= %s.batch.max_rows (%d), got %d", configPath, c.Batch.MaxRows, c.BufferRows)
	}
	positive("retry.initial_backoff", c.Retry.InitialBackoff)
	if c.Retry.MaxBackoff <= 0 {
		bad("retry.max_backoff", "must be > 0, got %s", c.Retry.MaxBackoff)
	} else if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		bad("retry.max_backoff", "must be >= %s.retry.initial_backoff (%s), got %s", configPath, c.Retry.InitialBackoff, c.Retry.MaxBackoff)
	}
	positive("insert_timeout", c.InsertTimeout)
	positive("shutdown_timeout", c.ShutdownTimeout)
	if c.spillOn() && c.SpillMaxBytes <= 0 {
		bad("spill_max_bytes", "must be > 0, got %d (set %s.spill_dir: %s to turn spilling off)", c.SpillMaxBytes, configPath, SpillOff)
	}
	return errors.Join(errs...)
}

// WriterOptions returns the options of a Writer configured by c.
func (c *Config) WriterOptions() WriterOptions {
	o := WriterOptions{
		MaxRows:         c.Batch.MaxRows,
		MaxWait:         c.Batch.MaxWait,
		BufferRows:      c.BufferRows,
		InitialBackoff:  c.Retry.InitialBackoff,
		MaxBackoff:      c.Retry.MaxBackoff,
		InsertTimeout:   c.InsertTimeout,
		ShutdownTimeout: c.ShutdownTimeout,
	}
	if c.spillOn() {
		o.SpillDir, o.SpillMaxBytes = c.SpillDir, c.SpillMaxBytes
	}
	return o
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", a)
	}
	if host == "" {
		return fmt.Errorf("missing host in %q", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port must be 1-65535, got %q", port)
	}
	return nil
}

// validIdentifier reports whether s can be used unquoted as a ClickHouse
// database or table name. Names are interpolated into DDL, so the set is
// kept to the plain one.
func validIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
