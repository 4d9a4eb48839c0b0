package analytics

import (
	"fmt"
	"strings"
	"time"
)

// Trend queries: the SQL of the KPI panels of the Grafana dashboards, for
// the grafana-clickhouse-datasource plugin.
//
// Every query runs on ClickHouse 18.16 and on current releases. That rules
// out the plugin's $__timeInterval macro, which expands to
// toStartOfInterval (not in 18.16): a query that buckets by the panel's
// interval does it with $__interval_s and intDiv instead.
//
// The incidents and problems tables hold one row per version, so the
// queries read them with FINAL, in a subquery that filters on the time
// range itself: 18.16 never pushes a WHERE down into a subquery or a view
// (enable_optimize_predicate_expression is off and ineffective there), so
// a view over `incidents FINAL` would merge the whole table on every
// refresh, whereas a filter on opened_at inside the FINAL query reads only
// the partitions of the range. A materialized view on INSERTs is no
// alternative: it would count versions, not incidents, and a view on the
// first version only would miss the priority, category and services the
// later versions settle. WHERE (unlike PREWHERE) applies after FINAL's
// merge, so filtering on columns that change between versions is exact.
//
// An incident merged into another one is left out of every count: it is
// the same incident, which the one it was merged into already counts
// (notMergedAway).

// Query formats: what the panel's query returns, as the plugin's format
// option names it.
const (
	FormatTimeSeries = "time_series" // a time column, optional label columns, value columns
	FormatTable      = "table"
)

// TrendQuery is the query of one dashboard panel.
type TrendQuery struct {
	// Name identifies the query; dashboards refer to it. Stable.
	Name string
	// Title is the panel's title.
	Title string
	// Format is FormatTimeSeries or FormatTable.
	Format string
	// Unit is the Grafana unit of the value columns: "short", "s",
	// "percentunit".
	Unit string
	// SQL is the query, {db} standing for the database name (see For)
	// and with Grafana macros for the dashboard's time range.
	SQL string
}

// For returns the query's SQL for database db, macros left in place.
func (q TrendQuery) For(db string) string { return expandDB(q.SQL, db) }

// notMergedAway is true for an incident no other incident was merged
// from. It reads merged_from of every version of every incident, which is
// right: merged_from only grows, and a merge is never undone.
const notMergedAway = `id NOT IN (SELECT arrayJoin(merged_from) FROM {db}.incidents)`

