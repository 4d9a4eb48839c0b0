package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/ingest"
)

// role is what a token may do. Roles are bits so a token's set is one word.
type role uint8

const (
	roleIngest role = 1 << iota
	roleRead
	roleOperator
)

func (r role) String() string {
	switch r {
	case roleIngest:
		return ingest.RoleIngest
	case roleRead:
		return ingest.RoleRead
	case roleOperator:
		return ingest.RoleOperator
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// legacyTokenName names http.bearer_token (or bearer_token_file, or
// CORRELATOR_INGEST_TOKEN) among the tokens: it is an ingest-only token.
const legacyTokenName = "ingest"

// The reasons a request is refused, for correlator_http_auth_denied_total.
const (
	deniedMissing  = "missing_token"
	deniedWrong    = "wrong_token"
	deniedRole     = "missing_role"
	deniedAuthOff  = "auth_off"
	operatorNeeded = "operator actions need http.tokens with the operator role"
)

// apiToken is one resolved token. Only the SHA-256 of the secret is kept:
// comparing digests of equal length makes the comparison constant-time in
// the presented token's length too, and a heap dump shows no token.
type apiToken struct {
	name  string
	hash  [sha256.Size]byte
	roles role
}

// tokenSet is an immutable snapshot of the tokens, swapped whole on reload.
type tokenSet struct {
	tokens []apiToken
}

// lookup returns the token presented, or nil. It compares against every
// token, whatever matches, and selects the match without a branch, so the
// time taken says neither whether nor which token matched. Values are
// unique (validation), so at most one does.
func (s *tokenSet) lookup(presented string) *apiToken {
	h := sha256.Sum256([]byte(presented))
	found := -1
	for i := range s.tokens {
		eq := subtle.ConstantTimeCompare(h[:], s.tokens[i].hash[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil
	}
	return &s.tokens[found]
}

// apiAuth authorizes the HTTP API by bearer token and role. Auth is on when
// any token is configured: then ingest endpoints need the ingest role, reads
// the read role and operator actions the operator role (which implies read).
// When it is off, ingest and reads are open but operator actions are
// refused, so no state ever changes without authorization. /healthz,
// /readyz and /metrics are never wrapped. Safe for concurrent use; Reload
// swaps the tokens atomically.
type apiAuth struct {
	cur    atomic.Pointer[tokenSet]
	denied *prometheus.CounterVec
	logger *zap.Logger
}

// newAPIAuth resolves the tokens of cfg (reading token files and the
// CORRELATOR_INGEST_TOKEN environment variable).
func newAPIAuth(cfg ingest.HTTPConfig, reg prometheus.Registerer, logger *zap.Logger) (*apiAuth, error) {
	a := &apiAuth{
		logger: logger.With(zap.String("component", "api-auth")),
		denied: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_http_auth_denied_total",
			Help: "HTTP API requests refused by authorization, by reason (missing_token, wrong_token, missing_role, auth_off).",
		}, []string{"reason"}),
	}
	for _, r := range []string{deniedMissing, deniedWrong, deniedRole, deniedAuthOff} {
		a.denied.WithLabelValues(r)
	}
	set, err := resolveTokens(cfg, os.Getenv)
	if err != nil {
		return nil, err
	}
	a.cur.Store(set)
	a.logStatus(set, "API authorization")
	return a, nil
}

// Reload resolves cfg's tokens again and swaps them in; on error the
// running tokens stay. Call it on SIGHUP after the configuration loaded.
func (a *apiAuth) Reload(cfg ingest.HTTPConfig) error {
	set, err := resolveTokens(cfg, os.Getenv)
	if err != nil {
		return err
	}
	a.cur.Store(set)
	a.logStatus(set, "API tokens reloaded")
	return nil
}

func (a *apiAuth) logStatus(set *tokenSet, msg string) {
	names := make([]string, len(set.tokens))
	for i, t := range set.tokens {
		names[i] = t.name
	}
	if len(names) == 0 {
		a.logger.Warn(msg + ": no tokens configured (http.tokens); reads and ingest are open, operator actions are refused")
		return
	}
	a.logger.Info(msg, zap.Strings("token_names", names))
}

// resolveTokens reads every secret and checks what only the values can
// show. Errors name the field, never the value.
func resolveTokens(cfg ingest.HTTPConfig, getenv func(string) string) (*tokenSet, error) {
	set := &tokenSet{}
	seen := map[[sha256.Size]byte]string{}
	add := func(field, name, secret string, roles role) error {
		h := sha256.Sum256([]byte(secret))
		if other, dup := seen[h]; dup {
			return fmt.Errorf("%s: same token as %s; give each client its own token", field, other)
		}
		seen[h] = field
		set.tokens = append(set.tokens, apiToken{name: name, hash: h, roles: roles})
		return nil
	}
	legacy := string(cfg.BearerToken)
	legacyField := "http.bearer_token"
	if legacy == "" && cfg.BearerTokenFile != "" {
		legacyField = "http.bearer_token_file"
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", legacyField, err)
		}
		legacy = strings.TrimRight(string(b), "\r\n")
		if legacy == "" {
			return nil, fmt.Errorf("%s: %s is empty", legacyField, cfg.BearerTokenFile)
		}
	} else if legacy == "" {
		legacyField = "CORRELATOR_INGEST_TOKEN"
		legacy = getenv("CORRELATOR_INGEST_TOKEN")
	}
	if legacy != "" {
		if err := add(legacyField, legacyTokenName, legacy, roleIngest); err != nil {
			return nil, err
		}
	}
	for i, t := range cfg.Tokens {
		field := fmt.Sprintf("http.tokens[%d]", i)
		if legacy != "" && t.Name == legacyTokenName {
			return nil, fmt.Errorf("%s.name: %q is the name of %s; choose another", field, t.Name, legacyField)
		}
		secret := string(t.Token)
		if secret == "" {
			b, err := os.ReadFile(t.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("%s.token_file: %w", field, err)
			}
			secret = strings.TrimRight(string(b), "\r\n")
			if err := ingest.ValidToken(secret); err != nil {
				return nil, fmt.Errorf("%s.token_file: the token in %s %w", field, t.TokenFile, err)
			}
		}
		var roles role
		for _, r := range t.Roles {
			switch r {
			case ingest.RoleIngest:
				roles |= roleIngest
			case ingest.RoleRead:
				roles |= roleRead
			case ingest.RoleOperator:
				roles |= roleOperator | roleRead
			default: // Validate rejects these; never grant by accident
				return nil, fmt.Errorf("%s.roles: %q is not one of ingest, read, operator", field, r)
			}
		}
		if err := add(field, t.Name, secret, roles); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// on reports whether any token is configured.
func (a *apiAuth) on() bool { return len(a.cur.Load().tokens) > 0 }

// authorize decides whether r may act with role need. It returns the token
// (nil when auth is off) or the status to answer (401 or 403) and why.
func (a *apiAuth) authorize(r *http.Request, need role) (tok *apiToken, status int, reason string) {
	set := a.cur.Load()
	if len(set.tokens) == 0 {
		if need == roleOperator {
			a.denied.WithLabelValues(deniedAuthOff).Inc()
			return nil, http.StatusForbidden, operatorNeeded
		}
		return nil, 0, ""
	}
	presented, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		a.denied.WithLabelValues(deniedMissing).Inc()
		return nil, http.StatusUnauthorized, `missing bearer token: send "Authorization: Bearer <token>"`
	}
	tok = set.lookup(presented)
	if tok == nil {
		a.denied.WithLabelValues(deniedWrong).Inc()
		a.logger.Debug("wrong bearer token", zap.String("remote", r.RemoteAddr), zap.String("path", r.URL.Path))
		return nil, http.StatusUnauthorized, "wrong bearer token"
	}
	if tok.roles&need == 0 {
		a.denied.WithLabelValues(deniedRole).Inc()
		a.logger.Debug("token lacks the role", zap.String("token_name", tok.name), zap.Stringer("role", need),
			zap.String("path", r.URL.Path))
		return nil, http.StatusForbidden, fmt.Sprintf("token %q lacks the %s role", tok.name, need)
	}
	return tok, 0, ""
}

// bearer extracts the token of an "Authorization: Bearer <token>" header;
// the scheme is case-insensitive (RFC 6750 and RFC 9110).
func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Ingest is the ingest endpoints' authorizer (ingest.HTTPOptions.Authorize).
func (a *apiAuth) Ingest(r *http.Request) (int, string) {
	_, status, reason := a.authorize(r, roleIngest)
	return status, reason
}

type tokenKey struct{}

// tokenName returns the name of the token that authorized r ("" when auth
// is off).
func tokenName(r *http.Request) string {
	if t, ok := r.Context().Value(tokenKey{}).(*apiToken); ok && t != nil {
		return t.name
	}
	return ""
}

// require wraps h so that it runs only for requests with role need.
func (a *apiAuth) require(need role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, status, reason := a.authorize(r, need)
		if status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="correlatord"`)
			}
			writeError(w, status, errors.New(reason))
			return
		}
		if tok != nil {
			r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
		}
		h.ServeHTTP(w, r)
	})
}
