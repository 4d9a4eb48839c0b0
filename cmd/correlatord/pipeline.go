package main

import (
	"context"
	"sync"
	"time"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/event"
)

// eventSink is where the pipeline's output goes: the ClickHouse writer in the
// daemon, the output file in replay. Positions count rows appended.
type eventSink interface {
	Append(ctx context.Context, rows []analytics.EventRow) (uint64, error)
	Durable() uint64
	WaitDurable(ctx context.Context, pos uint64) error
}

// ciBinder binds an event to a CMDB CI: *cmdb.Store in the daemon (it
// counts bindings), *cmdb.Topology in replay.
type ciBinder interface {
	Bind(e *event.Event) (ci string, ok bool)
}

// pipeline implements ingest.Handler: everything after decoding. Today it
// binds events to CIs, stamps them with their receive time and writes them
// to the sink; the rules, correlate and incidents stages slot in here, in
// that order.
type pipeline struct {
	sink   eventSink // nil: analytics off, events are durable once accepted
	binder ciBinder  // nil: no CMDB, events keep the CI their producer gave
	now    func() time.Time

	mu   sync.Mutex
	seq  uint64
	rows sync.Pool // *[]analytics.EventRow scratch
}

func newPipeline(sink eventSink, binder ciBinder, now func() time.Time) *pipeline {
	p := &pipeline{sink: sink, binder: binder, now: now}
	p.rows.New = func() any { s := make([]analytics.EventRow, 0, 256); return &s }
	return p
}

// Handle implements ingest.Handler.
func (p *pipeline) Handle(ctx context.Context, events []event.Event) (uint64, error) {
	rp := p.rows.Get().(*[]analytics.EventRow)
	rows := (*rp)[:0]
	received := p.now()
	for i := range events {
		rows = append(rows, analytics.EventRow{Event: events[i], ReceivedAt: received})
		// Bound on the row's copy: the caller owns events.
		if p.binder != nil {
			if ci, ok := p.binder.Bind(&rows[i].Event); ok {
				rows[i].Event.CI = ci
			}
		}
	}
	var (
		pos uint64
		err error
	)
	if p.sink != nil {
		pos, err = p.sink.Append(ctx, rows)
	} else {
		p.mu.Lock()
		p.seq += uint64(len(rows))
		pos = p.seq
		p.mu.Unlock()
	}
	clear(rows) // drop references to the events' maps before pooling
	*rp = rows[:0]
	p.rows.Put(rp)
	return pos, err
}

// Durable implements ingest.Handler.
func (p *pipeline) Durable() uint64 {
	if p.sink == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.seq
	}
	return p.sink.Durable()
}

// WaitDurable implements ingest.Handler.
func (p *pipeline) WaitDurable(ctx context.Context, pos uint64) error {
	if p.sink == nil {
		return nil
	}
	return p.sink.WaitDurable(ctx, pos)
}
