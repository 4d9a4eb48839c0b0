package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/ingest"
)

// endpoint is one request to every route the daemon serves behind auth.
type endpoint struct {
	method, path, body string
	need               role
}

// everyEndpoint lists a request for each API route (from apiRoutes, so a new
// route cannot escape this test) and each ingest route.
func everyEndpoint() []endpoint {
	var out []endpoint
	for _, rt := range apiRoutes() {
		path := rt.pattern
		if strings.HasPrefix(path, "/api/v1/problems/") {
			path = strings.Replace(path, "{id}", "PRB-1", 1)
		}
		path = strings.Replace(path, "{id}", "INC-db", 1)
		body := ""
		switch {
		case strings.HasSuffix(path, "/assign"):
			body = `{"assign_to":"bob"}`
		case strings.HasSuffix(path, "/comment"):
			body = `{"note":"x"}`
		case strings.HasSuffix(path, "/known-error"):
			body = `{"root_cause":"r","workaround":"w","matchers":["a=\"b\""]}`
		}
		out = append(out, endpoint{rt.method, path, body, rt.need})
	}
	ev := fmt.Sprintf(`{"time":%q,"labels":{"alertname":"A","instance":"h"}}`, time.Now().UTC().Format(time.RFC3339))
	am := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"r","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"",`+
		`"alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z"}]}`,
		time.Now().UTC().Format(time.RFC3339))
	list := fmt.Sprintf(`[{"labels":{"alertname":"A"},"startsAt":%q}]`, time.Now().UTC().Format(time.RFC3339))
	out = append(out,
		endpoint{"POST", "/api/v1/alerts", am, roleIngest},
		endpoint{"POST", "/api/v2/alerts", list, roleIngest},
		endpoint{"POST", "/api/v1/events", ev, roleIngest})
	return out
}

func authTestConfig() ingest.HTTPConfig {
	cfg := testHTTPConfig()
	cfg.BearerToken = tokLegacy
	return cfg
}

// TestAuthEveryEndpoint tries every endpoint without a token, with wrong
// ones, and with each role's token. Only the right role gets through, and
// nothing reaches the backend or the pipeline otherwise.
func TestAuthEveryEndpoint(t *testing.T) {
	const (
		pass = 0 // anything but 401 and 403
	)
	creds := []struct {
		name, header string
		// code by the role the endpoint needs
		want map[role]int
	}{
		{"none", "", map[role]int{roleIngest: 401, roleRead: 401, roleOperator: 401}},
		{"wrong", "Bearer not-a-configured-token", map[role]int{roleIngest: 401, roleRead: 401, roleOperator: 401}},
		{"prefix of a token", "Bearer " + tokOperator[:len(tokOperator)-1], map[role]int{roleIngest: 401, roleRead: 401, roleOperator: 401}},
		{"token with suffix", "Bearer " + tokOperator + "x", map[role]int{roleIngest: 401, roleRead: 401, roleOperator: 401}},
		{"basic scheme", "Basic " + tokOperator, map[role]int{roleIngest: 401, roleRead: 401, roleOperator: 401}},
		{"empty bearer", "Bearer ", map[role]int{roleIngest: 401, roleRead: 401, roleOperator: 401}},
		{"read", "Bearer " + tokRead, map[role]int{roleIngest: 403, roleRead: pass, roleOperator: 403}},
		{"operator", "Bearer " + tokOperator, map[role]int{roleIngest: 403, roleRead: pass, roleOperator: pass}},
		{"operator, lower-case scheme", "bearer " + tokOperator, map[role]int{roleIngest: 403, roleRead: pass, roleOperator: pass}},
		{"ingest", "Bearer " + tokIngest, map[role]int{roleIngest: pass, roleRead: 403, roleOperator: 403}},
		{"legacy bearer_token", "Bearer " + tokLegacy, map[role]int{roleIngest: pass, roleRead: 403, roleOperator: 403}},
		{"ingest and operator", "Bearer " + tokBoth, map[role]int{roleIngest: pass, roleRead: pass, roleOperator: pass}},
	}
	for _, ep := range everyEndpoint() {
		for _, c := range creds {
			t.Run(ep.method+" "+ep.path+" "+c.name, func(t *testing.T) {
				s := newTestServer(t, newFakeBackend(nil), authTestConfig(), nil)
				req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(ep.body))
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				rec := httptest.NewRecorder()
				s.mux.ServeHTTP(rec, req)
				want := c.want[ep.need]
				switch {
				case want == pass && (rec.Code == 401 || rec.Code == 403):
					t.Fatalf("%d, want through: %s", rec.Code, rec.Body)
				case want == pass && ep.need == roleIngest && rec.Code != 200:
					t.Fatalf("ingest: %d %s", rec.Code, rec.Body)
				case want != pass && rec.Code != want:
					t.Fatalf("%d, want %d: %s", rec.Code, want, rec.Body)
				}
				if want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if want != pass {
					if n := len(s.backend.cmds); n > 0 {
						t.Errorf("an unauthorized request reached the backend: %+v", s.backend.cmds)
					}
					if s.fwd.events > 0 {
						t.Error("an unauthorized request was ingested")
					}
					if e := decode[errorBody](t, rec); e.Status != "error" || e.Error == "" {
						t.Errorf("not a JSON error: %s", rec.Body)
					}
				}
				if want == pass && ep.need == roleOperator && len(s.backend.cmds) == 1 && s.backend.cmds[0].By == "" {
					t.Error("a command without who acted")
				}
				for _, tok := range []string{tokRead, tokOperator, tokIngest, tokLegacy, tokBoth} {
					if strings.Contains(rec.Body.String(), tok) {
						t.Error("a token is echoed in the response")
					}
				}
			})
		}
	}
}

