package incidents

import (
	"fmt"
	"slices"
	"strings"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// Topology is what the incident stage asks of the CMDB (*cmdb.Topology).
type Topology interface {
	CI(id string) (*cmdb.CI, bool)
	ImpactedServices(id string) []string
	Dependencies(id string, depth int) []string
}

// Symptom keywords, matched against the lower-cased alert name. They are
// the words monitoring vendors put in alert names (HostDown, KubePodCrashLooping,
// NodeUnreachable, HighLatency): an alert name is a category decision made
// by whoever wrote the alert.
var (
	outageWords      = []string{"down", "crash", "oom", "killed", "notrunning", "unavailable", "outage", "failed", "failure", "exited", "panic", "dead", "stopped", "absent"}
	unreachableWords = []string{"unreachable", "timeout", "noroute", "connect", "ping", "icmp", "dns", "probe", "linkdown", "interface"}
	degradedWords    = []string{"latency", "slow", "degraded", "high", "error", "saturat", "usage", "pressure", "lag", "5xx", "throttl", "full", "low", "slo", "burn"}
	// networkTypes are CI types whose outage shows as unreachability of
	// what sits behind them.
	networkTypes = []string{"switch", "router", "firewall", "load_balancer", "network", "gateway"}
)

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Categorize derives the category from the root cause's CI type and
// symptom: crash/outage, unreachable, degraded. Unreachability is checked
// first (a "connection timeout" is not an outage of the prober), then
// outage words, then degradation; without a telling name a critical alert
// counts as an outage and anything else as degraded.
func Categorize(ciType, symptom string, sev event.Severity) Category {
	s := strings.ToLower(symptom)
	switch {
	case containsAny(s, unreachableWords):
		return CategoryUnreachable
	case containsAny(s, outageWords):
		if slices.Contains(networkTypes, strings.ToLower(ciType)) {
			return CategoryUnreachable
		}
		return CategoryOutage
	case containsAny(s, degradedWords):
		return CategoryDegraded
	case sev == event.SeverityCritical:
		return CategoryOutage
	}
	return CategoryDegraded
}

// UrgencyOf maps the most severe member to urgency 1 (critical), 2 (major)
// or 3 (anything less).
func UrgencyOf(sev event.Severity) int {
	switch {
	case sev.Rank() >= event.SeverityCritical.Rank():
		return 1
	case sev.Rank() >= event.SeverityMajor.Rank():
		return 2
	}
	return 3
}

// ImpactOf derives impact and service class from the impacted services'
// criticality (1 most critical to 4) and the breadth of the incident: the
// most critical service sets the class (criticality 1 -> class 1, 2 -> 2,
// else 3) and the base impact; three or more services, or twenty or more
// CIs, raise impact one step. Without any impacted service impact is 3
// (2 when twenty or more CIs fail).
func ImpactOf(criticalities []int, services, cis int) (impact, class int) {
	class = 3
	for _, c := range criticalities {
		if c >= 1 && c < class {
			class = c
		}
	}
	impact = class
	if services >= 3 || cis >= 20 {
		impact = max(1, impact-1)
	}
	return impact, class
}

// describe writes the title and the description of in from its root cause
// and members. It reads the record only (the members' symptom comes from
// the manager's incremental scan), so it costs the same for an incident of
// five alerts or fifty thousand.
func describe(in *Incident, topo Topology) {
	cause := in.RootCauseCI
	typ := ""
	if topo != nil && cause != "" {
		if ci, ok := topo.CI(cause); ok {
			typ = ci.Type
		}
	}
	symptom := in.scan.symptom
	switch {
	case cause == "" && len(in.Members) > 0:
		in.Title = fmt.Sprintf("%s: %d alerts", orDefault(symptom, "alert"), len(in.EventIDs))
	case in.RootCauseSuspected:
		in.Title = fmt.Sprintf("%s suspected (%s, not alerting): %d alerts on %d CIs", cause, orDash(typ), len(in.EventIDs), len(in.CIs))
	default:
		in.Title = fmt.Sprintf("%s %s on %s: %d alerts on %d CIs", orDash(typ), orDash(symptom), cause, len(in.EventIDs), len(in.CIs))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s incident, priority %s (impact %d, urgency %d).\n", in.Category, in.Priority, in.Impact, in.Urgency)
	if cause != "" {
		kind := "alerting"
		if in.RootCauseSuspected {
			kind = "not alerting; a common dependency of the alerting CIs"
		}
		fmt.Fprintf(&b, "Root-cause candidate: %s (%s, %s), confidence %.0f%%", cause, orDash(typ), kind, 100*in.RootCauseConfidence)
		if len(in.RootCauseExplains) > 0 {
			fmt.Fprintf(&b, "; it explains %s", listUpTo(in.RootCauseExplains, 10))
		}
		b.WriteString(".\n")
	}
	if len(in.Services) > 0 {
		fmt.Fprintf(&b, "Impacted services: %s.\n", listUpTo(in.Services, 10))
	}
	fmt.Fprintf(&b, "Members: %d events on %s.", len(in.EventIDs), listUpTo(in.CIs, 10))
	if in.ChangeID != "" {
		fmt.Fprintf(&b, "\nChange %s was completed on %s or a CI it depends on shortly before the onset.", in.ChangeID, orDash(cause))
	}
	if in.KnownErrorID != "" {
		fmt.Fprintf(&b, "\nKnown error %s matches; workaround: %s", in.KnownErrorID, in.Workaround)
	}
	in.Description = b.String()
	in.stale = false
}

// freshen writes in's title and description if they are behind the record
// (see Incident.stale), before a version of it is handed out or stored.
func (m *Manager) freshen(in *Incident) {
	if in.stale {
		describe(in, m.topo())
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func listUpTo(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(" and %d more", len(xs)-n)
}
