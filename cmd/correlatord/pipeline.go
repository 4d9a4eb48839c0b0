package main

import (
	"context"
	"sync"
	"time"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/rules"
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

// correlator is the correlation stage: *correlate.Engine. Its updates go to
// onUpdates.
type correlator interface {
	Process(ev *event.Event, in correlate.Input, now time.Time) []correlate.Update
	Advance(watermark time.Time) []correlate.Update
}

// pipeline implements ingest.Handler: everything after decoding. It binds
// events to CIs, runs the rules stage, records every event with the
// decision about it in the sink, and hands what the rules stage passes on to
// the correlation stage. The incidents stage slots in after correlation.
type pipeline struct {
	sink   eventSink // nil: analytics off, events are durable once accepted
	binder ciBinder  // nil: no CMDB, events keep the CI their producer gave
	rules  *rules.Engine
	now    func() time.Time

	// correlation is nil until the daemon can keep its state durably (the
	// correlation issue); replay runs it. The engine is single-threaded, so
	// corrMu serializes the Kafka consumer and HTTP requests.
	correlation correlator
	onUpdates   func([]correlate.Update)
	corrMu      sync.Mutex
	// watermarkLag is how far the correlation watermark trails the clock
	// (correlate.allowed_lateness): events that late still count.
	watermarkLag time.Duration

	// ciType returns a CI's type for the analytics rows (nil: none).
	ciType func(ci string) string

	// Event time (see handleOrdered): clock is the latest event time seen,
	// tickedAt the clock when the timers last ran, which is `now` for the
	// stages.
	clock, tickedAt time.Time

	mu      sync.Mutex
	seq     uint64
	scratch sync.Pool // *pipelineScratch
}

// pipelineScratch holds one batch's working copies, pooled so a batch costs
// no slice allocations once warm.
type pipelineScratch struct {
	events    []event.Event
	decisions []rules.Decision
	deferred  []rules.Deferred
	rows      []analytics.EventRow
}

func newPipeline(sink eventSink, binder ciBinder, engine *rules.Engine, now func() time.Time) *pipeline {
	p := &pipeline{sink: sink, binder: binder, rules: engine, now: now}
	p.scratch.New = func() any { return new(pipelineScratch) }
	return p
}

// eventClockTick is how far the event-time clock moves between two runs of
// the timers (rules stage ticks, correlation watermark).
const eventClockTick = time.Second

// newEventTimePipeline returns a pipeline that runs on event time (see
// handleOrdered), with the correlation engine corr.
func newEventTimePipeline(sink eventSink, binder ciBinder, engine *rules.Engine, corr correlator, watermarkLag time.Duration) *pipeline {
	p := newPipeline(sink, binder, engine, nil)
	p.now = func() time.Time { return p.tickedAt }
	p.correlation = corr
	p.watermarkLag = watermarkLag
	return p
}

// handleOrdered processes events in order on the event-time clock, the
// latest event time seen. Whenever the clock has moved eventClockTick past
// the last run of the timers, they run (rules.Tick, the correlation
// watermark) before the next event. The events between two runs go to
// Handle together with the time of the last run as `now`, so the outcome
// depends on the order of the events only, never on how they were batched:
// replay and live processing of the same sequence agree.
func (p *pipeline) handleOrdered(ctx context.Context, events []event.Event) (uint64, error) {
	start := 0
	for i := range events {
		t := events[i].Time
		if !t.After(p.clock) {
			continue
		}
		p.clock = t
		if p.clock.Sub(p.tickedAt) < eventClockTick {
			continue
		}
		if i > start {
			if _, err := p.Handle(ctx, events[start:i]); err != nil {
				return p.position(), err
			}
			start = i
		}
		if err := p.advanceTo(ctx, p.clock); err != nil {
			return p.position(), err
		}
	}
	if start < len(events) {
		return p.Handle(ctx, events[start:])
	}
	return p.position(), nil
}

// advanceTo moves the event-time clock to t (if later) and runs the timers.
func (p *pipeline) advanceTo(ctx context.Context, t time.Time) error {
	if t.After(p.clock) {
		p.clock = t
	}
	p.tickedAt = p.clock
	return p.tick(ctx)
}

func (p *pipeline) typeOf(ci string) string {
	if ci == "" || p.ciType == nil {
		return ""
	}
	return p.ciType(ci)
}

// position is the sink position after everything recorded so far.
func (p *pipeline) position() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// Handle implements ingest.Handler.
func (p *pipeline) Handle(ctx context.Context, events []event.Event) (uint64, error) {
	s := p.scratch.Get().(*pipelineScratch)
	defer p.release(s)
	now := p.now()
	// Working copies: the caller owns events, and binding and the rules
	// stage (set, enrich) change them.
	s.events = append(s.events[:0], events...)
	if p.binder != nil {
		for i := range s.events {
			if ci, ok := p.binder.Bind(&s.events[i]); ok {
				s.events[i].CI = ci
			}
		}
	}
	s.decisions = p.rules.Process(s.events, now, s.decisions[:0])
	for i := range s.events {
		s.rows = append(s.rows, analytics.EventRow{Event: s.events[i], ReceivedAt: now, Decision: decisionRecord(&s.decisions[i]), CIType: p.typeOf(s.events[i].CI)})
	}
	pos, err := p.record(ctx, s.rows)
	if err != nil {
		return pos, err
	}
	if p.correlation != nil {
		p.corrMu.Lock()
		for i := range s.events {
			if d := &s.decisions[i]; d.Correlate {
				p.emit(p.correlation.Process(&s.events[i], correlate.InputFromDecision(d), now))
			}
		}
		p.corrMu.Unlock()
	}
	return pos, nil
}

// tick advances the rules stage's timers to now and records what it
// releases: warnings that persisted, held resolutions of flapping alerts.
func (p *pipeline) tick(ctx context.Context) error {
	s := p.scratch.Get().(*pipelineScratch)
	defer p.release(s)
	now := p.now()
	s.deferred = p.rules.Tick(now, s.deferred[:0])
	if len(s.deferred) > 0 {
		for i := range s.deferred {
			d := &s.deferred[i]
			s.rows = append(s.rows, analytics.EventRow{Event: d.Event, ReceivedAt: now, Decision: decisionRecord(&d.Decision), CIType: p.typeOf(d.Event.CI)})
		}
		if _, err := p.record(ctx, s.rows); err != nil {
			return err
		}
	}
	if p.correlation != nil {
		p.corrMu.Lock()
		defer p.corrMu.Unlock()
		for i := range s.deferred {
			if d := &s.deferred[i]; d.Decision.Correlate {
				p.emit(p.correlation.Process(&d.Event, correlate.InputFromDecision(&d.Decision), now))
			}
		}
		p.emit(p.correlation.Advance(now.Add(-p.watermarkLag)))
	}
	return nil
}

// emit passes correlation updates on. Called with corrMu held.
func (p *pipeline) emit(ups []correlate.Update) {
	if len(ups) > 0 && p.onUpdates != nil {
		p.onUpdates(ups)
	}
}

// record hands rows to the sink and returns the durability position.
func (p *pipeline) record(ctx context.Context, rows []analytics.EventRow) (uint64, error) {
	if p.sink != nil {
		pos, err := p.sink.Append(ctx, rows)
		if err == nil {
			p.mu.Lock()
			p.seq = max(p.seq, pos)
			p.mu.Unlock()
		}
		return pos, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq += uint64(len(rows))
	return p.seq, nil
}

func (p *pipeline) release(s *pipelineScratch) {
	// Drop references to the events' maps before pooling.
	clear(s.events)
	clear(s.rows)
	clear(s.deferred)
	s.events, s.rows, s.deferred = s.events[:0], s.rows[:0], s.deferred[:0]
	p.scratch.Put(s)
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
