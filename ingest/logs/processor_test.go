package logs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/ingest/logtemplate"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func newProcessor(t testing.TB, mutate func(*Config), b Binder, m *Metrics) *Processor {
	t.Helper()
	p, err := NewProcessor(defaultConfig(t, mutate), b, m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rec(at time.Time, level Level, host, msg string) *Record {
	return &Record{Time: at, Level: level, Host: host, Message: msg, Source: "test"}
}

// run processes records, each at its own time as now, and ticks after each.
func run(p *Processor, recs []*Record) []event.Event {
	var evs []event.Event
	for _, r := range recs {
		evs = p.Process(r, r.Time, evs)
		evs = p.Tick(r.Time, evs)
	}
	return evs
}

func alertnames(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Labels.Get("alertname")+"/"+e.Annotations.Get("count"))
	}
	return out
}

func TestErrorLineAggregates(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newProcessor(t, nil, nil, NewMetrics(reg))
	// 1000 error lines of one template on one host within 50s.
	var evs []event.Event
	for i := range 1000 {
		at := t0.Add(time.Duration(i) * 50 * time.Millisecond)
		evs = p.Process(rec(at, LevelError, "web-01", fmt.Sprintf("connection to 10.0.%d.%d:5432 refused", i/256, i%256)), at, evs)
		evs = p.Tick(at, evs)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events before the window closed, want 1: %v", len(evs), alertnames(evs))
	}
	first := evs[0]
	if first.Labels.Get("alertname") != AlertLogNewTemplate || first.Annotations.Get("count") != "1" {
		t.Errorf("first event %v %v", first.Labels, first.Annotations)
	}
	// The window closes once the watermark passes t0+1m: an idle stream
	// gets there through Tick after idle_timeout.
	evs = p.Tick(t0.Add(50*time.Second), evs[:0])
	if len(evs) != 0 {
		t.Fatalf("window closed early: %v", alertnames(evs))
	}
	evs = p.Tick(t0.Add(2*time.Minute), evs)
	if len(evs) != 1 {
		t.Fatalf("%d events at window close, want 1 update: %v", len(evs), alertnames(evs))
	}
	upd := evs[0]
	if upd.Annotations.Get("count") != "1000" || upd.Fingerprint != first.Fingerprint || upd.ID == first.ID ||
		!reflect.DeepEqual(upd.Labels, first.Labels) || upd.Summary != first.Summary {
		t.Errorf("update %+v\nfirst %+v", upd, first)
	}
	if upd.Annotations.Get("first_seen") != "2026-11-02T10:00:00Z" || upd.Annotations.Get("last_seen") != "2026-11-02T10:00:49.95Z" ||
		!upd.Time.Equal(t0.Add(49950*time.Millisecond)) {
		t.Errorf("update times %v %v", upd.Time, upd.Annotations)
	}
	for _, e := range []event.Event{first, upd} {
		if e.Kind != event.KindLog || e.Severity != event.SeverityMajor || e.Status != event.StatusFiring ||
			e.Labels.Get("host") != "web-01" || e.Labels.Get("instance") != "web-01" || e.Labels.Get("level") != "error" ||
			e.Labels.Get("template") != "connection to <*> refused" || len(e.Labels.Get("template_id")) != 16 {
			t.Errorf("event %+v", e)
		}
		if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
			t.Error(err)
		}
	}
	if got := testutil.ToFloat64(p.m.aggregated); got != 999 {
		t.Errorf("aggregated lines %v, want 999", got)
	}
	if got := testutil.ToFloat64(p.m.emitted[rUpdate]); got != 1 {
		t.Errorf("updates %v", got)
	}

	// The next window of the same key opens with a new event, the same
	// fingerprint, alertname LogError now that the template is known.
	at := t0.Add(3 * time.Minute)
	evs = p.Process(rec(at, LevelError, "web-01", "connection to 10.9.9.9:5432 refused"), at, evs[:0])
	if len(evs) != 1 || evs[0].Labels.Get("alertname") != AlertLogError || evs[0].Fingerprint != first.Fingerprint {
		t.Errorf("next window: %v", evs)
	}
	// A single line makes no update.
	if evs = p.Tick(t0.Add(10*time.Minute), evs[:0]); len(evs) != 0 {
		t.Errorf("update for a single line: %v", alertnames(evs))
	}
}

