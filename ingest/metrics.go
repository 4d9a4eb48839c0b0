package ingest

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/correlatord/correlatord/event"
)

// Transports label where an event came in.
const (
	TransportKafka = "kafka"
	TransportHTTP  = "http"
)

// Reasons for rejecting input: a closed set, so label values stay bounded.
const (
	ReasonMalformed    = "malformed"     // the payload as a whole could not be read
	ReasonInvalidEvent = "invalid_event" // an item broke a rule of the event model
	ReasonTimeRange    = "time_range"    // event time too far in the past or future
	ReasonTooLarge     = "too_large"     // message or body over the size limit
)

var rejectReasons = []string{ReasonMalformed, ReasonInvalidEvent, ReasonTimeRange, ReasonTooLarge}

// maxSourceLabels bounds the distinct values of the source label: sources are
// chosen by whoever sends events, and an unbounded label would let one bad
// producer blow up the metric store.
const maxSourceLabels = 64

// Metrics are ingest's Prometheus metrics, shared by the Kafka consumer and
// the HTTP endpoints.
type Metrics struct {
	eventsReceived   *prometheus.CounterVec
	eventsRejected   *prometheus.CounterVec
	deadLetters      *prometheus.CounterVec
	messagesConsumed *prometheus.CounterVec
	commits          prometheus.Counter
	commitErrors     prometheus.Counter
	fetchErrors      prometheus.Counter
	produced         prometheus.Counter
	produceErrors    prometheus.Counter
	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	handleDuration   prometheus.Histogram

	mu      sync.Mutex
	sources map[string]struct{}
}

// NewMetrics registers ingest's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		eventsReceived: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_events_received_total",
			Help: "Events accepted by ingest, by transport, source and kind.",
		}, []string{"transport", "source", "kind"}),
		eventsRejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_events_rejected_total",
			Help: "Events or payloads rejected by ingest, by transport and reason.",
		}, []string{"transport", "reason"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_dead_letter_messages_total",
			Help: "Kafka messages written to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		messagesConsumed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_kafka_messages_consumed_total",
			Help: "Kafka messages fetched by the consumer, by topic.",
		}, []string{"topic"}),
		commits: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_ingest_kafka_commits_total",
			Help: "Successful offset commits.",
		}),
		commitErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_ingest_kafka_commit_errors_total",
			Help: "Failed offset commits (the offsets are retried at the next commit).",
		}),
		fetchErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_ingest_kafka_fetch_errors_total",
			Help: "Errors fetching from Kafka.",
		}),
		produced: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_ingest_kafka_produced_messages_total",
			Help: "Events produced to Kafka (the ingest topic, or the keyed topic by the first stage) and acknowledged by the broker.",
		}),
		produceErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_ingest_kafka_produce_errors_total",
			Help: "Failed produce calls from the HTTP endpoints (the request got 503).",
		}),
		httpRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_ingest_http_requests_total",
			Help: "HTTP ingest requests, by handler and status code.",
		}, []string{"handler", "code"}),
		httpDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "correlator_ingest_http_request_duration_seconds",
			Help:    "Time to answer an HTTP ingest request, including the wait for durability.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"handler"}),
		handleDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "correlator_ingest_handle_duration_seconds",
			Help:    "Time the pipeline took to accept one batch from the Kafka consumer (backpressure shows here).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		sources: make(map[string]struct{}),
	}
	for _, t := range []string{TransportKafka, TransportHTTP} {
		for _, r := range rejectReasons {
			m.eventsRejected.WithLabelValues(t, r)
		}
	}
	for _, r := range rejectReasons {
		m.deadLetters.WithLabelValues(r)
	}
	return m
}

// sourceLabel returns s, or "other" once maxSourceLabels sources were seen.
func (m *Metrics) sourceLabel(s string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sources[s]; ok {
		return s
	}
	if len(m.sources) >= maxSourceLabels {
		return "other"
	}
	m.sources[s] = struct{}{}
	return s
}

// received counts accepted events. It groups runs of equal source and kind so
// that a batch costs a few counter lookups, not one per event.
func (m *Metrics) received(transport string, events []event.Event) {
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].Source == events[i].Source && events[j].Kind == events[i].Kind {
			j++
		}
		m.eventsReceived.WithLabelValues(transport, m.sourceLabel(events[i].Source), string(events[i].Kind)).Add(float64(j - i))
		i = j
	}
}

func (m *Metrics) rejected(transport, reason string, n int) {
	if n > 0 {
		m.eventsRejected.WithLabelValues(transport, reason).Add(float64(n))
	}
}

// Produced counts n events the broker acknowledged; for producers outside
// this package (the daemon's first stage).
func (m *Metrics) Produced(n int) { m.produced.Add(float64(n)) }

// ProduceFailed counts a failed produce request.
func (m *Metrics) ProduceFailed() { m.produceErrors.Inc() }
