package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/incidents"
)

// The incidents API: JSON over HTTP, documented in docs/openapi.yaml (a
// test keeps the two in step). Every route is in apiRoutes, with the role it
// needs and the query parameters it takes.

const (
	// maxActionBody bounds an action's request body.
	maxActionBody = 64 << 10
	defaultLimit  = 50
	maxLimit      = 1000
	// maxSubgraphNodes bounds the topology returned with an incident.
	maxSubgraphNodes = 500
	// subgraphDepth is how many hops of dependencies around the incident's
	// CIs the topology shows.
	subgraphDepth = 2
	// maxIdempotencyKey bounds an Idempotency-Key header.
	maxIdempotencyKey = 128
)

// apiError is an error with the status to answer; its message is for the
// client.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// errorBody is every error's JSON.
type errorBody struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeStatus(w, code, errorBody{Status: "error", Error: err.Error()})
}

// listPage is a page of a list endpoint.
type listPage[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	// Unavailable names the other instances whose records are missing from
	// the list because they did not answer, each with why.
	Unavailable []string `json:"unavailable,omitempty"`
}

// incidentDetail is GET /api/v1/incidents/{id}: the record with why each
// event is in it, what happened to it, and the topology around it.
type incidentDetail struct {
	*incidents.Incident
	Members  []replayMember  `json:"members"`
	Timeline []timelineEntry `json:"timeline"`
	// Topology is nil without a CMDB.
	Topology *subgraph `json:"topology"`
}

// Timeline entry kinds.
const (
	kindTransition = "transition"
	kindEscalation = "escalation"
	kindBreach     = "breach"
	kindComment    = "comment"
)

// timelineEntry is one thing that happened to an incident. From and To are
// statuses for transitions and escalation levels for escalations.
type timelineEntry struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	By   string    `json:"by,omitempty"`
	From string    `json:"from,omitempty"`
	To   string    `json:"to,omitempty"`
	Text string    `json:"text,omitempty"`
}

// Roles of a CI in an incident's subgraph, most significant first: a node
// gets the first that applies.
const (
	nodeRootCause  = "root_cause"
	nodeMember     = "member"
	nodePath       = "path"
	nodeService    = "service"
	nodeDependency = "dependency"
)

type subgraphNode struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	InCMDB       bool   `json:"in_cmdb"`
	Type         string `json:"type,omitempty"`
	Name         string `json:"name,omitempty"`
	Criticality  int    `json:"criticality,omitempty"`
	SupportGroup string `json:"support_group,omitempty"`
}

type subgraphEdge struct {
	// Source depends on Target.
	Source string `json:"source"`
	Target string `json:"target"`
	Type   string `json:"type"`
}

type subgraph struct {
	Nodes []subgraphNode `json:"nodes"`
	Edges []subgraphEdge `json:"edges"`
	// Truncated: more than maxSubgraphNodes CIs were around the incident;
	// the nearest were kept.
	Truncated bool `json:"truncated"`
}

type acceptedBody struct {
	Status    string `json:"status"`
	CommandID string `json:"command_id"`
}

// Action bodies. Each is decoded strictly: a field another action takes is
// an error here, so a client learns about its mistake.
type (
	noteBody struct {
		Note string `json:"note"`
	}
	assignBody struct {
		AssignTo string `json:"assign_to"`
		Note     string `json:"note"`
	}
	knownErrorBody struct {
		RootCause  string   `json:"root_cause"`
		Workaround string   `json:"workaround"`
		Matchers   []string `json:"matchers"`
		Note       string   `json:"note"`
	}
)

// apiRoute is one endpoint.
type apiRoute struct {
	method, pattern string
	// name labels metrics and is the OpenAPI operationId.
	name  string
	need  role
	query []string
	serve func(*incidentAPI, http.ResponseWriter, *http.Request) error
	// record: the route reads or acts on one record, which another
	// instance holds when this one answers 404 (see peers.go).
	record bool
}

var pagingParams = []string{"limit", "offset"}

// incidentActions maps the path of each incident action to the action.
var incidentActions = []struct {
	path   string
	action incidents.Action
}{
	{"acknowledge", incidents.ActAcknowledge},
	{"start", incidents.ActStart},
	{"assign", incidents.ActAssign},
	{"comment", incidents.ActComment},
	{"resolve", incidents.ActResolve},
	{"close", incidents.ActClose},
	{"reopen", incidents.ActReopen},
}