func TestLevelsAndNewTemplates(t *testing.T) {
	p := newProcessor(t, nil, nil, nil)
	evs := run(p, []*Record{
		rec(t0, LevelInfo, "h1", "user alice logged in from 10.1.1.1"),
		rec(t0.Add(time.Second), LevelWarn, "h1", "disk /var at 85 percent"),
		// A known template at error level: LogError.
		rec(t0.Add(2*time.Second), LevelError, "h1", "user alice logged in from 10.1.1.2"),
		// A never-seen template at error level: LogNewTemplate.
		rec(t0.Add(3*time.Second), LevelFatal, "h1", "out of memory: killed process 4242 (java)"),
		// Another host: another key, another event.
		rec(t0.Add(4*time.Second), LevelError, "h2", "user alice logged in from 10.1.1.3"),
	})
	if got, want := alertnames(evs), []string{"LogError/1", "LogNewTemplate/1", "LogError/1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if evs[1].Severity != event.SeverityCritical || evs[0].Fingerprint == evs[2].Fingerprint {
		t.Errorf("%+v", evs)
	}

	// Configurable: new templates from warn on, min_level critical.
	p = newProcessor(t, func(c *Config) { c.NewTemplateLevel = "warn"; c.MinLevel = "critical" }, nil, nil)
	evs = run(p, []*Record{
		rec(t0, LevelWarn, "h1", "disk /var at 85 percent"),
		rec(t0.Add(time.Second), LevelError, "h1", "disk /home at 86 percent"),
		rec(t0.Add(2*time.Second), LevelCritical, "h1", "kernel panic"),
	})
	if got, want := alertnames(evs), []string{"LogNewTemplate/1", "LogNewTemplate/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestWatchParam(t *testing.T) {
	p := newProcessor(t, func(c *Config) {
		c.WatchTemplates = []WatchRule{{
			Name:     "mysql-disk",
			Matchers: []string{`template=~"disk .* at <\\*> percent"`, `param_0=~"/var/lib/mysql.*", level!="debug"`},
			Severity: "critical",
		}}
	}, nil, nil)
	evs := run(p, []*Record{
		rec(t0, LevelInfo, "db-01", "disk /tmp at 91 percent"),
		rec(t0.Add(time.Second), LevelInfo, "db-01", "disk /var/lib/mysql at 95 percent"),
		rec(t0.Add(2*time.Second), LevelDebug, "db-01", "disk /var/lib/mysql at 96 percent"),
		rec(t0.Add(3*time.Second), LevelInfo, "db-01", "disk /var/lib/mysql at 97 percent"),
	})
	if len(evs) != 1 {
		t.Fatalf("events %v", alertnames(evs))
	}
	e := evs[0]
	if e.Labels.Get("alertname") != AlertLogWatched || e.Labels.Get("watch") != "mysql-disk" || e.Severity != event.SeverityCritical ||
		e.Labels.Get("level") != "info" || !strings.Contains(e.Summary, "/var/lib/mysql at 95") {
		t.Errorf("%+v", e)
	}
	evs = p.Flush(t0.Add(time.Minute), evs[:0])
	if len(evs) != 1 || evs[0].Annotations.Get("count") != "2" {
		t.Errorf("update %v", alertnames(evs))
	}
}

func TestRateAnomaly(t *testing.T) {
	line := func(at time.Time, i int) *Record {
		return rec(at, LevelInfo, "api-01", fmt.Sprintf("GET /api/items/%d 200 %dms", i, i%50))
	}
	// minutes of per-minute counts; the spike minute last.
	feed := func(p *Processor, counts []int) []event.Event {
		var recs []*Record
		for m, n := range counts {
			for i := range n {
				recs = append(recs, line(t0.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Second/2), i))
			}
		}
		evs := run(p, recs)
		return p.Tick(t0.Add(time.Duration(len(counts)+1)*time.Minute), evs)
	}
	steady := func(n int) []int {
		c := make([]int, n)
		for i := range c {
			c[i] = 2
		}
		return c
	}

	// Not before the baseline exists: 5 minutes of history.
	p := newProcessor(t, nil, nil, nil)
	if evs := feed(p, append(steady(5), 100)); len(evs) != 0 {
		t.Errorf("anomaly without a baseline: %v", alertnames(evs))
	}

	// With 30 minutes of 2 lines a minute, 100 in a minute fires once.
	p = newProcessor(t, nil, nil, nil)
	evs := feed(p, append(steady(30), 100, 120, 100))
	if len(evs) != 1 {
		t.Fatalf("events %v, want one anomaly", alertnames(evs))
	}
	e := evs[0]
	if e.Labels.Get("alertname") != AlertLogRateAnomaly || e.Labels.Get("rate") != "100" || e.Labels.Get("baseline") != "2.00" ||
		e.Severity != event.SeverityWarning || e.Labels.Get("host") != "api-01" || e.Labels.Get("template_id") == "" {
		t.Errorf("%+v", e)
	}
	if !e.Time.Before(t0.Add(31*time.Minute)) || e.Time.Before(t0.Add(30*time.Minute)) {
		t.Errorf("anomaly time %s", e.Time)
	}
	if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(p.m.anomalies); got != 1 {
		t.Errorf("anomalies metric %v", got)
	}

	// Below min_count nothing fires, however low the baseline.
	p = newProcessor(t, nil, nil, nil)
	if evs := feed(p, append(steady(30), 19)); len(evs) != 0 {
		t.Errorf("anomaly below min_count: %v", alertnames(evs))
	}
	// Idle minutes decay the baseline: after 2 hours of silence a burst
	// of 25 fires.
	p = newProcessor(t, nil, nil, nil)
	counts := append(steady(30), make([]int, 120)...)
	if evs := feed(p, append(counts, 25)); len(evs) != 1 || evs[0].Labels.Get("rate") != "25" {
		t.Errorf("after silence: %v", alertnames(evs))
	}
}

