package rules

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Config gives the rule files, the poll interval and the change file;
	// NewManager applies SetDefaults and Validate.
	Config Config
	// Changes receives the records of Config.Changes.File on each reload;
	// nil: the change file is not loaded.
	Changes *ChangeStore
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs reloads; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock of the reload timestamp metric. Default time.Now.
	Now func() time.Time
}

// Manager loads the rule files, swaps the compiled rule set in atomically
// and reloads it when the files change (polling) or on Reload (SIGHUP). A
// reload loads, decodes and checks every file before anything is swapped:
// a file that fails is rejected whole, with an error naming the file, the
// rule and the field, and the previous rules keep running.
type Manager struct {
	opts ManagerOptions
	cfg  Config
	log  *zap.Logger
	now  func() time.Time
	m    *managerMetrics

	cur atomic.Pointer[RuleSet]

	mu          sync.Mutex // serializes reloads
	loadedHash  uint64     // hash of the files last loaded successfully
	failedHash  uint64     // hash of the files last rejected; 0: none
	loaded      bool
	lastErr     string
	changesHash uint64
}

type managerMetrics struct {
	reloadOK, reloadFail prometheus.Counter
	lastOK               prometheus.Gauge
	lastOKTime           prometheus.Gauge
	loaded               *prometheus.GaugeVec
	ruleHits             *prometheus.CounterVec
	windowHits           *prometheus.CounterVec
	inhibitHits          *prometheus.CounterVec
}

func newManagerMetrics(reg prometheus.Registerer) *managerMetrics {
	f := promauto.With(reg)
	reloads := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_rules_reloads_total",
		Help: "Loads of the rule files, by result (success, failure). On failure the previous rules keep running.",
	}, []string{"result"})
	return &managerMetrics{
		reloadOK:   reloads.WithLabelValues("success"),
		reloadFail: reloads.WithLabelValues("failure"),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_rules_last_reload_successful",
			Help: "Whether the last load of the rule files succeeded (1) or failed (0).",
		}),
		lastOKTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_rules_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful load of the rule files.",
		}),
		loaded: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "correlator_rules_loaded",
			Help: "Entries of the rule set in use, by kind (rules, maintenance_windows, inhibit_rules).",
		}, []string{"kind"}),
		ruleHits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_rules_rule_matches_total",
			Help: "Events a rule matched, by rule name. Series of removed rules are deleted on reload.",
		}, []string{"rule"}),
		windowHits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_rules_maintenance_events_total",
			Help: "Events inside a maintenance window, by window name.",
		}, []string{"window"}),
		inhibitHits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_rules_inhibited_total",
			Help: "Events an inhibit rule marked inhibited, by inhibit rule name.",
		}, []string{"rule"}),
	}
}

// NewManager returns a Manager serving an empty rule set (the severity
// defaults) until the first successful Reload.
func NewManager(opts ManagerOptions) (*Manager, error) {
	cfg := opts.Config
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mg := &Manager{opts: opts, cfg: cfg, log: opts.Logger, now: opts.Now, m: newManagerMetrics(opts.Registerer)}
	if mg.log == nil {
		mg.log = zap.NewNop()
	}
	mg.log = mg.log.With(zap.String("component", "rules"))
	if mg.now == nil {
		mg.now = time.Now
	}
	empty := Empty()
	mg.publish(empty, nil)
	return mg, nil
}

// RuleSet returns the rule set in use, never nil. The engine calls it once
// per batch.
func (mg *Manager) RuleSet() *RuleSet { return mg.cur.Load() }

// Reload loads every rule file and the change file, and swaps the new rule
// set in when all of them are valid. On error the rules in use stay.
func (mg *Manager) Reload() error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return mg.reload(false)
}

