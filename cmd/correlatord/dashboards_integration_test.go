//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/correlate/scenario"
	"github.com/correlatord/correlatord/dashboards"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
)

// TestDashboardQueries is the proof of the Grafana dashboards: it runs the
// daemon on a generated alert storm where the dev stack's Prometheus
// scrapes it (deploy/dev: job correlatord, target
// $CORRELATORD_DEV_CORRELATORD, every second), then evaluates every
// PromQL expression of every panel through Prometheus's HTTP API, and
// runs the SQL of every ClickHouse panel (Grafana's variables and the
// plugin's macros expanded for a fixed range) against the real
// ClickHouse. A query that fails, or returns no series or no row, fails
// the test; so does a panel reading a metric the daemon does not export,
// and `promtool check metrics` on /metrics.
//
// The storm is the scenario generator's, dated a few hours back, plus a
// handmade history on one host so that every KPI has data: a change
// completed just before the host fails (change-induced), a known error
// matching the host (known-error matches), a recurrence within the
// reopen window (reopen rate), three incidents with one signature (a
// recurring problem candidate), and a last one left open and
// acknowledged by an operator through the API (MTTA).
func TestDashboardQueries(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	promAddr := envOrSkip(t, "CORRELATORD_TEST_PROMETHEUS")
	listen := os.Getenv("CORRELATORD_DEV_CORRELATORD")
	if listen == "" {
		listen = "127.0.0.1:9470"
	}
	began := time.Now()
	if ln, err := net.Listen("tcp", listen); err != nil {
		t.Fatalf("%s is busy (%v): the dev Prometheus scrapes correlatord there, so this test must listen on it. "+
			"Stop what listens (the demo's daemon: kill $(cat .dev/run/correlatord.pid)) or another test using it, and run again", listen, err)
	} else {
		ln.Close()
	}

	// The estate and the storm, dated so that the last event (of the
	// handmade history after the storm) is 20 minutes old: event times
	// stay within ingest.max_event_age, and what the daemon measures
	// against the wall clock (acknowledgement, event to incident) is
	// plausible. A scenario's times are offsets from its start: generate
	// it once to learn its span, then again at the right start.
	opts := scenario.Options{Seed: 23, CIs: 5000, Faults: 100}
	scn, err := scenario.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	span := scn.Events[len(scn.Events)-1].Time.Sub(scn.Events[0].Time).Truncate(time.Minute) + 30*time.Minute
	now := time.Now().UTC()
	opts.Start = now.Add(-span - 3*time.Hour).Truncate(time.Minute)
	if scn, err = scenario.Generate(opts); err != nil {
		t.Fatal(err)
	}
	start, base := opts.Start, opts.Start.Add(span)
	dir := t.TempDir()
	writeJSONFile(t, filepath.Join(dir, "cmdb.json"), scn.Doc)
	host := recurringHost(t, scn)
	lines := make([][]byte, 0, len(scn.Events)+16)
	for i := range scn.Events {
		b, err := json.Marshal(&scn.Events[i])
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
	}
	site := scn.Events[0].Labels.Get("site")
	for _, c := range scn.Doc.CIs {
		if c.ID == host {
			site = c.Attributes["site"]
		}
	}
	// The host's history, by offset from base (minutes): down 0-3, down
	// again 15-18 (within the 30m reopen window: reopened), then 60-63
	// and from 120 on (three incidents with one signature: a recurring
	// problem candidate). Info events move the event-time clock on, so
	// that resolutions pass their hold-down and the last incident
	// misses its SLA targets.
	hist := []struct {
		at     int
		status event.Status
		sev    string
	}{
		{0, event.StatusFiring, "critical"}, {3, event.StatusResolved, "critical"}, {10, "", "info"},
		{15, event.StatusFiring, "critical"}, {18, event.StatusResolved, "critical"}, {25, "", "info"},
		{60, event.StatusFiring, "critical"}, {63, event.StatusResolved, "critical"}, {70, "", "info"},
		{120, event.StatusFiring, "critical"}, {160, "", "info"},
	}
	for i, h := range hist {
		alert, status := "HostDown", h.status
		if h.sev == "info" {
			alert, status = "DashboardsClockTick", event.StatusFiring
		}
		lines = append(lines, fmt.Appendf(nil, `{"id":"dash-%d","time":%q,"source":"dashboards-it","status":%q,"severity":%q,"ci":%q,"labels":{"alertname":%q,"site":%q},"summary":"%s on %s"}`,
			i, base.Add(time.Duration(h.at)*time.Minute).Format(time.RFC3339), status, h.sev, host, alert, site, alert, host))
	}
	changes := fmt.Sprintf(`- id: CHG-DASH-1
  cis: [%s]
  status: completed
  planned_start: %s
  planned_end: %s
  summary: kernel upgrade
`, host, base.Add(-40*time.Minute).Format(time.RFC3339), base.Add(-10*time.Minute).Format(time.RFC3339))
	writeFile(t, filepath.Join(dir, "changes.yml"), changes)
	writeFile(t, filepath.Join(dir, "kedb.yml"), fmt.Sprintf(`known_errors:
  - id: KE-DASH-1
    title: %s kernel regression
    root_cause: the kernel of CHG-DASH-1 panics under load
    workaround: boot the previous kernel
    matchers: ['root_cause_ci="%s"']
`, host, host))

	topic, db, group := randomName("it_dash"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1) // one partition keeps the file's order
	ch := openClickHouse(t, chAddr, db)
	const operator = "dashboards-operator-0123456789"
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  dead_letter_topic: %s.dlq
  keyed_topic: %s.keyed
  state_topic: %s.state
  topic_partitions: 1
  commit_interval: 200ms
  state_interval: 1s
clickhouse:
  addr: [%s]
  database: %s
  batch:
    max_rows: 5000
    max_wait: 200ms
cmdb:
  file: %s
rules:
  changes:
    file: %s
incidents:
  known_errors_file: %s
http:
  tokens:
    - {name: alice, token: %s, roles: [operator]}
`, broker, topic, group, topic, topic, topic, chAddr, db, filepath.Join(dir, "cmdb.json"),
		filepath.Join(dir, "changes.yml"), filepath.Join(dir, "kedb.yml"), operator)
	d := startDaemon(t, cfg, listen)
	prom := promClient{addr: promAddr}

	// Prometheus scrapes this daemon before the storm, so that counters
	// are seen from zero and increase() covers the whole storm.
	eventually(t, 60*time.Second, "Prometheus to scrape this daemon", func() bool {
		v, ok := prom.scalar(t, `max(correlator_cmdb_cis{job="correlatord"})`)
		return ok && int(v) == len(scn.Doc.CIs)
	})
	time.Sleep(2 * time.Second)
	produceLines(t, broker, topic, lines)
	// A malformed message: the dead-letter panel has a reason with data.
	produce(t, broker, topic, kafka.Message{Value: []byte("not json")})
	eventually(t, 90*time.Second, "every event to be processed", func() bool { return processed(d) >= float64(len(lines)) })
	// What the handmade history is for.
	for what, q := range map[string]string{
		"incidents":                     "SELECT count() FROM " + db + ".incidents FINAL",
		"a recurring problem candidate": "SELECT count() FROM " + db + ".problems FINAL WHERE reason = 'recurring'",
		"a known-error match":           "SELECT count() FROM " + db + ".incidents FINAL WHERE known_error_id = 'KE-DASH-1'",
		"a change-induced incident":     "SELECT count() FROM " + db + ".incidents FINAL WHERE change_id = 'CHG-DASH-1'",
		"a reopened incident":           "SELECT count() FROM " + db + ".incidents FINAL WHERE reopened > 0",
		"a resolved outage":             "SELECT count() FROM " + db + ".incidents FINAL WHERE category = 'outage' AND resolved_at > 0 AND notEmpty(services)",
		"escalations and breaches":      "SELECT countIf(kind = 'escalation') * countIf(kind = 'breach') FROM " + db + ".incident_timeline",
	} {
		eventually(t, 60*time.Second, what+" in ClickHouse", func() bool { return queryUint(t, ch, q) > 0 })
	}

	// An operator acknowledges the open incident on the host: MTTA.
	var page listPage[*incidents.Incident]
	code, body := apiDo(t, "GET", "http://"+d.addr+"/api/v1/incidents?limit=1000&ci="+host, operator, "")
	if code != 200 || json.Unmarshal(body, &page) != nil {
		t.Fatalf("list incidents: %d %s", code, body)
	}
	var open *incidents.Incident
	for _, in := range page.Items {
		if in.Status.Open() && in.RootCauseCI == host {
			open = in
		}
	}
	if open == nil {
		t.Fatalf("no open incident on %s among %d: the handmade history did not leave one open", host, len(page.Items))
	}
	if code, body := apiDo(t, "POST", "http://"+d.addr+"/api/v1/incidents/"+open.ID+"/acknowledge", operator, `{"note":"looking"}`); code != 200 {
		t.Fatalf("acknowledge %s: %d %s", open.ID, code, body)
	}
	eventually(t, 30*time.Second, "the acknowledgement in ClickHouse", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".incidents FINAL WHERE acknowledged_at > 0") > 0
	})
	// Prometheus holds the final counts.
	eventually(t, 30*time.Second, "Prometheus to scrape the final counts", func() bool {
		v, ok := prom.scalar(t, `sum(correlator_rules_events_total{job="correlatord"})`)
		a, okA := prom.scalar(t, `sum(correlator_incident_time_to_acknowledge_seconds_count{job="correlatord"})`)
		return ok && okA && v == processed(d) && a >= 1
	})
	// rate() and increase() need two samples in their window: give the
	// series that appeared last (a label value first seen at the end of
	// the storm) a few more scrapes (every second in deploy/dev).
	time.Sleep(3 * time.Second)
	t.Logf("%d events and 1 malformed message processed; %d incidents, %d problems in ClickHouse (%.1fs so far)",
		len(lines), queryUint(t, ch, "SELECT count() FROM "+db+".incidents FINAL"),
		queryUint(t, ch, "SELECT count() FROM "+db+".problems FINAL"), time.Since(began).Seconds())

	built, err := dashboards.Dashboards(dashboards.Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	exported := metricNames(t, d.addr)
	all := dashboards.Selection{From: start.Add(-time.Hour), To: base.Add(4 * time.Hour), RateInterval: time.Minute}
	// $__range for PromQL: 10 minutes, more than the test takes.
	promAll := dashboards.Selection{From: now, To: now.Add(10 * time.Minute), RateInterval: time.Minute}
	// One value of every variable, to check that the filtered form of
	// each query is valid too (it may match nothing).
	picked := map[string][]string{"priority": {"P3"}, "site": {site}}
	if svcs := scn.Topology.ImpactedServices(host); len(svcs) > 0 {
		picked["service"] = []string{svcs[0]}
	}
	var failures []string
	fail := func(q dashboards.Query, format string, args ...any) {
		msg := fmt.Sprintf("%s / %s %s (%s): %s", q.Dashboard, q.Panel, q.RefID, q.Kind, fmt.Sprintf(format, args...))
		failures = append(failures, msg)
		t.Logf("FAIL %s", msg)
	}
	used := regexp.MustCompile(`correlator_[a-z_]+`)
	total := 0
	for _, b := range built {
		for _, q := range b.Queries {
			total++
			switch q.Kind {
			case dashboards.KindPromQL:
				for _, m := range used.FindAllString(q.Expr, -1) {
					if !exported[m] {
						fail(q, "metric %s is not exported by the daemon", m)
					}
				}
				expr := q.Render(promAll)
				n, nan, err := prom.query(expr)
				switch {
				case err != nil:
					fail(q, "%v\n    %s", err, expr)
				case n == 0:
					fail(q, "no series\n    %s", expr)
				default:
					t.Logf("ok   %s / %s %s: %d series (%d NaN)", q.Dashboard, q.Panel, q.RefID, n, nan)
				}
				f := promAll
				f.Values = picked
				if _, _, err := prom.query(q.Render(f)); err != nil {
					fail(q, "with a selection: %v\n    %s", err, q.Render(f))
				}
			case dashboards.KindClickHouse:
				sql := q.Render(all)
				n, err := countRows(ch.Conn(), sql)
				switch {
				case err != nil:
					fail(q, "%v\n%s", err, sql)
				case n == 0:
					fail(q, "no rows\n%s", sql)
				default:
					t.Logf("ok   %s / %s %s: %d rows", q.Dashboard, q.Panel, q.RefID, n)
				}
				f := all
				f.Values = picked
				if _, err := countRows(ch.Conn(), q.Render(f)); err != nil {
					fail(q, "with a selection: %v\n%s", err, q.Render(f))
				}
			case dashboards.KindLabelValues:
				metric, label, err := dashboards.LabelValuesArgs(q.Expr)
				if err != nil {
					fail(q, "%v", err)
					continue
				}
				vals, err := prom.labelValues(label, metric)
				switch {
				case err != nil:
					fail(q, "%v", err)
				case len(vals) == 0:
					fail(q, "no values")
				default:
					t.Logf("ok   %s / %s: %d values %v", q.Dashboard, q.Panel, len(vals), vals)
				}
			default:
				fail(q, "unknown kind")
			}
		}
	}
	checkPromtool(t, d.addr)
	t.Logf("%d queries of %d dashboards checked, %d failed; %.1fs in all", total, len(built), len(failures), time.Since(began).Seconds())
	if len(failures) > 0 {
		t.Errorf("%d of %d dashboard queries failed:\n%s", len(failures), total, strings.Join(failures, "\n"))
	}
}

// recurringHost picks the host of the handmade history: one that
// impacts a business service (so that its outages count as downtime)
// and is no fault's root in the scenario.
func recurringHost(t *testing.T, s *scenario.Scenario) string {
	t.Helper()
	roots := map[string]bool{}
	for _, f := range s.Truth.Faults {
		roots[f.RootCI] = true
	}
	for _, c := range s.Doc.CIs {
		if c.Type == "host" && !roots[c.ID] && len(s.Topology.ImpactedServices(c.ID)) > 0 {
			return c.ID
		}
	}
	t.Fatal("the scenario has no host impacting a service")
	return ""
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// countRows runs sql and counts the rows of its result.
func countRows(conn driver.Conn, sql string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// metricNames returns the metric families the daemon exports.
func metricNames(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					out[f[2]+s] = true
				}
			}
		}
	}
	return out
}

// checkPromtool runs Prometheus's linter over the daemon's /metrics.
func checkPromtool(t *testing.T, addr string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: deploy/dev/up.sh installs it with Debian's prometheus package")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = resp.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	} else {
		t.Logf("promtool check metrics: ok")
	}
}

// promClient queries Prometheus's HTTP API.
type promClient struct{ addr string }

type promResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p promClient) get(path string, params url.Values) (json.RawMessage, error) {
	resp, err := http.Get("http://" + p.addr + path + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r promResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// query runs an instant query and returns the number of series (1 for
// a scalar) and how many of them are NaN.
func (p promClient) query(expr string) (series, nan int, err error) {
	data, err := p.get("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, 0, err
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return 0, 0, err
	}
	switch d.ResultType {
	case "vector":
		var v []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return 0, 0, err
		}
		for _, s := range v {
			if str, _ := s.Value[1].(string); str == "NaN" {
				nan++
			}
		}
		return len(v), nan, nil
	case "scalar":
		return 1, 0, nil
	}
	return 0, 0, fmt.Errorf("result type %s, want vector or scalar", d.ResultType)
}

// scalar returns the value of an instant query giving one series.
func (p promClient) scalar(t *testing.T, expr string) (float64, bool) {
	t.Helper()
	data, err := p.get("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil || len(d.Result) != 1 {
		return 0, false
	}
	s, _ := d.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil && !math.IsNaN(v)
}

// labelValues returns the values of label on the series of metric.
func (p promClient) labelValues(label, metric string) ([]string, error) {
	data, err := p.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {metric}})
	if err != nil {
		return nil, err
	}
	var vals []string
	if err := json.Unmarshal(data, &vals); err != nil {
		return nil, err
	}
	sort.Strings(vals)
	return vals, nil
}