var problemActions = []struct {
	path   string
	action incidents.Action
}{
	{"accept", incidents.ActAcceptProblem},
	{"reject", incidents.ActRejectProblem},
	{"known-error", incidents.ActKnownError},
	{"resolve", incidents.ActResolveProblem},
	{"close", incidents.ActCloseProblem},
}

// apiRoutes lists every endpoint of the incidents API.
func apiRoutes() []apiRoute {
	routes := []apiRoute{
		{method: http.MethodGet, pattern: "/api/v1/incidents", name: "list_incidents", need: roleRead,
			query: []string{"status", "priority", "service", "ci", "from", "to", "limit", "offset"},
			serve: (*incidentAPI).listIncidents},
		{method: http.MethodGet, pattern: "/api/v1/incidents/{id}", name: "get_incident", need: roleRead,
			serve: (*incidentAPI).getIncident, record: true},
		{method: http.MethodGet, pattern: "/api/v1/problems", name: "list_problems", need: roleRead,
			query: []string{"status", "limit", "offset"}, serve: (*incidentAPI).listProblems},
		{method: http.MethodGet, pattern: "/api/v1/problems/{id}", name: "get_problem", need: roleRead,
			serve: (*incidentAPI).getProblem, record: true},
		{method: http.MethodGet, pattern: "/api/v1/known-errors", name: "list_known_errors", need: roleRead,
			query: pagingParams, serve: (*incidentAPI).listKnownErrors},
	}
	for _, a := range incidentActions {
		action := a.action
		routes = append(routes, apiRoute{method: http.MethodPost, pattern: "/api/v1/incidents/{id}/" + a.path,
			name: string(action) + "_incident", need: roleOperator, record: true,
			serve: func(api *incidentAPI, w http.ResponseWriter, r *http.Request) error { return api.act(w, r, action) }})
	}
	for _, a := range problemActions {
		action := a.action
		routes = append(routes, apiRoute{method: http.MethodPost, pattern: "/api/v1/problems/{id}/" + a.path,
			name: strings.TrimSuffix(string(action), "_problem") + "_problem", need: roleOperator, record: true,
			serve: func(api *incidentAPI, w http.ResponseWriter, r *http.Request) error { return api.act(w, r, action) }})
	}
	return routes
}

// incidentAPI serves apiRoutes over a backend.
type incidentAPI struct {
	backend  incidentBackend
	peers    *peerRelay // nil: this instance answers for its own partitions only
	logger   *zap.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (a *incidentAPI) instrument(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		a.requests.WithLabelValues(name, strconv.Itoa(rec.code)).Inc()
		a.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

// handler checks the query parameters, runs the route and answers its
// error.
func (a *incidentAPI) handler(rt apiRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := checkQuery(r.URL.Query(), rt.query)
		var body []byte // an action's body, kept for another instance
		if err == nil && rt.record && a.federated(r) && r.Method == http.MethodPost {
			if body, err = readActionBody(w, r); err == nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			// The command's id goes with it to another instance, so that a
			// retry by the caller is applied once there too.
			if r.Header.Get("Idempotency-Key") == "" {
				id, _ := commandID(r) // no key given: never fails
				r.Header.Set("Idempotency-Key", id)
			}
		}
		if err == nil {
			err = rt.serve(a, w, r)
		}
		if err != nil && rt.record && a.federated(r) && errors.Is(err, incidents.ErrNotFound) {
			var relayed bool
			if relayed, err = a.peers.relay(w, r, body); relayed {
				return
			}
			if err == nil {
				err = fmt.Errorf("%w: %s on no instance", incidents.ErrNotFound, r.PathValue("id"))
			}
		}
		if err == nil {
			return
		}
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			writeError(w, ae.status, ae)
		case errors.Is(err, incidents.ErrNotFound):
			writeError(w, http.StatusNotFound, err)
		case errors.Is(err, incidents.ErrConflict):
			writeError(w, http.StatusConflict, err)
		case errors.Is(err, incidents.ErrBadInput):
			writeError(w, http.StatusBadRequest, err)
		default:
			a.logger.Warn("API request failed", zap.String("route", rt.name), zap.Error(err))
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("temporarily unavailable: %w", err))
		}
	})
}

