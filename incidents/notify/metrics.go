package notify

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results of a notification for one target: a closed set.
const (
	ResultDelivered       = "delivered"
	ResultFailedPermanent = "failed_permanent"
	ResultDropped         = "dropped"
)

var notificationResults = []string{ResultDelivered, ResultFailedPermanent, ResultDropped}

// Results of one attempt: a closed set.
const (
	AttemptSuccess      = "success"
	AttemptClientError  = "client_error"  // 4xx other than 408 and 429: permanent
	AttemptRateLimited  = "rate_limited"  // 429
	AttemptServerError  = "server_error"  // 5xx, 408
	AttemptTimeout      = "timeout"       // no answer in time
	AttemptNetworkError = "network_error" // connection refused, DNS, TLS...
	AttemptError        = "error"         // anything else
)

var attemptResults = []string{AttemptSuccess, AttemptClientError, AttemptRateLimited, AttemptServerError,
	AttemptTimeout, AttemptNetworkError, AttemptError}

// Metrics are the package's Prometheus metrics, shared by the Dispatcher
// and the outboxes.
type Metrics struct {
	notifications *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	delivery      *prometheus.HistogramVec
	pending       prometheus.Gauge
	enqueued      prometheus.Counter
	undecodable   prometheus.Counter
	outboxDropped prometheus.Counter
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_notifications_total",
			Help: "Notifications finished per target, by kind and result (delivered, failed_permanent, dropped after retry.max_age).",
		}, []string{"target", "kind", "result"}),
		attempts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_notification_attempts_total",
			Help: "Delivery attempts per target, by result.",
		}, []string{"target", "result"}),
		delivery: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "correlator_notification_delivery_seconds",
			Help:    "Time from enqueueing a notification to its delivery to the target, retries included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600},
		}, []string{"target"}),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_notification_outbox_pending",
			Help: "Notifications in the outbox not yet done (file outbox: stored; Kafka outbox: fetched and not committed — see consumer lag for the rest).",
		}),
		enqueued: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_notification_outbox_enqueued_total",
			Help: "Notifications made durable in the outbox.",
		}),
		undecodable: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_notification_outbox_undecodable_total",
			Help: "Outbox records that could not be decoded and were skipped.",
		}),
		outboxDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_notification_outbox_dropped_total",
			Help: "Oldest pending notifications dropped because the file outbox was full (outbox.max_pending).",
		}),
	}
}

// initTarget creates the label values of a target, so dashboards see zeros
// instead of absent series.
func (m *Metrics) initTarget(target string) {
	for _, k := range Kinds {
		for _, r := range notificationResults {
			m.notifications.WithLabelValues(target, string(k), r)
		}
	}
	for _, r := range attemptResults {
		m.attempts.WithLabelValues(target, r)
	}
	m.delivery.WithLabelValues(target)
}

// attemptResult classifies an attempt's error.
func attemptResult(err error) string {
	if err == nil {
		return AttemptSuccess
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.StatusCode == http.StatusTooManyRequests:
			return AttemptRateLimited
		case he.StatusCode == http.StatusRequestTimeout || he.StatusCode >= 500:
			return AttemptServerError
		case he.StatusCode >= 300 && he.StatusCode < 500:
			return AttemptClientError
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return AttemptTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return AttemptTimeout
		}
		return AttemptNetworkError
	}
	if IsPermanent(err) {
		return AttemptClientError
	}
	return AttemptError
}
