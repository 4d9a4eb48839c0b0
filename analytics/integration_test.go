//go:build integration

package analytics

// Integration tests against a real ClickHouse (the dev one: bash
// deploy/dev/up.sh clickhouse). Run with
//
//	CORRELATORD_TEST_CLICKHOUSE=127.0.0.1:9000 go test -tags integration ./analytics
//
// Each test works in a fresh database with a random name, dropped after.
// TestIntegrationWriterSurvivesOutage stops and restarts the server through
// deploy/dev/down.sh and up.sh.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const testAddrEnv = "CORRELATORD_TEST_CLICKHOUSE"

func testConfig(t testing.TB) Config {
	t.Helper()
	addr := os.Getenv(testAddrEnv)
	if addr == "" {
		t.Skipf("%s is not set: set it to a ClickHouse native address (e.g. 127.0.0.1:9000; "+
			"bash deploy/dev/up.sh clickhouse starts one) to run the integration tests", testAddrEnv)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg := Config{Addr: []string{addr}, Database: "correlator_test_" + hex.EncodeToString(b[:])}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openTest opens a client on a fresh database that is dropped when the
// test ends.
func openTest(t testing.TB, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("dropping %s: %v", cfg.Database, err)
		}
		_ = c.Close()
	})
	return c
}

func migrated(t testing.TB) (*Client, Config) {
	t.Helper()
	cfg := testConfig(t)
	c := openTest(t, cfg)
	if _, err := Migrate(ctxT2(t, time.Minute), c, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

func ctxT2(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationOpenErrors(t *testing.T) {
	cfg := testConfig(t)
	ctx := ctxT2(t, 30*time.Second)

	bad := cfg
	bad.Password = "wrong-password"
	_, err := Open(ctx, bad, nil)
	if err == nil || !strings.Contains(err.Error(), "refused user") || !strings.Contains(err.Error(), "password") {
		t.Errorf("wrong password: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "wrong-password") {
		t.Errorf("the error shows the password: %v", err)
	}

	bad = cfg
	bad.Addr = []string{"127.0.0.1:1"} // nothing listens there
	bad.DialTimeout = 2 * time.Second
	_, err = Open(ctx, bad, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot reach ClickHouse at 127.0.0.1:1") || !strings.Contains(err.Error(), "clickhouse.addr") {
		t.Errorf("unreachable: %v", err)
	}

	c := openTest(t, cfg)
	if err := c.Ping(ctx); err != nil {
		t.Error(err)
	}
	t.Logf("server version %s", c.ServerVersion())
}

func TestIntegrationMigrate(t *testing.T) {
	cfg := testConfig(t)
	c := openTest(t, cfg)
	ctx := ctxT2(t, time.Minute)
	logger := zaptest.NewLogger(t)

	applied, err := Migrate(ctx, c, logger)
	if err != nil {
		t.Fatal(err)
	}
	// Every migration the server is new enough for, in order.
	var want []string
	for _, m := range migrations {
		if m.Requires.IsZero() || c.ServerVersion().AtLeast(m.Requires.Major, m.Requires.Minor) {
			want = append(want, m.ID())
		}
	}
	if !slices.Equal(applied, want) {
		t.Errorf("first Migrate applied %v, want %v", applied, want)
	}
	again, err := Migrate(ctx, c, logger)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", again)
	}

	rows, err := c.Conn().Query(ctx, "SELECT version, name, toString(status), checksum, server_version FROM "+
		cfg.Database+".schema_migrations ORDER BY version, applied_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			v                            uint32
			name, status, sum, serverVer string
		)
		if err := rows.Scan(&v, &name, &status, &sum, &serverVer); err != nil {
			t.Fatal(err)
		}
		m := migrations[v-1]
		if sum != m.Checksum() || serverVer != c.ServerVersion().String() {
			t.Errorf("record of %s: checksum %s, server %s", m.ID(), sum, serverVer)
		}
		got = append(got, fmt.Sprintf("%d %s %s", v, name, status))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// One record per migration: applied, except the version-gated one on a
	// server too old for it.
	var wantRecords []string
	for _, m := range migrations {
		status := "applied"
		if !m.Requires.IsZero() && !c.ServerVersion().AtLeast(m.Requires.Major, m.Requires.Minor) {
			status = "skipped"
		}
		wantRecords = append(wantRecords, fmt.Sprintf("%d %s %s", m.Version, m.Name, status))
	}
	if !slices.Equal(got, wantRecords) {
		t.Errorf("schema_migrations holds %q, want %q (recorded once each)", got, wantRecords)
	}

	// The events table has the documented columns and engine.
	var ddl string
	if err := c.Conn().QueryRow(ctx, "SHOW CREATE TABLE "+cfg.Database+".events").Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{"ReplacingMergeTree", "PARTITION BY toYYYYMM(date)", "ORDER BY (fingerprint, time, event_id)",
		"time_ms UInt64", "date Date DEFAULT toDate(time)", "label_keys Array(String)"} {
		if !strings.Contains(ddl, frag) {
			t.Errorf("events DDL lacks %q:\n%s", frag, ddl)
		}
	}
}

// A migration the server is too old for is recorded as skipped, and applied
// on the first start after an upgrade. A migration whose DDL has no IF NOT
// EXISTS on this server (ADD COLUMN on 18.16) is made idempotent by Present,
// even with two instances racing.
func TestIntegrationGatedMigrationAppliedAfterUpgrade(t *testing.T) {
	cfg := testConfig(t)
	c := openTest(t, cfg)
	ctx := ctxT2(t, time.Minute)
	v := c.ServerVersion()
	next := Version{Major: v.Major + 1}
	list := []Migration{
		{Version: 1, Name: "base", Statements: []string{"CREATE TABLE IF NOT EXISTS {db}.gated (a String) ENGINE = MergeTree() ORDER BY a"}},
		{Version: 2, Name: "future", Requires: next, Statements: []string{"ALTER TABLE {db}.gated ADD COLUMN b String"},
			Present: tableHas("gated", "b String")},
		{Version: 3, Name: "after", Statements: []string{"CREATE TABLE IF NOT EXISTS {db}.after (a String) ENGINE = MergeTree() ORDER BY a"}},
	}
	applied, err := migrate(ctx, c, list, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []string{"0001_base", "0003_after"}) {
		t.Errorf("applied %v before the upgrade", applied)
	}
	if applied, err = migrate(ctx, c, list, nil); err != nil || len(applied) != 0 {
		t.Errorf("second run before the upgrade applied %v, %v", applied, err)
	}
	recs, err := readMigrationRecords(ctx, c, 2)
	if err != nil || recs[2].status != statusSkipped {
		t.Fatalf("record of 2 before the upgrade: %+v, %v", recs, err)
	}

	// "Upgrade" the server: two instances start at once on it.
	c.version = next
	c2, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.version = next
	var wg sync.WaitGroup
	results := make([][]string, 2)
	errs := make([]error, 2)
	for i, cl := range []*Client{c, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = migrate(ctx, cl, list, nil)
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Errorf("instance %d after the upgrade: %v", i, errs[i])
		} else if len(results[i]) > 1 || (len(results[i]) == 1 && results[i][0] != "0002_future") {
			t.Errorf("instance %d applied %v", i, results[i])
		}
	}
	if len(results[0])+len(results[1]) == 0 {
		t.Error("no instance applied 0002_future after the upgrade")
	}
	recs, err = readMigrationRecords(ctx, c, 2)
	if err != nil || recs[2].status != statusApplied {
		t.Fatalf("record of 2 after the upgrade: %+v, %v", recs, err)
	}
	if ok, err := tableHas("gated", "b String")(ctx, c); !ok || err != nil {
		t.Errorf("column b not added: %v", err)
	}
	if applied, err = migrate(ctx, c, list, nil); err != nil || len(applied) != 0 {
		t.Errorf("run after the upgrade applied %v, %v", applied, err)
	}
}

// Two instances starting at once both succeed, and the schema is whole.
func TestIntegrationMigrateConcurrently(t *testing.T) {
	cfg := testConfig(t)
	c1 := openTest(t, cfg)
	c2, err := Open(ctxT2(t, 30*time.Second), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*Client{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Migrate(ctxT2(t, time.Minute), c, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	applied, err := Migrate(ctxT2(t, time.Minute), c1, nil)
	if err != nil || len(applied) != 0 {
		t.Errorf("Migrate after the race applied %v, %v", applied, err)
	}
}

func TestIntegrationWriteEvents(t *testing.T) {
	c, cfg := migrated(t)
	const n = 10000
	reg := prometheus.NewRegistry()
	opts := cfg.WriterOptions()
	opts.MaxRows, opts.MaxWait = 3000, 100*time.Millisecond
	w := NewWriter(c, EventsTable(), opts, reg, zaptest.NewLogger(t))
	stop := startWriter(t, w)

	rows := make([]EventRow, n)
	for i := range rows {
		rows[i] = testEvent(i)
	}
	var pos uint64
	for i := 0; i < n; i += 700 {
		p, err := w.Append(ctxT2(t, time.Minute), rows[i:min(i+700, n)])
		if err != nil {
			t.Fatal(err)
		}
		pos = p
	}
	if err := w.WaitDurable(ctxT2(t, time.Minute), pos); err != nil {
		t.Fatal(err)
	}
	// A redelivery (as after a crash before the Kafka commit) must not count twice.
	p, err := w.Append(ctxT2(t, time.Minute), rows[:500])
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(ctxT2(t, time.Minute), p); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	ctx := ctxT2(t, time.Minute)
	conn := c.Conn()
	var raw, final, uniq uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+cfg.Database+".events").Scan(&raw, &uniq); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".events FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if raw != n+500 || uniq != n || final != n {
		t.Errorf("count() %d (want %d), uniqExact(event_id) %d, count() FINAL %d (want %d)", raw, n+500, uniq, final, n)
	}

	// Every row read back as written.
	q := "SELECT event_id, time, time_ms, received_at, date, source, kind, status, severity, ci, fingerprint, summary, " +
		"label_keys, label_values, annotation_keys, annotation_values FROM " + cfg.Database + ".events FINAL"
	res, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	byID := make(map[string]*EventRow, n)
	for i := range rows {
		byID[rows[i].Event.ID] = &rows[i]
	}
	seen := 0
	for res.Next() {
		var (
			id, source, kind, status, severity, ci, fp, summary string
			tm, received, date                                  time.Time
			timeMS                                              uint64
			lk, lv, ak, av                                      []string
		)
		if err := res.Scan(&id, &tm, &timeMS, &received, &date, &source, &kind, &status, &severity, &ci, &fp, &summary,
			&lk, &lv, &ak, &av); err != nil {
			t.Fatal(err)
		}
		r, ok := byID[id]
		if !ok {
			t.Fatalf("unknown event_id %q read back", id)
		}
		seen++
		e := &r.Event
		check := func(what string, got, want any) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("event %s: %s = %v, want %v", id, what, got, want)
			}
		}
		check("time", tm.Unix(), e.Time.Unix())
		check("time_ms", timeMS, e.Time.UnixMilli())
		check("received_at", received.Unix(), r.ReceivedAt.Unix())
		check("date", date.Format(time.DateOnly), e.Time.UTC().Format(time.DateOnly))
		check("source", source, e.Source)
		check("kind", kind, e.Kind)
		check("status", status, e.Status)
		check("severity", severity, e.Severity)
		check("ci", ci, e.CI)
		check("fingerprint", fp, e.Fingerprint)
		check("summary", summary, e.Summary)
		keys := slices.Sorted(mapsKeys(e.Labels.Map()))
		check("label_keys", lk, keys)
		check("label_values", lv, valuesOf(e.Labels.Map(), keys))
		akeys := slices.Sorted(mapsKeys(e.Annotations.Map()))
		check("annotation_keys", ak, akeys)
		check("annotation_values", av, valuesOf(e.Annotations.Map(), akeys))
		if t.Failed() {
			t.FailNow()
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Errorf("read back %d rows, want %d", seen, n)
	}

	// Severity is queryable as the enum: every fifth event is critical.
	var critical uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+cfg.Database+".events WHERE severity = 'critical'").Scan(&critical); err != nil {
		t.Fatal(err)
	}
	if critical != n/5 {
		t.Errorf("%d critical events, want %d", critical, n/5)
	}
	if v := counterValue(t, reg, "correlator_analytics_rows_written_total", "", ""); v != n+500 {
		t.Errorf("rows_written_total %v", v)
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func valuesOf(m map[string]string, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// repoRoot is the parent of this file's directory, analytics/.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Dir(filepath.Dir(file))
}

func devScript(t testing.TB, script, service string) {
	t.Helper()
	root := repoRoot(t)
	path := filepath.Join(root, "deploy", "dev", script)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not found: this test needs the dev scripts to stop and start ClickHouse", path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", path, service)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash deploy/dev/%s %s: %v\n%s", script, service, err, out)
	}
	t.Logf("deploy/dev/%s %s: %s", script, service, strings.TrimSpace(string(out)))
}

// Rows appended while ClickHouse is down are buffered and written, each
// exactly once, after it comes back.
func TestIntegrationWriterSurvivesOutage(t *testing.T) {
	switch addr := os.Getenv(testAddrEnv); addr {
	case "", "127.0.0.1:9000", "localhost:9000", os.Getenv("CORRELATORD_DEV_CLICKHOUSE_NATIVE"):
	default:
		t.Skipf("stops and starts the dev ClickHouse with deploy/dev/down.sh and up.sh: "+
			"runs only when %s is the dev server's address, not %s", testAddrEnv, addr)
	}
	c, cfg := migrated(t)
	reg := prometheus.NewRegistry()
	opts := cfg.WriterOptions()
	opts.MaxRows, opts.MaxWait = 500, 50*time.Millisecond
	opts.InitialBackoff, opts.MaxBackoff = 100*time.Millisecond, time.Second
	opts.InsertTimeout = 5 * time.Second
	w := NewWriter(c, EventsTable(), opts, reg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	stop := startWriter(t, w)

	rows := make([]EventRow, 3000)
	for i := range rows {
		rows[i] = testEvent(i)
	}
	p, err := w.Append(ctxT2(t, time.Minute), rows[:1000])
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(ctxT2(t, time.Minute), p); err != nil {
		t.Fatal(err)
	}

	devScript(t, "down.sh", "clickhouse")
	restarted := false
	t.Cleanup(func() {
		if !restarted { // never leave the dev server down
			devScript(t, "up.sh", "clickhouse")
		}
	})
	if err := c.Ping(ctxT2(t, 10*time.Second)); err == nil {
		t.Error("Ping succeeded with ClickHouse down")
	}
	for i := 1000; i < 3000; i += 250 {
		if p, err = w.Append(ctxT2(t, time.Minute), rows[i:i+250]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
	if d := w.Durable(); d != 1000 {
		t.Errorf("Durable() = %d with ClickHouse down, want 1000", d)
	}
	if v := gaugeValue(t, reg, "correlator_analytics_rows_buffered"); v != 2000 {
		t.Errorf("rows_buffered = %v, want 2000", v)
	}
	failures := counterValue(t, reg, "correlator_analytics_insert_errors_total", "", "")
	if failures == 0 {
		t.Error("no insert error counted while ClickHouse was down")
	}

	devScript(t, "up.sh", "clickhouse")
	restarted = true
	start := time.Now()
	if err := w.WaitDurable(ctxT2(t, 2*time.Minute), p); err != nil {
		t.Fatalf("rows not written after ClickHouse came back: %v (durable %d)", err, w.Durable())
	}
	t.Logf("%v failed attempts during the outage; buffered rows written %s after the restart",
		failures, time.Since(start).Round(time.Millisecond))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctxT2(t, 10*time.Second)); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}

	ctx := ctxT2(t, time.Minute)
	var raw, uniq, final uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+cfg.Database+".events").Scan(&raw, &uniq); err != nil {
		t.Fatal(err)
	}
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".events FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if uniq != 3000 || final != 3000 {
		t.Errorf("after the outage: uniqExact(event_id) %d, count() FINAL %d, want 3000 each", uniq, final)
	}
	if raw != 3000 {
		t.Logf("count() %d: %d rows stored twice (merges will remove them)", raw, raw-3000)
	}
}

