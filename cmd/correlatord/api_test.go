package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/ingest"
)

// fakeBackend is an in-memory incidentBackend with a toy lifecycle: enough
// to answer every status code the API maps.
type fakeBackend struct {
	mu       sync.Mutex
	incs     []*incidents.Incident // newest first
	members  map[string][]correlate.Member
	problems []*incidents.Problem
	known    []*incidents.KnownError
	topo     *cmdb.Topology
	// route makes Act answer Accepted (another instance owns the record).
	route   bool
	failAll error // every call fails with it
	filters []incidentFilter
	cmds    []incidents.Command
}

var apiT0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func newFakeBackend(topo *cmdb.Topology) *fakeBackend {
	b := &fakeBackend{topo: topo, members: map[string][]correlate.Member{}}
	mk := func(id string, st incidents.Status, p incidents.Priority, at time.Time, services, cis []string) *incidents.Incident {
		return &incidents.Incident{ID: id, Version: 1, Title: "t " + id, Category: incidents.CategoryOutage, Impact: 1, Urgency: 1,
			Priority: p, Services: services, CIs: cis, Status: st, OpenedAt: at, UpdatedAt: at,
			Transitions: []incidents.Transition{{At: at, From: "", To: incidents.StatusNew, By: "correlatord"}},
			EventIDs:    []string{"e-" + id}, SuppressedEventIDs: []string{}, MergedFrom: []string{}}
	}
	db := mk("INC-db", incidents.StatusNew, incidents.P1, apiT0.Add(3*time.Hour), []string{"online-shop", "payments"},
		[]string{"vm-db-01", "orders-db", "payments-db", "orders-api"})
	db.RootCauseCI, db.RootCauseConfidence = "vm-db-01", 0.9
	db.Escalations = []incidents.Escalation{{At: apiT0.Add(3*time.Hour + 10*time.Minute), From: 1, To: 2, Reason: "response target missed"}}
	db.Breaches = []incidents.Breach{{Kind: incidents.BreachResponse, At: apiT0.Add(3*time.Hour + 5*time.Minute), Target: 5 * time.Minute}}
	db.Comments = []incidents.Comment{{At: apiT0.Add(3*time.Hour + 7*time.Minute), By: "alice", Text: "looking"}}
	b.members[db.ID] = []correlate.Member{
		{EventID: "e1", CI: "vm-db-01", Reason: correlate.ReasonOpened},
		{EventID: "e2", CI: "orders-db", Reason: correlate.ReasonTopology, RelatedCI: "vm-db-01", Path: []string{"orders-db", "vm-db-01"}, Hops: 1, Offset: 30 * time.Second},
		{EventID: "e3", CI: "orders-api", Reason: correlate.ReasonTopology, RelatedCI: "vm-db-01",
			Path: []string{"orders-api", "orders-db", "vm-db-01"}, Hops: 2, Offset: time.Minute, MergedFrom: "INC-old"},
		{EventID: "e4", CI: "payments-db", Reason: correlate.ReasonTopology, RelatedCI: "vm-db-01", Path: []string{"payments-db", "vm-db-01"}, Hops: 1},
	}
	b.incs = []*incidents.Incident{
		db,
		mk("INC-web", incidents.StatusAcknowledged, incidents.P2, apiT0.Add(2*time.Hour), []string{"online-shop"}, []string{"vm-web-01"}),
		mk("INC-resolved", incidents.StatusResolved, incidents.P3, apiT0.Add(time.Hour), []string{"customer-support"}, []string{"support-db"}),
		mk("INC-closed", incidents.StatusClosed, incidents.P4, apiT0, nil, []string{"rabbitmq"}),
	}
	b.problems = []*incidents.Problem{
		{ID: "PRB-1", Version: 1, Status: incidents.ProblemCandidate, Reason: incidents.ReasonRecurring, Title: "vm-db-01 keeps failing",
			RootCauseCI: "vm-db-01", Incidents: []string{"INC-db"}, RaisedAt: apiT0, UpdatedAt: apiT0, Transitions: []incidents.Transition{}},
		{ID: "PRB-2", Version: 1, Status: incidents.ProblemResolved, Reason: incidents.ReasonMajorIncident, Title: "major",
			Incidents: []string{"INC-web"}, RaisedAt: apiT0, UpdatedAt: apiT0, Transitions: []incidents.Transition{}},
	}
	b.known = []*incidents.KnownError{
		{ID: "KE-1", Title: "disk", RootCause: "full disk", Workaround: "clean", Matchers: []string{`category="outage"`}},
		{ID: "KE-2", Title: "nic", RootCause: "nic", Workaround: "swap", Matchers: []string{`ci_type="host"`}},
		{ID: "KE-3", Title: "dns", RootCause: "dns", Workaround: "restart", ProblemID: "PRB-9", Matchers: []string{`alertname="DNS"`}},
	}
	return b
}

