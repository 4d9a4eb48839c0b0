package notify

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Clock is the dispatcher's and runners' view of time, so tests run on a
// fake one. Sleep waits d or until ctx is done, and then returns ctx.Err().
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx is done.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Deliverer is what a runner hands notifications to; *Dispatcher implements
// it. Deliver returns once the notification is finished with for every
// target (delivered, failed permanently or given up), or with ctx's error,
// in which case the runner must not mark it done.
type Deliverer interface {
	Deliver(ctx context.Context, n *Notification, enqueued time.Time) error
}

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	// Retry is the retry policy; zero fields take their defaults.
	Retry RetryConfig
	// Clock defaults to SystemClock.
	Clock Clock
	// Jitter returns a number in [0, 1) that shortens each backoff by up to
	// half: wait = backoff * (1 - Jitter()/2). Default math/rand/v2.
	// Tests return 0 for exact waits.
	Jitter func() float64
	// Metrics, from NewMetrics; nil registers on a throwaway registry.
	Metrics *Metrics
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Dispatcher delivers a notification to every route whose filter passes it,
// retrying each failing target on its own with capped exponential backoff
// and jitter. A target that delivered is not sent again while another is
// retried. Safe for concurrent use.
type Dispatcher struct {
	routes  []Route
	opts    DispatcherOptions
	metrics *Metrics
	logger  *zap.Logger
	failing []atomic.Bool // by route: the last notification was dropped, none delivered since
}

// NewDispatcher returns a dispatcher over routes.
func NewDispatcher(routes []Route, opts DispatcherOptions) *Dispatcher {
	if opts.Retry.InitialBackoff <= 0 {
		opts.Retry.InitialBackoff = DefaultInitialBackoff
	}
	if opts.Retry.MaxBackoff <= 0 {
		opts.Retry.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Retry.MaxAge <= 0 {
		opts.Retry.MaxAge = DefaultMaxAge
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	for _, r := range routes {
		opts.Metrics.initTarget(r.Target.Name())
	}
	return &Dispatcher{
		routes:  routes,
		opts:    opts,
		metrics: opts.Metrics,
		logger:  opts.Logger.With(zap.String("component", "notify")),
		failing: make([]atomic.Bool, len(routes)),
	}
}

// Deliver sends n to every matching target, concurrently, and returns when
// each has delivered, failed permanently, or been given up on at enqueued +
// retry.max_age (a zero enqueued means now). It returns an error only when
// ctx ends first. See [Deliverer].
func (d *Dispatcher) Deliver(ctx context.Context, n *Notification, enqueued time.Time) error {
	if enqueued.IsZero() {
		enqueued = d.opts.Clock.Now()
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ctxErr error
	)
	for i := range d.routes {
		if !d.routes[i].Filter.Match(n) {
			continue
		}
		wg.Go(func() {
			if err := d.deliverTo(ctx, i, n, enqueued); err != nil {
				mu.Lock()
				ctxErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ctxErr
}

// Backoff returns the wait after the given failed attempt (0 for the first)
// before jitter: InitialBackoff doubled per attempt, capped at MaxBackoff.
func (r RetryConfig) Backoff(attempt int) time.Duration {
	b := r.InitialBackoff
	for range attempt {
		if b >= r.MaxBackoff/2 {
			return r.MaxBackoff
		}
		b *= 2
	}
	return min(b, r.MaxBackoff)
}

// deliverTo runs the attempts of one notification for one route. It returns
// only ctx's error.
func (d *Dispatcher) deliverTo(ctx context.Context, i int, n *Notification, enqueued time.Time) error {
	target := d.routes[i].Target
	name := target.Name()
	clock := d.opts.Clock
	deadline := enqueued.Add(d.opts.Retry.MaxAge)
	log := d.logger.With(zap.String("target", name), zap.String("incident_id", n.IncidentID),
		zap.String("key", n.Key), zap.String("kind", string(n.Kind)))

	// A target that is still down gets no attempt for a notification past
	// its max age: a backlog after a long outage drains at once instead of
	// at one timeout per notification.
	if d.failing[i].Load() && !clock.Now().Before(deadline) {
		d.finish(name, n, ResultDropped)
		log.Error("notification dropped: target still failing and notification older than retry.max_age",
			zap.Duration("max_age", d.opts.Retry.MaxAge))
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := target.Send(ctx, n)
		if ctx.Err() != nil {
			// Shutting down: the attempt's outcome is unknown, and the
			// notification stays pending for the next run.
			return ctx.Err()
		}
		d.metrics.attempts.WithLabelValues(name, attemptResult(err)).Inc()
		if err == nil {
			d.failing[i].Store(false)
			d.finish(name, n, ResultDelivered)
			d.metrics.delivery.WithLabelValues(name).Observe(clock.Now().Sub(enqueued).Seconds())
			if attempt > 0 {
				log.Info("notification delivered after retries", zap.Int("attempts", attempt+1))
			}
			return nil
		}
		if IsPermanent(err) {
			d.finish(name, n, ResultFailedPermanent)
			log.Error("notification rejected by the receiver; not retrying (fix the target or the receiver)",
				zap.Error(err), zap.Int("attempts", attempt+1))
			return nil
		}
		wait := d.opts.Retry.Backoff(attempt)
		wait -= time.Duration(d.opts.Jitter() * float64(wait) / 2)
		if ra, ok := RetryAfter(err); ok && ra > wait {
			wait = ra
		}
		if clock.Now().Add(wait).After(deadline) {
			d.failing[i].Store(true)
			d.finish(name, n, ResultDropped)
			log.Error("notification dropped: target still failing at retry.max_age",
				zap.Error(err), zap.Int("attempts", attempt+1), zap.Duration("max_age", d.opts.Retry.MaxAge))
			return nil
		}
		// One line for the first failure and then every tenth, not one per
		// attempt: a receiver down for hours must not flood the log.
		if attempt%10 == 0 {
			log.Warn("notification delivery failed; retrying", zap.Error(err),
				zap.Int("attempt", attempt+1), zap.Duration("backoff", wait))
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (d *Dispatcher) finish(target string, n *Notification, result string) {
	d.metrics.notifications.WithLabelValues(target, string(n.Kind), result).Inc()
}
