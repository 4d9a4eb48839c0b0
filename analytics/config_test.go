package analytics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"gopkg.in/yaml.v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{
		Database:        "correlator",
		Username:        "default",
		DialTimeout:     5 * time.Second,
		Batch:           BatchConfig{MaxRows: 20000, MaxWait: time.Second},
		BufferRows:      200000,
		Retry:           RetryConfig{InitialBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second},
		InsertTimeout:   30 * time.Second,
		ShutdownTimeout: 10 * time.Second,
	}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if c.Enabled() {
		t.Error("Enabled() with no address")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	c.Addr = []string{"127.0.0.1:9000"}
	if !c.Enabled() {
		t.Error("not Enabled() with an address")
	}

	// Defaults never override what was set.
	c = Config{Batch: BatchConfig{MaxRows: 500000}, Retry: RetryConfig{InitialBackoff: time.Minute}}
	c.SetDefaults()
	if c.BufferRows != 500000 || c.Retry.MaxBackoff != time.Minute {
		t.Errorf("defaults derived from set fields: buffer_rows %d, max_backoff %s", c.BufferRows, c.Retry.MaxBackoff)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for none
	}{
		{"ok", func(c *Config) {}, ""},
		{"ok several addrs", func(c *Config) { c.Addr = []string{"ch1:9000", "[::1]:9440"} }, ""},
		{"addr without port", func(c *Config) { c.Addr = []string{"ch1"} }, `clickhouse.addr[0]: must be host:port, got "ch1"`},
		{"addr bad port", func(c *Config) { c.Addr = []string{"ch1:9000", "ch2:http"} }, `clickhouse.addr[1]: port must be 1-65535, got "http"`},
		{"addr no host", func(c *Config) { c.Addr = []string{":9000"} }, `clickhouse.addr[0]: missing host`},
		{"database", func(c *Config) { c.Database = "a-b" }, `clickhouse.database: must be letters, digits and underscores`},
		{"database digit", func(c *Config) { c.Database = "1db" }, `clickhouse.database:`},
		{"database injection", func(c *Config) { c.Database = "x; DROP TABLE y" }, `clickhouse.database:`},
		{"username", func(c *Config) { c.Username = "" }, `clickhouse.username: must not be empty`},
		{"password twice", func(c *Config) { c.Password = "x"; c.PasswordFile = "/f" }, `clickhouse.password_file: set together with clickhouse.password`},
		{"tls", func(c *Config) { c.TLS = &config.TLSConfig{Cert: "x", CertFile: "/y"} }, `clickhouse.tls: `},
		{"dial_timeout", func(c *Config) { c.DialTimeout = -time.Second }, `clickhouse.dial_timeout: must be > 0, got -1s`},
		{"max_rows", func(c *Config) { c.Batch.MaxRows = -1 }, `clickhouse.batch.max_rows: must be > 0, got -1`},
		{"max_wait", func(c *Config) { c.Batch.MaxWait = -1 }, `clickhouse.batch.max_wait: must be > 0, got -1ns`},
		{"buffer_rows", func(c *Config) { c.BufferRows = -5 }, `clickhouse.buffer_rows: must be > 0, got -5`},
		{"buffer below batch", func(c *Config) { c.BufferRows = 100 }, `clickhouse.buffer_rows: must be >= clickhouse.batch.max_rows (20000), got 100`},
		{"initial_backoff", func(c *Config) { c.Retry.InitialBackoff = -1 }, `clickhouse.retry.initial_backoff: must be > 0`},
		{"max_backoff", func(c *Config) { c.Retry.MaxBackoff = time.Millisecond }, `clickhouse.retry.max_backoff: must be >= clickhouse.retry.initial_backoff (200ms), got 1ms`},
		{"insert_timeout", func(c *Config) { c.InsertTimeout = -1 }, `clickhouse.insert_timeout: must be > 0`},
		{"shutdown_timeout", func(c *Config) { c.ShutdownTimeout = -1 }, `clickhouse.shutdown_timeout: must be > 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Addr: []string{"127.0.0.1:9000"}}
			c.SetDefaults()
			tc.modify(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Config{Addr: []string{"x"}}
	c.SetDefaults()
	c.Batch.MaxRows = -1
	c.Username = ""
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"clickhouse.addr[0]", "clickhouse.username", "clickhouse.batch.max_rows"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// The daemon nests Config under clickhouse: and decodes strictly.
func TestConfigYAML(t *testing.T) {
	const doc = `
clickhouse:
  addr: ["ch1:9000", "ch2:9000"]
  database: analytics
  username: correlator
  password: hunter2
  tls:
    ca_file: /etc/ca.pem
    insecure_skip_verify: true
  dial_timeout: 2s
  batch:
    max_rows: 1000
    max_wait: 250ms
  buffer_rows: 5000
  retry:
    initial_backoff: 100ms
    max_backoff: 10s
  insert_timeout: 5s
  shutdown_timeout: 3s
`
	var top struct {
		ClickHouse Config `yaml:"clickhouse"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&top); err != nil {
		t.Fatal(err)
	}
	c := top.ClickHouse
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Addr) != 2 || c.Database != "analytics" || c.Username != "correlator" || c.Password != "hunter2" ||
		c.TLS == nil || c.TLS.CAFile != "/etc/ca.pem" || !c.TLS.InsecureSkipVerify ||
		c.DialTimeout != 2*time.Second || c.Batch.MaxRows != 1000 || c.Batch.MaxWait != 250*time.Millisecond ||
		c.BufferRows != 5000 || c.Retry.InitialBackoff != 100*time.Millisecond || c.Retry.MaxBackoff != 10*time.Second ||
		c.InsertTimeout != 5*time.Second || c.ShutdownTimeout != 3*time.Second {
		t.Errorf("decoded %+v", c)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") || !strings.Contains(string(out), "<secret>") {
		t.Errorf("password not hidden when printed:\n%s", out)
	}

	bad := "clickhouse:\n  batch:\n    max_row: 5\n"
	dec = yaml.NewDecoder(strings.NewReader(bad))
	dec.KnownFields(true)
	if err := dec.Decode(&top); err == nil || !strings.Contains(err.Error(), "max_row") {
		t.Errorf("unknown field accepted: %v", err)
	}
}

func TestWriterOptionsDefaults(t *testing.T) {
	var o WriterOptions
	o.setDefaults()
	c := Config{}
	c.SetDefaults()
	if o != c.WriterOptions() {
		t.Errorf("zero WriterOptions default to %+v, want %+v", o, c.WriterOptions())
	}
	o = WriterOptions{MaxRows: 10, BufferRows: 5, MaxWait: time.Millisecond}
	o.setDefaults()
	if o.BufferRows != 10 || o.MaxWait != time.Millisecond {
		t.Errorf("got %+v", o)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"18.16.1":    {18, 16, 1},
		"24.3.2.23":  {24, 3, 2},
		"19.6":       {19, 6, 0},
		" 20.1.2.4 ": {20, 1, 2},
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "18", "x.y", "18.-1"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q): no error", in)
		}
	}
	v := Version{18, 16, 1}
	for _, tc := range []struct {
		major, minor int
		want         bool
	}{{18, 16, true}, {18, 15, true}, {18, 17, false}, {19, 1, false}, {1, 99, true}, {20, 1, false}} {
		if got := v.AtLeast(tc.major, tc.minor); got != tc.want {
			t.Errorf("%v.AtLeast(%d, %d) = %v", v, tc.major, tc.minor, got)
		}
	}
	if v.String() != "18.16.1" {
		t.Errorf("String() = %q", v)
	}
}