func (b *fakeBackend) ListIncidents(_ context.Context, f incidentFilter) ([]*incidents.Incident, int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAll != nil {
		return nil, 0, b.failAll
	}
	b.filters = append(b.filters, f)
	var out []*incidents.Incident
	for _, in := range b.incs {
		switch {
		case len(f.Status) > 0 && !slices.Contains(f.Status, in.Status),
			len(f.Priority) > 0 && !slices.Contains(f.Priority, in.Priority),
			f.Service != "" && !slices.Contains(in.Services, f.Service),
			f.CI != "" && !slices.Contains(in.CIs, f.CI) && in.RootCauseCI != f.CI,
			!f.From.IsZero() && in.OpenedAt.Before(f.From),
			!f.To.IsZero() && in.OpenedAt.After(f.To):
			continue
		}
		out = append(out, in)
	}
	total := len(out)
	return page(out, f.Limit, f.Offset).Items, total, nil
}

func (b *fakeBackend) find(id string) *incidents.Incident {
	for _, in := range b.incs {
		if in.ID == id {
			return in
		}
	}
	return nil
}

func (b *fakeBackend) GetIncident(_ context.Context, id string) (*incidents.Incident, []correlate.Member, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAll != nil {
		return nil, nil, false, b.failAll
	}
	in := b.find(id)
	return in, b.members[id], in != nil, nil
}

func (b *fakeBackend) ListProblems(_ context.Context, status []incidents.ProblemStatus) ([]*incidents.Problem, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*incidents.Problem
	for _, p := range b.problems {
		if len(status) == 0 || slices.Contains(status, p.Status) {
			out = append(out, p)
		}
	}
	return out, b.failAll
}

func (b *fakeBackend) GetProblem(_ context.Context, id string) (*incidents.Problem, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		if p.ID == id {
			return p, true, nil
		}
	}
	return nil, false, b.failAll
}

func (b *fakeBackend) KnownErrors(context.Context) ([]*incidents.KnownError, error) {
	return b.known, b.failAll
}

func (b *fakeBackend) Topology() *cmdb.Topology { return b.topo }

// Act follows the real lifecycle closely enough for status codes: the
// allowed "from" statuses of each action.
func (b *fakeBackend) Act(_ context.Context, c incidents.Command) (actResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmds = append(b.cmds, c)
	if b.failAll != nil {
		return actResult{}, b.failAll
	}
	if c.Action.ProblemAction() {
		var p *incidents.Problem
		for _, x := range b.problems {
			if x.ID == c.ProblemID {
				p = x
			}
		}
		if p == nil {
			return actResult{}, fmt.Errorf("%w: problem %s", incidents.ErrNotFound, c.ProblemID)
		}
		from := map[incidents.Action][]incidents.ProblemStatus{
			incidents.ActAcceptProblem: {incidents.ProblemCandidate}, incidents.ActRejectProblem: {incidents.ProblemCandidate},
			incidents.ActKnownError:     {incidents.ProblemCandidate, incidents.ProblemAccepted},
			incidents.ActResolveProblem: {incidents.ProblemAccepted, incidents.ProblemKnownError},
			incidents.ActCloseProblem:   {incidents.ProblemResolved, incidents.ProblemRejected},
		}[c.Action]
		if !slices.Contains(from, p.Status) {
			return actResult{}, fmt.Errorf("%w: %s a problem that is %s", incidents.ErrConflict, c.Action, p.Status)
		}
		if b.route {
			return actResult{Accepted: true, CommandID: c.ID}, nil
		}
		cp := *p
		cp.Version++
		cp.Transitions = append(slices.Clone(p.Transitions), incidents.Transition{At: c.At, From: incidents.Status(p.Status), To: "x", By: c.By})
		return actResult{Problem: &cp, CommandID: c.ID}, nil
	}
	in := b.find(c.IncidentID)
	if in == nil {
		return actResult{}, fmt.Errorf("%w: incident %s", incidents.ErrNotFound, c.IncidentID)
	}
	open := []incidents.Status{incidents.StatusNew, incidents.StatusAcknowledged, incidents.StatusInProgress, incidents.StatusReopened}
	from := map[incidents.Action][]incidents.Status{
		incidents.ActAcknowledge: {incidents.StatusNew, incidents.StatusReopened},
		incidents.ActStart:       {incidents.StatusNew, incidents.StatusAcknowledged, incidents.StatusReopened},
		incidents.ActAssign:      open, incidents.ActResolve: open,
		incidents.ActComment: append(slices.Clone(open), incidents.StatusResolved, incidents.StatusClosed),
		incidents.ActClose:   {incidents.StatusResolved},
		incidents.ActReopen:  {incidents.StatusResolved, incidents.StatusClosed},
	}[c.Action]
	if !slices.Contains(from, in.Status) {
		return actResult{}, fmt.Errorf("%w: %s an incident that is %s", incidents.ErrConflict, c.Action, in.Status)
	}
	if b.route {
		return actResult{Accepted: true, CommandID: c.ID}, nil
	}
	cp := *in
	cp.Version++
	cp.AssignedTo = c.AssignTo
	if c.Action == incidents.ActComment {
		cp.Comments = append(slices.Clone(in.Comments), incidents.Comment{At: c.At, By: c.By, Text: c.Note})
	}
	return actResult{Incident: &cp, CommandID: c.ID}, nil
}

