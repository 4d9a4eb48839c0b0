package notify

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func webhookRoute(t *testing.T, name, url string, f Filter) Route {
	t.Helper()
	w, err := NewWebhook(WebhookOptions{Name: name, URL: url, Secret: "k", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return Route{Target: w, Filter: f}
}

func drain(rc *recorder) []recordedRequest {
	var out []recordedRequest
	for {
		select {
		case r := <-rc.reqs:
			out = append(out, r)
		default:
			return out
		}
	}
}

func TestDispatcherRetriesUntilReceiverRecovers(t *testing.T) {
	rc, srv := newRecorder(t, 503, 503, 503, 200)
	clock := newFakeClock()
	d, _ := newTestDispatcher(t, []Route{webhookRoute(t, "oncall", srv.URL, Filter{})}, clock, RetryConfig{})
	n := testNotification("inc-1", 1, KindCreated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	reqs := drain(rc)
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (3 failures, 1 delivery)", len(reqs))
	}
	for _, r := range reqs {
		if r.header.Get(HeaderIdempotencyKey) != "inc-1:1" {
			t.Errorf("idempotency key %q", r.header.Get(HeaderIdempotencyKey))
		}
	}
	if got, want := clock.Sleeps(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("backoffs %v, want %v", got, want)
	}
	m := d.metrics
	if v := counterValue(t, m.notifications, "oncall", "created", ResultDelivered); v != 1 {
		t.Errorf("delivered = %v", v)
	}
	if v := counterValue(t, m.attempts, "oncall", AttemptServerError); v != 3 {
		t.Errorf("server_error attempts = %v", v)
	}
	if v := counterValue(t, m.attempts, "oncall", AttemptSuccess); v != 1 {
		t.Errorf("success attempts = %v", v)
	}
	if c := testutil.CollectAndCount(m.delivery); c != 1 {
		t.Errorf("delivery histogram series = %d", c)
	}
}

func TestBackoffIsExponentialAndCapped(t *testing.T) {
	r := RetryConfig{InitialBackoff: time.Second, MaxBackoff: 8 * time.Second, MaxAge: time.Hour}
	var got []time.Duration
	for a := range 8 {
		got = append(got, r.Backoff(a))
	}
	want := []time.Duration{1e9, 2e9, 4e9, 8e9, 8e9, 8e9, 8e9, 8e9}
	if !slices.Equal(got, want) {
		t.Errorf("Backoff: %v, want %v", got, want)
	}
	if b := r.Backoff(1000); b != 8*time.Second {
		t.Errorf("Backoff(1000) = %s", b)
	}

	// Through the dispatcher, with jitter taking up to half off.
	answers := slices.Repeat([]int{503}, 7)
	_, srv := newRecorder(t, append(answers, 200)...)
	clock := newFakeClock()
	d := NewDispatcher([]Route{webhookRoute(t, "w", srv.URL, Filter{})}, DispatcherOptions{
		Retry: r, Clock: clock, Jitter: func() float64 { return 0.5 }})
	n := testNotification("inc-1", 1, KindCreated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	sleeps := clock.Sleeps()
	if len(sleeps) != 7 {
		t.Fatalf("sleeps %v", sleeps)
	}
	for i, s := range sleeps {
		if s != want[i]*3/4 {
			t.Errorf("sleep %d = %s, want %s (backoff less a quarter)", i, s, want[i]*3/4)
		}
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	rc, srv := newRecorder(t, 429, 200)
	rc.header.Set("Retry-After", "30")
	clock := newFakeClock()
	d, _ := newTestDispatcher(t, []Route{webhookRoute(t, "w", srv.URL, Filter{})}, clock, RetryConfig{})
	n := testNotification("inc-1", 1, KindCreated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{30 * time.Second}) {
		t.Errorf("sleeps %v, want [30s]", got)
	}
	if v := counterValue(t, d.metrics.attempts, "w", AttemptRateLimited); v != 1 {
		t.Errorf("rate_limited attempts = %v", v)
	}
}

func TestDispatcherDoesNotRetryPermanentFailure(t *testing.T) {
	rc, srv := newRecorder(t, 400)
	core, logs := observer.New(zap.InfoLevel)
	clock := newFakeClock()
	d := NewDispatcher([]Route{webhookRoute(t, "w", srv.URL, Filter{})}, DispatcherOptions{Clock: clock, Logger: zap.New(core)})
	n := testNotification("inc-1", 1, KindUpdated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := len(drain(rc)); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
	if len(clock.Sleeps()) != 0 {
		t.Errorf("slept %v", clock.Sleeps())
	}
	if v := counterValue(t, d.metrics.notifications, "w", "updated", ResultFailedPermanent); v != 1 {
		t.Errorf("failed_permanent = %v", v)
	}
	if logs.FilterMessageSnippet("rejected").FilterField(zap.String("key", "inc-1:1")).Len() != 1 {
		t.Errorf("no log line for the permanent failure: %v", logs.All())
	}
}

func TestDispatcherGivesUpAtMaxAge(t *testing.T) {
	rc, srv := newRecorder(t, 503)
	core, logs := observer.New(zap.InfoLevel)
	clock := newFakeClock()
	retry := RetryConfig{InitialBackoff: time.Second, MaxBackoff: time.Minute, MaxAge: 10 * time.Second}
	d := NewDispatcher([]Route{webhookRoute(t, "oncall", srv.URL, Filter{})}, DispatcherOptions{
		Retry: retry, Clock: clock, Jitter: func() float64 { return 0 }, Logger: zap.New(core)})
	n := testNotification("inc-9", 4, KindResolved)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	// 1+2+4 = 7s; the next wait (8s) would end after 10s.
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{1e9, 2e9, 4e9}) {
		t.Errorf("sleeps %v", got)
	}
	if got := len(drain(rc)); got != 4 {
		t.Errorf("%d attempts, want 4", got)
	}
	if v := counterValue(t, d.metrics.notifications, "oncall", "resolved", ResultDropped); v != 1 {
		t.Errorf("dropped = %v", v)
	}
	dropped := logs.FilterMessageSnippet("dropped").FilterField(zap.String("target", "oncall")).
		FilterField(zap.String("incident_id", "inc-9")).FilterField(zap.String("key", "inc-9:4"))
	if dropped.Len() != 1 {
		t.Errorf("no drop log naming target, incident and key: %v", logs.All())
	}

	// The target is still down: an old notification of the backlog is
	// dropped without an attempt; a fresh one is tried.
	old := testNotification("inc-9", 5, KindClosed)
	if err := d.Deliver(t.Context(), &old, clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := len(drain(rc)); got != 0 {
		t.Errorf("%d attempts for an expired notification to a failing target", got)
	}
	if v := counterValue(t, d.metrics.notifications, "oncall", "closed", ResultDropped); v != 1 {
		t.Errorf("dropped closed = %v", v)
	}
	rc.setAnswers(200)
	fresh := testNotification("inc-10", 1, KindCreated)
	if err := d.Deliver(t.Context(), &fresh, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(t, d.metrics.notifications, "oncall", "created", ResultDelivered); v != 1 {
		t.Errorf("delivered after recovery = %v", v)
	}
}

func TestDispatcherSendsEachTargetOnce(t *testing.T) {
	okRC, okSrv := newRecorder(t, 200)
	badRC, badSrv := newRecorder(t, 503, 500, 200)
	clock := newFakeClock()
	d, _ := newTestDispatcher(t, []Route{
		webhookRoute(t, "chat", okSrv.URL, Filter{}),
		webhookRoute(t, "oncall", badSrv.URL, Filter{}),
	}, clock, RetryConfig{})
	n := testNotification("inc-1", 1, KindCreated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := len(drain(okRC)); got != 1 {
		t.Errorf("healthy target got %d requests, want 1", got)
	}
	if got := len(drain(badRC)); got != 3 {
		t.Errorf("failing target got %d requests, want 3", got)
	}
}

// fakeTarget records what it is sent and answers with errs in turn.
type fakeTarget struct {
	name string
	mu   sync.Mutex
	sent []string
	errs []error
}

func (f *fakeTarget) Name() string { return f.name }

func (f *fakeTarget) Send(_ context.Context, n *Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, n.Key)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	return nil
}

func (f *fakeTarget) Sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func TestFilter(t *testing.T) {
	mk := func(kind Kind, prio string) *Notification {
		n := testNotification("inc", 1, kind)
		n.Ticket.Priority = prio
		return &n
	}
	for _, tc := range []struct {
		f    Filter
		n    *Notification
		want bool
	}{
		{Filter{}, mk(KindClosed, "P5"), true},
		{Filter{Kinds: []Kind{KindCreated, KindResolved}}, mk(KindCreated, "P1"), true},
		{Filter{Kinds: []Kind{KindCreated, KindResolved}}, mk(KindUpdated, "P1"), false},
		{Filter{MinPriority: "P3"}, mk(KindCreated, "P1"), true},
		{Filter{MinPriority: "P3"}, mk(KindCreated, "P3"), true},
		{Filter{MinPriority: "P3"}, mk(KindCreated, "P4"), false},
		{Filter{MinPriority: "P3"}, mk(KindCreated, ""), true}, // unknown priority passes
		{Filter{Kinds: []Kind{KindEscalated}, MinPriority: "P2"}, mk(KindEscalated, "P3"), false},
	} {
		if got := tc.f.Match(tc.n); got != tc.want {
			t.Errorf("%+v on %s/%s: %v, want %v", tc.f, tc.n.Kind, tc.n.Ticket.Priority, got, tc.want)
		}
	}
}

func TestDispatcherAppliesFilters(t *testing.T) {
	all := &fakeTarget{name: "all"}
	pages := &fakeTarget{name: "pages"}
	_, srvRC := newRecorder(t)
	hook := webhookRoute(t, "p2hook", srvRC.URL, Filter{MinPriority: "P2", Kinds: []Kind{KindCreated}})
	d, _ := newTestDispatcher(t, []Route{
		{Target: all},
		{Target: pages, Filter: Filter{Kinds: []Kind{KindCreated, KindEscalated}, MinPriority: "P2"}},
		hook,
	}, newFakeClock(), RetryConfig{})
	for i, tc := range []struct {
		kind Kind
		prio string
	}{{KindCreated, "P1"}, {KindUpdated, "P1"}, {KindEscalated, "P3"}, {KindEscalated, "P2"}, {KindCreated, "P4"}} {
		n := testNotification("inc", i, tc.kind)
		n.Ticket.Priority = tc.prio
		if err := d.Deliver(t.Context(), &n, t0); err != nil {
			t.Fatal(err)
		}
	}
	if got := all.Sent(); len(got) != 5 {
		t.Errorf("unfiltered target got %v", got)
	}
	if got, want := pages.Sent(), []string{"inc:0", "inc:3"}; !slices.Equal(got, want) {
		t.Errorf("filtered target got %v, want %v", got, want)
	}
	if v := counterValue(t, d.metrics.notifications, "p2hook", "created", ResultDelivered); v != 1 {
		t.Errorf("webhook with filter delivered %v, want 1", v)
	}
}

func TestDispatcherStopsOnCancel(t *testing.T) {
	ft := &fakeTarget{name: "t", errs: []error{errors.New("down")}}
	clock := newFakeClock()
	clock.block = make(chan time.Duration, 1)
	d, _ := newTestDispatcher(t, []Route{{Target: ft}}, clock, RetryConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	n := testNotification("inc-1", 1, KindCreated)
	go func() { done <- d.Deliver(ctx, &n, clock.Now()) }()
	<-clock.block
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver = %v, want context.Canceled", err)
	}
	for _, r := range notificationResults {
		if v := counterValue(t, d.metrics.notifications, "t", "created", r); v != 0 {
			t.Errorf("%s = %v after cancel", r, v)
		}
	}
}

func TestCustomTargetPermanentAndRetryAfter(t *testing.T) {
	ft := &fakeTarget{name: "t", errs: []error{
		&HTTPError{StatusCode: 503, Delay: 42 * time.Second},
		Permanent(errors.New("no such channel")),
	}}
	clock := newFakeClock()
	d, _ := newTestDispatcher(t, []Route{{Target: ft}}, clock, RetryConfig{})
	n := testNotification("inc-1", 1, KindCreated)
	if err := d.Deliver(t.Context(), &n, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := clock.Sleeps(); !slices.Equal(got, []time.Duration{42 * time.Second}) {
		t.Errorf("sleeps %v", got)
	}
	if len(ft.Sent()) != 2 {
		t.Errorf("sent %v", ft.Sent())
	}
	if !strings.Contains(Permanent(errors.New("x")).Error(), "x") || Permanent(nil) != nil {
		t.Error("Permanent wrapping")
	}
}

var _ http.Handler = (*recorder)(nil)
