package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ServiceNow incident states and the values this target sets.
const (
	snowStateInProgress = "2"
	snowStateResolved   = "6"
	snowStateClosed     = "7"
	snowCloseCode       = "Solved (Permanently)"
	// snowCorrelationDisplay names the source on the record.
	snowCorrelationDisplay = "correlatord"
	// snowShortDescriptionMax is the length of the incident table's
	// short_description column.
	snowShortDescriptionMax = 160
)

// DefaultServiceNowCacheSize bounds the incident id → sys_id cache.
const DefaultServiceNowCacheSize = 10000

// ServiceNowOptions configure a ServiceNow target.
type ServiceNowOptions struct {
	// Name identifies the target in metrics and logs.
	Name string
	// BaseURL is the instance URL, e.g. https://acme.service-now.com.
	BaseURL string
	// Table is the Table API table. Default "incident".
	Table string
	// Username and Password select basic authentication; BearerToken an
	// OAuth token. Set one or the other.
	Username, Password string
	BearerToken        string
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// Client sends the requests. Default: a client that does not follow
	// redirects.
	Client *http.Client
	// CacheSize bounds the remembered sys_ids. Default 10000.
	CacheSize int
	// Now reads the clock for Retry-After dates. Default time.Now.
	Now func() time.Time
}

// ServiceNow keeps one record per incident in a ServiceNow table through the
// Table API.
//
// Field mapping: short_description = Ticket.Title (cut to 160 characters),
// description = Ticket.Description followed by the reason of the latest
// change, impact and urgency = Ticket.Impact and Ticket.Urgency (1..3,
// omitted when 0), cmdb_ci = Ticket.RootCauseCI, assignment_group =
// Ticket.SupportGroup (reference fields: a sys_id or a display value that
// ServiceNow can match), correlation_id = IncidentID, correlation_display =
// "correlatord". Every request after the first for a record also writes the
// reason to work_notes, so the record's journal keeps the history. Priority
// is not sent: ServiceNow derives it from impact and urgency.
//
// State mapping: created, updated and escalated leave the state alone (a new
// record starts as New); resolved sets state 6 (Resolved) with close_code
// "Solved (Permanently)" and close_notes (the reason, plus known error,
// problem and change ids); closed sets state 7 (Closed) with the same close
// fields, which ServiceNow requires to close; reopened sets state 2 (In
// Progress).
//
// The first notification of an incident looks the record up by
// correlation_id (GET ?sysparm_query=correlation_id=<id>), PATCHes it when
// found and POSTs a new one otherwise, then remembers its sys_id. So a retry
// after a POST whose answer was lost, or a restart with an empty cache,
// updates the record instead of creating a second one. A PATCH answered 404
// (the record was deleted) forgets the sys_id and fails retryably, so the
// next attempt looks up again and creates a new record.
//
// Sends for the same incident are serialised, so two of them cannot both
// find nothing and both POST.
type ServiceNow struct {
	opts ServiceNowOptions
	base string // BaseURL + /api/now/table/ + Table

	locks [64]sync.Mutex // by hash of incident id
	seed  maphash.Seed

	mu    sync.Mutex
	cache map[string]string // incident id → sys_id
	order []string          // cache keys in insertion order, a ring
	next  int
}