// Tokens the tests use: long enough for validation.
const (
	tokRead     = "read-token-0123456789"
	tokOperator = "operator-token-0123456789"
	tokIngest   = "ingest-token-0123456789"
	tokLegacy   = "legacy-ingest-0123456789"
	tokBoth     = "both-token-0123456789"
)

func testHTTPConfig() ingest.HTTPConfig {
	return ingest.HTTPConfig{Tokens: []ingest.TokenConfig{
		{Name: "reader", Token: tokRead, Roles: []string{"read"}},
		{Name: "alice", Token: tokOperator, Roles: []string{"operator"}},
		{Name: "prometheus", Token: tokIngest, Roles: []string{"ingest"}},
		{Name: "both", Token: tokBoth, Roles: []string{"ingest", "operator"}},
	}}
}

// countingForwarder counts the events ingest accepted.
type countingForwarder struct {
	mu     sync.Mutex
	events int
}

func (f *countingForwarder) Forward(_ context.Context, evs []event.Event) error {
	f.mu.Lock()
	f.events += len(evs)
	f.mu.Unlock()
	return nil
}

// testServer is the daemon's whole mux (ingest, API, operational
// endpoints) over a fake backend.
type testServer struct {
	mux     *http.ServeMux
	backend *fakeBackend
	auth    *apiAuth
	fwd     *countingForwarder
}

func newTestServer(t *testing.T, backend *fakeBackend, cfg ingest.HTTPConfig, logger *zap.Logger) *testServer {
	t.Helper()
	return newFederatedTestServer(t, backend, cfg, logger, nil, nil)
}

// newFederatedTestServer is newTestServer whose API answers for the
// instances of peers too (nil: none).
func newFederatedTestServer(t *testing.T, backend *fakeBackend, cfg ingest.HTTPConfig, logger *zap.Logger, peers peerSource, peerClient *http.Client) *testServer {
	t.Helper()
	if logger == nil {
		logger = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	auth, err := newAPIAuth(cfg, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	fwd := &countingForwarder{}
	h := ingest.NewHTTPHandler(ingest.HTTPOptions{MaxBodyBytes: 1 << 16, Timeout: time.Second, Authorize: auth.Ingest,
		Policy: ingest.Policy{MaxEventAge: 24 * time.Hour, MaxFutureSkew: time.Hour}, Defaults: event.DefaultDefaults},
		fwd, "", ingest.NewMetrics(reg), logger)
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeStatus(w, 200, map[string]any{"status": "ready"}) })
	mux := newMux(reg, ready, func(m *http.ServeMux) {
		h.Register(m)
		var relay *peerRelay
		if peers != nil {
			if peerClient == nil {
				peerClient = &http.Client{Timeout: peerTimeout}
			}
			relay = newPeerRelay(peers, "http://self.test", peerClient, reg, logger)
		}
		registerAPI(m, backend, relay, auth, reg, logger)
	})
	return &testServer{mux: mux, backend: backend, auth: auth, fwd: fwd}
}

var apiExampleTopology = sync.OnceValues(func() (*cmdb.Topology, error) {
	return loadTopology(context.Background(), "../../examples/topology.yaml", "native", nil)
})

func testTopology(t *testing.T) *cmdb.Topology {
	t.Helper()
	topo, err := apiExampleTopology()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// do sends a request and checks the answer against docs/openapi.yaml.
func (s *testServer) do(t *testing.T, method, target, token, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, req)
	checkAgainstSpec(t, s.mux, method, target, token, body, hdr, rec)
	return rec
}

var openAPIDoc = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../docs/openapi.yaml")
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(loader.Context)
})

