package rules

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The closed sets of label values of the engine's metrics, created up
// front so that every series exists from the start.
type resolutionResult uint8

const (
	resolutionPassed   resolutionResult = iota // went on to correlation
	resolutionRecorded                         // never passed on: recorded only
	resolutionHeld                             // held while flapping, released later
	numResolutionResults
)

var resolutionNames = [numResolutionResults]string{"passed", "recorded", "held"}

type deferredReason uint8

const (
	deferredPromoted deferredReason = iota
	deferredFlapping
	deferredEvicted
	numDeferredReasons
)

var deferredNames = [numDeferredReasons]string{"warning_promoted", "flapping_released", "evicted"}

type stateKind uint8

const (
	stateAlerts stateKind = iota
	stateInhibitSources
	numStates
)

var stateNames = [numStates]string{"alerts", "inhibit_sources"}

type evictReason uint8

const (
	evictExpired evictReason = iota
	evictOverflow
	numEvictReasons
)

var evictNames = [numEvictReasons]string{"expired", "overflow"}

type engineMetrics struct {
	events      [numClasses][numOutcomes]prometheus.Counter
	resolutions [numResolutionResults]prometheus.Counter
	flapping    prometheus.Counter
	deferred    [numDeferredReasons]prometheus.Counter
	evicted     [numStates][numEvictReasons]prometheus.Counter
	alerts      prometheus.Gauge
	pending     prometheus.Gauge
	flappingNow prometheus.Gauge
	sources     prometheus.Gauge
}

func newEngineMetrics(reg prometheus.Registerer) *engineMetrics {
	f := promauto.With(reg)
	m := &engineMetrics{}
	events := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_rules_events_total",
		Help: "Events decided by the rules stage, by class (informational, warning, exception) and outcome (pass, dropped, maintenance, change_window, flapping_held, inhibited, warning_pending, recorded, deduplicated).",
	}, []string{"class", "outcome"})
	for c := ClassInformational; c < numClasses; c++ {
		for o := Outcome(0); o < numOutcomes; o++ {
			m.events[c][o] = events.WithLabelValues(c.String(), o.String())
		}
	}
	res := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_rules_resolutions_total",
		Help: "Resolutions by result: passed on to correlation (whatever suppressed the alert), recorded only (never passed on), held (flapping, passed on once stable).",
	}, []string{"result"})
	for i, n := range resolutionNames {
		m.resolutions[i] = res.WithLabelValues(n)
	}
	m.flapping = f.NewCounter(prometheus.CounterOpts{
		Name: "correlator_rules_flapping_detected_total",
		Help: "Alerts found flapping (more state changes than flapping.threshold within flapping.window).",
	})
	def := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_rules_deferred_total",
		Help: "Events passed on late by Tick, by reason: warning_promoted (persisted), flapping_released (final state of a stable alert), evicted (held resolution of an evicted alert).",
	}, []string{"reason"})
	for i, n := range deferredNames {
		m.deferred[i] = def.WithLabelValues(n)
	}
	ev := f.NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_rules_state_evictions_total",
		Help: "Entries removed from the rules stage's bounded state, by state (alerts, inhibit_sources) and reason (expired: not seen for their TTL; overflow: the state was full).",
	}, []string{"state", "reason"})
	for s, sn := range stateNames {
		for r, rn := range evictNames {
			m.evicted[s][r] = ev.WithLabelValues(sn, rn)
		}
	}
	entries := f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "correlator_rules_state_entries",
		Help: "Entries in the rules stage's state: alerts (tracked fingerprints), pending_warnings, flapping, inhibit_sources.",
	}, []string{"state"})
	m.alerts = entries.WithLabelValues("alerts")
	m.pending = entries.WithLabelValues("pending_warnings")
	m.flappingNow = entries.WithLabelValues("flapping")
	m.sources = entries.WithLabelValues("inhibit_sources")
	return m
}

// flush adds the batch's counts to the metrics and resets them.
func (en *Engine) flush(rs *RuleSet) {
	c, m := &en.counts, en.m
	for cl := range c.events {
		for o, n := range c.events[cl] {
			if n > 0 {
				if ctr := m.events[cl][o]; ctr != nil {
					ctr.Add(float64(n))
				}
				c.events[cl][o] = 0
			}
		}
	}
	for _, ri := range c.touched {
		if rs.ruleHits != nil {
			rs.ruleHits[ri].Add(float64(c.rules[ri]))
		}
		c.rules[ri] = 0
	}
	c.touched = c.touched[:0]
	for i, n := range c.windows {
		if n > 0 {
			if rs.windowHits != nil {
				rs.windowHits[i].Add(float64(n))
			}
			c.windows[i] = 0
		}
	}
	for i, n := range c.inhibits {
		if n > 0 {
			if rs.inhibitHits != nil {
				rs.inhibitHits[i].Add(float64(n))
			}
			c.inhibits[i] = 0
		}
	}
	for i, n := range c.resolution {
		if n > 0 {
			m.resolutions[i].Add(float64(n))
			c.resolution[i] = 0
		}
	}
	if c.flapping > 0 {
		m.flapping.Add(float64(c.flapping))
		c.flapping = 0
	}
	for i, n := range c.deferred {
		if n > 0 {
			m.deferred[i].Add(float64(n))
			c.deferred[i] = 0
		}
	}
	for s := range c.evicted {
		for r, n := range c.evicted[s] {
			if n > 0 {
				m.evicted[s][r].Add(float64(n))
				c.evicted[s][r] = 0
			}
		}
	}
	n := 0
	for _, s := range en.inhib {
		n += s.len()
	}
	en.reportState([numStateGauges]int{len(en.alerts), len(en.pending), len(en.flapping), n})
}

// The state gauges, in the order of stateGauges.
const numStateGauges = 4

// reportState moves the state gauges by the change since the last report,
// so engines sharing EngineMetrics (one per partition) add up.
func (en *Engine) reportState(now [numStateGauges]int) {
	gs := [numStateGauges]prometheus.Gauge{en.m.alerts, en.m.pending, en.m.flappingNow, en.m.sources}
	for i, g := range gs {
		if d := now[i] - en.reported[i]; d != 0 && g != nil {
			g.Add(float64(d))
		}
	}
	en.reported = now
}

// Close takes the engine's state out of the shared state gauges; call it
// when the engine is dropped (its partition moved to another instance).
func (en *Engine) Close() {
	en.mu.Lock()
	defer en.mu.Unlock()
	en.reportState([numStateGauges]int{})
}

// EngineMetrics are the rules stage's metrics, registered once and shared
// by the engines of every partition.
type EngineMetrics struct{ m *engineMetrics }

// NewEngineMetrics registers the rules stage's metrics on reg.
func NewEngineMetrics(reg prometheus.Registerer) *EngineMetrics {
	return &EngineMetrics{newEngineMetrics(reg)}
}
