package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/ingest"
)

// peerList is a peerSource the test can change.
type peerList struct {
	mu    sync.Mutex
	peers []string
	err   error
}

func (p *peerList) Peers(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.peers), p.err
}

func (p *peerList) set(peers ...string) {
	p.mu.Lock()
	p.peers = peers
	p.mu.Unlock()
}

// twoInstances serves two fake instances over real HTTP, each knowing the
// other: a holds newFakeBackend's records, b other ones, opened between
// a's, and the same KEDB file entries.
func twoInstances(t *testing.T) (a, b *testServer, urlA, urlB string, peersOfA *peerList) {
	t.Helper()
	return twoInstancesServed(t, nil, httptest.NewServer)
}

// twoInstancesServed is twoInstances with a's client for requests to b
// (nil: plain) and b served by serveB.
func twoInstancesServed(t *testing.T, clientOfA *http.Client, serveB func(http.Handler) *httptest.Server) (a, b *testServer, urlA, urlB string, peersOfA *peerList) {
	t.Helper()
	topo := testTopology(t)
	backA, backB := newFakeBackend(topo), newFakeBackend(topo)
	for i, in := range backB.incs {
		cp := *in
		cp.ID = strings.Replace(in.ID, "INC-", "INC-b-", 1)
		cp.OpenedAt = in.OpenedAt.Add(30 * time.Minute)
		backB.incs[i] = &cp
	}
	backB.members = map[string][]correlate.Member{"INC-b-db": backA.members["INC-db"]}
	for i, p := range backB.problems {
		cp := *p
		cp.ID = p.ID + "-b"
		cp.RaisedAt = p.RaisedAt.Add(time.Duration(i+1) * time.Minute)
		backB.problems[i] = &cp
	}
	backB.known = append(backB.known[:2:2], &incidents.KnownError{ID: "KE-b", Title: "b", RootCause: "b", Workaround: "b",
		ProblemID: "PRB-1-b", Matchers: []string{`alertname="B"`}})
	peersOfA, peersOfB := &peerList{}, &peerList{}
	a = newFederatedTestServer(t, backA, testHTTPConfig(), zap.NewNop(), peersOfA, clientOfA)
	b = newFederatedTestServer(t, backB, testHTTPConfig(), zap.NewNop(), peersOfB, nil)
	srvA, srvB := httptest.NewServer(a.mux), serveB(b.mux)
	t.Cleanup(srvA.Close)
	t.Cleanup(srvB.Close)
	peersOfA.set(srvB.URL)
	peersOfB.set(srvA.URL)
	return a, b, srvA.URL, srvB.URL, peersOfA
}

func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func incidentIDs(p listPage[*incidents.Incident]) []string {
	return recordIDs(p.Items, func(in *incidents.Incident) string { return in.ID })
}

func recordIDs[T any](items []T, id func(T) string) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, id(it))
	}
	return ids
}

