package logs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons an event is emitted for, the reason label of
// correlator_logs_events_emitted_total.
const (
	ReasonError       = "error"        // level at or above min_level (LogError)
	ReasonNewTemplate = "new_template" // a never-seen template at new_template_level (LogNewTemplate)
	ReasonWatched     = "watched"      // a watch_templates rule matched (LogWatched)
	ReasonAnomaly     = "anomaly"      // a template's rate rose far above its baseline (LogRateAnomaly)
	ReasonUpdate      = "update"       // an aggregation window closed with repeats: the count update
)

var (
	emitReasons   = []string{ReasonError, ReasonNewTemplate, ReasonWatched, ReasonAnomaly, ReasonUpdate}
	decodeReasons = []string{ReasonMalformed, ReasonInvalidRecord}
)

func reasonIndex(reason string) int {
	for i, r := range decodeReasons {
		if r == reason {
			return i
		}
	}
	return 0
}

// Metrics are the log pipeline's Prometheus metrics. Create them once per
// registry and share them between every Decoder and Processor: counters are
// safe for concurrent use, and each Processor adds its own share to the
// gauges.
type Metrics struct {
	decoded       prometheus.Counter
	decodeErrors  [2]prometheus.Counter // by decodeReasons
	processed     [8]prometheus.Counter // by Level
	emitted       [5]prometheus.Counter // by emitReasons
	aggregated    prometheus.Counter
	anomalies     prometheus.Counter
	templates     prometheus.Gauge
	keys          prometheus.Gauge
	keysEvicted   prometheus.Counter
	rowsDropped   prometheus.Counter
	templatesGone prometheus.Counter
}

// NewMetrics registers the metrics on reg. Every label value is created up
// front, so each series exists from the start.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		decoded: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_logs_records_decoded_total",
			Help: "Log records decoded from payloads.",
		}),
		aggregated: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_logs_aggregated_lines_total",
			Help: "Log lines folded into an open aggregation window instead of making an event of their own.",
		}),
		anomalies: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_logs_rate_anomalies_total",
			Help: "Template rate anomalies detected (each one LogRateAnomaly event).",
		}),
		templates: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_logs_templates",
			Help: "Log templates held by the template miners.",
		}),
		keys: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_logs_tracked_keys",
			Help: "(CI, template) keys tracked for aggregation, counts and baselines.",
		}),
		keysEvicted: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_logs_keys_evicted_total",
			Help: "(CI, template) keys evicted because logs.max_keys was reached.",
		}),
		rowsDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_logs_count_rows_dropped_total",
			Help: "Template count rows dropped because logs.max_pending_rows were waiting to be written.",
		}),
		templatesGone: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_logs_templates_evicted_total",
			Help: "Log templates evicted because logs.templates.max_templates was reached.",
		}),
	}
	errs := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_logs_decode_errors_total",
		Help: "Log records or payloads that could not be decoded, by reason (malformed: the payload; invalid_record: one record).",
	}, []string{"reason"})
	for i, r := range decodeReasons {
		m.decodeErrors[i] = errs.WithLabelValues(r)
	}
	proc := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_logs_records_processed_total",
		Help: "Log records processed, by normalised level.",
	}, []string{"level"})
	for _, l := range Levels {
		m.processed[l] = proc.WithLabelValues(l.String())
	}
	m.processed[LevelNone] = m.processed[LevelInfo]
	em := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_logs_events_emitted_total",
		Help: "Events made from log records, by reason.",
	}, []string{"reason"})
	for i, r := range emitReasons {
		m.emitted[i] = em.WithLabelValues(r)
	}
	return m
}
