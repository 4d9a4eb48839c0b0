package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	promconfig "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/ingest"
)

// With Kafka, each instance holds the incidents and problems of the keyed
// partitions it owns. So that an operator may reach any instance (through a
// Kubernetes Service, say), an instance that advertises its API
// (--web.advertise-url) answers for all of them: lists merge the other
// instances' lists, and a read or an action on a record it does not hold
// goes to the others until one does. The instances find each other in the
// stateful stage's consumer group, where each sends its API's address with
// its join. A request between instances carries forwardedHeader and is
// answered from the receiving instance's own partitions only, so it never
// travels further.

// forwardedHeader marks a request from another instance. Its value is the
// sender's advertised URL, which tells where it came from when a request is
// traced.
const forwardedHeader = "X-Correlatord-Forwarded"

// peerTimeout bounds one request to another instance, and the gathering of
// a list from all of them. An action waits on the instance that holds the
// record for up to commandWaitTimeout after producing its command: this is
// longer, so the caller gets that instance's 200 or 202, not a timeout.
const peerTimeout = 3 * commandWaitTimeout

// newPeerClient returns the client for requests to other instances: a
// plain one without a file, else one built from file, a Prometheus HTTP
// client configuration. Its tls_config carries the CA that signed the other
// instances' certificates and, where they require client certificates
// (client_auth_type in --web.config.file), this instance's certificate and
// key. Credentials are refused: a request carries its caller's token, which
// the other instance checks as its own.
func newPeerClient(file string) (*http.Client, error) {
	client := &http.Client{Timeout: peerTimeout}
	if file == "" {
		return client, nil
	}
	cfg, _, err := promconfig.LoadHTTPConfigFile(file)
	if err != nil {
		return nil, fmt.Errorf("--web.peer-config.file %s: %w", file, err)
	}
	for field, set := range map[string]bool{
		"basic_auth": cfg.BasicAuth != nil, "authorization": cfg.Authorization != nil, "oauth2": cfg.OAuth2 != nil,
		"bearer_token": cfg.BearerToken != "", "bearer_token_file": cfg.BearerTokenFile != "",
	} {
		if set {
			return nil, fmt.Errorf("--web.peer-config.file %s: %s: requests to other instances carry their caller's token; only tls_config and proxy settings are taken", file, field)
		}
	}
	rt, err := promconfig.NewRoundTripperFromConfig(*cfg, "correlatord-peers")
	if err != nil {
		return nil, fmt.Errorf("--web.peer-config.file %s: %w", file, err)
	}
	client.Transport = rt
	return client, nil
}

// peerLookupTimeout bounds asking the group coordinator for the members,
// and waiting for a rebalancing group to settle; peerLookupRetry is how
// often it is asked meanwhile.
const (
	peerLookupTimeout = 2 * time.Second
	peerLookupRetry   = 100 * time.Millisecond
)

// maxFederatedWindow bounds offset+limit of a list over every instance: each
// instance is asked for that many records.
const maxFederatedWindow = 10000

// peerDirectoryTTL is how long the list of instances is reused. A member
// that left is dropped from the group within its session timeout (10 s)
// anyway.
const peerDirectoryTTL = 2 * time.Second

// memberData is what an instance sends with its join to the consumer group.
type memberData struct {
	API string `json:"api"`
}

// memberDataOf is the member data advertising api; nil when api is "".
func memberDataOf(api string) []byte {
	if api == "" {
		return nil
	}
	b, _ := json.Marshal(memberData{API: api}) // a struct of a string: never fails
	return b
}

// validAdvertiseURL checks --web.advertise-url: an absolute http or https
// URL of a host, without path, query or fragment.
func validAdvertiseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("--web.advertise-url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("--web.advertise-url: %q: want an http:// or https:// URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("--web.advertise-url: %q has no host", s)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("--web.advertise-url: %q: give scheme, host and port only", s)
	}
	return nil
}

// peerSource lists the other instances' API base URLs.
type peerSource interface {
	Peers(ctx context.Context) ([]string, error)
}

// groupPeers is the peerSource of the daemon: the members of the stateful
// stage's consumer group, but this instance.
type groupPeers struct {
	self    string
	members func(context.Context) (state string, members []ingest.GroupMember, err error)
	now     func() time.Time
	logger  *zap.Logger

	mu    sync.Mutex
	peers []string // of the last lookup of a stable group
	good  bool     // peers holds such a lookup
	at    time.Time
	err   error // of the last lookup, when it failed
	// warned holds the member ids logged as advertising no API.
	warned map[string]bool
}

