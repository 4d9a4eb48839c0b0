package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/ingest"
)

// The incidents API over the partitions of this instance (stateStage
// implements incidentBackend).
//
// Reads see the records of the partitions this instance owns. Operator
// actions go, with Kafka, onto the keyed topic's partition that owns the
// record, as a command message among its events: the owner applies it in
// order and it is as durable as an event. When this instance owns the
// partition the API waits for the result; otherwise it answers 202.
// Without Kafka the one in-process partition applies it at once.

// commandWaitTimeout bounds how long an action waits to be applied here.
const commandWaitTimeout = 5 * time.Second

// commandResult is an applied command's outcome, for a waiting request.
type commandResult struct {
	changes []incidents.Change
	err     error
}

// commandRouter produces commands to the keyed topic.
type commandRouter struct {
	writer ingest.MessageWriter // a partition writer on the keyed topic
}

type waiters struct {
	mu sync.Mutex
	m  map[string]chan commandResult
}

func (w *waiters) add(id string) chan commandResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]chan commandResult{}
	}
	c := make(chan commandResult, 1)
	w.m[id] = c
	return c
}

func (w *waiters) remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

func (w *waiters) done(id string, r commandResult) {
	w.mu.Lock()
	c := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if c != nil {
		c <- r
	}
}

// Command implements ingest.PartitionWorker: it applies an operator
// command in its place among the partition's events. A command that does
// not apply (unknown id, wrong status) is answered to its waiter and
// otherwise only logged: it must not stop the partition.
func (w *partitionWorker) Command(ctx context.Context, payload []byte, next int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = next
	w.changed = true
	w.flushIncidents() // the command acts on the records of every event before it
	var c incidents.Command
	if err := json.Unmarshal(payload, &c); err != nil {
		w.stage.logger.Warn("undecodable command on the keyed topic; skipped", zap.Int("partition", w.partition), zap.Int64("offset", next-1), zap.Error(err))
		return nil
	}
	chs, err := w.inc.Act(c)
	if err != nil {
		w.stage.logger.Info("operator command not applied", zap.String("command_id", c.ID), zap.String("action", string(c.Action)), zap.Error(err))
	} else {
		w.emitChanges(chs)
	}
	w.stage.waiting.done(c.ID, commandResult{changes: chs, err: err})
	return nil
}

// apply runs a command on the in-process partition (Kafka off).
func (w *partitionWorker) apply(c incidents.Command) ([]incidents.Change, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	chs, err := w.inc.Act(c)
	if err == nil {
		w.emitChanges(chs)
	}
	return chs, err
}

func (s *stateStage) workerList() []*partitionWorker {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := make([]*partitionWorker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].partition < ws[j].partition })
	return ws
}

// ListIncidents implements incidentBackend.
func (s *stateStage) ListIncidents(_ context.Context, f incidentFilter) ([]*incidents.Incident, int, error) {
	var all []*incidents.Incident
	for _, w := range s.workerList() {
		w.mu.Lock()
		for _, in := range w.inc.Incidents() {
			if matchFilter(in, &f) {
				all = append(all, in)
			}
		}
		w.mu.Unlock()
	}
	slices.SortFunc(all, newestIncidentFirst)
	total := len(all)
	lo := min(f.Offset, total)
	hi := total
	if f.Limit > 0 {
		hi = min(lo+f.Limit, total)
	}
	return all[lo:hi], total, nil
}

// newestIncidentFirst is the order of incident lists: opened last first,
// then by id.
func newestIncidentFirst(a, b *incidents.Incident) int {
	return cmp.Or(b.OpenedAt.Compare(a.OpenedAt), strings.Compare(a.ID, b.ID))
}

// newestProblemFirst is the order of problem lists: raised last first, then
// by id.
func newestProblemFirst(a, b *incidents.Problem) int {
	return cmp.Or(b.RaisedAt.Compare(a.RaisedAt), strings.Compare(a.ID, b.ID))
}

func matchFilter(in *incidents.Incident, f *incidentFilter) bool {
	if len(f.Status) > 0 && !slices.Contains(f.Status, in.Status) {
		return false
	}
	if len(f.Priority) > 0 && !slices.Contains(f.Priority, in.Priority) {
		return false
	}
	if f.Service != "" && !slices.Contains(in.Services, f.Service) {
		return false
	}
	if f.CI != "" && in.RootCauseCI != f.CI && !slices.Contains(in.CIs, f.CI) {
		return false
	}
	if !f.From.IsZero() && in.OpenedAt.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && in.OpenedAt.After(f.To) {
		return false
	}
	return true
}

// owner returns the worker holding incident id (or problem id).
func (s *stateStage) owner(id string, problem bool) (*partitionWorker, bool) {
	for _, w := range s.workerList() {
		w.mu.Lock()
		var ok bool
		if problem {
			_, ok = w.inc.Problem(id)
		} else {
			_, ok = w.inc.Incident(id)
		}
		w.mu.Unlock()
		if ok {
			return w, true
		}
	}
	return nil, false
}

