package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServiceNow is a local stand-in for ServiceNow's Table API on the
// incident table: it stores records, enforces basic auth and counts calls.
type fakeServiceNow struct {
	t        *testing.T
	user     string
	password string

	mu      sync.Mutex
	records map[string]map[string]string // sys_id → fields
	order   []string                     // sys_ids in creation order
	calls   map[string]int               // by method
	keys    []string                     // Idempotency-Key of each call
	// loseNextPostAnswer makes the next POST create its record but answer
	// 504, like a gateway timing out after ServiceNow committed.
	loseNextPostAnswer bool
}

func newFakeServiceNow(t *testing.T) (*fakeServiceNow, *httptest.Server) {
	f := &fakeServiceNow{t: t, user: "correlatord", password: "pw",
		records: make(map[string]map[string]string), calls: make(map[string]int)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServiceNow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.password {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"User Not Authenticated"},"status":"failure"}`)
		return
	}
	f.calls[r.Method]++
	f.keys = append(f.keys, r.Header.Get(HeaderIdempotencyKey))
	const prefix = "/api/now/table/incident"
	path := r.URL.Path
	if !strings.HasPrefix(path, prefix) {
		http.NotFound(w, r)
		return
	}
	sysID := strings.TrimPrefix(strings.TrimPrefix(path, prefix), "/")
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"result": v})
	}
	switch {
	case r.Method == http.MethodGet && sysID == "":
		q := r.URL.Query()
		if q.Get("sysparm_fields") != "sys_id" || q.Get("sysparm_limit") != "1" {
			f.t.Errorf("lookup query %v", q)
		}
		want, ok := strings.CutPrefix(q.Get("sysparm_query"), "correlation_id=")
		if !ok {
			f.t.Errorf("sysparm_query %q", q.Get("sysparm_query"))
		}
		found := []map[string]string{}
		for _, id := range f.order {
			if rec := f.records[id]; rec != nil && rec["correlation_id"] == want {
				found = append(found, map[string]string{"sys_id": id})
				break
			}
		}
		answer(http.StatusOK, found)
	case r.Method == http.MethodPost && sysID == "":
		var fields map[string]string
		if err := json.NewDecoder(r.Body).Decode(&fields); err != nil {
			answer(http.StatusBadRequest, nil)
			return
		}
		id := fmt.Sprintf("%032x", len(f.order)+1)
		fields["sys_id"] = id
		if fields["state"] == "" {
			fields["state"] = "1"
		}
		f.records[id] = fields
		f.order = append(f.order, id)
		if f.loseNextPostAnswer {
			f.loseNextPostAnswer = false
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		answer(http.StatusCreated, map[string]string{"sys_id": id})
	case r.Method == http.MethodPatch && sysID != "":
		rec := f.records[sysID]
		if rec == nil {
			answer(http.StatusNotFound, nil)
			return
		}
		var fields map[string]string
		if err := json.NewDecoder(r.Body).Decode(&fields); err != nil {
			answer(http.StatusBadRequest, nil)
			return
		}
		for k, v := range fields {
			if k == "work_notes" { // a journal field: appended
				rec[k] += v + "\n"
				continue
			}
			rec[k] = v
		}
		answer(http.StatusOK, map[string]string{"sys_id": sysID})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// recordsFor returns the records of an incident.
func (f *fakeServiceNow) recordsFor(inc string) []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]string
	for _, id := range f.order {
		if rec := f.records[id]; rec != nil && rec["correlation_id"] == inc {
			out = append(out, rec)
		}
	}
	return out
}

func (f *fakeServiceNow) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func newSN(t *testing.T, url, password string) *ServiceNow {
	t.Helper()
	s, err := NewServiceNow(ServiceNowOptions{Name: "servicenow", BaseURL: url, Username: "correlatord", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServiceNowLifecycle(t *testing.T) {
	fake, srv := newFakeServiceNow(t)
	sn := newSN(t, srv.URL+"/", "pw")
	ctx := t.Context()

	created := testNotification("inc-1", 1, KindCreated)
	if err := sn.Send(ctx, &created); err != nil {
		t.Fatal(err)
	}
	recs := fake.recordsFor("inc-1")
	if len(recs) != 1 || fake.count("POST") != 1 {
		t.Fatalf("after create: %d records, %d POSTs", len(recs), fake.count("POST"))
	}
	rec := recs[0]
	for k, v := range map[string]string{
		"short_description": "Database down on db-01", "impact": "1", "urgency": "2", "cmdb_ci": "db-01",
		"assignment_group": "dba", "correlation_id": "inc-1", "correlation_display": "correlatord", "state": "1",
	} {
		if rec[k] != v {
			t.Errorf("created %s = %q, want %q", k, rec[k], v)
		}
	}
	if !strings.Contains(rec["description"], "3 alerts on db-01") || !strings.Contains(rec["description"], "test change") {
		t.Errorf("description %q", rec["description"])
	}
	sysID := rec["sys_id"]

	// Update: PATCH the same record, from the cache (no second lookup).
	updated := testNotification("inc-1", 2, KindUpdated)
	updated.Reason = "priority P3 -> P2"
	updated.Ticket.Urgency = 1
	gets := fake.count("GET")
	if err := sn.Send(ctx, &updated); err != nil {
		t.Fatal(err)
	}
	if fake.count("PATCH") != 1 || fake.count("POST") != 1 || fake.count("GET") != gets {
		t.Errorf("update: calls %v", fake.calls)
	}
	rec = fake.recordsFor("inc-1")[0]
	if rec["sys_id"] != sysID || rec["urgency"] != "1" || !strings.Contains(rec["work_notes"], "priority P3 -> P2") {
		t.Errorf("after update: %v", rec)
	}

	// Restart: a new target with an empty cache finds the record by
	// correlation_id and PATCHes it.
	sn2 := newSN(t, srv.URL, "pw")
	escalated := testNotification("inc-1", 3, KindEscalated)
	escalated.Reason = "escalated to line 2 (response target 15m missed)"
	if err := sn2.Send(ctx, &escalated); err != nil {
		t.Fatal(err)
	}
	if fake.count("POST") != 1 || fake.count("PATCH") != 2 {
		t.Errorf("after restart: calls %v", fake.calls)
	}

	// Resolve, reopen, resolve, close.
	resolved := testNotification("inc-1", 4, KindResolved)
	resolved.Reason = "all alerts cleared"
	resolved.Ticket.ProblemID = "PRB0001"
	if err := sn2.Send(ctx, &resolved); err != nil {
		t.Fatal(err)
	}
	rec = fake.recordsFor("inc-1")[0]
	if rec["state"] != "6" || rec["close_code"] != "Solved (Permanently)" ||
		!strings.Contains(rec["close_notes"], "all alerts cleared") || !strings.Contains(rec["close_notes"], "PRB0001") {
		t.Errorf("after resolve: %v", rec)
	}
	for _, step := range []struct {
		kind  Kind
		state string
	}{{KindReopened, "2"}, {KindResolved, "6"}, {KindClosed, "7"}} {
		n := testNotification("inc-1", 5, step.kind)
		if err := sn2.Send(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if got := fake.recordsFor("inc-1")[0]["state"]; got != step.state {
			t.Errorf("after %s: state %q, want %q", step.kind, got, step.state)
		}
	}

	// A second incident gets a record of its own; still one per incident.
	other := testNotification("inc-2", 1, KindCreated)
	if err := sn2.Send(ctx, &other); err != nil {
		t.Fatal(err)
	}
	if a, b := len(fake.recordsFor("inc-1")), len(fake.recordsFor("inc-2")); a != 1 || b != 1 {
		t.Errorf("records per incident: %d, %d", a, b)
	}
	for _, k := range fake.keys {
		if !strings.HasPrefix(k, "inc-") {
			t.Errorf("request without idempotency key: %q", k)
		}
	}
}

// A POST whose answer is lost must not create a second record on retry.
func TestServiceNowRetryAfterLostCreateAnswer(t *testing.T) {
	fake, srv := newFakeServiceNow(t)
	fake.loseNextPostAnswer = true
	clock := newFakeClock()
	d, _ := newTestDispatcher(t, []Route{{Target: newSN(t, srv.URL, "pw")}}, clock, RetryConfig{})
	n := testNotification("inc-1", 1, KindCreated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := len(fake.recordsFor("inc-1")); got != 1 {
		t.Errorf("%d records, want 1", got)
	}
	if fake.count("POST") != 1 || fake.count("PATCH") != 1 || len(clock.Sleeps()) != 1 {
		t.Errorf("calls %v, sleeps %v", fake.calls, clock.Sleeps())
	}
	if v := counterValue(t, d.metrics.notifications, "servicenow", "created", ResultDelivered); v != 1 {
		t.Errorf("delivered = %v", v)
	}
}

func TestServiceNowRecreatesDeletedRecord(t *testing.T) {
	fake, srv := newFakeServiceNow(t)
	sn := newSN(t, srv.URL, "pw")
	n := testNotification("inc-1", 1, KindCreated)
	if err := sn.Send(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	clear(fake.records)
	fake.mu.Unlock()
	u := testNotification("inc-1", 2, KindUpdated)
	err := sn.Send(t.Context(), &u)
	if err == nil || IsPermanent(err) {
		t.Fatalf("PATCH of a deleted record: %v, want a retryable error", err)
	}
	if err := sn.Send(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	if got := len(fake.recordsFor("inc-1")); got != 1 {
		t.Errorf("%d records after re-create", got)
	}
}

func TestServiceNowBadCredentialsArePermanent(t *testing.T) {
	fake, srv := newFakeServiceNow(t)
	sn := newSN(t, srv.URL, "wrong-password")
	n := testNotification("inc-1", 1, KindCreated)
	err := sn.Send(t.Context(), &n)
	if !IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error shows the password: %v", err)
	}
	if len(fake.recordsFor("inc-1")) != 0 {
		t.Error("record created without auth")
	}
}

func TestServiceNowBearerTokenAndTable(t *testing.T) {
	reqs := make(chan *http.Request, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- r.Clone(context.Background())
		fmt.Fprint(w, `{"result":[]}`)
	}))
	defer srv.Close()
	sn, err := NewServiceNow(ServiceNowOptions{Name: "sn", BaseURL: srv.URL, Table: "u_alert_incident",
		BearerToken: "tok", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := testNotification("inc-1", 1, KindCreated)
	if err := sn.Send(t.Context(), &n); err == nil || IsPermanent(err) {
		t.Errorf("POST answered without sys_id: %v, want a retryable error", err)
	}
	got := <-reqs // the lookup
	if got.Header.Get("Authorization") != "Bearer tok" || !strings.HasPrefix(got.URL.Path, "/api/now/table/u_alert_incident") {
		t.Errorf("request %v", got)
	}
	bad := testNotification("a^b", 1, KindCreated)
	if err := sn.Send(t.Context(), &bad); !IsPermanent(err) {
		t.Errorf("incident id with '^': %v", err)
	}
}

func TestServiceNowCacheIsBounded(t *testing.T) {
	sn, _ := NewServiceNow(ServiceNowOptions{Name: "sn", BaseURL: "https://x", BearerToken: "t", CacheSize: 2})
	sn.remember("a", "1")
	sn.remember("b", "2")
	sn.remember("c", "3")
	if _, ok := sn.cached("a"); ok {
		t.Error("oldest entry not evicted")
	}
	if v, ok := sn.cached("c"); !ok || v != "3" || len(sn.cache) != 2 {
		t.Errorf("cache %v", sn.cache)
	}
}