// Peers implements peerSource. While the group rebalances (every deploy
// and scale-out) the coordinator describes no member's data: the last
// stable list answers then, and without one the lookup fails, so that a
// record is answered 503 rather than a false 404. A lookup, failed or not,
// is reused for peerDirectoryTTL, so a coordinator that is away is not
// asked by every request.
func (g *groupPeers) Peers(ctx context.Context) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !g.at.IsZero() && now.Sub(g.at) < peerDirectoryTTL && now.Sub(g.at) >= 0 {
		if g.err != nil && !g.good {
			return nil, g.err
		}
		return g.peers, nil
	}
	ctx, cancel := context.WithTimeout(ctx, peerLookupTimeout)
	defer cancel()
	var (
		state   string
		members []ingest.GroupMember
		err     error
	)
	for {
		state, members, err = g.members(ctx)
		if err == nil && state != ingest.GroupStable {
			err = fmt.Errorf("the consumer group is %s: its members are not known until it is stable", state)
			// Without a list to fall back on, wait a little: the last step
			// of a rebalance takes a moment, and an instance that has just
			// started has no list yet.
			if !g.good {
				select {
				case <-ctx.Done():
				case <-time.After(peerLookupRetry):
					continue
				}
			}
		}
		break
	}
	g.at, g.err = now, err
	if err != nil {
		if g.good {
			return g.peers, nil
		}
		return nil, err
	}
	var peers []string
	for _, m := range members {
		var d memberData
		if err := json.Unmarshal(m.Data, &d); err != nil || validAdvertiseURL(d.API) != nil {
			// An instance started without --web.advertise-url, or an
			// older build: its records cannot be reached from here.
			if !g.warned[m.ID] {
				if len(g.warned) >= 1000 { // members come and go: bounded
					clear(g.warned)
				}
				if g.warned == nil {
					g.warned = map[string]bool{}
				}
				g.warned[m.ID] = true
				g.logger.Warn("a member of the consumer group advertises no API; the API cannot read or act on its partitions' records",
					zap.String("member", m.ID), zap.Ints("partitions", m.Partitions))
			}
			continue
		}
		if d.API != g.self && !slices.Contains(peers, d.API) {
			peers = append(peers, d.API)
		}
	}
	slices.Sort(peers)
	g.peers, g.good = peers, true
	return peers, nil
}

// peerRelay sends API requests to the other instances.
type peerRelay struct {
	source peerSource
	self   string
	client *http.Client
	logger *zap.Logger
	// requests counts requests to other instances by outcome: found (2xx),
	// not_found, refused (another 4xx), failed (no answer or 5xx).
	requests *prometheus.CounterVec
}

func newPeerRelay(source peerSource, self string, client *http.Client, reg prometheus.Registerer, logger *zap.Logger) *peerRelay {
	p := &peerRelay{source: source, self: self, client: client, logger: logger.With(zap.String("component", "api-peers")),
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_api_peer_requests_total",
			Help: "Incidents API requests sent to other instances, by outcome: found, not_found, refused, failed.",
		}, []string{"outcome"})}
	for _, o := range []string{"found", "not_found", "refused", "failed"} {
		p.requests.WithLabelValues(o)
	}
	return p
}

// peerAnswer is one instance's answer.
type peerAnswer struct {
	status int
	header http.Header
	body   []byte
	err    error // no answer
}

// send makes the request r asked of this instance, with body, to peer:
// with method, r's path and query (query, when not nil, replaces r's), and
// the caller's credentials and idempotency key.
func (p *peerRelay) send(ctx context.Context, peer, method string, r *http.Request, query url.Values, body []byte) peerAnswer {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	u := peer + r.URL.EscapedPath()
	q := r.URL.RawQuery
	if query != nil {
		q = query.Encode()
	}
	if q != "" {
		u += "?" + q
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return p.count(peerAnswer{err: err})
	}
	for _, h := range []string{"Authorization", "Idempotency-Key", "Content-Type", "Accept"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set(forwardedHeader, p.self)
	resp, err := p.client.Do(req)
	if err != nil {
		return p.count(peerAnswer{err: err})
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerAnswer+1))
	switch {
	case err != nil:
		return p.count(peerAnswer{err: fmt.Errorf("read the answer: %w", err)})
	case len(b) > maxPeerAnswer:
		return p.count(peerAnswer{err: fmt.Errorf("answer over %d bytes", maxPeerAnswer)})
	}
	a := peerAnswer{status: resp.StatusCode, header: resp.Header, body: b}
	if a.status >= 500 {
		a.err = a.unexpected()
	}
	return p.count(a)
}

// unexpected is the error of an answer the asker cannot use.
func (a peerAnswer) unexpected() error {
	return fmt.Errorf("answered %d: %s", a.status, errorText(a.body))
}

// maxPeerAnswer bounds an answer read from another instance: a page of
// maxLimit records.
const maxPeerAnswer = 64 << 20

func (p *peerRelay) count(a peerAnswer) peerAnswer {
	outcome := "failed"
	switch {
	case a.err != nil:
	case a.status == http.StatusNotFound:
		outcome = "not_found"
	case a.status >= 400:
		outcome = "refused"
	default:
		outcome = "found"
	}
	p.requests.WithLabelValues(outcome).Inc()
	return a
}