// NewServiceNow returns a ServiceNow target.
func NewServiceNow(opts ServiceNowOptions) (*ServiceNow, error) {
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("servicenow %s: url %q is not an http:// or https:// URL", opts.Name, redactURL(opts.BaseURL))
	}
	if opts.Name == "" {
		return nil, errors.New("servicenow: empty name")
	}
	if opts.Table == "" {
		opts.Table = DefaultServiceNowTable
	}
	if !validTable(opts.Table) {
		return nil, fmt.Errorf("servicenow %s: table %q is not a table name", opts.Name, opts.Table)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Client == nil {
		opts.Client = newHTTPClient(nil)
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultServiceNowCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &ServiceNow{
		opts:  opts,
		base:  strings.TrimRight(opts.BaseURL, "/") + "/api/now/table/" + opts.Table,
		seed:  maphash.MakeSeed(),
		cache: make(map[string]string),
		order: make([]string, opts.CacheSize),
	}, nil
}

// Name returns the target's name.
func (s *ServiceNow) Name() string { return s.opts.Name }

// Send creates or updates the incident's record. See [ServiceNow] and
// [Target].
func (s *ServiceNow) Send(ctx context.Context, n *Notification) error {
	if strings.ContainsAny(n.IncidentID, "^\r\n") {
		// '^' separates terms of an encoded query and cannot be escaped:
		// the lookup would match the wrong record.
		return Permanent(fmt.Errorf("incident id %q has a character ServiceNow's encoded queries cannot carry ('^' or a line break)", n.IncidentID))
	}
	l := &s.locks[maphash.String(s.seed, n.IncidentID)%uint64(len(s.locks))]
	l.Lock()
	defer l.Unlock()

	sysID, cached := s.cached(n.IncidentID)
	if !cached {
		var err error
		if sysID, err = s.lookup(ctx, n); err != nil {
			return err
		}
		if sysID != "" {
			s.remember(n.IncidentID, sysID)
		}
	}
	fields := s.fields(n, sysID != "")
	if sysID == "" {
		sysID, err := s.create(ctx, n, fields)
		if err != nil {
			return err
		}
		s.remember(n.IncidentID, sysID)
		return nil
	}
	return s.update(ctx, n, sysID, fields)
}

// fields maps n to the record's fields; update adds the work note.
func (s *ServiceNow) fields(n *Notification, update bool) map[string]string {
	t := &n.Ticket
	f := map[string]string{
		"short_description":   truncateRunes(t.Title, snowShortDescriptionMax),
		"description":         description(n),
		"correlation_id":      n.IncidentID,
		"correlation_display": snowCorrelationDisplay,
	}
	if t.Impact > 0 {
		f["impact"] = fmt.Sprint(t.Impact)
	}
	if t.Urgency > 0 {
		f["urgency"] = fmt.Sprint(t.Urgency)
	}
	if t.RootCauseCI != "" {
		f["cmdb_ci"] = t.RootCauseCI
	}
	if t.SupportGroup != "" {
		f["assignment_group"] = t.SupportGroup
	}
	if update && n.Reason != "" {
		f["work_notes"] = fmt.Sprintf("[correlatord] %s: %s", n.Kind, n.Reason)
	}
	switch n.Kind {
	case KindResolved, KindClosed:
		f["state"] = snowStateResolved
		if n.Kind == KindClosed {
			f["state"] = snowStateClosed
		}
		f["close_code"] = snowCloseCode
		f["close_notes"] = closeNotes(n)
	case KindReopened:
		f["state"] = snowStateInProgress
	}
	return f
}

func description(n *Notification) string {
	d := n.Ticket.Description
	if n.Reason != "" {
		if d != "" {
			d += "\n\n"
		}
		d += fmt.Sprintf("Latest change (%s): %s", n.Kind, n.Reason)
	}
	return d
}

func closeNotes(n *Notification) string {
	var b strings.Builder
	b.WriteString("Resolved by correlatord")
	if n.Reason != "" {
		b.WriteString(": ")
		b.WriteString(n.Reason)
	}
	t := &n.Ticket
	for _, ref := range [...]struct{ name, id string }{{"known error", t.KnownErrorID}, {"problem", t.ProblemID}, {"change", t.ChangeID}} {
		if ref.id != "" {
			fmt.Fprintf(&b, "; %s %s", ref.name, ref.id)
		}
	}
	return b.String()
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// snowResult is the envelope of Table API answers.
type snowResult[T any] struct {
	Result T `json:"result"`
}

type snowRecord struct {
	SysID string `json:"sys_id"`
}

func (s *ServiceNow) lookup(ctx context.Context, n *Notification) (string, error) {
	q := url.Values{}
	q.Set("sysparm_query", "correlation_id="+n.IncidentID)
	q.Set("sysparm_fields", "sys_id")
	q.Set("sysparm_limit", "1")
	var out snowResult[[]snowRecord]
	if err := s.do(ctx, n, http.MethodGet, s.base+"?"+q.Encode(), nil, &out); err != nil {
		return "", fmt.Errorf("look up record by correlation_id: %w", err)
	}
	if len(out.Result) == 0 {
		return "", nil
	}
	return out.Result[0].SysID, nil
}

func (s *ServiceNow) create(ctx context.Context, n *Notification, fields map[string]string) (string, error) {
	var out snowResult[snowRecord]
	if err := s.do(ctx, n, http.MethodPost, s.base+"?sysparm_fields=sys_id", fields, &out); err != nil {
		return "", fmt.Errorf("create record: %w", err)
	}
	if out.Result.SysID == "" {
		// Created or not, the next attempt's lookup will tell.
		return "", errors.New("create record: answer has no result.sys_id")
	}
	return out.Result.SysID, nil
}

func (s *ServiceNow) update(ctx context.Context, n *Notification, sysID string, fields map[string]string) error {
	err := s.do(ctx, n, http.MethodPatch, s.base+"/"+url.PathEscape(sysID)+"?sysparm_fields=sys_id", fields, nil)
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		// Deleted behind our back: forget it, and let the retry look up
		// again and create a new record.
		s.forget(n.IncidentID)
		return fmt.Errorf("update record %s: gone (404); will look up again: %w", sysID, he)
	}
	if err != nil {
		return fmt.Errorf("update record %s: %w", sysID, err)
	}
	return nil
}

// do sends one Table API request and decodes the answer's JSON into out
// (when non-nil).
func (s *ServiceNow) do(ctx context.Context, n *Notification, method, u string, body any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Permanent(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return Permanent(sanitizeTransportError(err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderIdempotencyKey, n.Key)
	switch {
	case s.opts.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+s.opts.BearerToken)
	case s.opts.Username != "":
		req.SetBasicAuth(s.opts.Username, s.opts.Password)
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return sanitizeTransportError(err)
	}
	if out == nil || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return checkResponse(resp, s.opts.Now())
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		// Retryable: a proxy's HTML page, a truncated answer.
		return fmt.Errorf("decode %s answer: %w", method, err)
	}
	return nil
}

func (s *ServiceNow) cached(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.cache[id]
	return v, ok
}

// remember stores id's sys_id, evicting the oldest entry when full. A miss
// costs one lookup, so plain insertion order is good enough.
func (s *ServiceNow) remember(id, sysID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[id]; ok {
		s.cache[id] = sysID
		return
	}
	if old := s.order[s.next]; old != "" {
		delete(s.cache, old)
	}
	s.order[s.next] = id
	s.next = (s.next + 1) % len(s.order)
	s.cache[id] = sysID
}

func (s *ServiceNow) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The ring slot stays; evicting it later deletes nothing or, if id was
	// remembered again meanwhile, a live entry early, which costs a lookup.
	delete(s.cache, id)
}
