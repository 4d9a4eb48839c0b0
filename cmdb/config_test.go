package cmdb

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func decodeConfig(t *testing.T, in string) (Config, error) {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(in))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	c.SetDefaults()
	return c, c.Validate()
}

func TestConfigDefaults(t *testing.T) {
	c, err := decodeConfig(t, "file: /etc/correlatord/cmdb.yaml\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || c.Format != "native" || c.PollInterval != 30*time.Second || len(c.BindLabels) != 7 || c.HTTPConfig != nil {
		t.Errorf("defaults: %+v", c)
	}
	c, err = decodeConfig(t, "url: https://cmdb.example.com/export.json\nhttp_config: {bearer_token: s3cret}\nformat: servicenow\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 5*time.Minute || c.Timeout != time.Minute || c.MaxBytes != 1<<30 || c.HTTPConfig == nil {
		t.Errorf("url defaults: %+v", c)
	}
	if strings.Contains(c.HTTPConfig.String(), "s3cret") {
		t.Error("the bearer token prints")
	}
	var off Config
	off.SetDefaults()
	if off.Enabled() || off.Validate() != nil {
		t.Errorf("empty config: enabled %v, %v", off.Enabled(), off.Validate())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"file: a\nurl: http://x/y\n", "cmdb.url: set either file or url"},
		{"url: ftp://x/y\n", "cmdb.url: \"ftp://x/y\" is not an http"},
		{"file: a\nformat: cmdbuild\n", `cmdb.format: unknown CMDB format "cmdbuild"`},
		{"file: a\npoll_interval: 100ms\n", "cmdb.poll_interval: must be at least 1s"},
		{"file: a\ntimeout: -1s\n", "cmdb.timeout: must be > 0"},
		{"file: a\nmax_bytes: -1\n", "cmdb.max_bytes: must be > 0"},
		{"file: a\nbind_labels: [instance, '']\n", "cmdb.bind_labels[1]: empty label name"},
		{"file: a\nhttp_config: {bearer_token: x}\n", "cmdb.http_config: set without url"},
		{"file: a\nreload: true\n", "field reload not found"},
		{"url: http://x/y\nhttp_config: {bearer_token: x, bearer_token_file: y}\n", "bearer_token"},
	} {
		_, err := decodeConfig(t, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestConfigNewStore(t *testing.T) {
	c, err := decodeConfig(t, "url: https://cmdb.example.com/export\n")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.NewStore(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.opts.Source.(*URLSource); !ok || s.opts.PollInterval != 5*time.Minute {
		t.Errorf("store %+v", s.opts)
	}
	c, _ = decodeConfig(t, "file: x.yaml\nbind_labels: [host]\n")
	s, err = c.NewStore(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.opts.Source.(*FileSource); !ok || s.Topology().BindLabels()[0] != "host" {
		t.Errorf("store %+v", s.opts)
	}
	var none Config
	if _, err := none.NewSource(nil); err == nil {
		t.Error("no source configured, yet one was made")
	}
}