// TrendQueries are the KPI queries, in dashboard order.
var TrendQueries = []TrendQuery{
	eventsPerMinuteBy("source", "source"),
	eventsPerMinuteBy("severity", "toString(severity)"),
	eventsPerMinuteBy("kind", "toString(kind)"),
	eventsPerMinuteBy("ci_type", "if(ci_type = '', '(unknown)', ci_type)"),
	{
		Name:   "incidents_per_day_by_service",
		Title:  "Incidents opened per day by service",
		Format: FormatTimeSeries,
		Unit:   "short",
		// An incident counts once for each service it impacts; one without
		// services under (none).
		SQL: `SELECT
    toStartOfDay(opened_at) AS time,
    arrayJoin(if(empty(services), ['(none)'], services)) AS service,
    count() AS incidents
FROM (
    SELECT opened_at, services
    FROM {db}.incidents FINAL
    WHERE $__timeFilter(opened_at) AND ` + notMergedAway + `
)
GROUP BY time, service
ORDER BY time, service`,
	},
	incidentsPerDayBy("priority"),
	incidentsPerDayBy("category"),
	{
		Name:   "mttr_by_service",
		Title:  "Mean time to resolve by service (day of resolution)",
		Format: FormatTimeSeries,
		Unit:   "s",
		// Incidents resolved in the range (reopened ones are not resolved
		// any more: their resolved_at is 0 again), from opening to
		// resolution, by the day they were resolved.
		SQL: `SELECT
    toStartOfDay(resolved_at) AS time,
    arrayJoin(if(empty(services), ['(none)'], services)) AS service,
    avg(toInt64(resolved_at) - toInt64(opened_at)) AS mttr_s,
    quantile(0.9)(toInt64(resolved_at) - toInt64(opened_at)) AS p90_s
FROM (
    SELECT opened_at, resolved_at, services
    FROM {db}.incidents FINAL
    WHERE opened_at <= $__toTime AND resolved_at > 0 AND $__timeFilter(resolved_at) AND ` + notMergedAway + `
)
GROUP BY time, service
ORDER BY time, service`,
	},
	{
		Name:   "sla_compliance_monthly",
		Title:  "SLA compliance per month (incidents resolved in the month)",
		Format: FormatTimeSeries,
		Unit:   "percentunit",
		// Of the incidents resolved in the month, the share that met the
		// resolution target (no resolution breach) and the share that met
		// the response target (acknowledged, or resolved, before it).
		SQL: `SELECT
    toDateTime(toStartOfMonth(resolved_at), 'UTC') AS time,
    countIf(resolution_breached = 0) / count() AS resolution_compliance,
    countIf(response_breached = 0) / count() AS response_compliance
FROM (
    SELECT resolved_at, response_breached, resolution_breached
    FROM {db}.incidents FINAL
    WHERE opened_at <= $__toTime AND resolved_at > 0 AND $__timeFilter(resolved_at) AND ` + notMergedAway + `
)
GROUP BY time
ORDER BY time`,
	},
	{
		Name:   "sla_compliance_by_priority",
		Title:  "SLA compliance by priority",
		Format: FormatTable,
		Unit:   "percentunit",
		SQL: `SELECT
    priority,
    count() AS resolved,
    countIf(resolution_breached = 0) / count() AS resolution_compliance,
    countIf(response_breached = 0) / count() AS response_compliance
FROM (
    SELECT priority, response_breached, resolution_breached
    FROM {db}.incidents FINAL
    WHERE opened_at <= $__toTime AND resolved_at > 0 AND $__timeFilter(resolved_at) AND ` + notMergedAway + `
)
GROUP BY priority
ORDER BY priority`,
	},
	{
		Name:   "top_root_cause_cis",
		Title:  "Top recurring root-cause CIs",
		Format: FormatTable,
		Unit:   "short",
		// Root-cause CI and category of the incidents opened in the range,
		// those seen more than once, most frequent first.
		SQL: `SELECT
    root_cause_ci,
    category,
    count() AS incidents,
    countIf(priority IN ('P1', 'P2')) AS major_incidents,
    min(opened_at) AS first_opened,
    max(opened_at) AS last_opened
FROM (
    SELECT root_cause_ci, category, priority, opened_at
    FROM {db}.incidents FINAL
    WHERE $__timeFilter(opened_at) AND root_cause_ci != '' AND ` + notMergedAway + `
)
GROUP BY root_cause_ci, category
HAVING incidents > 1
ORDER BY incidents DESC, root_cause_ci, category
LIMIT 20`,
	},
	{
		Name:   "problem_backlog",
		Title:  "Problem backlog by status (end of day)",
		Format: FormatTimeSeries,
		Unit:   "short",
		// For every day of the range (UTC), the problems whose status at
		// the end of that day, from their transition history, was not
		// resolved, closed or rejected. No day without a problem in the
		// backlog has a row: plot it with null values as zero.
		SQL: `SELECT
    toDateTime(day, 'UTC') AS time,
    day_status AS status,
    count() AS problems
FROM (
    SELECT
        arrayJoin(arrayMap(d -> toDate($__fromTime, 'UTC') + d,
            range(toUInt32(toDate($__toTime, 'UTC') - toDate($__fromTime, 'UTC') + 1)))) AS day,
        arrayFilter((s, t) -> toDate(t) <= day, transition_to, transition_at) AS history,
        if(empty(history), '', history[-1]) AS day_status
    FROM {db}.problems FINAL
    WHERE raised_at <= $__toTime
)
WHERE day_status NOT IN ('', 'resolved', 'closed', 'rejected')
GROUP BY time, day_status
ORDER BY time, status`,
	},
}

// eventsPerMinuteBy returns the events-per-minute query grouped by one
// dimension. The buckets are the panel's interval, at least a minute (the
// table's resolution), and the value is a rate per minute whatever the
// bucket, so zooming out does not change the scale.
func eventsPerMinuteBy(name, expr string) TrendQuery {
	// The label is computed as dim and renamed outside: an alias named as
	// a column would replace the column in its own expression.
	return TrendQuery{
		Name:   "events_per_minute_by_" + name,
		Title:  "Events per minute by " + strings.ReplaceAll(name, "_", " "),
		Format: FormatTimeSeries,
		Unit:   "short",
		SQL: `SELECT time, dim AS ` + name + `, events_per_minute
FROM (
    SELECT
        toDateTime(intDiv(toUInt32(minute), greatest($__interval_s, 60)) * greatest($__interval_s, 60), 'UTC') AS time,
        ` + expr + ` AS dim,
        uniqMerge(events) / (greatest($__interval_s, 60) / 60) AS events_per_minute
    FROM {db}.events_per_minute
    WHERE $__timeFilter(minute)
    GROUP BY time, dim
)
ORDER BY time, ` + name,
	}
}