// errorText is the error of an API error body, or the body's start.
func errorText(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	return string(b[:min(len(b), 200)])
}

// errPeersUnavailable is returned when a record was not found here and some
// instances could not be asked: it may be on one of them.
var errPeersUnavailable = errors.New("not on this instance, and other instances did not answer")

// relay asks the other instances, one after the other, for what r asked of
// this one, which does not hold the record, and writes the first answer
// about the record: a success, 409 or 413. It returns false when every
// instance answered 404: the caller answers its own 404. Any other answer
// (401 or 403 from an instance whose tokens differ during a rollout, 400
// from a TLS listener asked over plain HTTP, 5xx) counts as that instance
// not answering: it is never passed on, as the caller was authorized here.
// An error names the instances that did not answer.
func (p *peerRelay) relay(w http.ResponseWriter, r *http.Request, body []byte) (bool, error) {
	peers, err := p.source.Peers(r.Context())
	if err != nil {
		return false, fmt.Errorf("%w: list the instances: %w", errPeersUnavailable, err)
	}
	var failed []string
	for _, peer := range peers {
		a := p.send(r.Context(), peer, r.Method, r, nil, body)
		if a.err == nil && !recordAnswer(a.status) && a.status != http.StatusNotFound {
			a.err = a.unexpected()
		}
		switch {
		case a.err != nil:
			p.logger.Warn("asking another instance failed", zap.String("peer", peer), zap.String("path", r.URL.Path), zap.Error(a.err))
			failed = append(failed, peer+": "+a.err.Error())
		case a.status == http.StatusNotFound:
		default:
			if ct := a.header.Get("Content-Type"); ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			w.WriteHeader(a.status)
			_, _ = w.Write(a.body)
			return true, nil
		}
	}
	if len(failed) > 0 {
		return false, fmt.Errorf("%w: %s", errPeersUnavailable, strings.Join(failed, "; "))
	}
	return false, nil
}

// recordAnswer reports whether another instance's status answers for the
// record itself.
func recordAnswer(status int) bool {
	return status/100 == 2 || status == http.StatusConflict || status == http.StatusRequestEntityTooLarge
}

// peerLists gathers the first want records of a list endpoint from every
// other instance, with r's filters, paging through each as needed. It
// returns the records, the sum of the instances' totals, and the instances
// that did not answer (each with why): their records are missing.
func peerLists[T any](ctx context.Context, p *peerRelay, r *http.Request, want int) ([]T, int, []string) {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	peers, err := p.source.Peers(ctx)
	if err != nil {
		return nil, 0, []string{"the list of instances: " + err.Error()}
	}
	type result struct {
		items []T
		total int
		err   error
	}
	results := make([]result, len(peers))
	var wg sync.WaitGroup
	for i, peer := range peers {
		wg.Go(func() {
			res := &results[i]
			q := r.URL.Query()
			for len(res.items) < want {
				q.Set("offset", strconv.Itoa(len(res.items)))
				q.Set("limit", strconv.Itoa(min(maxLimit, want-len(res.items))))
				a := p.send(ctx, peer, http.MethodGet, r, q, nil) // GET for HEAD too: the items are needed
				if a.err == nil && a.status != http.StatusOK {
					a.err = a.unexpected()
				}
				if a.err != nil {
					res.err = a.err
					return
				}
				var page listPage[T]
				if err := json.Unmarshal(a.body, &page); err != nil {
					res.err = fmt.Errorf("decode the list: %w", err)
					return
				}
				res.items, res.total = append(res.items, page.Items...), page.Total
				if len(page.Items) == 0 || len(res.items) >= page.Total {
					return
				}
			}
		})
	}
	wg.Wait()
	var items []T
	var total int
	var unavailable []string
	for i, res := range results {
		if res.err != nil {
			p.logger.Warn("listing another instance's records failed; the answer lacks them", zap.String("peer", peers[i]),
				zap.String("path", r.URL.Path), zap.Error(res.err))
			unavailable = append(unavailable, peers[i]+": "+res.err.Error())
			continue
		}
		items, total = append(items, res.items...), total+res.total
	}
	return items, total, unavailable
}

// mergeRecords merges this instance's records with other instances', in the
// list's order (cmp), keeping one record per id: during a rebalance two
// instances may both hold one for a moment. It returns the records and how
// many duplicates it dropped.
func mergeRecords[T any](local, remote []T, id func(T) string, compare func(a, b T) int) ([]T, int) {
	all := append(slices.Clip(local), remote...)
	slices.SortStableFunc(all, func(a, b T) int { return cmp.Or(compare(a, b), strings.Compare(id(a), id(b))) })
	out := all[:0]
	dropped := 0
	for i, rec := range all {
		if i > 0 && id(rec) == id(all[i-1]) {
			dropped++
			continue
		}
		out = append(out, rec)
	}
	return out, dropped
}
