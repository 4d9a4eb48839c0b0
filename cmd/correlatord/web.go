package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// readiness runs the dependency checks in the background and serves their
// last result, so a probe storm never becomes a storm of Kafka dials.
type readiness struct {
	checks   map[string]func(context.Context) error
	interval time.Duration
	logger   *zap.Logger
	gauge    *prometheus.GaugeVec

	stopping atomic.Bool
	mu       sync.Mutex
	results  map[string]string // check name -> error text; absent = ok
	checked  bool
}

func newReadiness(reg prometheus.Registerer, logger *zap.Logger) *readiness {
	return &readiness{
		checks:   map[string]func(context.Context) error{},
		interval: 5 * time.Second,
		logger:   logger.With(zap.String("component", "readiness")),
		results:  map[string]string{},
		gauge: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "correlator_dependency_up",
			Help: "Whether a dependency answered its last readiness check (1) or not (0).",
		}, []string{"dependency"}),
	}
}

func (r *readiness) add(name string, check func(context.Context) error) {
	r.checks[name] = check
	r.gauge.WithLabelValues(name)
}

// run checks every interval until ctx is done.
func (r *readiness) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.checkOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *readiness) checkOnce(ctx context.Context) {
	results := map[string]string{}
	for name, check := range r.checks {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := check(cctx)
		cancel()
		if err != nil {
			results[name] = err.Error()
			r.gauge.WithLabelValues(name).Set(0)
		} else {
			r.gauge.WithLabelValues(name).Set(1)
		}
	}
	r.mu.Lock()
	for name, msg := range results {
		if r.results[name] != msg {
			r.logger.Warn("dependency not ready", zap.String("dependency", name), zap.String("error", msg))
		}
	}
	for name := range r.results {
		if _, still := results[name]; !still {
			r.logger.Info("dependency ready again", zap.String("dependency", name))
		}
	}
	r.results, r.checked = results, true
	r.mu.Unlock()
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	failing := make(map[string]string, len(r.results))
	for k, v := range r.results {
		failing[k] = v
	}
	checked := r.checked
	r.mu.Unlock()
	switch {
	case r.stopping.Load():
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting down"})
	case !checked:
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
	case len(failing) > 0:
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failing})
	default:
		writeStatus(w, http.StatusOK, map[string]any{"status": "ready"})
	}
}

func writeStatus(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// newMux assembles every HTTP endpoint the daemon serves on one listener.
func newMux(reg *prometheus.Registry, ready http.Handler, register func(*http.ServeMux)) *http.ServeMux {
	mux := http.NewServeMux()
	register(mux)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: false}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.Handle("/readyz", ready)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		paths := []string{
			"POST /api/v1/alerts  Alertmanager webhook receiver",
			"POST /api/v2/alerts  Alertmanager API v2 alert list",
			"POST /api/v1/events  canonical events (object, array or JSON lines)",
			"GET  /metrics        Prometheus metrics",
			"GET  /healthz        liveness",
			"GET  /readyz         readiness (Kafka and ClickHouse reachable)",
		}
		sort.Strings(paths)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s\n\n", versionString())
		for _, p := range paths {
			fmt.Fprintln(w, p)
		}
	})
	return mux
}
