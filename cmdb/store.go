package cmdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/event"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Source is where the document comes from. Required.
	Source Source
	// PollInterval is how often Run polls the source for a change (a
	// Poller) or reloads it (any other Source). Zero: Run only reloads on
	// its reload channel.
	PollInterval time.Duration
	// Build tunes the topologies built; Build.Source defaults to the
	// source's name.
	Build BuildOptions
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs reloads; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock for the reload timestamp and duration. Default
	// time.Now.
	Now func() time.Time
}

// Store holds the current Topology and replaces it on reload. Readers call
// Topology (an atomic load) and keep the snapshot for as long as one unit
// of work needs a consistent view: they see the old topology or the new one,
// never a mixture. Reloads are serialized; a failed one keeps the previous
// topology.
type Store struct {
	opts    StoreOptions
	log     *zap.Logger
	now     func() time.Time
	metrics *storeMetrics

	cur atomic.Pointer[Topology]

	mu      sync.Mutex // serializes reloads; taken before a source's own lock
	lastErr string     // last reload error logged, to log a repeated one once
	// contentOK says whether the content the source read last is the one
	// in use (it decoded and built). A poll that finds that content
	// unchanged after a transient failure (a 500, a file briefly missing)
	// sets last_reload_successful back from it.
	contentOK bool
}

type storeMetrics struct {
	reloadFailures prometheus.Counter
	cis            prometheus.Gauge
	relations      prometheus.Gauge
	warnings       prometheus.Gauge
	lastSuccessful prometheus.Gauge
	lastSuccessTS  prometheus.Gauge
	loadDuration   prometheus.Histogram
	bound, unbound prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	f := promauto.With(reg)
	bindings := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_cmdb_bindings_total",
		Help: "Events bound to a CI (result=bound) or to none (result=unbound).",
	}, []string{"result"})
	return &storeMetrics{
		reloadFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_cmdb_reload_failures_total",
			Help: "Loads of the CMDB that failed (unreadable, undecodable or invalid document); the previous topology stays in use.",
		}),
		cis: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_cmdb_cis",
			Help: "Configuration items in the topology in use.",
		}),
		relations: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_cmdb_relations",
			Help: "Relations in the topology in use.",
		}),
		warnings: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_cmdb_warnings",
			Help: "Warnings (cycles, aliases claimed twice, duplicate relations) about the topology in use.",
		}),
		lastSuccessful: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_cmdb_last_reload_successful",
			Help: "Whether the last load of the CMDB succeeded (1) or failed (0).",
		}),
		lastSuccessTS: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_cmdb_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful load of the CMDB.",
		}),
		loadDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "correlator_cmdb_load_duration_seconds",
			Help:    "Time to load, decode, validate and index the CMDB, failed loads included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1ms .. 65s
		}),
		bound:   bindings.WithLabelValues("bound"),
		unbound: bindings.WithLabelValues("unbound"),
	}
}

// NewStore returns a Store serving an empty topology until the first
// successful Reload.
func NewStore(opts StoreOptions) (*Store, error) {
	if opts.Source == nil {
		return nil, errors.New("cmdb store: no source")
	}
	if opts.PollInterval < 0 {
		return nil, fmt.Errorf("cmdb store: negative poll interval %s", opts.PollInterval)
	}
	if opts.Build.Source == "" {
		opts.Build.Source = opts.Source.Name()
	}
	s := &Store{opts: opts, log: opts.Logger, now: opts.Now, metrics: newStoreMetrics(opts.Registerer)}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.log = s.log.With(zap.String("component", "cmdb"), zap.String("source", opts.Source.Name()))
	if s.now == nil {
		s.now = time.Now
	}
	empty, err := Build(&Document{}, BuildOptions{BindLabels: opts.Build.BindLabels})
	if err != nil {
		return nil, err
	}
	s.cur.Store(empty)
	return s, nil
}

// Topology returns the current topology, never nil. Keep the returned
// snapshot for a unit of work rather than calling Topology for each query:
// a reload in between would otherwise mix two topologies.
func (s *Store) Topology() *Topology { return s.cur.Load() }

// Reload loads the source and, when the document is valid, swaps the new
// topology in. On failure the previous topology stays, the failure is
// counted and logged, and the error is returned (wrapping ErrInvalid when
// the document is at fault).
func (s *Store) Reload(ctx context.Context) error {
	return s.reload(ctx, false)
}