// checkAgainstSpec validates a response (and, when it succeeded, its
// request) against the operation docs/openapi.yaml documents for it; an
// answer with no operation (405, unknown path) must be a JSON error.
func checkAgainstSpec(t *testing.T, mux *http.ServeMux, method, target, token, body string, hdr []string, rec *httptest.ResponseRecorder) {
	t.Helper()
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	mkReq := func() *http.Request {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return req
	}
	req := mkReq()
	_, pattern := mux.Handler(req)
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = p
	}
	// A path's 405 catch-all and /api/ have no operation for the method.
	path = strings.TrimSuffix(path, "{$}")
	var op *openapi3.Operation
	item := doc.Paths.Value(path)
	if item != nil {
		op = item.GetOperation(method)
		if op == nil && method == http.MethodHead {
			op = item.GetOperation(http.MethodGet)
		}
	}
	if op == nil {
		var e errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Status != "error" || e.Error == "" {
			t.Errorf("%s %s: %d without a JSON error: %s", method, target, rec.Code, rec.Body)
		}
		return
	}
	params := map[string]string{}
	got, want := strings.Split(req.URL.Path, "/"), strings.Split(path, "/")
	for i, seg := range want {
		if strings.HasPrefix(seg, "{") && i < len(got) {
			params[strings.Trim(seg, "{}")] = got[i]
		}
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
	}
	if rec.Code < 300 && strings.HasPrefix(path, "/api/") {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s succeeded (%d) but docs/openapi.yaml rejects the request: %v", method, target, rec.Code, err)
		}
	}
	in.Request = mkReq()
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: in.Options}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: %d response does not fit docs/openapi.yaml: %v\n%s", method, target, rec.Code, err, rec.Body)
	}
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return v
}

func ids(items []*incidents.Incident) []string {
	var out []string
	for _, in := range items {
		out = append(out, in.ID)
	}
	return out
}

func TestAPIListIncidents(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), testHTTPConfig(), nil)
	cases := []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"INC-db", "INC-web", "INC-resolved", "INC-closed"}, 4},
		{"?status=new,acknowledged", []string{"INC-db", "INC-web"}, 2},
		{"?status=resolved&status=closed", []string{"INC-resolved", "INC-closed"}, 2},
		{"?status=open", []string{"INC-db", "INC-web"}, 2},
		{"?priority=P1,P3", []string{"INC-db", "INC-resolved"}, 2},
		{"?service=online-shop", []string{"INC-db", "INC-web"}, 2},
		{"?ci=vm-db-01", []string{"INC-db"}, 1},
		{"?from=2026-11-02T11:00:00Z", []string{"INC-db", "INC-web", "INC-resolved"}, 3},
		{"?from=2026-11-02T11:00:00Z&to=2026-11-02T12:00:00Z", []string{"INC-web", "INC-resolved"}, 2},
		{"?limit=2", []string{"INC-db", "INC-web"}, 4},
		{"?limit=2&offset=2", []string{"INC-resolved", "INC-closed"}, 4},
		{"?limit=2&offset=10", nil, 4},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			rec := s.do(t, "GET", "/api/v1/incidents"+tc.query, tokRead, "")
			if rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			got := decode[listPage[*incidents.Incident]](t, rec)
			if !slices.Equal(ids(got.Items), tc.want) || got.Total != tc.total {
				t.Errorf("items %v total %d, want %v %d", ids(got.Items), got.Total, tc.want, tc.total)
			}
			if got.Items == nil {
				t.Error("items is null, want []")
			}
		})
	}
	f := s.backend.filters[0]
	if f.Limit != 50 || f.Offset != 0 {
		t.Errorf("default paging %d/%d, want 50/0", f.Limit, f.Offset)
	}
}

func TestAPIListValidation(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), testHTTPConfig(), nil)
	for query, want := range map[string]string{
		"/api/v1/incidents?status=bogus":                                      `status: "bogus" is not one of new, acknowledged`,
		"/api/v1/incidents?status=new,":                                       `status: empty value`,
		"/api/v1/incidents?priority=P9":                                       `priority: "P9" is not one of P1, P2, P3, P4, P5`,
		"/api/v1/incidents?limit=0":                                           `limit: "0" is not a whole number from 1 to 1000`,
		"/api/v1/incidents?limit=1001":                                        `limit: "1001"`,
		"/api/v1/incidents?limit=x":                                           `limit: "x"`,
		"/api/v1/incidents?offset=-1":                                         `offset: "-1"`,
		"/api/v1/incidents?from=yesterday":                                    `from: "yesterday" is not an RFC 3339 time`,
		"/api/v1/incidents?from=2026-11-03T00:00:00Z&to=2026-11-02T00:00:00Z": "from: 2026-11-03T00:00:00Z is after to",
		"/api/v1/incidents?service=a&service=b":                               "service: give it once",
		"/api/v1/incidents?ci=":                                               "ci: must not be empty",
		"/api/v1/incidents?stauts=new":                                        `unknown query parameter "stauts": this endpoint takes status, priority`,
		"/api/v1/incidents?status=x&priority=y":                               `status: "x" is not one of new, acknowledged, in_progress, reopened, resolved, closed, open; priority: "y"`,
		"/api/v1/incidents/INC-db?verbose=1":                                  `unknown query parameter "verbose": this endpoint takes no query parameters`,
		"/api/v1/problems?status=open":                                        `status: "open" is not one of candidate, accepted`,
		"/api/v1/known-errors?limit=5000":                                     `limit: "5000"`,
		"/api/v1/known-errors?status=x":                                       `unknown query parameter "status"`,
	} {
		t.Run(query, func(t *testing.T) {
			rec := s.do(t, "GET", query, tokRead, "")
			if rec.Code != 400 {
				t.Fatalf("%d, want 400: %s", rec.Code, rec.Body)
			}
			if e := decode[errorBody](t, rec); e.Status != "error" || !strings.Contains(e.Error, want) {
				t.Errorf("error %q does not contain %q", e.Error, want)
			}
		})
	}
	if len(s.backend.filters) != 0 {
		t.Errorf("the backend was asked %d times for bad requests", len(s.backend.filters))
	}
}