// reload does the work of Reload; ifChanged skips files whose content did
// not change since the last successful load (polling).
func (mg *Manager) reload(ifChanged bool) error {
	start := mg.now()
	files, err := readFiles(mg.cfg.Files)
	var changes []ChangeRecord
	var changesHash uint64
	if err == nil && mg.cfg.Changes.File != "" && mg.opts.Changes != nil {
		var data []byte
		if data, err = os.ReadFile(mg.cfg.Changes.File); err != nil {
			err = fmt.Errorf("change file: %w", err)
		} else if changesHash = xxhash.Sum64(data); !ifChanged || changesHash != mg.changesHash {
			changes, err = ParseChanges(mg.cfg.Changes.File, data)
		}
	}
	var rs *RuleSet
	var h uint64
	if err == nil {
		h = hashFiles(files) ^ changesHash
		// Polling skips files already loaded, and files that already
		// failed: the failure was counted and logged once.
		if ifChanged && (mg.loaded && h == mg.loadedHash || h == mg.failedHash) {
			return nil
		}
		rs, err = compile(files)
	}
	if err != nil {
		mg.failedHash = h
		mg.m.reloadFail.Inc()
		mg.m.lastOK.Set(0)
		err = fmt.Errorf("reload rules: %w", err)
		if msg := err.Error(); msg != mg.lastErr {
			mg.lastErr = msg
			mg.log.Error("rule files rejected; the previous rules keep running", zap.Error(err))
		}
		return err
	}
	if changes != nil {
		// Validated above: ApplyAll cannot fail on them.
		_ = mg.opts.Changes.ApplyAll(changes)
	}
	mg.changesHash = changesHash
	old := mg.cur.Load()
	mg.publish(rs, old)
	mg.loadedHash, mg.loaded, mg.lastErr, mg.failedHash = h, true, "", 0
	mg.m.reloadOK.Inc()
	mg.m.lastOK.Set(1)
	mg.m.lastOKTime.Set(float64(mg.now().UnixNano()) / 1e9)
	r, w, i := rs.Len()
	mg.log.Info("rule files loaded", zap.Int("files", len(rs.files)), zap.Int("rules", r),
		zap.Int("maintenance_windows", w), zap.Int("inhibit_rules", i), zap.Duration("took", mg.now().Sub(start)))
	return nil
}

// publish resolves the rule set's counters, deletes the series of the
// entries old had and rs has not, and swaps rs in.
func (mg *Manager) publish(rs, old *RuleSet) {
	rs.ruleHits = make([]prometheus.Counter, len(rs.rules))
	keep := map[string]bool{}
	for i := range rs.rules {
		rs.ruleHits[i] = mg.m.ruleHits.WithLabelValues(rs.rules[i].name)
		keep[rs.rules[i].name] = true
	}
	rs.windowHits = make([]prometheus.Counter, len(rs.windows))
	keepW := map[string]bool{}
	for i := range rs.windows {
		rs.windowHits[i] = mg.m.windowHits.WithLabelValues(rs.windows[i].name)
		keepW[rs.windows[i].name] = true
	}
	rs.inhibitHits = make([]prometheus.Counter, len(rs.inhibits))
	keepI := map[string]bool{}
	for i := range rs.inhibits {
		rs.inhibitHits[i] = mg.m.inhibitHits.WithLabelValues(rs.inhibits[i].name)
		keepI[rs.inhibits[i].name] = true
	}
	if old != nil {
		// A batch still running on old may add to a deleted series: those
		// few counts are lost, which is better than a stale series forever.
		for i := range old.rules {
			if n := old.rules[i].name; !keep[n] {
				mg.m.ruleHits.DeleteLabelValues(n)
			}
		}
		for i := range old.windows {
			if n := old.windows[i].name; !keepW[n] {
				mg.m.windowHits.DeleteLabelValues(n)
			}
		}
		for i := range old.inhibits {
			if n := old.inhibits[i].name; !keepI[n] {
				mg.m.inhibitHits.DeleteLabelValues(n)
			}
		}
	}
	r, w, i := rs.Len()
	mg.m.loaded.WithLabelValues("rules").Set(float64(r))
	mg.m.loaded.WithLabelValues("maintenance_windows").Set(float64(w))
	mg.m.loaded.WithLabelValues("inhibit_rules").Set(float64(i))
	mg.cur.Store(rs)
}

// Run polls the rule files (and the change file) every poll interval and
// reloads them when their content changed, until ctx is done. Errors are
// logged and counted; Run returns nil when ctx ends.
func (mg *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(mg.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// Errors are logged (once each) and counted by reload; a
			// failing file is retried at the next poll.
			mg.mu.Lock()
			_ = mg.reload(true)
			mg.mu.Unlock()
		}
	}
}