func TestBindingCMDB(t *testing.T) {
	topo, err := cmdb.Build(&cmdb.Document{CIs: []cmdb.CI{
		{ID: "srv-db-01", Type: "host", Aliases: []string{"db01.prod.example.com"}},
		{ID: "orders", Type: "application", Name: "orders"},
	}}, cmdb.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := newProcessor(t, nil, topo, nil)
	evs := run(p, []*Record{
		rec(t0, LevelError, "DB01.prod.example.com", "replication lag 120s"),
		{Time: t0.Add(time.Second), Level: LevelError, Service: "orders", Pod: "orders-5c8d7f9b4-qz8lm", Namespace: "shop", Message: "stock reservation failed", Source: "fluentbit"},
		rec(t0.Add(2*time.Second), LevelError, "unknown-host", "replication lag 130s"),
	})
	if len(evs) != 3 {
		t.Fatalf("events %v", alertnames(evs))
	}
	if evs[0].CI != "srv-db-01" || evs[1].CI != "orders" || evs[2].CI != "" {
		t.Errorf("CIs %q %q %q", evs[0].CI, evs[1].CI, evs[2].CI)
	}
	if evs[1].Labels.Get("pod") != "orders-5c8d7f9b4-qz8lm" || evs[1].Labels.Get("namespace") != "shop" || evs[1].Labels.Get("host") != "" {
		t.Errorf("labels %v", evs[1].Labels)
	}
	// The same template on the bound and the unbound host: two keys.
	if evs[0].Fingerprint == evs[2].Fingerprint {
		t.Error("bound and unbound host share a fingerprint")
	}
	// The downstream binding agrees with ours.
	if ci, _ := topo.Bind(&evs[0]); ci != "srv-db-01" {
		t.Errorf("downstream Bind %q", ci)
	}
	_ = p.Flush(t0.Add(time.Minute), nil)
	rows := p.Counts(nil)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s %s %v %d", r.Minute.Format("15:04"), r.CI, r.Bound, r.Count))
	}
	want := []string{"10:00 srv-db-01 true 1", "10:00 orders true 1", "10:00 unknown-host false 1"}
	if !sameSet(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestCounts(t *testing.T) {
	p := newProcessor(t, nil, nil, nil)
	var recs []*Record
	for i := range 5 {
		recs = append(recs, rec(t0.Add(time.Duration(i)*10*time.Second), LevelInfo, "h1", fmt.Sprintf("job %d done", i)))
	}
	recs = append(recs,
		rec(t0.Add(65*time.Second), LevelWarn, "h1", "job 9 done"),
		// Late: its minute (10:00) closed when 10:01's record arrived; it
		// counts in the key's next minute.
		rec(t0.Add(30*time.Second), LevelInfo, "h1", "job 10 done"),
	)
	_ = run(p, recs)
	if rows := p.Counts(nil); len(rows) != 1 || rows[0].Count != 5 || rows[0].Level != LevelInfo || !rows[0].Minute.Equal(t0) ||
		rows[0].Template != "job <*> done" || rows[0].Host != "h1" || rows[0].CI != "h1" || rows[0].Bound {
		t.Fatalf("rows %+v", rows)
	}
	// Nothing closes before minute end + grace.
	_ = p.Tick(t0.Add(2*time.Minute+5*time.Second), nil)
	if rows := p.Counts(nil); len(rows) != 0 {
		t.Errorf("closed early: %+v", rows)
	}
	_ = p.Tick(t0.Add(2*time.Minute+10*time.Second), nil)
	rows := p.Counts(nil)
	if len(rows) != 1 || rows[0].Count != 2 || rows[0].Level != LevelWarn || !rows[0].Minute.Equal(t0.Add(time.Minute)) {
		t.Fatalf("rows %+v", rows)
	}
	if rows := p.Counts(nil); len(rows) != 0 {
		t.Errorf("rows handed over twice: %+v", rows)
	}
}

func TestEviction(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newProcessor(t, func(c *Config) { c.MaxKeys = 2 }, nil, NewMetrics(reg))
	var evs []event.Event
	for i, h := range []string{"h1", "h1", "h2", "h3"} {
		at := t0.Add(time.Duration(i) * time.Second)
		evs = p.Process(rec(at, LevelError, h, "backend timeout"), at, evs)
	}
	// h1's key was evicted for h3's: its window update and its count come
	// out at once.
	if got, want := alertnames(evs), []string{"LogNewTemplate/1", "LogError/1", "LogNewTemplate/2", "LogError/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if rows := p.Counts(nil); len(rows) != 1 || rows[0].CI != "h1" || rows[0].Count != 2 {
		t.Errorf("rows %+v", rows)
	}
	p.Tick(t0, nil)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP correlator_logs_keys_evicted_total (CI, template) keys evicted because logs.max_keys was reached.
# TYPE correlator_logs_keys_evicted_total counter
correlator_logs_keys_evicted_total 1
# HELP correlator_logs_tracked_keys (CI, template) keys tracked for aggregation, counts and baselines.
# TYPE correlator_logs_tracked_keys gauge
correlator_logs_tracked_keys 2
# HELP correlator_logs_templates Log templates held by the template miners.
# TYPE correlator_logs_templates gauge
correlator_logs_templates 1
`), "correlator_logs_keys_evicted_total", "correlator_logs_tracked_keys", "correlator_logs_templates"); err != nil {
		t.Error(err)
	}
	if n := len(p.keys); n != 2 {
		t.Errorf("%d keys", n)
	}
	// Keys idle past key_ttl go.
	p.Tick(t0.Add(7*time.Hour), nil)
	if n := len(p.keys); n != 0 {
		t.Errorf("%d keys after key_ttl", n)
	}
}

// hdfsLines are a few HDFS-like lines with errors among them, for the
// determinism and snapshot tests.
func mixedRecords(n int) []*Record {
	var recs []*Record
	for i := range n {
		at := t0.Add(time.Duration(i) * 700 * time.Millisecond)
		host := fmt.Sprintf("dn-%02d", i%3)
		switch i % 5 {
		case 0:
			recs = append(recs, rec(at, LevelInfo, host, fmt.Sprintf("Receiving block blk_%d src: /10.250.%d.%d:54106 dest: /10.250.19.102:50010", 1000+i, i%7, i%200)))
		case 1:
			recs = append(recs, rec(at, LevelError, host, fmt.Sprintf("DataXceiver error processing WRITE_BLOCK operation src: /10.250.%d.%d:50010", i%5, i%100)))
		case 2:
			recs = append(recs, rec(at, LevelWarn, host, fmt.Sprintf("PacketResponder %d for block blk_%d Interrupted.", i%3, i)))
		case 3:
			recs = append(recs, rec(at, LevelInfo, host, fmt.Sprintf("Verification succeeded for blk_%d", i)))
		default:
			recs = append(recs, rec(at, LevelFatal, host, fmt.Sprintf("Shutting down DataNode at dn-%02d/10.250.%d.1", i%3, i%3)))
		}
	}
	return recs
}

func eventsJSON(t testing.TB, evs []event.Event) string {
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeterminism(t *testing.T) {
	recs := mixedRecords(600)
	var outs []string
	for range 2 {
		p := newProcessor(t, nil, nil, nil)
		evs := run(p, recs)
		evs = p.Flush(t0.Add(time.Hour), evs)
		rows := p.Counts(nil)
		b, _ := json.Marshal(rows)
		outs = append(outs, eventsJSON(t, evs)+string(b))
		if len(evs) < 10 {
			t.Fatalf("only %d events", len(evs))
		}
	}
	if outs[0] != outs[1] {
		t.Error("the same records gave different events")
	}
}

func TestSnapshotRestore(t *testing.T) {
	recs := mixedRecords(400)
	cut := 217 // mid-window, mid-minute

	// Without a restart.
	p := newProcessor(t, nil, nil, nil)
	want := run(p, recs)
	want = p.Flush(t0.Add(time.Hour), want)
	wantRows := p.Counts(nil)

	// With one at cut.
	p1 := newProcessor(t, nil, nil, nil)
	got := run(p1, recs[:cut])
	var buf bytes.Buffer
	if err := p1.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.String()
	p2 := newProcessor(t, nil, nil, nil)
	if err := p2.Restore(strings.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	// The restored processor snapshots to the same bytes.
	var again bytes.Buffer
	if err := p2.Snapshot(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != snap {
		t.Errorf("snapshot of the restored processor differs:\n%s\n%s", snap, again.String())
	}
	got = append(got, run(p2, recs[cut:])...)
	got = p2.Flush(t0.Add(time.Hour), got)
	// The rows p1 had not handed over travel in the snapshot.
	gotRows := p2.Counts(nil)
	if eventsJSON(t, got) != eventsJSON(t, want) {
		t.Errorf("events differ after a restart:\ngot  %v\nwant %v", alertnames(got), alertnames(want))
	}
	if len(gotRows) != len(wantRows) {
		t.Errorf("%d rows after a restart, %d without", len(gotRows), len(wantRows))
	}
	for i := range min(len(gotRows), len(wantRows)) {
		if gotRows[i] != wantRows[i] {
			t.Errorf("row %d after a restart: %+v, without: %+v", i, gotRows[i], wantRows[i])
			break
		}
	}
	// Template ids are kept.
	id := func(p *Processor, line string) uint64 {
		var r logtemplate.Result
		p.Parser().Parse([]byte(line), &r)
		return r.ID
	}
	if a, b := id(p, "Verification succeeded for blk_1"), id(p2, "Verification succeeded for blk_1"); a != b {
		t.Errorf("template id %x after restart, %x without", b, a)
	}

	// A bad snapshot leaves the processor empty, not half restored.
	bad := strings.Replace(snap, `"kind":"h"`, `"kind":"x"`, 1)
	if err := p2.Restore(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("bad snapshot: %v", err)
	}
	if len(p2.keys) != 0 || p2.Parser().Len() != 0 {
		t.Errorf("state left after a failed restore: %d keys, %d templates", len(p2.keys), p2.Parser().Len())
	}
}

func TestProcessAllocs(t *testing.T) {
	p := newProcessor(t, nil, nil, nil)
	r := rec(t0, LevelInfo, "h1", "Verification succeeded for blk_-4980916519894289629")
	evs := p.Process(r, t0, nil)
	allocs := testing.AllocsPerRun(1000, func() {
		evs = p.Process(r, t0, evs[:0])
	})
	if allocs > 0 {
		t.Errorf("%v allocations per record on a known key", allocs)
	}
}