// incidentsPerDayBy returns the incidents-opened-per-day query grouped by
// a column of one value per incident.
func incidentsPerDayBy(column string) TrendQuery {
	return TrendQuery{
		Name:   "incidents_per_day_by_" + column,
		Title:  "Incidents opened per day by " + column,
		Format: FormatTimeSeries,
		Unit:   "short",
		SQL: `SELECT
    toStartOfDay(opened_at) AS time,
    ` + column + `,
    count() AS incidents
FROM (
    SELECT opened_at, ` + column + `
    FROM {db}.incidents FINAL
    WHERE $__timeFilter(opened_at) AND ` + notMergedAway + `
)
GROUP BY time, ` + column + `
ORDER BY time, ` + column,
	}
}

// maxDataPoints is the number of points a panel asks for, from which
// Grafana derives $__interval.
const maxDataPoints = 1000

// niceIntervals are the steps $__interval is rounded up to.
var niceIntervals = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 20 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// macroInterval returns the $__interval of a panel showing from to to:
// the range over maxDataPoints, rounded up to a nice step, at least a
// second.
func macroInterval(from, to time.Time) time.Duration {
	raw := to.Sub(from) / maxDataPoints
	for _, d := range niceIntervals {
		if raw <= d {
			return d
		}
	}
	return niceIntervals[len(niceIntervals)-1]
}

// ExpandMacros expands the grafana-clickhouse-datasource macros of sql for
// the time range from to to, as the plugin does before it sends a query,
// so that the queries can be run in tests and by hand:
//
//	$__timeFilter(col)   col >= toDateTime(from) AND col <= toDateTime(to), Unix seconds
//	$__dateFilter(col)   col >= toDate('from') AND col <= toDate('to'), UTC dates
//	$__fromTime          toDateTime(from)
//	$__toTime            toDateTime(to)
//	$__timeInterval(col) toStartOfInterval(toDateTime(col), INTERVAL n second)
//	$__interval_s        n
//
// where n is the interval Grafana would use: (to - from) / 1000, rounded
// up to a nice step (1s, 2s, 5s, ..., 1m, 2m, 5m, ..., 1h, ..., 1d),
// at least a second. $__timeInterval needs toStartOfInterval, which
// ClickHouse 18.16 lacks; TrendQueries do not use it. Macros without
// arguments may be written with empty parentheses. An unknown macro, or
// one with a wrong argument count, is left as it is, for the server to
// reject.
func ExpandMacros(sql string, from, to time.Time) string {
	interval := int64(macroInterval(from, to) / time.Second)
	var b strings.Builder
	for {
		i := strings.Index(sql, "$__")
		if i < 0 {
			b.WriteString(sql)
			return b.String()
		}
		b.WriteString(sql[:i])
		rest := sql[i+3:]
		n := 0
		for n < len(rest) && (rest[n] == '_' || isAlnum(rest[n])) {
			n++
		}
		name := rest[:n]
		args, argsLen, hasArgs := macroArgs(rest[n:])
		var out string
		ok := true
		switch {
		case name == "timeFilter" && len(args) == 1:
			out = fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", args[0], from.Unix(), args[0], to.Unix())
		case name == "dateFilter" && len(args) == 1:
			out = fmt.Sprintf("%s >= toDate('%s') AND %s <= toDate('%s')",
				args[0], from.UTC().Format(time.DateOnly), args[0], to.UTC().Format(time.DateOnly))
		case name == "fromTime" && len(args) == 0:
			out = fmt.Sprintf("toDateTime(%d)", from.Unix())
		case name == "toTime" && len(args) == 0:
			out = fmt.Sprintf("toDateTime(%d)", to.Unix())
		case name == "timeInterval" && len(args) == 1:
			out = fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], interval)
		case name == "interval_s" && len(args) == 0:
			out = fmt.Sprint(interval)
		default:
			ok = false
		}
		if !ok {
			// Leave it, and go on after its name.
			b.WriteString(sql[i : i+3+n])
			sql = rest[n:]
			continue
		}
		b.WriteString(out)
		if hasArgs {
			sql = rest[n+argsLen:]
		} else {
			sql = rest[n:]
		}
	}
}

// macroArgs parses the parenthesised, comma-separated arguments at the
// start of s, if any: nested parentheses and quoted strings are kept
// whole. It returns the trimmed arguments (none for "()"), the length of
// the parenthesised text and whether there was one.
func macroArgs(s string) (args []string, n int, ok bool) {
	if !strings.HasPrefix(s, "(") {
		return nil, 0, false
	}
	depth, start := 0, 1
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				if a := strings.TrimSpace(s[start:i]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args, i + 1, true
			}
		case c == ',' && depth == 1:
			args = append(args, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return nil, 0, false // unbalanced: not a call
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