// checkQuery rejects query parameters the endpoint does not take, so a
// typo (?stauts=new) is an error instead of an unfiltered answer.
func checkQuery(q url.Values, allowed []string) error {
	var unknown []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	takes := "takes no query parameters"
	if len(allowed) > 0 {
		takes = "takes " + strings.Join(allowed, ", ")
	}
	return badRequest("unknown query parameter %q: this endpoint %s", unknown[0], takes)
}

// params reads query parameters, collecting every error.
type params struct {
	q    url.Values
	errs []string
}

func (p *params) fail(name, format string, args ...any) {
	p.errs = append(p.errs, name+": "+fmt.Sprintf(format, args...))
}

func (p *params) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return badRequest("%s", strings.Join(p.errs, "; "))
}

// single returns a parameter that may be given once.
func (p *params) single(name string) (string, bool) {
	vs, ok := p.q[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		p.fail(name, "give it once, got %d values", len(vs))
		return "", false
	}
	if strings.TrimSpace(vs[0]) == "" {
		p.fail(name, "must not be empty")
		return "", false
	}
	return vs[0], true
}

// list returns a parameter that may be repeated or comma-separated, each
// value checked against valid.
func (p *params) list(name string, valid []string, aliases map[string][]string) []string {
	vs, ok := p.q[name]
	if !ok {
		return nil
	}
	var out []string
	for _, v := range vs {
		for s := range strings.SplitSeq(v, ",") {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				p.fail(name, "empty value in %q", v)
			case aliases[s] != nil:
				out = append(out, aliases[s]...)
			case slices.Contains(valid, s):
				out = append(out, s)
			default:
				all := slices.Clone(valid)
				for k := range aliases {
					all = append(all, k)
				}
				p.fail(name, "%q is not one of %s", s, strings.Join(all, ", "))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *params) time(name string) time.Time {
	v, ok := p.single(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		p.fail(name, "%q is not an RFC 3339 time such as 2026-11-02T10:00:00Z", v)
	}
	return t
}

func (p *params) int(name string, def, lo, hi int) int {
	v, ok := p.single(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, "%q is not a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

func (p *params) paging() (limit, offset int) {
	return p.int("limit", defaultLimit, 1, maxLimit), p.int("offset", 0, 0, 1<<31-1)
}

var (
	incidentStatuses = []string{string(incidents.StatusNew), string(incidents.StatusAcknowledged),
		string(incidents.StatusInProgress), string(incidents.StatusReopened), string(incidents.StatusResolved),
		string(incidents.StatusClosed)}
	// open is shorthand for the statuses before resolution.
	incidentStatusAliases = map[string][]string{"open": {string(incidents.StatusNew), string(incidents.StatusAcknowledged),
		string(incidents.StatusInProgress), string(incidents.StatusReopened)}}
	priorities      = []string{string(incidents.P1), string(incidents.P2), string(incidents.P3), string(incidents.P4), string(incidents.P5)}
	problemStatuses = []string{string(incidents.ProblemCandidate), string(incidents.ProblemAccepted),
		string(incidents.ProblemKnownError), string(incidents.ProblemResolved), string(incidents.ProblemClosed),
		string(incidents.ProblemRejected)}
)

// parseIncidentFilter reads the list endpoint's query; the error names
// every wrong parameter.
func parseIncidentFilter(q url.Values) (incidentFilter, error) {
	p := &params{q: q}
	var f incidentFilter
	for _, s := range p.list("status", incidentStatuses, incidentStatusAliases) {
		f.Status = append(f.Status, incidents.Status(s))
	}
	for _, s := range p.list("priority", priorities, nil) {
		f.Priority = append(f.Priority, incidents.Priority(s))
	}
	f.Service, _ = p.single("service")
	f.CI, _ = p.single("ci")
	f.From, f.To = p.time("from"), p.time("to")
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		p.fail("from", "%s is after to (%s)", f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))
	}
	f.Limit, f.Offset = p.paging()
	return f, p.err()
}

func (a *incidentAPI) listIncidents(w http.ResponseWriter, r *http.Request) error {
	f, err := parseIncidentFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if !a.federated(r) {
		items, total, err := a.backend.ListIncidents(r.Context(), f)
		if err != nil {
			return err
		}
		if items == nil {
			items = []*incidents.Incident{}
		}
		writeStatus(w, http.StatusOK, listPage[*incidents.Incident]{Items: items, Total: total, Limit: f.Limit, Offset: f.Offset})
		return nil
	}
	if err := checkFederatedWindow(f.Offset, f.Limit); err != nil {
		return err
	}
	// The first offset+limit of each instance hold the page of all.
	mine := f
	mine.Offset, mine.Limit = 0, f.Offset+f.Limit
	local, total, err := a.backend.ListIncidents(r.Context(), mine)
	if err != nil {
		return err
	}
	remote, remoteTotal, unavailable := peerLists[*incidents.Incident](r.Context(), a.peers, r, mine.Limit)
	all, dropped := mergeRecords(local, remote, func(in *incidents.Incident) string { return in.ID }, newestIncidentFirst)
	p := page(all, f.Limit, f.Offset)
	p.Total, p.Unavailable = total+remoteTotal-dropped, unavailable
	writeStatus(w, http.StatusOK, p)
	return nil
}

// checkFederatedWindow refuses a page of a list over every instance that
// reaches past maxFederatedWindow records: each instance would be asked for
// all of them.
func checkFederatedWindow(offset, limit int) error {
	if offset+limit > maxFederatedWindow {
		return badRequest("offset: %d plus limit %d reaches past record %d, the deepest page of a list over every instance; narrow the filters",
			offset, limit, maxFederatedWindow)
	}
	return nil
}

// federated reports whether r is answered for every instance: the API
// knows the others, and r does not come from one of them.
func (a *incidentAPI) federated(r *http.Request) bool {
	return a.peers != nil && r.Header.Get(forwardedHeader) == ""
}

func (a *incidentAPI) getIncident(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	rec, members, ok, err := a.backend.GetIncident(r.Context(), id)
	if err != nil {
		return err
	}
	if !ok || rec == nil {
		return fmt.Errorf("%w: incident %s", incidents.ErrNotFound, id)
	}
	d := incidentDetail{Incident: rec, Members: make([]replayMember, 0, len(members)), Timeline: incidentTimeline(rec)}
	for _, m := range members {
		d.Members = append(d.Members, newAPIMember(m))
	}
	if topo := a.backend.Topology(); topo != nil {
		d.Topology = incidentSubgraph(topo, rec, members)
	}
	writeStatus(w, http.StatusOK, d)
	return nil
}

// newAPIMember converts a member the way replay's --out does.
func newAPIMember(m correlate.Member) replayMember {
	return replayMember{EventID: m.EventID, CI: m.CI, Reason: string(m.Reason), RelatedCI: m.RelatedCI,
		Path: m.Path, Hops: m.Hops, OffsetSeconds: m.Offset.Seconds(), MergedFrom: m.MergedFrom}
}

// incidentTimeline merges what happened to rec, oldest first; entries at
// the same time keep the order transitions, escalations, breaches,
// comments.
func incidentTimeline(rec *incidents.Incident) []timelineEntry {
	out := make([]timelineEntry, 0, len(rec.Transitions)+len(rec.Escalations)+len(rec.Breaches)+len(rec.Comments))
	for _, t := range rec.Transitions {
		out = append(out, timelineEntry{At: t.At, Kind: kindTransition, By: t.By, From: string(t.From), To: string(t.To), Text: t.Note})
	}
	for _, e := range rec.Escalations {
		out = append(out, timelineEntry{At: e.At, Kind: kindEscalation, From: incidents.LevelName(e.From),
			To: incidents.LevelName(e.To), Text: e.Reason})
	}
	for _, b := range rec.Breaches {
		out = append(out, timelineEntry{At: b.At, Kind: kindBreach, To: string(b.Kind),
			Text: fmt.Sprintf("%s target of %s missed", b.Kind, b.Target)})
	}
	for _, c := range rec.Comments {
		out = append(out, timelineEntry{At: c.At, Kind: kindComment, By: c.By, Text: c.Text})
	}
	slices.SortStableFunc(out, func(a, b timelineEntry) int { return a.At.Compare(b.At) })
	return out
}

// incidentSubgraph is the topology around an incident: its root cause, its
// member CIs and the paths that relate them, the services it impacts, and
// the dependencies of those CIs within subgraphDepth hops; with the
// relations among them.
func incidentSubgraph(topo *cmdb.Topology, rec *incidents.Incident, members []correlate.Member) *subgraph {
	g := &subgraph{Nodes: []subgraphNode{}, Edges: []subgraphEdge{}}
	index := map[string]bool{}
	add := func(id, role string) {
		if id == "" || index[id] {
			return
		}
		if len(g.Nodes) == maxSubgraphNodes {
			g.Truncated = true
			return
		}
		index[id] = true
		n := subgraphNode{ID: id, Role: role}
		if ci, ok := topo.CI(id); ok {
			n.InCMDB, n.Type, n.Name, n.Criticality, n.SupportGroup = true, ci.Type, ci.Name, ci.Criticality, ci.SupportGroup
		}
		g.Nodes = append(g.Nodes, n)
	}
	add(rec.RootCauseCI, nodeRootCause)
	cis := slices.Clone(rec.CIs)
	for _, m := range members {
		cis = append(cis, m.CI)
	}
	for _, ci := range cis {
		add(ci, nodeMember)
	}
	for _, m := range members {
		for _, ci := range m.Path {
			add(ci, nodePath)
		}
	}
	for _, s := range rec.Services {
		add(s, nodeService)
	}
	for _, ci := range cis {
		for _, s := range topo.ImpactedServices(ci) {
			add(s, nodeService)
		}
	}
	for _, ci := range append([]string{rec.RootCauseCI}, cis...) {
		if ci == "" {
			continue
		}
		for _, d := range topo.Dependencies(ci, subgraphDepth) {
			add(d, nodeDependency)
		}
	}
	// One pass over the relations: cmdb has no per-CI relation listing
	// with types, and this endpoint is for people, not a hot path.
	topo.EachRelation(func(rel cmdb.Relation) {
		if index[rel.Source] && index[rel.Target] {
			g.Edges = append(g.Edges, subgraphEdge{Source: rel.Source, Target: rel.Target, Type: rel.Type})
		}
	})
	return g
}

func (a *incidentAPI) listProblems(w http.ResponseWriter, r *http.Request) error {
	p := &params{q: r.URL.Query()}
	var status []incidents.ProblemStatus
	for _, s := range p.list("status", problemStatuses, nil) {
		status = append(status, incidents.ProblemStatus(s))
	}
	limit, offset := p.paging()
	if err := p.err(); err != nil {
		return err
	}
	items, err := a.backend.ListProblems(r.Context(), status)
	if err != nil {
		return err
	}
	if !a.federated(r) {
		writeStatus(w, http.StatusOK, page(items, limit, offset))
		return nil
	}
	if err := checkFederatedWindow(offset, limit); err != nil {
		return err
	}
	remote, remoteTotal, unavailable := peerLists[*incidents.Problem](r.Context(), a.peers, r, offset+limit)
	all, dropped := mergeRecords(items, remote, func(p *incidents.Problem) string { return p.ID }, newestProblemFirst)
	out := page(all, limit, offset)
	// The other instances' totals count what was not fetched from them.
	out.Total, out.Unavailable = len(items)+remoteTotal-dropped, unavailable
	writeStatus(w, http.StatusOK, out)
	return nil
}

func (a *incidentAPI) getProblem(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	prob, ok, err := a.backend.GetProblem(r.Context(), id)
	if err != nil {
		return err
	}
	if !ok || prob == nil {
		return fmt.Errorf("%w: problem %s", incidents.ErrNotFound, id)
	}
	writeStatus(w, http.StatusOK, prob)
	return nil
}

func (a *incidentAPI) listKnownErrors(w http.ResponseWriter, r *http.Request) error {
	p := &params{q: r.URL.Query()}
	limit, offset := p.paging()
	if err := p.err(); err != nil {
		return err
	}
	items, err := a.backend.KnownErrors(r.Context())
	if err != nil {
		return err
	}
	if !a.federated(r) {
		writeStatus(w, http.StatusOK, page(items, limit, offset))
		return nil
	}
	// Every instance lists the KEDB file's entries, then those recorded
	// from its problems: the others add theirs after this one's.
	remote, _, unavailable := peerLists[*incidents.KnownError](r.Context(), a.peers, r, maxFederatedWindow)
	for _, k := range remote {
		if !slices.ContainsFunc(items, func(l *incidents.KnownError) bool { return l.ID == k.ID }) {
			items = append(items, k)
		}
	}
	out := page(items, limit, offset)
	out.Unavailable = unavailable
	writeStatus(w, http.StatusOK, out)
	return nil
}

// page cuts one page out of a whole list.
func page[T any](all []T, limit, offset int) listPage[T] {
	p := listPage[T]{Items: []T{}, Total: len(all), Limit: limit, Offset: offset}
	if offset < len(all) {
		p.Items = all[offset:min(len(all), offset+limit)]
	}
	return p
}

// act runs an operator action on the record named by the path.
func (a *incidentAPI) act(w http.ResponseWriter, r *http.Request, action incidents.Action) error {
	cmd := incidents.Command{Action: action, By: tokenName(r), At: time.Now().UTC()}
	if action.ProblemAction() {
		cmd.ProblemID = r.PathValue("id")
	} else {
		cmd.IncidentID = r.PathValue("id")
	}
	var err error
	if cmd.ID, err = commandID(r); err != nil {
		return err
	}
	switch action {
	case incidents.ActAssign:
		var b assignBody
		err = decodeBody(w, r, &b)
		cmd.AssignTo, cmd.Note = b.AssignTo, b.Note
	case incidents.ActKnownError:
		var b knownErrorBody
		err = decodeBody(w, r, &b)
		cmd.RootCause, cmd.Workaround, cmd.Matchers, cmd.Note = b.RootCause, b.Workaround, b.Matchers, b.Note
	default:
		var b noteBody
		err = decodeBody(w, r, &b)
		cmd.Note = b.Note
	}
	if err != nil {
		return err
	}
	// What can be checked without the record is answered here, before the
	// command travels to the instance that owns it.
	if err := cmd.Validate(); err != nil {
		return err
	}
	res, err := a.backend.Act(r.Context(), cmd)
	if err != nil {
		return err
	}
	if res.CommandID == "" {
		res.CommandID = cmd.ID
	}
	// An audit line per action: operators act rarely, and who did what
	// must be traceable. The token's name, never the token.
	a.logger.Info("operator action", zap.String("action", string(action)), zap.String("incident_id", cmd.IncidentID),
		zap.String("problem_id", cmd.ProblemID), zap.String("by", cmd.By), zap.String("command_id", res.CommandID),
		zap.Bool("accepted", res.Accepted))
	switch {
	case res.Incident != nil:
		writeStatus(w, http.StatusOK, res.Incident)
	case res.Problem != nil:
		writeStatus(w, http.StatusOK, res.Problem)
	default:
		writeStatus(w, http.StatusAccepted, acceptedBody{Status: "accepted", CommandID: res.CommandID})
	}
	return nil
}

// commandID is the client's Idempotency-Key, so that a retried request is
// applied once, else a random id.
func commandID(r *http.Request) (string, error) {
	if vs := r.Header.Values("Idempotency-Key"); len(vs) > 0 {
		k := vs[0]
		if len(vs) > 1 || k == "" || len(k) > maxIdempotencyKey {
			return "", badRequest("Idempotency-Key: give one value of 1 to %d characters", maxIdempotencyKey)
		}
		for _, c := range k {
			if c <= ' ' || c > '~' {
				return "", badRequest("Idempotency-Key: use printable ASCII without spaces (a UUID, say)")
			}
		}
		return k, nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand docs)
	return hex.EncodeToString(b[:]), nil
}

// decodeBody decodes an optional JSON object strictly: unknown fields,
// trailing data and bodies over maxActionBody are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readActionBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("body: more than one JSON value")
	}
	return nil
}

// readActionBody reads an action's body, up to maxActionBody bytes.
func readActionBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body: over the limit of %d bytes", maxActionBody)}
		}
		return nil, badRequest("body: %v", err)
	}
	return b, nil
}

// jsonError says what is wrong with a body in the API's terms rather than
// Go's.
func jsonError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Sprintf("body: want a JSON object, got %s", typeErr.Value)
		}
		return fmt.Sprintf("body.%s: want %s, got %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("body: invalid JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body: truncated JSON"
	}
	return "body: " + strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}
