package main

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/incidents"
)

// recordWriters writes incident and problem versions, their timelines and
// memberships to ClickHouse. Only what is new since the incident's last
// version is written (timeline entries and members past a mark kept per
// incident); ReplacingMergeTree merges what a restart writes again.
type recordWriters struct {
	incidents *analytics.Writer[*incidents.Incident]
	timeline  *analytics.Writer[analytics.TimelineRow]
	members   *analytics.Writer[analytics.MemberRow]
	problems  *analytics.Writer[*incidents.Problem]
	logger    *zap.Logger

	mu      sync.Mutex
	marks   map[string]analytics.TimelineMark
	written map[string]int // members written per incident
	pos     [4]uint64      // positions of the last rows appended, per writer
	tl      []analytics.TimelineRow
	mem     []analytics.MemberRow
}

func newRecordWriters(client *analytics.Client, opts analytics.WriterOptions, reg prometheus.Registerer, logger *zap.Logger) *recordWriters {
	return &recordWriters{
		incidents: analytics.NewWriter(client, analytics.IncidentsTable(), opts, reg, logger),
		timeline:  analytics.NewWriter(client, analytics.IncidentTimelineTable(), opts, reg, logger),
		members:   analytics.NewWriter(client, analytics.IncidentMembersTable(), opts, reg, logger),
		problems:  analytics.NewWriter(client, analytics.ProblemsTable(), opts, reg, logger),
		logger:    logger,
		marks:     map[string]analytics.TimelineMark{},
		written:   map[string]int{},
	}
}

// run runs the four writers until ctx is done.
func (r *recordWriters) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, f := range []func(context.Context) error{r.incidents.Run, r.timeline.Run, r.members.Run, r.problems.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// add appends the rows of chs. It blocks while a writer's buffer is full
// (ClickHouse slow or down): the partition waits rather than grow.
func (r *recordWriters) add(chs []incidents.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx := context.Background()
	var incs []*incidents.Incident
	var probs []*incidents.Problem
	r.tl, r.mem = r.tl[:0], r.mem[:0]
	for _, c := range chs {
		if in := c.Incident; in != nil {
			incs = append(incs, in)
			var m analytics.TimelineMark
			r.tl, m = analytics.AppendTimeline(r.tl, in, r.marks[in.ID])
			r.marks[in.ID] = m
			for i := r.written[in.ID]; i < len(in.Members); i++ {
				r.mem = append(r.mem, analytics.MemberRow{IncidentID: in.ID, Member: in.Members[i], AddedAt: in.UpdatedAt})
			}
			r.written[in.ID] = max(r.written[in.ID], len(in.Members))
			if in.Status == incidents.StatusClosed {
				// No further version but a reopen, which rewrites from
				// the start (duplicates merge).
				delete(r.marks, in.ID)
				delete(r.written, in.ID)
			}
		}
		if c.Problem != nil {
			probs = append(probs, c.Problem)
		}
	}
	var err error
	if len(incs) > 0 {
		r.pos[0], err = r.incidents.Append(ctx, incs)
	}
	if err == nil && len(r.tl) > 0 {
		r.pos[1], err = r.timeline.Append(ctx, r.tl)
	}
	if err == nil && len(r.mem) > 0 {
		r.pos[2], err = r.members.Append(ctx, r.mem)
	}
	if err == nil && len(probs) > 0 {
		r.pos[3], err = r.problems.Append(ctx, probs)
	}
	if err != nil {
		r.logger.Error("incident records not queued for analytics", zap.Error(err))
	}
	clear(r.tl)
	clear(r.mem)
}

// waitDurable waits until every row appended so far is in ClickHouse: a
// checkpoint must not commit offsets past records analytics would miss.
func (r *recordWriters) waitDurable(ctx context.Context) error {
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	return errors.Join(
		r.incidents.WaitDurable(ctx, pos[0]),
		r.timeline.WaitDurable(ctx, pos[1]),
		r.members.WaitDurable(ctx, pos[2]),
		r.problems.WaitDurable(ctx, pos[3]),
	)
}
