package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/correlatord/correlatord/event"
)

// Handler takes decoded events down the pipeline. It is implemented by the
// pipeline that cmd assembles (rules, correlate, incidents, analytics), so
// ingest never imports those packages.
//
// Positions count events in the order Handle accepted them. Handle may block
// to apply backpressure (a slow ClickHouse); it must be safe for concurrent
// use (the Kafka consumer and HTTP requests call it at once) and idempotent,
// because Kafka redelivers after a crash.
type Handler interface {
	// Handle accepts events and returns the position after them. The caller
	// keeps ownership of the slice; Handle must copy what it keeps.
	Handle(ctx context.Context, events []event.Event) (uint64, error)
	// Durable returns the position up to which accepted events are durable.
	Durable() uint64
	// WaitDurable blocks until Durable() >= pos or ctx is done.
	WaitDurable(ctx context.Context, pos uint64) error
}

// Policy decides which decoded events ingest accepts, whatever the transport.
type Policy struct {
	MaxEventAge   time.Duration
	MaxFutureSkew time.Duration
}

// ErrTimeOutOfRange is wrapped by Check's errors.
var ErrTimeOutOfRange = errors.New("event time out of range")

// Check rejects events dated too far from now. A zero bound disables its
// check. Replay does not call it: there the event time is the clock.
func (p Policy) Check(e *event.Event, now time.Time) error {
	if p.MaxEventAge > 0 && e.Time.Before(now.Add(-p.MaxEventAge)) {
		return fmt.Errorf("%w: time: %s is more than %s before the receiving clock (%s)",
			ErrTimeOutOfRange, e.Time.Format(time.RFC3339), p.MaxEventAge, now.UTC().Format(time.RFC3339))
	}
	if p.MaxFutureSkew > 0 && e.Time.After(now.Add(p.MaxFutureSkew)) {
		return fmt.Errorf("%w: time: %s is more than %s after the receiving clock (%s)",
			ErrTimeOutOfRange, e.Time.Format(time.RFC3339), p.MaxFutureSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// filter removes the events the policy rejects from events (in place) and
// returns the kept ones together with one DecodeError per rejected event,
// indexed by its position in the original slice.
func (p Policy) filter(events []event.Event, now time.Time) ([]event.Event, []DecodeError) {
	var errs []DecodeError
	kept := events[:0]
	for i := range events {
		if err := p.Check(&events[i], now); err != nil {
			errs = append(errs, DecodeError{Index: i, Err: err})
			continue
		}
		kept = append(kept, events[i])
	}
	return kept, errs
}
