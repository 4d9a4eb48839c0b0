package analytics

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// The reasons of correlator_analytics_insert_errors_total, a closed set.
const (
	reasonTimeout    = "timeout"
	reasonConnection = "connection"
	reasonServer     = "server"
	reasonOther      = "other"
)

var errorReasons = []string{reasonTimeout, reasonConnection, reasonServer, reasonOther}

type writerMetrics struct {
	buffered  prometheus.Gauge
	batchRows prometheus.Observer
	duration  prometheus.Observer
	written   prometheus.Counter
	errors    map[string]prometheus.Counter
}

// newWriterMetrics returns the metrics of one table's Writer. The metric
// vectors are shared by every Writer registered on the same Registerer
// (promauto would panic on the second table's registration).
func newWriterMetrics(reg prometheus.Registerer, table string) writerMetrics {
	buffered := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "correlator_analytics_rows_buffered",
		Help: "Rows accepted by the ClickHouse writer and not yet written, the batch being sent included.",
	}, []string{"table"}))
	batchRows := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "correlator_analytics_batch_rows",
		Help:    "Rows per INSERT written to ClickHouse.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	}, []string{"table"}))
	duration := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "correlator_analytics_insert_duration_seconds",
		Help:    "Duration of INSERT attempts to ClickHouse, failed ones included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"table"}))
	errs := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_analytics_insert_errors_total",
		Help: "Failed INSERT attempts to ClickHouse, by reason (timeout, connection, server, other). Failed batches are retried.",
	}, []string{"table", "reason"}))
	written := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_analytics_rows_written_total",
		Help: "Rows written to ClickHouse (a retried batch can store a row twice; merges remove the copy).",
	}, []string{"table"}))

	m := writerMetrics{
		buffered:  buffered.WithLabelValues(table),
		batchRows: batchRows.WithLabelValues(table),
		duration:  duration.WithLabelValues(table),
		written:   written.WithLabelValues(table),
		errors:    make(map[string]prometheus.Counter, len(errorReasons)),
	}
	for _, r := range errorReasons {
		m.errors[r] = errs.WithLabelValues(table, r)
	}
	return m
}

// register registers c on reg, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// classifyError sorts an INSERT error into one of errorReasons.
func classifyError(err error) string {
	var ex *clickhouse.Exception
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, clickhouse.ErrAcquireConnTimeout):
		return reasonTimeout
	case errors.As(err, &ex):
		if ex.Code == 159 { // TIMEOUT_EXCEEDED
			return reasonTimeout
		}
		return reasonServer
	case errors.As(err, &ne) && ne.Timeout():
		return reasonTimeout
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return reasonConnection
	}
	return reasonOther
}