func TestAuthOpenOperationalEndpoints(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), authTestConfig(), nil)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 200 {
			t.Errorf("GET %s without a token: %d", p, rec.Code)
		}
	}
}

// TestAuthOff: with no token configured, reads and ingest are open, but no
// operator action changes state, whatever the request carries.
func TestAuthOff(t *testing.T) {
	for _, ep := range everyEndpoint() {
		for _, hdr := range []string{"", "Bearer " + tokOperator} {
			s := newTestServer(t, newFakeBackend(nil), ingest.HTTPConfig{}, nil)
			req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(ep.body))
			if hdr != "" {
				req.Header.Set("Authorization", hdr)
			}
			rec := httptest.NewRecorder()
			s.mux.ServeHTTP(rec, req)
			if ep.need == roleOperator {
				if rec.Code != 403 || !strings.Contains(rec.Body.String(), "operator actions need http.tokens with the operator role") {
					t.Errorf("%s %s with auth off: %d %s", ep.method, ep.path, rec.Code, rec.Body)
				}
				if len(s.backend.cmds) > 0 {
					t.Errorf("%s %s: the backend acted with auth off", ep.method, ep.path)
				}
			} else if rec.Code != 200 {
				t.Errorf("%s %s with auth off: %d %s", ep.method, ep.path, rec.Code, rec.Body)
			}
		}
	}
}

// TestAuthLegacyTokenTurnsAuthOn: http.bearer_token alone is an ingest-only
// token; with it, reads need a read token too.
func TestAuthLegacyTokenTurnsAuthOn(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), ingest.HTTPConfig{BearerToken: "short"}, nil)
	for _, tc := range []struct {
		ep   endpoint
		hdr  string
		code int
	}{
		{everyEndpoint()[len(everyEndpoint())-1], "Bearer short", 200},
		{everyEndpoint()[len(everyEndpoint())-1], "", 401},
		{endpoint{method: "GET", path: "/api/v1/incidents"}, "", 401},
		{endpoint{method: "GET", path: "/api/v1/incidents"}, "Bearer short", 403},
	} {
		req := httptest.NewRequest(tc.ep.method, tc.ep.path, strings.NewReader(tc.ep.body))
		if tc.hdr != "" {
			req.Header.Set("Authorization", tc.hdr)
		}
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%s %s %q: %d, want %d: %s", tc.ep.method, tc.ep.path, tc.hdr, rec.Code, tc.code, rec.Body)
		}
	}
}