// GetIncident implements incidentBackend. Members come from the
// correlation state while the incident is in it, else from the record.
func (s *stateStage) GetIncident(_ context.Context, id string) (*incidents.Incident, []correlate.Member, bool, error) {
	w, ok := s.owner(id, false)
	if !ok {
		return nil, nil, false, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	in, ok := w.inc.Incident(id)
	if !ok {
		return nil, nil, false, nil
	}
	members := in.Members
	if c, live := w.engine.Snapshot(id); live {
		members = c.Members
	} else {
		for _, c := range w.closed {
			if c.ID == id {
				members = c.Members
			}
		}
	}
	return in, members, true, nil
}

// ListProblems implements incidentBackend.
func (s *stateStage) ListProblems(_ context.Context, status []incidents.ProblemStatus) ([]*incidents.Problem, error) {
	var out []*incidents.Problem
	for _, w := range s.workerList() {
		w.mu.Lock()
		for _, p := range w.inc.Problems() {
			if len(status) == 0 || slices.Contains(status, p.Status) {
				out = append(out, p)
			}
		}
		w.mu.Unlock()
	}
	slices.SortFunc(out, newestProblemFirst)
	return out, nil
}

// GetProblem implements incidentBackend.
func (s *stateStage) GetProblem(_ context.Context, id string) (*incidents.Problem, bool, error) {
	w, ok := s.owner(id, true)
	if !ok {
		return nil, false, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.inc.Problem(id)
	return p, ok, nil
}

// KnownErrors implements incidentBackend.
func (s *stateStage) KnownErrors(_ context.Context) ([]*incidents.KnownError, error) {
	var out []*incidents.KnownError
	if s.kedb != nil {
		for _, k := range s.kedb.Entries() {
			c := *k
			out = append(out, &c)
		}
	}
	for _, w := range s.workerList() {
		w.mu.Lock()
		out = append(out, w.inc.KnownErrors()...)
		w.mu.Unlock()
	}
	return out, nil
}

// Topology implements incidentBackend.
func (s *stateStage) Topology() *cmdb.Topology {
	if s.topology == nil {
		return nil
	}
	return s.topology()
}

// Act implements incidentBackend.
func (s *stateStage) Act(ctx context.Context, c incidents.Command) (actResult, error) {
	if err := c.Validate(); err != nil {
		return actResult{}, err
	}
	id, problem := c.IncidentID, c.Action.ProblemAction()
	if problem {
		id = c.ProblemID
	}
	w, ok := s.owner(id, problem)
	if !ok {
		return actResult{}, fmt.Errorf("%w: %s is not held by this instance's partitions", incidents.ErrNotFound, id)
	}
	if s.commands == nil {
		chs, err := w.apply(c)
		if err != nil {
			return actResult{}, err
		}
		return s.withRecord(resultOf(chs, c.ID), id, problem), nil
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return actResult{}, err
	}
	wait := s.waiting.add(c.ID)
	defer s.waiting.remove(c.ID)
	msg := kafka.Message{Partition: w.partition, Key: []byte("command/" + id), Value: payload,
		Headers: []kafka.Header{{Key: ingest.HeaderCommand, Value: []byte(strconv.Itoa(1))}}}
	if err := s.commands.writer.WriteMessages(ctx, msg); err != nil {
		return actResult{}, fmt.Errorf("%w: produce the command: %w", ingest.ErrUnavailable, err)
	}
	select {
	case r := <-wait:
		if r.err != nil {
			return actResult{}, r.err
		}
		return s.withRecord(resultOf(r.changes, c.ID), id, problem), nil
	case <-time.After(commandWaitTimeout):
		// Durable on the keyed topic; the partition's owner applies it.
		return actResult{Accepted: true, CommandID: c.ID}, nil
	case <-ctx.Done():
		return actResult{Accepted: true, CommandID: c.ID}, nil
	}
}

// withRecord fills in the record's current version when the changes did
// not carry it (a manager whose changes nobody reads returns none).
func (s *stateStage) withRecord(r actResult, id string, problem bool) actResult {
	switch {
	case problem && r.Problem == nil:
		r.Problem, _, _ = s.GetProblem(context.Background(), id)
	case !problem && r.Incident == nil:
		r.Incident, _, _, _ = s.GetIncident(context.Background(), id)
	}
	return r
}

func resultOf(chs []incidents.Change, id string) actResult {
	r := actResult{CommandID: id}
	for _, ch := range chs {
		if ch.Incident != nil {
			r.Incident = ch.Incident
		}
		if ch.Problem != nil {
			r.Problem = ch.Problem
		}
	}
	return r
}