func TestAPIGetIncident(t *testing.T) {
	s := newTestServer(t, newFakeBackend(testTopology(t)), testHTTPConfig(), nil)
	rec := s.do(t, "GET", "/api/v1/incidents/INC-db", tokRead, "")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	d := decode[struct {
		ID       string          `json:"id"`
		Priority string          `json:"priority"`
		Members  []replayMember  `json:"members"`
		Timeline []timelineEntry `json:"timeline"`
		Topology *subgraph       `json:"topology"`
	}](t, rec)
	if d.ID != "INC-db" || d.Priority != "P1" {
		t.Errorf("record fields missing: %s", rec.Body)
	}
	if len(d.Members) != 4 {
		t.Fatalf("members %+v", d.Members)
	}
	if m := d.Members[2]; m.EventID != "e3" || m.Reason != "topology" || m.RelatedCI != "vm-db-01" || m.Hops != 2 ||
		m.OffsetSeconds != 60 || m.MergedFrom != "INC-old" || len(m.Path) != 3 {
		t.Errorf("members %+v", d.Members)
	}
	var kinds []string
	for i, e := range d.Timeline {
		kinds = append(kinds, e.Kind)
		if i > 0 && e.At.Before(d.Timeline[i-1].At) {
			t.Errorf("timeline not sorted: %+v", d.Timeline)
		}
	}
	if want := []string{"transition", "breach", "comment", "escalation"}; !slices.Equal(kinds, want) {
		t.Errorf("timeline kinds %v, want %v", kinds, want)
	}
	if e := d.Timeline[3]; e.From != "line 1" || e.To != "line 2" || e.Text != "response target missed" {
		t.Errorf("escalation entry %+v", e)
	}
	g := d.Topology
	if g == nil {
		t.Fatal("no topology")
	}
	role := map[string]string{}
	for _, n := range g.Nodes {
		role[n.ID] = n.Role
		if !n.InCMDB || n.Type == "" {
			t.Errorf("node %+v lacks its CMDB fields", n)
		}
	}
	for id, want := range map[string]string{"vm-db-01": "root_cause", "orders-db": "member", "orders-api": "member",
		"online-shop": "service", "payments": "service", "hv-dc1-03": "dependency", "tor-sw-dc1-b": "dependency"} {
		if role[id] != want {
			t.Errorf("node %s: role %q, want %q", id, role[id], want)
		}
	}
	if _, far := role["core-sw-dc1"]; far {
		t.Error("core-sw-dc1 is 3 hops below vm-db-01; the subgraph goes 2")
	}
	edges := map[subgraphEdge]bool{}
	for _, e := range g.Edges {
		edges[e] = true
		if role[e.Source] == "" || role[e.Target] == "" {
			t.Errorf("edge %+v leaves the subgraph", e)
		}
	}
	for _, e := range []subgraphEdge{{"orders-db", "vm-db-01", "runs_on"}, {"vm-db-01", "hv-dc1-03", "hosted_on"},
		{"orders-api", "orders-db", "depends_on"}, {"hv-dc1-03", "tor-sw-dc1-b", "connected_to"}} {
		if !edges[e] {
			t.Errorf("edge %+v missing from %+v", e, g.Edges)
		}
	}

	// Unknown ids are JSON 404s; without a CMDB the topology is null.
	if rec := s.do(t, "GET", "/api/v1/incidents/INC-nope", tokRead, ""); rec.Code != 404 || !strings.Contains(rec.Body.String(), "INC-nope") {
		t.Errorf("unknown id: %d %s", rec.Code, rec.Body)
	}
	s.backend.topo = nil
	rec = s.do(t, "GET", "/api/v1/incidents/INC-web", tokRead, "")
	if m := decode[map[string]any](t, rec); rec.Code != 200 || m["topology"] != nil || m["members"] == nil {
		t.Errorf("without a CMDB: %d %s", rec.Code, rec.Body)
	}
}

func TestAPISubgraphTruncates(t *testing.T) {
	topo := testTopology(t)
	var cis []string
	topo.EachCI(func(ci *cmdb.CI) { cis = append(cis, ci.ID) })
	for i := range maxSubgraphNodes {
		cis = append(cis, fmt.Sprintf("unknown-%d", i))
	}
	g := incidentSubgraph(topo, &incidents.Incident{CIs: cis}, nil)
	if len(g.Nodes) != maxSubgraphNodes || !g.Truncated {
		t.Errorf("%d nodes, truncated %v", len(g.Nodes), g.Truncated)
	}
}

