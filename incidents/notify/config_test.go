package notify

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"gopkg.in/yaml.v3"
)

type fileConfig struct {
	Notify Config `yaml:"notify"`
}

func loadConfig(t *testing.T, data []byte) (*Config, error) {
	t.Helper()
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		return nil, err
	}
	fc.Notify.SetDefaults()
	return &fc.Notify, fc.Notify.Validate()
}

func TestGoodConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/notify.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retry.InitialBackoff != 2*time.Second || c.Retry.MaxAge != 12*time.Hour {
		t.Errorf("retry: %+v", c.Retry)
	}
	if c.Targets[0].Timeout != DefaultTimeout || c.Targets[1].Timeout != 20*time.Second {
		t.Errorf("timeouts: %s %s", c.Targets[0].Timeout, c.Targets[1].Timeout)
	}
	if c.Targets[1].Table != "incident" || c.Targets[0].Table != "" {
		t.Errorf("table defaults: %q %q", c.Targets[1].Table, c.Targets[0].Table)
	}
	if c.Outbox.Topic != DefaultOutboxTopic || c.Outbox.MaxPending != DefaultMaxPending {
		t.Errorf("outbox defaults: %+v", c.Outbox)
	}
	f := c.Targets[0].Filter()
	if len(f.Kinds) != 3 || f.MinPriority != "P2" {
		t.Errorf("filter: %+v", f)
	}
	// Secrets print as <secret>.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s3cr3t-signing-key", "sn0w-password"} {
		if strings.Contains(string(out), s) {
			t.Errorf("marshalled config shows secret %q:\n%s", s, out)
		}
	}
	if !strings.Contains(string(out), "<secret>") {
		t.Errorf("marshalled config has no <secret>:\n%s", out)
	}
}

func TestBadConfigs(t *testing.T) {
	const base = "notify:\n  targets:\n"
	for _, tc := range []struct{ name, yml, want string }{
		{"unknown field", base + "    - {name: a, type: webhook, url: 'http://x', colour: red}\n", "field colour not found"},
		{"no name", base + "    - {type: webhook, url: 'http://x'}\n", "notify.targets[0].name: must not be empty"},
		{"bad name", base + "    - {name: 'a b', type: webhook, url: 'http://x'}\n", "notify.targets[0].name:"},
		{"dup name", base + "    - {name: a, type: webhook, url: 'http://x'}\n    - {name: a, type: webhook, url: 'http://y'}\n", "notify.targets[1].name: \"a\" is also the name of targets[0]"},
		{"no type", base + "    - {name: a, url: 'http://x'}\n", "notify.targets[0].type: must be set"},
		{"bad type", base + "    - {name: a, type: email, url: 'http://x'}\n", "notify.targets[0].type: \"email\""},
		{"no url", base + "    - {name: a, type: webhook}\n", "notify.targets[0].url: must not be empty"},
		{"bad url hides path", base + "    - {name: a, type: webhook, url: 'ftp://h/secretpath'}\n", "notify.targets[0].url: \"ftp://h/...\""},
		{"secret twice", base + "    - {name: a, type: webhook, url: 'http://x', secret: s, secret_file: f}\n", "notify.targets[0].secret_file: set either"},
		{"snow no auth", base + "    - {name: a, type: servicenow, url: 'https://x'}\n", "notify.targets[0].username: servicenow needs"},
		{"snow secret", base + "    - {name: a, type: servicenow, url: 'https://x', username: u, password: p, secret: s}\n", "notify.targets[0].secret: is for webhooks"},
		{"snow query", base + "    - {name: a, type: servicenow, url: 'https://x?a=b', bearer_token: t}\n", "notify.targets[0].url: the instance URL"},
		{"password without user", base + "    - {name: a, type: webhook, url: 'http://x', password: p}\n", "notify.targets[0].username: must be set"},
		{"basic and bearer", base + "    - {name: a, type: webhook, url: 'http://x', username: u, password: p, bearer_token: t}\n", "notify.targets[0].bearer_token: set either"},
		{"reserved header", base + "    - {name: a, type: webhook, url: 'http://x', headers: {idempotency-key: x}}\n", "notify.targets[0].headers: \"idempotency-key\" is set by correlatord"},
		{"bad header", base + "    - {name: a, type: webhook, url: 'http://x', headers: {'a b': x}}\n", "notify.targets[0].headers: \"a b\" is not a valid header name"},
		{"table on webhook", base + "    - {name: a, type: webhook, url: 'http://x', table: incident}\n", "notify.targets[0].table: is for servicenow"},
		{"bad table", base + "    - {name: a, type: servicenow, url: 'https://x', bearer_token: t, table: 'Inc;drop'}\n", "notify.targets[0].table:"},
		{"bad kind", base + "    - {name: a, type: webhook, url: 'http://x', kinds: [created, deleted]}\n", "notify.targets[0].kinds[1]: \"deleted\""},
		{"dup kind", base + "    - {name: a, type: webhook, url: 'http://x', kinds: [created, created]}\n", "notify.targets[0].kinds[1]: \"created\" is listed twice"},
		{"bad priority", base + "    - {name: a, type: webhook, url: 'http://x', min_priority: high}\n", "notify.targets[0].min_priority: \"high\""},
		{"negative timeout", base + "    - {name: a, type: webhook, url: 'http://x', timeout: -1s}\n", "notify.targets[0].timeout: must be > 0"},
		{"backoff order", "notify:\n  retry: {initial_backoff: 10s, max_backoff: 1s}\n", "notify.retry.max_backoff: must be at least initial_backoff"},
		{"max age", "notify:\n  retry: {max_age: 1m}\n", "notify.retry.max_age: must be at least max_backoff"},
		{"file outbox no dir", "notify:\n  outbox: {type: file}\n", "notify.outbox.data_dir: must be set"},
		{"outbox type", "notify:\n  outbox: {type: redis}\n", "notify.outbox.type: \"redis\""},
		{"outbox topic", "notify:\n  outbox: {topic: 'a/b'}\n", "notify.outbox.topic:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(t, []byte(tc.yml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant an error with %q", err, tc.want)
			}
		})
	}
}

func TestNewRoutesReadsSecretFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var gotAuth, gotTenant string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotTenant = r.Header.Get("Authorization"), r.Header.Get("X-Tenant")
	}))
	defer srv.Close()
	c := Config{Targets: []TargetConfig{{Name: "chat", Type: TypeWebhook, URL: srv.URL,
		BearerTokenFile: filepath.Join(dir, "token"), Headers: map[string]config.Secret{"X-Tenant": "ops"}}}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	routes, err := NewRoutes(&c, RouteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := testNotification("inc-1", 1, KindCreated)
	if err := routes[0].Target.Send(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	if gotAuth != "Bearer file-token" || gotTenant != "ops" {
		t.Errorf("Authorization %q, X-Tenant %q", gotAuth, gotTenant)
	}

	c.Targets[0].BearerTokenFile = filepath.Join(dir, "missing")
	if _, err := NewRoutes(&c, RouteOptions{}); err == nil || !strings.Contains(err.Error(), "notify.targets[0].bearer_token_file") {
		t.Errorf("missing file: %v", err)
	}
}
