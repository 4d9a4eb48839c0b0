package dashboards

import (
	"fmt"
	"strings"

	"github.com/correlatord/correlatord/analytics"
)

// The SQL of the ClickHouse panels: analytics.TrendQueries, with the
// dashboard's filters added, and the queries below, which follow the
// same rules (see analytics/trends.go): they run on ClickHouse 18.16,
// read the versioned incidents and problems tables with FINAL and filter
// in WHERE (never PREWHERE, which would apply before FINAL's merge),
// leave incidents merged into others out, and use only the plugin's
// macros that analytics.ExpandMacros knows, plus $__conditionalAll.
//
// The filter variables are multi-value with All. Each condition is
// wrapped in $__conditionalAll(condition, $var), which the plugin
// replaces with 1=1 when All is selected, so that All also keeps the rows
// the condition cannot match (an incident without a CI on any site);
// ${var:singlequote} renders the selected values as 'a','b'.

// siteOf is the site attribute of a CMDB CI, empty when it has none.
const siteOf = `arrayFirst((v, k) -> k = 'site', attribute_values, attribute_keys)`

// siteCIs is the array of the CIs on the selected sites, from every
// topology snapshot.
const siteCIs = `(SELECT groupUniqArray(id) FROM {db}.cmdb_cis WHERE ` + siteOf + ` IN (${site:singlequote}))`

// notMergedAway leaves out incidents merged into another one, which
// counts them (as analytics.TrendQueries do).
const notMergedAway = `id NOT IN (SELECT arrayJoin(merged_from) FROM {db}.incidents)`

// Filters by table. An incident's services are all the business services
// it impacts; "none" stands for no service, as in the Prometheus metrics.
const (
	incidentFilter = `$__conditionalAll(priority IN (${priority:singlequote}), $priority)
        AND $__conditionalAll(hasAny(if(empty(services), ['none'], services), [${service:singlequote}]), $service)
        AND $__conditionalAll(hasAny(cis, ` + siteCIs + `), $site)`
	problemFilter = `$__conditionalAll(if(service = '', 'none', service) IN (${service:singlequote}), $service)
        AND $__conditionalAll(has(` + siteCIs + `, root_cause_ci), $site)`
	// Timeline entries carry the incident's priority at the time.
	timelineFilter = `$__conditionalAll(priority IN (${priority:singlequote}), $priority)
        AND $__conditionalAll(incident_id IN (SELECT id FROM {db}.incidents FINAL
            WHERE hasAny(if(empty(services), ['none'], services), [${service:singlequote}])), $service)
        AND $__conditionalAll(incident_id IN (SELECT id FROM {db}.incidents FINAL WHERE hasAny(cis, ` + siteCIs + `)), $site)`
	// Events carry their site as a label (the CMDB enriches it).
	eventFilter = `$__conditionalAll(arrayFirst((v, k) -> k = 'site', label_values, label_keys) IN (${site:singlequote}), $site)`
)

// siteVariableSQL lists the sites of the CMDB.
func siteVariableSQL(db string) string {
	return analytics.TrendQuery{SQL: `SELECT DISTINCT ` + siteOf + ` AS site
FROM {db}.cmdb_cis
WHERE site != ''
ORDER BY site`}.For(db)
}

// trendByName returns the trend query called name.
func trendByName(name string) (analytics.TrendQuery, error) {
	for _, q := range analytics.TrendQueries {
		if q.Name == name {
			return q, nil
		}
	}
	return analytics.TrendQuery{}, fmt.Errorf("analytics.TrendQueries has no query %q", name)
}

// filtered returns the trend query name with filter added to the WHERE
// clause of its FINAL read of table. It fails unless that read occurs
// exactly once, so a change to the trend queries' shape is caught by the
// dashboards' tests rather than silently dropping the filter.
func filtered(name, table, filter string) (analytics.TrendQuery, error) {
	q, err := trendByName(name)
	if err != nil {
		return q, err
	}
	anchor := "FROM {db}." + table + " FINAL\n    WHERE "
	if n := strings.Count(q.SQL, anchor); n != 1 {
		return q, fmt.Errorf("trend query %s: found %q %d times, want once: cannot add the dashboard's filters", name, anchor, n)
	}
	q.SQL = strings.Replace(q.SQL, anchor, anchor+filter+"\n        AND ", 1)
	return q, nil
}