func TestTokenConfigValidation(t *testing.T) {
	const good = "0123456789abcdef-good"
	const other = "0123456789abcdef-other"
	tok := func(name, value, roles string) string {
		return fmt.Sprintf("    - {name: %s, token: %q, roles: [%s]}\n", name, value, roles)
	}
	cases := []struct{ name, tokens, extra, want string }{
		{"bad role", tok("a", good, "read") + tok("b", other, "admin"), "", `http.tokens[1].roles[0]: "admin" is not one of ingest, read, operator`},
		{"no roles", tok("a", good, ""), "", "http.tokens[0].roles: at least one of ingest, read, operator"},
		{"twice the role", tok("a", good, "read, read"), "", `http.tokens[0].roles[1]: "read" is listed twice`},
		{"empty token", "    - {name: a, roles: [read]}\n", "", "http.tokens[0].token: set token or token_file"},
		{"token and file", "    - {name: a, token: " + good + ", token_file: /x, roles: [read]}\n", "", "http.tokens[0].token_file: set either token or token_file, not both"},
		{"short token", tok("a", "short", "read"), "", "http.tokens[0].token: must be at least 16 characters, got 5"},
		{"spaces in token", tok("a", "0123456789 abcdef", "read"), "", "http.tokens[0].token: must not contain spaces"},
		{"no name", tok(`""`, good, "read"), "", "http.tokens[0].name: must not be empty"},
		{"bad name", tok(`"a b"`, good, "read"), "", `http.tokens[0].name: "a b": use at most 64 letters`},
		{"duplicate names", tok("a", good, "read") + tok("a", other, "read"), "", `http.tokens[1].name: "a" is used by http.tokens[0] too`},
		{"duplicate values", tok("a", good, "read") + tok("b", good, "operator"), "", "http.tokens[1].token: same value as http.tokens[0].token"},
		{"same as bearer_token", tok("a", good, "read"), "  bearer_token: " + good + "\n", "http.tokens[0].token: same value as http.bearer_token"},
		{"name of bearer_token", tok("ingest", good, "read"), "  bearer_token: x\n", `http.tokens[0].name: "ingest" is the name of http.bearer_token`},
		{"unknown field", "    - {name: a, secret: " + good + ", roles: [read]}\n", "", "field secret not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte("http:\n" + tc.extra + "  tokens:\n" + tc.tokens))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			for _, secret := range []string{good, other} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a token: %v", err)
				}
			}
		})
	}
	cfg, err := parseConfig([]byte("http:\n  bearer_token: legacy\n  tokens:\n" + tok("grafana", good, "read") +
		tok("oncall", other, "operator, ingest") + "    - {name: ci, token_file: /run/secrets/t, roles: [ingest]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTP.Tokens) != 3 || cfg.HTTP.Tokens[1].Roles[1] != "ingest" {
		t.Errorf("tokens %+v", cfg.HTTP.Tokens)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), good) || !strings.Contains(string(out), "<secret>") {
		t.Errorf("a token prints:\n%s", out)
	}
}

func TestResolveTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte(tokOperator+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "CORRELATOR_INGEST_TOKEN" {
				return v
			}
			return ""
		}
	}
	set, err := resolveTokens(ingest.HTTPConfig{Tokens: []ingest.TokenConfig{
		{Name: "ops", TokenFile: file, Roles: []string{"operator"}},
		{Name: "r", Token: tokRead, Roles: []string{"read"}},
	}}, env(tokLegacy))
	if err != nil {
		t.Fatal(err)
	}
	for presented, want := range map[string]string{tokOperator: "ops", tokRead: "r", tokLegacy: "ingest", "nope": "", "": ""} {
		got := ""
		if tk := set.lookup(presented); tk != nil {
			got = tk.name
		}
		if got != want {
			t.Errorf("lookup of token %d: %q, want %q", len(presented), got, want)
		}
	}
	if tk := set.lookup(tokOperator); tk.roles != roleOperator|roleRead {
		t.Errorf("operator roles %b: operator implies read", tk.roles)
	}
	for _, tc := range []struct {
		cfg  ingest.HTTPConfig
		want string
	}{
		{ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "a", TokenFile: filepath.Join(dir, "missing"), Roles: []string{"read"}}}},
			"http.tokens[0].token_file: open"},
		{ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "a", TokenFile: short, Roles: []string{"read"}}}},
			"http.tokens[0].token_file: the token in " + short + " must be at least 16 characters"},
		{ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "a", TokenFile: file, Roles: []string{"read"}},
			{Name: "b", Token: tokOperator, Roles: []string{"operator"}}}}, "http.tokens[1]: same token as http.tokens[0]"},
		{ingest.HTTPConfig{BearerTokenFile: file, Tokens: []ingest.TokenConfig{{Name: "b", Token: tokOperator, Roles: []string{"operator"}}}},
			"http.tokens[0]: same token as http.bearer_token_file"},
		{ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "ingest", Token: tokOperator, Roles: []string{"operator"}}}},
			`http.tokens[0].name: "ingest" is the name of CORRELATOR_INGEST_TOKEN`},
		{ingest.HTTPConfig{BearerTokenFile: filepath.Join(dir, "missing")}, "http.bearer_token_file: open"},
		{ingest.HTTPConfig{BearerTokenFile: empty}, "http.bearer_token_file: " + empty + " is empty"},
	} {
		_, err := resolveTokens(tc.cfg, env("legacy-from-env-123456"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
			continue
		}
		for _, secret := range []string{tokOperator, "tiny-secret", "legacy-from-env"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows a token: %v", err)
			}
		}
	}
}

