package main

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/incidents"
)

// recordWriters writes incident and problem versions, their timelines and
// memberships to ClickHouse. Only what is new since the incident's last
// version is written (timeline entries and members past a mark kept per
// incident); ReplacingMergeTree merges what a restart writes again.
//
// An incident's versions are held back and only its latest is written, at
// the next flush (every batch wait of the writers, and before a checkpoint
// or a flush of notifications waits for the rows): in a storm every batch
// makes a new version of every incident it touches, and writing each was a
// row per event: a twentieth of the daemon's CPU in the end-to-end run, and
// as many rows for ClickHouse to insert and merge.
// The versions in between are replaced by ReplacingMergeTree anyway; the
// timeline keeps every transition.
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
	// latest holds the latest version of each incident changed since the
	// last flush.
	latest    map[string]*incidents.Incident
	flushWait time.Duration
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
		latest:    map[string]*incidents.Incident{},
		flushWait: cmp.Or(opts.MaxWait, analytics.DefaultBatchMaxWait),
	}
}

// finalFlushTimeout bounds the last flush of held-back incident versions.
const finalFlushTimeout = 10 * time.Second

// run runs the four writers until ctx is done, and flushes the incident
// versions held back every flushWait and once more when ctx is done,
// before the writers' own final flush.
func (r *recordWriters) run(ctx context.Context) error {
	wctx, stopWriters := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriters()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stopWriters()
		t := time.NewTicker(r.flushWait)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// Bounded: with ClickHouse down and the buffer full, Append
				// would wait for room that never comes.
				fctx, cancel := context.WithTimeout(wctx, finalFlushTimeout)
				r.mu.Lock()
				r.flushLatest(fctx)
				r.mu.Unlock()
				cancel()
				return
			case <-t.C:
				r.mu.Lock()
				r.flushLatest(wctx)
				r.mu.Unlock()
			}
		}
	}()
	errs := make([]error, 4)
	for i, f := range []func(context.Context) error{r.incidents.Run, r.timeline.Run, r.members.Run, r.problems.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(wctx)
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
	var probs []*incidents.Problem
	r.tl, r.mem = r.tl[:0], r.mem[:0]
	for _, c := range chs {
		if in := c.Incident; in != nil {
			if old, ok := r.latest[in.ID]; !ok || old.Version < in.Version {
				r.latest[in.ID] = in
			}
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
	if len(r.tl) > 0 {
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

// flushLatest appends the incident versions held back. Called with r.mu
// held.
func (r *recordWriters) flushLatest(ctx context.Context) {
	if len(r.latest) == 0 {
		return
	}
	incs := make([]*incidents.Incident, 0, len(r.latest))
	for _, in := range r.latest {
		incs = append(incs, in)
	}
	pos, err := r.incidents.Append(ctx, incs)
	if err != nil {
		// A cancelled context or a closed writer: the versions stay for
		// the next flush, if one comes.
		r.logger.Warn("incident versions not queued for analytics", zap.Error(err))
		return
	}
	r.pos[0] = pos
	clear(r.latest)
}

// waitDurable waits until every row appended so far is in ClickHouse: a
// checkpoint must not commit offsets past records analytics would miss.
func (r *recordWriters) waitDurable(ctx context.Context) error {
	r.mu.Lock()
	r.flushLatest(ctx)
	pos := r.pos
	r.mu.Unlock()
	return errors.Join(
		r.incidents.WaitDurable(ctx, pos[0]),
		r.timeline.WaitDurable(ctx, pos[1]),
		r.members.WaitDurable(ctx, pos[2]),
		r.problems.WaitDurable(ctx, pos[3]),
	)
}
