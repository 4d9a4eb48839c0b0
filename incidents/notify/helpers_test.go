package notify

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// fakeClock advances only when slept on, and records every sleep. With block
// set, Sleep reports on it and waits for ctx instead.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	block  chan time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.block != nil {
		select {
		case c.block <- d:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// testNotification returns a valid notification of incident inc.
func testNotification(inc string, version int, kind Kind) Notification {
	return Notification{
		Key:        fmt.Sprintf("%s:%d", inc, version),
		Kind:       kind,
		IncidentID: inc,
		At:         t0.Add(time.Duration(version) * time.Minute),
		Reason:     "test change",
		Ticket: Ticket{
			ID: inc, Title: "Database down on db-01", Description: "3 alerts on db-01 and its services",
			Status: "new", Category: "database", Priority: "P2", Impact: 1, Urgency: 2,
			RootCauseCI: "db-01", SupportGroup: "dba", Services: []string{"shop"}, CIs: []string{"db-01", "app-01"},
			OpenedAt: t0, Members: 3,
		},
	}
}

func newTestDispatcher(t *testing.T, routes []Route, clock Clock, retry RetryConfig) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := NewDispatcher(routes, DispatcherOptions{
		Retry:   retry,
		Clock:   clock,
		Jitter:  func() float64 { return 0 },
		Metrics: NewMetrics(reg),
	})
	return d, reg
}

func counterValue(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
