package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
)

// registerAPI adds the incidents API (apiRoutes) to mux, every route behind
// auth. Other methods on an API path get 405 with Allow, unknown paths under
// /api/ a JSON 404.
// With peers (nil: none), it answers for every instance (peers.go).
func registerAPI(mux *http.ServeMux, backend incidentBackend, peers *peerRelay, auth *apiAuth, reg prometheus.Registerer, logger *zap.Logger) {
	f := promauto.With(reg)
	api := &incidentAPI{
		backend: backend,
		peers:   peers,
		logger:  logger.With(zap.String("component", "api")),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_api_requests_total",
			Help: "Incidents API requests by route and status code.",
		}, []string{"route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "correlator_api_request_duration_seconds",
			Help:    "Time to answer an incidents API request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"route"}),
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range apiRoutes() {
		api.requests.WithLabelValues(rt.name, "200")
		mux.Handle(rt.method+" "+rt.pattern, api.instrument(rt.name, auth.require(rt.need, api.handler(rt))))
		if _, ok := allow[rt.pattern]; !ok {
			paths = append(paths, rt.pattern)
		}
		allow[rt.pattern] = append(allow[rt.pattern], rt.method)
		if rt.method == http.MethodGet {
			allow[rt.pattern] = append(allow[rt.pattern], http.MethodHead)
		}
	}
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, methods))
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s; docs/openapi.yaml lists them", r.Method, r.URL.Path))
	})
}