// BenchmarkIntegrationEventsInsert measures the hot path against the real
// server: conversion and append into a batch from PrepareBatch (per row),
// and the whole INSERT of 20000-row batches (Send included).
func BenchmarkIntegrationEventsInsert(b *testing.B) {
	c, cfg := migrated(b)
	table := EventsTable()
	rows := make([]EventRow, 20000)
	for i := range rows {
		rows[i] = testEvent(i)
	}
	query := "INSERT INTO " + cfg.Database + ".events (" + strings.Join(table.Columns, ", ") + ")"
	ctx := context.Background()

	b.Run("append", func(b *testing.B) {
		batch, err := c.Conn().PrepareBatch(ctx, query)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if batch.Rows() == len(rows) { // a new batch every 20000 rows, as the Writer does
				b.StopTimer()
				_ = batch.Abort()
				if batch, err = c.Conn().PrepareBatch(ctx, query); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			if err := table.Append(batch, &rows[n%len(rows)]); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
		_ = batch.Abort()
	})
	b.Run("insert_20000", func(b *testing.B) {
		s := &chSender[EventRow]{conn: c.Conn(), query: query, append: table.Append}
		b.ReportAllocs()
		n := 0
		start := time.Now()
		for b.Loop() {
			if err := s.send(ctx, rows); err != nil {
				b.Fatal(err)
			}
			n += len(rows)
		}
		el := time.Since(start)
		b.ReportMetric(float64(el.Nanoseconds())/float64(n), "ns/row")
		b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
	})
}
