package incidents

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the incident and problem KPIs, shared by the managers of
// every partition (counters add up, gauges move by deltas).
type Metrics struct {
	created        *prometheus.CounterVec
	open           *prometheus.GaugeVec
	timeToAck      *prometheus.HistogramVec
	timeToResolve  *prometheus.HistogramVec
	breaches       *prometheus.CounterVec
	escalations    *prometheus.CounterVec
	reopened       prometheus.Counter
	resolved       *prometheus.CounterVec
	closed         *prometheus.CounterVec
	problems       *prometheus.CounterVec
	problemsOpen   *prometheus.GaugeVec
	knownErrors    prometheus.Counter
	changeInduced  prometheus.Counter
	updatesHeld    prometheus.Counter
	downtime       *prometheus.CounterVec
	operatorAction *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	// Minutes to days: SLA targets run from 5 minutes to 8 hours.
	buckets := []float64{30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 28800, 86400}
	m := &Metrics{
		created: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_incidents_created_total",
			Help: "Incidents created, by priority and first impacted business service (none when no service is impacted).",
		}, []string{"priority", "service"}),
		open: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "correlator_incidents_open",
			Help: "Incidents not yet closed, by priority and status.",
		}, []string{"priority", "status"}),
		timeToAck: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "correlator_incident_time_to_acknowledge_seconds",
			Help:    "Time from an incident's opening to its acknowledgement (MTTA), by priority.",
			Buckets: buckets,
		}, []string{"priority"}),
		timeToResolve: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "correlator_incident_time_to_resolve_seconds",
			Help:    "Time from an incident's opening to its resolution (MTTR), by priority and first impacted service.",
			Buckets: buckets,
		}, []string{"priority", "service"}),
		breaches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_sla_breaches_total",
			Help: "SLA targets missed, by priority and kind (response, resolution).",
		}, []string{"priority", "kind"}),
		escalations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_incident_escalations_total",
			Help: "Escalation steps, by the level escalated to (line_2, line_3, incident_manager).",
		}, []string{"level"}),
		reopened: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_incidents_reopened_total",
			Help: "Incidents reopened by a recurrence within the reopen window, or by an operator.",
		}),
		resolved: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_incidents_resolved_total",
			Help: "Incidents resolved, by priority and how (auto: every alert cleared; manual: an operator).",
		}, []string{"priority", "how"}),
		closed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_incidents_closed_total",
			Help: "Incidents closed, by how (auto after incidents.auto_close_after, manual, merged).",
		}, []string{"how"}),
		problems: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_problem_candidates_total",
			Help: "Problem candidates raised, by reason (recurring, major_incident, rate_anomaly).",
		}, []string{"reason"}),
		problemsOpen: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "correlator_problems_open",
			Help: "Problems not closed or rejected, by status: the problem backlog.",
		}, []string{"status"}),
		knownErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_known_error_matches_total",
			Help: "New incidents that matched a known error and got its workaround.",
		}),
		changeInduced: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_change_induced_incidents_total",
			Help: "Incidents flagged as caused by a change completed shortly before their onset.",
		}),
		updatesHeld: f.NewCounter(prometheus.CounterOpts{
			Name: "correlator_incident_updates_held_total",
			Help: "\"updated\" notifications held back by incidents.update_interval and merged into the incident's next notification.",
		}),
		downtime: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_service_downtime_seconds_total",
			Help: "Downtime of business services: the duration of resolved outage and unreachable incidents impacting them.",
		}, []string{"service"}),
		operatorAction: f.NewCounterVec(prometheus.CounterOpts{
			Name: "correlator_operator_actions_total",
			Help: "Operator actions on incidents and problems, by action and result.",
		}, []string{"action", "result"}),
	}
	m.initLabels()
	return m
}

// initLabels creates the series of the known label values at zero, so
// that dashboards and alerts see 0 rather than no data before the first
// breach, escalation or problem. Services are not known up front; the
// service label gets only "none" (no service impacted).
func (m *Metrics) initLabels() {
	for _, p := range Priorities {
		prio := string(p)
		m.created.WithLabelValues(prio, "none")
		m.timeToAck.WithLabelValues(prio)
		m.timeToResolve.WithLabelValues(prio, "none")
		for _, s := range []Status{StatusNew, StatusAcknowledged, StatusInProgress, StatusResolved, StatusReopened} {
			m.open.WithLabelValues(prio, string(s))
		}
		for _, k := range []BreachKind{BreachResponse, BreachResolution} {
			m.breaches.WithLabelValues(prio, string(k))
		}
		for _, how := range []string{"auto", "manual"} {
			m.resolved.WithLabelValues(prio, how)
		}
	}
	for l := LevelLine2; l <= LevelIncidentManager; l++ {
		m.escalations.WithLabelValues(levelLabel(l))
	}
	for _, how := range []string{"auto", "manual", "merged"} {
		m.closed.WithLabelValues(how)
	}
	for _, r := range []ProblemReason{ReasonRecurring, ReasonMajorIncident, ReasonRateAnomaly} {
		m.problems.WithLabelValues(string(r))
	}
	for _, s := range []ProblemStatus{ProblemCandidate, ProblemAccepted, ProblemKnownError, ProblemResolved} {
		m.problemsOpen.WithLabelValues(string(s))
	}
	for _, a := range []Action{ActAcknowledge, ActStart, ActAssign, ActComment, ActResolve, ActClose, ActReopen,
		ActAcceptProblem, ActRejectProblem, ActKnownError, ActResolveProblem, ActCloseProblem} {
		for _, r := range []string{"ok", "rejected"} {
			m.operatorAction.WithLabelValues(string(a), r)
		}
	}
}

func serviceLabel(in *Incident) string {
	if len(in.Services) == 0 {
		return "none"
	}
	return in.Services[0]
}

func levelLabel(l int) string {
	switch l {
	case LevelLine1:
		return "line_1"
	case LevelLine2:
		return "line_2"
	case LevelLine3:
		return "line_3"
	}
	return "incident_manager"
}
