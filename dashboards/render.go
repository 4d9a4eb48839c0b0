package dashboards

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/correlatord/correlatord/analytics"
)

// allValue is the value of the filter variables when All is selected.
const allValue = ".*"

// Selection is what a dashboard is showing: the filter variables' values
// and the time range. Render substitutes it into a query the way Grafana
// and the data source plugins do, so that the queries can be run outside
// Grafana (the integration test does).
type Selection struct {
	// Values are the selected values of the filter variables (service,
	// priority, site); a variable without values has All selected.
	Values map[string][]string
	// From and To are the dashboard's time range.
	From, To time.Time
	// RateInterval is $__rate_interval (default 1m: four times a 15s
	// scrape interval, Grafana's floor).
	RateInterval time.Duration
}

// Render returns the query with s substituted: Grafana's variables, and
// for SQL the grafana-clickhouse-datasource macros
// ($__conditionalAll first, as the plugin does, then the time macros of
// analytics.ExpandMacros). A label_values variable query is returned as
// it is (see LabelValuesArgs).
func (q Query) Render(s Selection) string {
	switch q.Kind {
	case KindPromQL:
		return s.substitute(q.Expr, promFormat)
	case KindClickHouse:
		sql := s.conditionalAll(q.Expr)
		sql = s.substitute(sql, sqlFormat)
		return analytics.ExpandMacros(sql, s.From, s.To)
	}
	return q.Expr
}

var labelValuesRE = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// LabelValuesArgs returns the metric and label of a Prometheus variable
// query label_values(metric, label).
func LabelValuesArgs(expr string) (metric, label string, err error) {
	m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return "", "", fmt.Errorf("not label_values(metric, label): %q", expr)
	}
	return m[1], m[2], nil
}

func (s Selection) isAll(name string) bool { return len(s.Values[name]) == 0 }

// builtin returns Grafana's global variables.
func (s Selection) builtin(name string) (string, bool) {
	rate := s.RateInterval
	if rate == 0 {
		rate = time.Minute
	}
	rng := s.To.Sub(s.From)
	switch name {
	case "__rate_interval":
		return model.Duration(rate).String(), true
	case "__range":
		return model.Duration(rng).String(), true
	case "__range_s":
		return strconv.FormatInt(int64(rng/time.Second), 10), true
	case "__range_ms":
		return strconv.FormatInt(rng.Milliseconds(), 10), true
	}
	return "", false
}

// promFormat renders values as the Prometheus data source does for a
// regex matcher: regex-escaped, several as (a|b).
func promFormat(values []string, _ string) string {
	esc := make([]string, len(values))
	for i, v := range values {
		esc[i] = regexp.QuoteMeta(v)
	}
	if len(esc) == 1 {
		return esc[0]
	}
	return "(" + strings.Join(esc, "|") + ")"
}

// sqlFormat renders values as the ClickHouse plugin does: quoted and
// comma-separated (its default for several values, and the singlequote
// format); one value without a format is left bare.
func sqlFormat(values []string, format string) string {
	if len(values) == 1 && format == "" {
		return values[0]
	}
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	}
	return strings.Join(q, ",")
}

var varRE = regexp.MustCompile(`\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)`)

// substitute replaces $name, ${name} and ${name:format}: Grafana's global
// variables and the filter variables. Anything else (the plugin's macros)
// is left.
func (s Selection) substitute(expr string, format func([]string, string) string) string {
	return varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name, fmtName := sm[1], sm[2]
		if name == "" {
			name = sm[3]
		}
		if v, ok := s.builtin(name); ok {
			return v
		}
		switch name {
		case varService, varPriority, varSite:
			if s.isAll(name) {
				return allValue
			}
			return format(s.Values[name], fmtName)
		}
		return m
	})
}

// conditionalAll expands $__conditionalAll(condition, $var) as the plugin
// does: 1=1 when All is selected for var, else the condition.
func (s Selection) conditionalAll(sql string) string {
	const macro = "$__conditionalAll("
	for {
		i := strings.LastIndex(sql, macro)
		if i < 0 {
			return sql
		}
		args, n := splitArgs(sql[i+len(macro)-1:])
		if len(args) != 2 {
			return sql // malformed: left for the server to reject
		}
		repl := args[0]
		sm := varRE.FindStringSubmatch(strings.TrimSpace(args[1]))
		if sm != nil {
			name := sm[1] + sm[3]
			if s.isAll(name) {
				repl = "1=1"
			}
		}
		sql = sql[:i] + repl + sql[i+len(macro)-1+n:]
	}
}

// splitArgs splits the parenthesised arguments at the start of s on the
// commas outside nested parentheses and brackets, and returns them with
// the length of the parenthesised text.
func splitArgs(s string) (args []string, n int) {
	depth, start := 0, 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
			if depth == 0 {
				return append(args, s[start:i]), i + 1
			}
		case ',':
			if depth == 1 {
				args = append(args, s[start:i])
				start = i + 1
			}
		}
	}
	return nil, 0
}
