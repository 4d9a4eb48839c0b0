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

// pipeline implements ingest.Handler: everything after decoding. Today it
// stamps events with their receive time and writes them to the sink; the
// rules, correlate and incidents stages slot in here, in that order.
type pipeline struct {
	sink eventSink // nil: analytics off, events are durable once accepted
	now  func() time.Time

	mu   sync.Mutex
	seq  uint64
	rows sync.Pool // *[]analytics.EventRow scratch
}

func newPipeline(sink eventSink, now func() time.Time) *pipeline {
	p := &pipeline{sink: sink, now: now}
	p.rows.New = func() any { s := make([]analytics.EventRow, 0, 256); return &s }
	return p
}

// Handle implements ingest.Handler.
func (p *pipeline) Handle(ctx context.Context, events []event.Event) (uint64, error) {
	if p.sink == nil {
		p.mu.Lock()
		p.seq += uint64(len(events))
		pos := p.seq
		p.mu.Unlock()
		return pos, nil
	}
	rp := p.rows.Get().(*[]analytics.EventRow)
	rows := (*rp)[:0]
	received := p.now()
	for i := range events {
		rows = append(rows, analytics.EventRow{Event: events[i], ReceivedAt: received})
	}
	pos, err := p.sink.Append(ctx, rows)
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