// TestAuthReload: SIGHUP's Reload swaps tokens at once (the ingest token
// too); a bad configuration keeps the running tokens.
func TestAuthReload(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), authTestConfig(), nil)
	get := func(tok string) int {
		req := httptest.NewRequest("GET", "/api/v1/incidents", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, req)
		return rec.Code
	}
	ingestCode := func(tok string) int {
		ep := everyEndpoint()[len(everyEndpoint())-1]
		req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(ep.body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, req)
		return rec.Code
	}
	const rotated = "rotated-read-token-0123"
	if err := s.auth.Reload(ingest.HTTPConfig{BearerToken: "new-legacy", Tokens: []ingest.TokenConfig{{Name: "reader", Token: rotated, Roles: []string{"read"}}}}); err != nil {
		t.Fatal(err)
	}
	if get(tokRead) != 401 || get(rotated) != 200 || ingestCode(tokLegacy) != 401 || ingestCode("new-legacy") != 200 {
		t.Errorf("after reload: old %d new %d, ingest old %d new %d", get(tokRead), get(rotated), ingestCode(tokLegacy), ingestCode("new-legacy"))
	}
	bad := ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "x", TokenFile: "/nonexistent/token", Roles: []string{"read"}}}}
	if err := s.auth.Reload(bad); err == nil {
		t.Fatal("a missing token file reloaded")
	}
	if get(rotated) != 200 {
		t.Error("a failed reload dropped the running tokens")
	}
}

// TestSecretsNeverLoggedOrExposed drives every path that logs (start,
// reloads good and bad, requests with good and wrong tokens, actions) with
// debug logging, and looks for the tokens in the logs, /metrics and the
// responses.
func TestSecretsNeverLoggedOrExposed(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zap.New(core)
	wrong := "wrong-token-that-must-not-be-logged"
	s := newTestServer(t, newFakeBackend(nil), authTestConfig(), logger)
	var bodies strings.Builder
	for _, ep := range everyEndpoint() {
		for _, tok := range []string{"", wrong, tokRead, tokOperator, tokIngest, tokLegacy} {
			req := httptest.NewRequest(ep.method, ep.path, strings.NewReader(ep.body))
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			rec := httptest.NewRecorder()
			s.mux.ServeHTTP(rec, req)
			bodies.WriteString(rec.Body.String())
		}
	}
	_ = s.auth.Reload(authTestConfig())
	_ = s.auth.Reload(ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "a", Token: tokRead, Roles: []string{"read"}},
		{Name: "b", Token: tokRead, Roles: []string{"read"}}}})
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metrics := rec.Body.String()
	if !strings.Contains(metrics, `correlator_http_auth_denied_total{reason="wrong_token"}`) ||
		!strings.Contains(metrics, `correlator_api_requests_total{code="403",route="acknowledge_incident"}`) {
		t.Errorf("metrics lack the auth and request counters")
	}
	if logs.FilterMessage("operator action").Len() == 0 || logs.FilterMessage("wrong bearer token").Len() == 0 {
		t.Errorf("expected audit and debug lines, got %d entries", logs.Len())
	}
	var logText strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&logText, "%s %v\n", e.Message, e.ContextMap())
	}
	for _, secret := range []string{wrong, tokRead, tokOperator, tokIngest, tokLegacy, tokBoth} {
		if strings.Contains(logText.String(), secret) {
			t.Errorf("a token is in the logs:\n%s", logText.String())
		}
		if strings.Contains(metrics, secret) {
			t.Error("a token is in /metrics")
		}
		if strings.Contains(bodies.String(), secret) {
			t.Error("a token is in a response")
		}
	}
}

func TestNewAPIAuthFailsOnBadTokens(t *testing.T) {
	_, err := newAPIAuth(ingest.HTTPConfig{Tokens: []ingest.TokenConfig{{Name: "a", TokenFile: "/nonexistent", Roles: []string{"read"}}}},
		prometheus.NewRegistry(), zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "http.tokens[0].token_file") {
		t.Fatalf("error %v", err)
	}
}

func BenchmarkTokenLookup(b *testing.B) {
	cfg := testHTTPConfig()
	for i := range 20 {
		cfg.Tokens = append(cfg.Tokens, ingest.TokenConfig{Name: fmt.Sprintf("t%d", i), Token: config.Secret("0123456789abcdef" + fmt.Sprint(i)), Roles: []string{"read"}})
	}
	set, err := resolveTokens(cfg, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if set.lookup(tokRead) == nil {
			b.Fatal("not found")
		}
	}
}