func TestAPIProblemsAndKnownErrors(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), testHTTPConfig(), nil)
	rec := s.do(t, "GET", "/api/v1/problems?status=candidate", tokRead, "")
	if p := decode[listPage[*incidents.Problem]](t, rec); rec.Code != 200 || p.Total != 1 || p.Items[0].ID != "PRB-1" {
		t.Errorf("problems: %d %s", rec.Code, rec.Body)
	}
	rec = s.do(t, "GET", "/api/v1/problems/PRB-2", tokRead, "")
	if p := decode[incidents.Problem](t, rec); rec.Code != 200 || p.ID != "PRB-2" {
		t.Errorf("problem: %d %s", rec.Code, rec.Body)
	}
	if rec := s.do(t, "GET", "/api/v1/problems/PRB-404", tokRead, ""); rec.Code != 404 {
		t.Errorf("unknown problem: %d", rec.Code)
	}
	rec = s.do(t, "GET", "/api/v1/known-errors?limit=2&offset=1", tokRead, "")
	if p := decode[listPage[*incidents.KnownError]](t, rec); rec.Code != 200 || p.Total != 3 || len(p.Items) != 2 || p.Items[0].ID != "KE-2" {
		t.Errorf("known errors: %d %s", rec.Code, rec.Body)
	}
}

