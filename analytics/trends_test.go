package analytics

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExpandMacros(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) // 1772323200
	to := from.Add(time.Hour)                           // interval 3.6s: 5s
	for _, tc := range []struct{ in, want string }{
		{"WHERE $__timeFilter(minute)", "WHERE minute >= toDateTime(1772323200) AND minute <= toDateTime(1772326800)"},
		{"WHERE $__timeFilter( toDateTime(a, 'UTC') ) AND x", "WHERE toDateTime(a, 'UTC') >= toDateTime(1772323200) AND toDateTime(a, 'UTC') <= toDateTime(1772326800) AND x"},
		{"$__dateFilter(date)", "date >= toDate('2026-03-01') AND date <= toDate('2026-03-01')"},
		{"$__fromTime, $__toTime()", "toDateTime(1772323200), toDateTime(1772326800)"},
		{"$__timeInterval(time)", "toStartOfInterval(toDateTime(time), INTERVAL 5 second)"},
		{"intDiv(x, $__interval_s)", "intDiv(x, 5)"},
		// Unknown or malformed macros stay, for the server to reject.
		{"$__timeFilter_ms(t) $__nope $__timeFilter(a, b) $__timeFilter(a", "$__timeFilter_ms(t) $__nope $__timeFilter(a, b) $__timeFilter(a"},
		{"no macro", "no macro"},
		{"$__fromTime$__toTime", "toDateTime(1772323200)toDateTime(1772326800)"},
		{"$__timeFilter(if(a = ')', b, c))", "if(a = ')', b, c) >= toDateTime(1772323200) AND if(a = ')', b, c) <= toDateTime(1772326800)"},
	} {
		if got := ExpandMacros(tc.in, from, to); got != tc.want {
			t.Errorf("ExpandMacros(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestMacroInterval(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		span, want time.Duration
	}{
		{time.Minute, time.Second},
		{time.Hour, 5 * time.Second},
		{24 * time.Hour, 2 * time.Minute},
		{7 * 24 * time.Hour, 15 * time.Minute},
		{60 * 24 * time.Hour, 2 * time.Hour},
		{3650 * 24 * time.Hour, 7 * 24 * time.Hour},
		{100000 * 24 * time.Hour, 30 * 24 * time.Hour},
	} {
		if got := macroInterval(from, from.Add(tc.span)); got != tc.want {
			t.Errorf("interval of %s = %s, want %s", tc.span, got, tc.want)
		}
	}
}

func TestTrendQueries(t *testing.T) {
	seen := map[string]bool{}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range TrendQueries {
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(q.Name) || seen[q.Name] {
			t.Errorf("query name %q: not snake_case, or twice", q.Name)
		}
		seen[q.Name] = true
		if q.Title == "" || (q.Format != FormatTimeSeries && q.Format != FormatTable) || q.Unit == "" {
			t.Errorf("%s: title %q, format %q, unit %q", q.Name, q.Title, q.Format, q.Unit)
		}
		if !strings.Contains(q.SQL, "{db}.") || strings.Contains(q.For("x"), "{db}") {
			t.Errorf("%s: tables not named as {db}.table", q.Name)
		}
		// 18.16 has no toStartOfInterval.
		if strings.Contains(q.SQL, "$__timeInterval") {
			t.Errorf("%s uses $__timeInterval, which needs toStartOfInterval (ClickHouse 19+)", q.Name)
		}
		if !strings.Contains(q.SQL, "$__timeFilter(") && !strings.Contains(q.SQL, "$__fromTime") {
			t.Errorf("%s does not filter on the dashboard's time range", q.Name)
		}
		if got := ExpandMacros(q.SQL, from, from.Add(time.Hour)); strings.Contains(got, "$__") {
			t.Errorf("%s: macro left after expansion:\n%s", q.Name, got)
		}
		if q.Format == FormatTimeSeries && !strings.Contains(q.SQL, " AS time,") {
			t.Errorf("%s: a time series without a time column", q.Name)
		}
		// PREWHERE would filter versions before FINAL picks the latest.
		if strings.Contains(q.SQL, "PREWHERE") {
			t.Errorf("%s uses PREWHERE", q.Name)
		}
		for _, table := range []string{"{db}.incidents ", "{db}.problems "} {
			if strings.Contains(q.SQL, "FROM "+table) && !strings.Contains(q.SQL, "FROM "+table+"FINAL") {
				t.Errorf("%s reads %s without FINAL", q.Name, table)
			}
		}
	}
}