// trends returns the named trend queries, filtered on table with
// filter when table is set.
func trends(table, filter string, names ...string) ([]analytics.TrendQuery, error) {
	out := make([]analytics.TrendQuery, len(names))
	for i, n := range names {
		var err error
		if table == "" {
			out[i], err = trendByName(n)
		} else {
			out[i], err = filtered(n, table, filter)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// The dashboards' own queries ({db} is the database).
var (
	eventsPerMinuteBySite = analytics.TrendQuery{
		Name: "events_per_minute_by_site", Title: "Events per minute by site", Format: analytics.FormatTimeSeries, Unit: "short",
		// From the events table (events_per_minute has no site): distinct
		// events, so that a row stored twice counts once.
		SQL: `SELECT bucket AS time, if(site_label = '', '(none)', site_label) AS site, events_per_minute
FROM (
    SELECT
        toDateTime(intDiv(toUInt32(time), greatest($__interval_s, 60)) * greatest($__interval_s, 60), 'UTC') AS bucket,
        arrayFirst((v, k) -> k = 'site', label_values, label_keys) AS site_label,
        uniqExact(event_id) / (greatest($__interval_s, 60) / 60) AS events_per_minute
    FROM {db}.events
    WHERE $__timeFilter(time)
        AND ` + eventFilter + `
    GROUP BY bucket, site_label
)
ORDER BY time, site`,
	}

	openIncidents = analytics.TrendQuery{
		Name: "open_incidents", Title: "Open incidents list", Format: analytics.FormatTable, Unit: "short",
		SQL: `SELECT
    id, priority, status, title, root_cause_ci,
    arrayStringConcat(services, ', ') AS impacted_services,
    opened_at, escalation_level,
    response_breached + resolution_breached AS sla_breaches
FROM {db}.incidents FINAL
WHERE status NOT IN ('resolved', 'closed') AND $__timeFilter(opened_at)
    AND ` + incidentFilter + `
    AND ` + notMergedAway + `
ORDER BY priority, opened_at
LIMIT 200`,
	}

	responseAndResolutionByPriority = analytics.TrendQuery{
		Name: "mtta_mttr_by_priority", Title: "MTTA and MTTR by priority (incidents opened in the range)", Format: analytics.FormatTable, Unit: "s",
		SQL: `SELECT
    priority,
    count() AS incidents,
    countIf(acknowledged_at > 0) AS acknowledged,
    avgIf(toInt64(acknowledged_at) - toInt64(opened_at), acknowledged_at > 0) AS mtta_s,
    countIf(resolved_at > 0) AS resolved,
    avgIf(toInt64(resolved_at) - toInt64(opened_at), resolved_at > 0) AS mttr_s,
    quantileIf(0.9)(toInt64(resolved_at) - toInt64(opened_at), resolved_at > 0) AS mttr_p90_s
FROM (
    SELECT priority, opened_at, acknowledged_at, resolved_at
    FROM {db}.incidents FINAL
    WHERE $__timeFilter(opened_at)
        AND ` + incidentFilter + `
        AND ` + notMergedAway + `
)
GROUP BY priority
ORDER BY priority`,
	}

	responseAndResolutionByService = analytics.TrendQuery{
		Name: "mtta_mttr_by_service", Title: "MTTA and MTTR by service (incidents opened in the range)", Format: analytics.FormatTable, Unit: "s",
		// An incident counts for every service it impacts (none: no
		// service). The Prometheus histogram of acknowledgements has no
		// service label, so MTTA by service comes from here only.
		SQL: `SELECT
    service,
    count() AS incidents,
    countIf(acknowledged_at > 0) AS acknowledged,
    avgIf(toInt64(acknowledged_at) - toInt64(opened_at), acknowledged_at > 0) AS mtta_s,
    countIf(resolved_at > 0) AS resolved,
    avgIf(toInt64(resolved_at) - toInt64(opened_at), resolved_at > 0) AS mttr_s,
    quantileIf(0.9)(toInt64(resolved_at) - toInt64(opened_at), resolved_at > 0) AS mttr_p90_s
FROM (
    SELECT arrayJoin(if(empty(services), ['none'], services)) AS service, opened_at, acknowledged_at, resolved_at
    FROM {db}.incidents FINAL
    WHERE $__timeFilter(opened_at)
        AND ` + incidentFilter + `
        AND ` + notMergedAway + `
)
WHERE $__conditionalAll(service IN (${service:singlequote}), $service)
GROUP BY service
ORDER BY service`,
	}

	escalationsPerDay = analytics.TrendQuery{
		Name: "escalations_per_day_by_level", Title: "Escalations per day by level", Format: analytics.FormatTimeSeries, Unit: "short",
		SQL: `SELECT
    toStartOfDay(at) AS time,
    multiIf(to_level = 2, 'line_2', to_level = 3, 'line_3', to_level = 4, 'incident_manager', concat('level_', toString(to_level))) AS level,
    count() AS escalations
FROM {db}.incident_timeline FINAL
WHERE kind = 'escalation' AND $__timeFilter(at)
    AND ` + timelineFilter + `
GROUP BY time, level
ORDER BY time, level`,
	}

	breachesPerDay = analytics.TrendQuery{
		Name: "sla_breaches_per_day", Title: "SLA breaches per day by priority and target", Format: analytics.FormatTimeSeries, Unit: "short",
		SQL: `SELECT
    toStartOfDay(at) AS time,
    concat(priority, ' ', breach) AS target,
    count() AS breaches
FROM {db}.incident_timeline FINAL
WHERE kind = 'breach' AND $__timeFilter(at)
    AND ` + timelineFilter + `
GROUP BY time, target
ORDER BY time, target`,
	}

	reopenRatePerDay = analytics.TrendQuery{
		Name: "reopen_rate_per_day", Title: "Reopen rate (incidents opened per day that were reopened)", Format: analytics.FormatTimeSeries, Unit: "percentunit",
		SQL: `SELECT
    toStartOfDay(opened_at) AS time,
    countIf(reopened > 0) / count() AS reopen_rate
FROM (
    SELECT opened_at, reopened
    FROM {db}.incidents FINAL
    WHERE $__timeFilter(opened_at)
        AND ` + incidentFilter + `
        AND ` + notMergedAway + `
)
GROUP BY time
ORDER BY time`,
	}

	problemCandidates = analytics.TrendQuery{
		Name: "problem_candidates", Title: "Problems raised", Format: analytics.FormatTable, Unit: "short",
		SQL: `SELECT
    id, reason, status, title, root_cause_ci, category,
    if(service = '', 'none', service) AS impacted_service,
    length(incidents) AS incident_count,
    raised_at, known_error_id
FROM {db}.problems FINAL
WHERE $__timeFilter(raised_at)
    AND ` + problemFilter + `
ORDER BY raised_at DESC
LIMIT 200`,
	}

	problemsByReason = analytics.TrendQuery{
		Name: "problems_by_reason", Title: "Problems raised by reason", Format: analytics.FormatTable, Unit: "short",
		SQL: `SELECT reason, count() AS problems
FROM {db}.problems FINAL
WHERE $__timeFilter(raised_at)
    AND ` + problemFilter + `
GROUP BY reason
ORDER BY problems DESC, reason`,
	}

	knownErrorMatches = analytics.TrendQuery{
		Name: "known_error_matches", Title: "Known-error matches by known error", Format: analytics.FormatTable, Unit: "short",
		SQL: `SELECT
    known_error_id,
    count() AS incidents,
    arrayStringConcat(groupUniqArray(root_cause_ci), ', ') AS root_cause_cis,
    min(opened_at) AS first_matched,
    max(opened_at) AS last_matched
FROM (
    SELECT known_error_id, root_cause_ci, opened_at
    FROM {db}.incidents FINAL
    WHERE known_error_id != '' AND $__timeFilter(opened_at)
        AND ` + incidentFilter + `
        AND ` + notMergedAway + `
)
GROUP BY known_error_id
ORDER BY incidents DESC, known_error_id
LIMIT 50`,
	}

	changeInduced = analytics.TrendQuery{
		Name: "change_induced_incidents", Title: "Change-induced incidents by change", Format: analytics.FormatTable, Unit: "short",
		SQL: `SELECT
    change_id,
    count() AS incidents,
    countIf(priority IN ('P1', 'P2')) AS major_incidents,
    arrayStringConcat(groupUniqArray(root_cause_ci), ', ') AS root_cause_cis,
    min(opened_at) AS first_opened,
    max(opened_at) AS last_opened
FROM (
    SELECT change_id, priority, root_cause_ci, opened_at
    FROM {db}.incidents FINAL
    WHERE change_id != '' AND $__timeFilter(opened_at)
        AND ` + incidentFilter + `
        AND ` + notMergedAway + `
)
GROUP BY change_id
ORDER BY incidents DESC, change_id
LIMIT 50`,
	}

	availabilityByService = analytics.TrendQuery{
		Name: "availability_by_service", Title: "Availability by service (incidents)", Format: analytics.FormatTable, Unit: "percentunit",
		// Downtime is the part within the range of every resolved outage
		// or unreachable incident impacting the service (overlapping
		// incidents add up, as in correlator_service_downtime_seconds_total);
		// services without such an incident are not listed.
		SQL: `SELECT
    service,
    greatest(1 - sum(down_s) / (toInt64($__toTime) - toInt64($__fromTime)), 0) AS availability,
    sum(down_s) AS downtime_s,
    count() AS outages
FROM (
    SELECT
        arrayJoin(services) AS service,
        toInt64(least(resolved_at, $__toTime)) - toInt64(greatest(opened_at, $__fromTime)) AS down_s
    FROM {db}.incidents FINAL
    WHERE category IN ('outage', 'unreachable') AND resolved_at > 0
        AND opened_at <= $__toTime AND resolved_at >= $__fromTime
        AND ` + incidentFilter + `
        AND ` + notMergedAway + `
)
WHERE $__conditionalAll(service IN (${service:singlequote}), $service)
GROUP BY service
ORDER BY availability, service`,
	}

	eventsByOutcome = analytics.TrendQuery{
		Name: "events_by_outcome", Title: "Events by rules decision", Format: analytics.FormatTable, Unit: "short",
		SQL: `SELECT
    if(class = '', '(none)', class) AS rules_class,
    if(outcome = '', '(none)', outcome) AS rules_outcome,
    uniqExact(event_id) AS events,
    uniqExact(ci) AS cis
FROM {db}.events
WHERE $__timeFilter(time)
    AND ` + eventFilter + `
GROUP BY rules_class, rules_outcome
ORDER BY events DESC, rules_class, rules_outcome`,
	}
)