func TestAPIActions(t *testing.T) {
	cases := []struct {
		name, path, body string
		route            bool
		code             int
		want             string
	}{
		{name: "acknowledge", path: "/api/v1/incidents/INC-db/acknowledge", code: 200, want: `"id":"INC-db"`},
		{name: "acknowledge with note", path: "/api/v1/incidents/INC-db/acknowledge", body: `{"note":"on it"}`, code: 200},
		{name: "acknowledge twice", path: "/api/v1/incidents/INC-web/acknowledge", code: 409, want: "acknowledge an incident that is acknowledged"},
		{name: "start", path: "/api/v1/incidents/INC-web/start", code: 200},
		{name: "assign", path: "/api/v1/incidents/INC-db/assign", body: `{"assign_to":"bob"}`, code: 200, want: `"assigned_to":"bob"`},
		{name: "assign without whom", path: "/api/v1/incidents/INC-db/assign", body: `{}`, code: 400, want: "assign_to: must not be empty"},
		{name: "assign resolved", path: "/api/v1/incidents/INC-resolved/assign", body: `{"assign_to":"bob"}`, code: 409},
		{name: "comment", path: "/api/v1/incidents/INC-closed/comment", body: `{"note":"post-mortem done"}`, code: 200, want: "post-mortem done"},
		{name: "comment without text", path: "/api/v1/incidents/INC-db/comment", code: 400, want: "note: a comment needs text"},
		{name: "resolve", path: "/api/v1/incidents/INC-db/resolve", body: `{"note":"fixed"}`, code: 200},
		{name: "close open", path: "/api/v1/incidents/INC-db/close", code: 409},
		{name: "close", path: "/api/v1/incidents/INC-resolved/close", code: 200},
		{name: "reopen", path: "/api/v1/incidents/INC-closed/reopen", code: 200},
		{name: "reopen open", path: "/api/v1/incidents/INC-db/reopen", code: 409},
		{name: "unknown incident", path: "/api/v1/incidents/INC-nope/acknowledge", code: 404, want: "INC-nope"},
		{name: "routed", path: "/api/v1/incidents/INC-db/acknowledge", route: true, code: 202, want: `"status":"accepted"`},
		{name: "routed conflict", path: "/api/v1/incidents/INC-web/acknowledge", route: true, code: 409},
		{name: "unknown field", path: "/api/v1/incidents/INC-db/acknowledge", body: `{"note":"x","by":"mallory"}`, code: 400, want: `body: unknown field "by"`},
		{name: "field of another action", path: "/api/v1/incidents/INC-db/acknowledge", body: `{"assign_to":"bob"}`, code: 400, want: `unknown field "assign_to"`},
		{name: "wrong type", path: "/api/v1/incidents/INC-db/assign", body: `{"assign_to":7}`, code: 400, want: "body.assign_to: want a string, got number"},
		{name: "not an object", path: "/api/v1/incidents/INC-db/acknowledge", body: `["x"]`, code: 400, want: "want a JSON object, got array"},
		{name: "broken JSON", path: "/api/v1/incidents/INC-db/acknowledge", body: `{"note":`, code: 400, want: "body: truncated JSON"},
		{name: "trailing data", path: "/api/v1/incidents/INC-db/acknowledge", body: `{"note":"a"} {}`, code: 400, want: "more than one JSON value"},
		{name: "too large", path: "/api/v1/incidents/INC-db/comment", body: `{"note":"` + strings.Repeat("x", maxActionBody) + `"}`, code: 413, want: "65536 bytes"},
		{name: "note too long", path: "/api/v1/incidents/INC-db/comment", body: `{"note":"` + strings.Repeat("x", 10001) + `"}`, code: 400, want: "note: 10001 bytes"},
		{name: "accept problem", path: "/api/v1/problems/PRB-1/accept", code: 200, want: `"id":"PRB-1"`},
		{name: "reject problem", path: "/api/v1/problems/PRB-1/reject", body: `{"note":"noise"}`, code: 200},
		{name: "known error", path: "/api/v1/problems/PRB-1/known-error",
			body: `{"root_cause":"disk","workaround":"clean","matchers":["root_cause_ci=\"vm-db-01\""]}`, code: 200},
		{name: "known error without matchers", path: "/api/v1/problems/PRB-1/known-error", body: `{"root_cause":"disk","workaround":"clean"}`, code: 400, want: "matchers"},
		{name: "known error bad matcher", path: "/api/v1/problems/PRB-1/known-error",
			body: `{"root_cause":"disk","workaround":"clean","matchers":["=~"]}`, code: 400, want: "matchers[0]"},
		{name: "resolve candidate", path: "/api/v1/problems/PRB-1/resolve", code: 409},
		{name: "close resolved problem", path: "/api/v1/problems/PRB-2/close", code: 200},
		{name: "routed problem", path: "/api/v1/problems/PRB-2/close", route: true, code: 202},
		{name: "unknown problem", path: "/api/v1/problems/PRB-404/accept", code: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(nil)
			b.route = tc.route
			s := newTestServer(t, b, testHTTPConfig(), nil)
			rec := s.do(t, "POST", tc.path, tokOperator, tc.body)
			if rec.Code != tc.code {
				t.Fatalf("%d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			got := rec.Body.String()
			if tc.code >= 400 {
				got = decode[errorBody](t, rec).Error
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("body %.300s does not contain %q", got, tc.want)
			}
			if tc.code == 200 || tc.code == 202 || tc.code == 409 || tc.code == 404 {
				if len(b.cmds) != 1 {
					t.Fatalf("backend got %d commands", len(b.cmds))
				}
				c := b.cmds[0]
				if c.By != "alice" || len(c.ID) != 32 || c.At.Location() != time.UTC || time.Since(c.At) > time.Minute {
					t.Errorf("command %+v: want by alice (the token's name), a random id, now in UTC", c)
				}
			} else if len(b.cmds) != 0 {
				t.Errorf("a bad request reached the backend: %+v", b.cmds)
			}
		})
	}
}

func TestAPIIdempotencyKey(t *testing.T) {
	b := newFakeBackend(nil)
	b.route = true
	s := newTestServer(t, b, testHTTPConfig(), nil)
	for range 2 {
		rec := s.do(t, "POST", "/api/v1/incidents/INC-db/acknowledge", tokOperator, "", "Idempotency-Key", "3f2c-retry-1")
		if a := decode[acceptedBody](t, rec); rec.Code != 202 || a.CommandID != "3f2c-retry-1" {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	if len(b.cmds) != 2 || b.cmds[0].ID != "3f2c-retry-1" || b.cmds[1].ID != b.cmds[0].ID {
		t.Errorf("commands %+v: a retry must carry the same id", b.cmds)
	}
	// Without a key, ids are random.
	s.do(t, "POST", "/api/v1/incidents/INC-db/acknowledge", tokOperator, "")
	s.do(t, "POST", "/api/v1/incidents/INC-db/acknowledge", tokOperator, "")
	if b.cmds[2].ID == b.cmds[3].ID {
		t.Error("two requests without a key share a command id")
	}
	for _, key := range []string{"has space", strings.Repeat("k", 129), "naïve"} {
		if rec := s.do(t, "POST", "/api/v1/incidents/INC-db/acknowledge", tokOperator, "", "Idempotency-Key", key); rec.Code != 400 ||
			!strings.Contains(rec.Body.String(), "Idempotency-Key") {
			t.Errorf("key %q: %d %s", key, rec.Code, rec.Body)
		}
	}
}

func TestAPIBackendErrors(t *testing.T) {
	b := newFakeBackend(nil)
	b.failAll = errors.New("kafka: broker 1 unreachable")
	s := newTestServer(t, b, testHTTPConfig(), nil)
	for _, tc := range []struct{ method, path, tok string }{
		{"GET", "/api/v1/incidents", tokRead}, {"GET", "/api/v1/incidents/INC-db", tokRead},
		{"GET", "/api/v1/problems", tokRead}, {"GET", "/api/v1/known-errors", tokRead},
		{"POST", "/api/v1/incidents/INC-db/acknowledge", tokOperator},
	} {
		if rec := s.do(t, tc.method, tc.path, tc.tok, ""); rec.Code != 503 || !strings.Contains(rec.Body.String(), "broker 1 unreachable") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
}

func TestAPIMethodNotAllowedAndUnknownPaths(t *testing.T) {
	s := newTestServer(t, newFakeBackend(nil), testHTTPConfig(), nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/incidents", "GET, HEAD"},
		{"DELETE", "/api/v1/incidents/INC-db", "GET, HEAD"},
		{"GET", "/api/v1/incidents/INC-db/acknowledge", "POST"},
		{"PUT", "/api/v1/problems/PRB-1/known-error", "POST"},
		{"POST", "/api/v1/known-errors", "GET, HEAD"},
	} {
		rec := s.do(t, tc.method, tc.path, tokOperator, "")
		if rec.Code != 405 || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 %q", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), tc.allow)
		}
	}
	for _, p := range []string{"/api/v1/incidents/INC-db/escalate", "/api/v1/nothing", "/api/v1/incidents/"} {
		if rec := s.do(t, "GET", p, tokRead, ""); rec.Code != 404 {
			t.Errorf("GET %s: %d", p, rec.Code)
		}
	}
	if rec := s.do(t, "HEAD", "/api/v1/incidents", tokRead, ""); rec.Code != 200 {
		t.Errorf("HEAD: %d", rec.Code)
	}
}

// operationalRoutes are served by newMux and ingest.HTTPHandler rather than
// apiRoutes; docs/openapi.yaml documents them too.
var operationalRoutes = []string{"POST /api/v1/alerts", "POST /api/v2/alerts", "POST /api/v1/events",
	"GET /healthz", "GET /readyz", "GET /metrics", "GET /"}

// TestOpenAPICoversEveryRoute keeps docs/openapi.yaml and the mux in step:
// every route served is documented, with the route's name as operationId,
// and every documented operation is served by its own handler (not by a 405
// catch-all or the /api/ 404).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	s := newTestServer(t, newFakeBackend(nil), testHTTPConfig(), nil)
	served := map[string]bool{}
	for _, rt := range apiRoutes() {
		key := rt.method + " " + rt.pattern
		served[key] = true
		item := doc.Paths.Value(rt.pattern)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("%s is served but not in docs/openapi.yaml", key)
			continue
		}
		if id := item.GetOperation(rt.method).OperationID; id != rt.name {
			t.Errorf("%s: operationId %q, want %q", key, id, rt.name)
		}
		if rt.need == roleOperator && !strings.Contains(doc.Paths.Value(rt.pattern).Post.Summary+doc.Info.Description, "operator") {
			t.Errorf("%s: the operator role is not documented", key)
		}
	}
	for _, key := range operationalRoutes {
		served[key] = true
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			key := method + " " + path
			if !served[key] {
				t.Errorf("docs/openapi.yaml documents %s, which is not served", key)
				continue
			}
			target := strings.NewReplacer("{id}", "X-1").Replace(path)
			_, pattern := s.mux.Handler(httptest.NewRequest(method, target, nil))
			switch pattern {
			case key, path, path + "{$}":
				if pattern == path && strings.HasPrefix(path, "/api/v1/") && !slices.Contains(operationalRoutes, key) {
					t.Errorf("%s reaches the 405 catch-all", key)
				}
			default:
				t.Errorf("%s %s is routed to %q", method, target, pattern)
			}
		}
	}
}