func (s *Store) reload(ctx context.Context, poll bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.now()
	var doc *Document
	var err error
	if p, ok := s.opts.Source.(Poller); ok && poll {
		doc, err = p.Poll(ctx)
		if err == nil && doc == nil {
			// Unchanged since the last read: its outcome stands.
			if s.contentOK {
				s.metrics.lastSuccessful.Set(1)
				s.lastErr = ""
			}
			return nil
		}
	} else {
		doc, err = s.opts.Source.Load(ctx)
	}
	var t *Topology
	if err == nil {
		t, err = Build(doc, s.opts.Build)
	}
	doc = nil // the relations' strings can go before the logging below
	if err != nil && ctx.Err() != nil {
		// Shutting down: not a failure of the document.
		return fmt.Errorf("reload cmdb from %s: %w", s.opts.Source.Name(), ctx.Err())
	}
	took := s.now().Sub(start)
	s.metrics.loadDuration.Observe(took.Seconds())
	if err != nil {
		if isContentError(err) {
			s.contentOK = false
		}
		s.metrics.reloadFailures.Inc()
		s.metrics.lastSuccessful.Set(0)
		err = fmt.Errorf("reload cmdb from %s: %w", s.opts.Source.Name(), err)
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.log.Error("CMDB reload failed; keeping the previous topology", zap.Error(err))
		} else {
			s.log.Debug("CMDB reload failed again", zap.Error(err))
		}
		return err
	}
	s.lastErr = ""
	s.contentOK = true
	old := s.cur.Swap(t)
	s.metrics.lastSuccessful.Set(1)
	s.metrics.lastSuccessTS.Set(float64(s.now().UnixNano()) / 1e9)
	s.metrics.cis.Set(float64(t.Len()))
	s.metrics.relations.Set(float64(t.NumRelations()))
	s.metrics.warnings.Set(float64(t.WarningsTotal()))
	if old.Version() == t.Version() && old.Len() == t.Len() {
		s.log.Debug("CMDB reloaded, unchanged", zap.String("version", t.Version()), zap.Duration("took", took))
		return nil
	}
	s.log.Info("CMDB loaded",
		zap.String("version", t.Version()),
		zap.Int("cis", t.Len()),
		zap.Int("relations", t.NumRelations()),
		zap.Int("services", len(t.Services())),
		zap.Int("components", t.Components()),
		zap.Int("warnings", t.WarningsTotal()),
		zap.Duration("took", took))
	for i, w := range t.Warnings() {
		if i == 10 {
			s.log.Warn("more CMDB warnings not logged; run correlatord cmdb check", zap.Int("total", t.WarningsTotal()))
			break
		}
		s.log.Warn("CMDB warning", zap.String("problem", w.String()))
	}
	return nil
}

// Run polls the source every PollInterval (when set) and reloads on each
// receive from reload (SIGHUP), until ctx is done; then it returns nil.
// Failures are logged and counted by the reloads themselves. Call Reload
// once before Run to fail fast on a bad initial document.
func (s *Store) Run(ctx context.Context, reload <-chan struct{}) error {
	var tick <-chan time.Time
	if s.opts.PollInterval > 0 {
		t := time.NewTicker(s.opts.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload:
			_ = s.reload(ctx, false)
		case <-tick:
			_ = s.reload(ctx, true)
		}
	}
}

// Bind binds e on the current topology (see Topology.Bind) and counts the
// result in correlator_cmdb_bindings_total. Callers binding a batch on one
// snapshot call Topology().Bind and CountBindings once instead.
func (s *Store) Bind(e *event.Event) (ci string, ok bool) {
	ci, ok = s.cur.Load().Bind(e)
	if ok {
		s.metrics.bound.Inc()
	} else {
		s.metrics.unbound.Inc()
	}
	return ci, ok
}

// CountBindings adds a batch's results to correlator_cmdb_bindings_total.
func (s *Store) CountBindings(bound, unbound int) {
	if bound > 0 {
		s.metrics.bound.Add(float64(bound))
	}
	if unbound > 0 {
		s.metrics.unbound.Add(float64(unbound))
	}
}

// isContentError reports whether err is about the document (it did not
// decode or validate) rather than about reading it.
func isContentError(err error) bool {
	return errors.Is(err, ErrInvalid) || isImportError(err)
}