func TestAPIAnswersForEveryInstance(t *testing.T) {
	a, b, _, _, _ := twoInstances(t)

	// Lists merge both instances' records in the list's order, paged as one
	// list, whichever instance is asked.
	want := []string{"INC-b-db", "INC-db", "INC-b-web", "INC-web", "INC-b-resolved", "INC-resolved", "INC-b-closed", "INC-closed"}
	for name, s := range map[string]*testServer{"a": a, "b": b} {
		rec := s.do(t, "GET", "/api/v1/incidents?limit=1000", tokRead, "")
		p := decodeJSON[listPage[*incidents.Incident]](t, rec.Body.Bytes())
		if rec.Code != 200 || !slices.Equal(incidentIDs(p), want) || p.Total != 8 || p.Unavailable != nil {
			t.Fatalf("instance %s lists %d %v (total %d, unavailable %v), want %v", name, rec.Code, incidentIDs(p), p.Total, p.Unavailable, want)
		}
		rec = s.do(t, "GET", "/api/v1/incidents?limit=3&offset=2&status=open", tokRead, "")
		p = decodeJSON[listPage[*incidents.Incident]](t, rec.Body.Bytes())
		if got := incidentIDs(p); !slices.Equal(got, []string{"INC-b-web", "INC-web"}) || p.Total != 4 {
			t.Fatalf("instance %s, open incidents 3 from 2: %v of %d, want [INC-b-web INC-web] of 4", name, got, p.Total)
		}
	}
	rec := a.do(t, "GET", "/api/v1/problems", tokRead, "")
	probs := decodeJSON[listPage[*incidents.Problem]](t, rec.Body.Bytes())
	if got := recordIDs(probs.Items, func(p *incidents.Problem) string { return p.ID }); !slices.Equal(got, []string{"PRB-2-b", "PRB-1-b", "PRB-1", "PRB-2"}) || probs.Total != 4 {
		t.Fatalf("problems: %v of %d", got, probs.Total)
	}
	rec = a.do(t, "GET", "/api/v1/known-errors", tokRead, "")
	kes := decodeJSON[listPage[*incidents.KnownError]](t, rec.Body.Bytes())
	if got := recordIDs(kes.Items, func(k *incidents.KnownError) string { return k.ID }); !slices.Equal(got, []string{"KE-1", "KE-2", "KE-3", "KE-b"}) || kes.Total != 4 {
		t.Fatalf("known errors: %v of %d, want the file's entries once and each instance's own", got, kes.Total)
	}

	// A record of the other instance: read and acted on through this one,
	// by the caller's token.
	rec = a.do(t, "GET", "/api/v1/incidents/INC-b-db", tokRead, "")
	if d := decodeJSON[incidentDetail](t, rec.Body.Bytes()); rec.Code != 200 || d.Incident == nil || d.ID != "INC-b-db" || len(d.Members) != 4 {
		t.Fatalf("GET INC-b-db through a: %d %s", rec.Code, rec.Body)
	}
	rec = a.do(t, "GET", "/api/v1/problems/PRB-1-b", tokRead, "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"PRB-1-b"`) {
		t.Fatalf("GET PRB-1-b through a: %d %s", rec.Code, rec.Body)
	}
	rec = a.do(t, "POST", "/api/v1/incidents/INC-b-db/comment", tokOperator, `{"note":"from a"}`, "Idempotency-Key", "k-1")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"INC-b-db"`) {
		t.Fatalf("comment on INC-b-db through a: %d %s", rec.Code, rec.Body)
	}
	if n := len(a.backend.cmds); n != 1 || a.backend.cmds[0].IncidentID != "INC-b-db" {
		t.Fatalf("a tried %d commands, want its own attempt only", n)
	}
	if len(b.backend.cmds) != 1 {
		t.Fatalf("b applied %d commands, want 1", len(b.backend.cmds))
	}
	if c := b.backend.cmds[0]; c.By != "alice" || c.ID != "k-1" || c.Note != "from a" {
		t.Fatalf("b applied %+v: want alice's comment with her idempotency key", c)
	}
	// The other instance's answer comes through as it is: a conflict stays
	// a conflict.
	rec = a.do(t, "POST", "/api/v1/incidents/INC-b-closed/acknowledge", tokOperator, "")
	if rec.Code != http.StatusConflict {
		t.Fatalf("acknowledge a closed incident of b through a: %d %s, want 409", rec.Code, rec.Body)
	}

	// No Idempotency-Key from the caller: the command's id goes with it,
	// so that a retry sent on again is applied once.
	rec = a.do(t, "POST", "/api/v1/incidents/INC-b-web/comment", tokOperator, `{"note":"no key"}`)
	if rec.Code != 200 {
		t.Fatalf("comment without a key through a: %d %s", rec.Code, rec.Body)
	}
	if mine, theirs := a.backend.cmds[len(a.backend.cmds)-1].ID, b.backend.cmds[len(b.backend.cmds)-1].ID; mine == "" || mine != theirs {
		t.Fatalf("command id here %q, there %q: want the same", mine, theirs)
	}
	if len(b.backend.cmds) != 3 {
		t.Fatalf("b got %d commands, want 3", len(b.backend.cmds))
	}

	// A page past the deepest of a list over every instance.
	if rec = a.do(t, "GET", "/api/v1/incidents?offset=9950&limit=100", tokRead, ""); rec.Code != 400 || !strings.Contains(rec.Body.String(), "offset") {
		t.Fatalf("deep page: %d %s", rec.Code, rec.Body)
	}

	// A body over the limit is refused here, as by the instance that holds
	// the record.
	rec = a.do(t, "POST", "/api/v1/incidents/INC-b-db/comment", tokOperator, `{"note":"`+strings.Repeat("x", maxActionBody)+`"}`)
	if rec.Code != http.StatusRequestEntityTooLarge || len(b.backend.cmds) != 3 {
		t.Fatalf("oversized comment through a: %d %s (b got %d commands)", rec.Code, rec.Body, len(b.backend.cmds))
	}

	// Nowhere: 404. From another instance: this one's records only, so a
	// request never travels twice.
	rec = a.do(t, "GET", "/api/v1/incidents/INC-nowhere", tokRead, "")
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "INC-nowhere") {
		t.Fatalf("unknown incident: %d %s", rec.Code, rec.Body)
	}
	rec = a.do(t, "GET", "/api/v1/incidents/INC-b-db", tokRead, "", forwardedHeader, "http://peer.test")
	if rec.Code != 404 {
		t.Fatalf("forwarded GET of b's incident at a: %d, want 404 (not forwarded again)", rec.Code)
	}
	rec = a.do(t, "GET", "/api/v1/incidents", tokRead, "", forwardedHeader, "http://peer.test")
	if p := decodeJSON[listPage[*incidents.Incident]](t, rec.Body.Bytes()); p.Total != 4 {
		t.Fatalf("forwarded list at a: total %d, want a's 4", p.Total)
	}

	// Credentials are checked where the request arrives, and again where
	// it goes.
	if rec = a.do(t, "GET", "/api/v1/incidents/INC-b-db", "wrong-token-0123456789", ""); rec.Code != 401 {
		t.Fatalf("wrong token: %d", rec.Code)
	}
	if rec = a.do(t, "POST", "/api/v1/incidents/INC-b-db/comment", tokRead, `{"note":"x"}`); rec.Code != 403 {
		t.Fatalf("read token acting: %d", rec.Code)
	}
	if len(b.backend.cmds) != 3 {
		t.Fatalf("b got %d commands, want 3 (two comments and the refused acknowledge)", len(b.backend.cmds))
	}
}

// TestAPIPassesOnNoRefusal: an instance that refuses the caller (its
// tokens differ during a rollout) counts as not answering: the others are
// asked, and its 403 never reaches a caller this instance authorized.
func TestAPIPassesOnNoRefusal(t *testing.T) {
	a, _, _, urlB, peersOfA := twoInstances(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, errors.New("this token lacks the read role"))
	}))
	t.Cleanup(refusing.Close)
	peersOfA.set(refusing.URL, urlB)
	if rec := a.do(t, "GET", "/api/v1/incidents/INC-b-db", tokRead, ""); rec.Code != 200 {
		t.Fatalf("with a refusing instance before the holder: %d %s", rec.Code, rec.Body)
	}
	peersOfA.set(refusing.URL)
	rec := a.do(t, "GET", "/api/v1/incidents/INC-b-db", tokRead, "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "answered 403") {
		t.Fatalf("only a refusing instance: %d %s, want 503 saying what it answered", rec.Code, rec.Body)
	}
}

func TestAPIWithAnInstanceDown(t *testing.T) {
	a, _, _, _, peersOfA := twoInstances(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	peersOfA.set(down.URL)

	rec := a.do(t, "GET", "/api/v1/incidents", tokRead, "")
	p := decodeJSON[listPage[*incidents.Incident]](t, rec.Body.Bytes())
	if rec.Code != 200 || p.Total != 4 || len(p.Unavailable) != 1 || !strings.HasPrefix(p.Unavailable[0], down.URL+": ") {
		t.Fatalf("list with an instance down: %d, total %d, unavailable %v: want a's 4 and the instance named", rec.Code, p.Total, p.Unavailable)
	}
	// A record that may be on the instance that is down: 503, not 404.
	rec = a.do(t, "GET", "/api/v1/incidents/INC-b-db", tokRead, "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), down.URL) {
		t.Fatalf("GET with the other instance down: %d %s, want 503 naming it", rec.Code, rec.Body)
	}
	// This instance's records are answered as ever.
	if rec = a.do(t, "GET", "/api/v1/incidents/INC-db", tokRead, ""); rec.Code != 200 {
		t.Fatalf("own record: %d", rec.Code)
	}
	peersOfA.mu.Lock()
	peersOfA.err = errors.New("coordinator unavailable")
	peersOfA.mu.Unlock()
	rec = a.do(t, "GET", "/api/v1/incidents", tokRead, "")
	if p := decodeJSON[listPage[*incidents.Incident]](t, rec.Body.Bytes()); rec.Code != 200 || len(p.Unavailable) != 1 ||
		!strings.Contains(p.Unavailable[0], "coordinator unavailable") {
		t.Fatalf("list without the list of instances: %d %v", rec.Code, p.Unavailable)
	}
}

func TestGroupPeers(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	calls := 0
	state := "PreparingRebalance"
	var lookupErr error
	members := []ingest.GroupMember{
		{ID: "m-self", Data: memberDataOf("http://10.0.0.1:9470"), Partitions: []int{0, 1}},
		{ID: "m-b", Data: memberDataOf("http://10.0.0.2:9470"), Partitions: []int{2}},
		{ID: "m-old", Data: nil, Partitions: []int{3}},                                 // started without --web.advertise-url
		{ID: "m-bad", Data: []byte(`{"api":"ftp://x"}`), Partitions: nil},              // not an API URL
		{ID: "m-b2", Data: memberDataOf("http://10.0.0.2:9470"), Partitions: []int{4}}, // same API twice
	}
	g := &groupPeers{self: "http://10.0.0.1:9470", now: func() time.Time { return now }, logger: zap.NewNop(),
		members: func(ctx context.Context) (string, []ingest.GroupMember, error) {
			calls++
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the coordinator is asked without a deadline")
			}
			return state, members, lookupErr
		}}
	// Rebalancing, and no list yet: asked again until the deadline, then an
	// error, so that a record is not answered a false 404; it is kept for
	// the TTL.
	short, cancel := context.WithTimeout(context.Background(), 3*peerLookupRetry+peerLookupRetry/2)
	defer cancel()
	if peers, err := g.Peers(short); err == nil || !strings.Contains(err.Error(), "PreparingRebalance") || calls < 3 {
		t.Fatalf("rebalancing group: %v, %v after %d lookups; want an error naming its state after several", peers, err, calls)
	}
	asked := calls
	if _, err := g.Peers(context.Background()); err == nil || calls != asked {
		t.Fatalf("within the TTL: %v after %d lookups, want the kept error after %d", err, calls, asked)
	}
	// The last step of a rebalance: waited for.
	settle := calls + 2
	g.members = func(ctx context.Context) (string, []ingest.GroupMember, error) {
		calls++
		if calls < settle {
			return "CompletingRebalance", members, nil
		}
		return state, members, lookupErr
	}
	state = ingest.GroupStable
	now = now.Add(peerDirectoryTTL)
	peers, err := g.Peers(context.Background())
	if err != nil || !slices.Equal(peers, []string{"http://10.0.0.2:9470"}) || calls != settle {
		t.Fatalf("peers %v, %v after %d lookups: want the other advertised API once, after %d", peers, err, calls, settle)
	}
	members = append(members, ingest.GroupMember{ID: "m-c", Data: memberDataOf("https://10.0.0.3:9470")})
	now = now.Add(peerDirectoryTTL - time.Millisecond)
	if peers, _ = g.Peers(context.Background()); len(peers) != 1 || calls != settle {
		t.Fatalf("within the TTL: %v after %d calls", peers, calls)
	}
	now = now.Add(time.Millisecond)
	if peers, _ = g.Peers(context.Background()); len(peers) != 2 || calls != settle+1 {
		t.Fatalf("after the TTL: %v after %d calls, want the new member", peers, calls)
	}
	// A rebalance, then the coordinator away: the last stable list answers.
	for _, fail := range []func(){func() { state = "CompletingRebalance" }, func() { state, lookupErr = "", errors.New("coordinator away") }} {
		fail()
		now = now.Add(peerDirectoryTTL)
		if peers, err = g.Peers(context.Background()); err != nil || len(peers) != 2 {
			t.Fatalf("state %q, error %v: %v, %v; want the last stable list", state, lookupErr, peers, err)
		}
	}
}

func TestValidAdvertiseURL(t *testing.T) {
	for _, ok := range []string{"http://10.0.0.5:9470", "https://correlatord-0.correlatord:9470", "http://[::1]:9470/"} {
		if err := validAdvertiseURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.5:9470", "ftp://x:1", "http://", "http://x:1/api", "http://x:1?a=b", "http://u:p@x:1", "http://x:1/#f"} {
		if err := validAdvertiseURL(bad); err == nil || !strings.Contains(err.Error(), "--web.advertise-url") {
			t.Errorf("%s: %v, want an error naming the flag", bad, err)
		}
	}
}