// fillAll sets every exported field of v to a non-zero value, so that
// omitempty fields show in its JSON.
func fillAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillAll(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(apiT0))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillAll(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillAll(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64:
		if v.CanInt() {
			v.SetInt(1)
		} else {
			v.SetUint(1)
		}
	case reflect.Float64:
		v.SetFloat(1)
	case reflect.Bool:
		v.SetBool(true)
	}
}

// TestOpenAPISchemasMatchTypes: the properties of each schema are exactly
// the JSON keys of the type it documents, so a field added to a record
// cannot go undocumented.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"Incident": &incidents.Incident{}, "Problem": &incidents.Problem{}, "KnownError": &incidents.KnownError{},
		"Member": &replayMember{}, "TimelineEntry": &timelineEntry{}, "Subgraph": &subgraph{},
		"SubgraphNode": &subgraphNode{}, "SubgraphEdge": &subgraphEdge{}, "Accepted": &acceptedBody{}, "Error": &errorBody{},
		"Transition": &incidents.Transition{}, "Escalation": &incidents.Escalation{}, "Breach": &incidents.Breach{},
		"Comment": &incidents.Comment{}, "NoteRequest": &noteBody{}, "AssignRequest": &assignBody{},
		"KnownErrorRequest": &knownErrorBody{},
	} {
		fillAll(reflect.ValueOf(v))
		b, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		var keys, props []string
		for k := range m {
			keys = append(keys, k)
		}
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("schema %s missing", name)
			continue
		}
		for k := range ref.Value.Properties {
			props = append(props, k)
		}
		slices.Sort(keys)
		slices.Sort(props)
		if !slices.Equal(keys, props) {
			t.Errorf("schema %s has properties %v; the type's JSON has %v", name, props, keys)
		}
	}
}
