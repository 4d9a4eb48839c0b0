//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/ingest"
)

// These tests run the daemon in-process against the real Kafka broker and
// ClickHouse server that deploy/dev/up.sh starts (make integration).

func envOrSkip(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("%s is not set: run `make integration`, which starts the dev stack with deploy/dev/up.sh", name)
	}
	return v
}

func randomName(prefix string) string {
	return fmt.Sprintf("%s_%d_%06d", prefix, time.Now().Unix(), rand.IntN(1000000))
}

func createTopic(t *testing.T, broker, topic string, partitions int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	resp, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produce(t *testing.T, broker, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

type testDaemon struct {
	addr   string
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startDaemon runs `correlatord run` in-process with the given config and
// waits until it serves. listen may be "" for any free port.
func startDaemon(t *testing.T, cfg, listen string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "correlatord.yml")
	cfg = "data_dir: " + filepath.Join(dir, "data") + "\n" + cfg
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("listen %s: %v", listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	d := &testDaemon{addr: ln.Addr().String(), reg: prometheus.NewRegistry(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		d.done <- runDaemon(ctx, commonFlags{configFile: cfgFile, logLevel: "warn", logFormat: "json"},
			runOptions{listener: ln, ready: ready, registry: d.reg, advertiseURL: "http://" + d.addr}, make(chan struct{}))
	}()
	select {
	case <-ready:
	case err := <-d.done:
		t.Fatalf("daemon failed to start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not start within 60s")
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *testDaemon) stop(t *testing.T) {
	t.Helper()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon stopped with error: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("daemon did not stop within 60s")
	}
}

func (d *testDaemon) metric(name string, labels ...string) float64 {
	mfs, _ := d.reg.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				total += g.GetValue()
			}
		}
	}
	return total
}

func openClickHouse(t *testing.T, addr, db string) *analytics.Client {
	t.Helper()
	cfg := analytics.Config{Addr: []string{addr}, Database: db}
	cfg.SetDefaults()
	c, err := analytics.Open(context.Background(), cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		c.Close()
	})
	return c
}

func queryUint(t *testing.T, c *analytics.Client, q string) uint64 {
	t.Helper()
	var n uint64
	if err := c.Conn().QueryRow(context.Background(), q).Scan(&n); err != nil {
		// The table may not exist yet while the daemon starts.
		if strings.Contains(err.Error(), "doesn't exist") {
			return 0
		}
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func eventLines(prefix string, from, to int, at time.Time) []byte {
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"id":"%s-%d","time":%q,"source":"it","severity":"major","ci":"host-%d","labels":{"alertname":"HostDown","instance":"host-%d:9100","run":%q},"summary":"HostDown on host-%d"}`+"\n",
			prefix, i, at.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i%50, i%50, prefix, i%50)
	}
	return b.Bytes()
}

func daemonConfig(broker, topic, group, chAddr, db string) string {
	return fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  dead_letter_topic: %s.dlq
  keyed_topic: %s.keyed
  state_topic: %s.state
  commit_interval: 200ms
  state_interval: 1s
clickhouse:
  addr: [%s]
  database: %s
  batch:
    max_rows: 2000
    max_wait: 200ms
  retry:
    initial_backoff: 100ms
    max_backoff: 1s
`, broker, topic, group, topic, topic, topic, chAddr, db)
}

// TestKafkaToClickHouse: alerts produced to Kafka in every format appear as
// rows with the right values; a malformed message is dead-lettered and the
// stream goes on; offsets are committed, so a restart reprocesses nothing.
func TestKafkaToClickHouse(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_alerts"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 3)
	createTopic(t, broker, topic+".dlq", 1)
	ch := openClickHouse(t, chAddr, db)
	now := time.Now().UTC().Truncate(time.Millisecond)

	var msgs []kafka.Message
	for i := 0; i < 300; i += 10 { // canonical JSON lines, 10 per message
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: eventLines("k", i, i+10, now)})
	}
	webhook := fmt.Sprintf(`{"version":"4","groupKey":"g","status":"firing","receiver":"r","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"x","truncatedAlerts":0,"alerts":[
{"status":"firing","labels":{"alertname":"DatabaseDown","instance":"db-01:9104","severity":"critical"},"annotations":{"summary":"db-01 down"},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom","fingerprint":""},
{"status":"resolved","labels":{"alertname":"DiskFull","instance":"db-01:9100","severity":"minor"},"annotations":{},"startsAt":%q,"endsAt":%q,"generatorURL":"","fingerprint":""}]}`,
		now.Format(time.RFC3339Nano), now.Add(-time.Hour).Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	msgs = append(msgs, kafka.Message{Key: []byte("wh"), Value: []byte(webhook)})
	msgs = append(msgs, kafka.Message{Key: []byte("v2"), Value: []byte(fmt.Sprintf(
		`[{"labels":{"alertname":"HighLatency","instance":"web-1"},"annotations":{},"startsAt":%q}]`, now.Format(time.RFC3339Nano)))})
	msgs = append(msgs, kafka.Message{Key: []byte("bad"), Value: []byte(`{"time": "yesterday", "labels": {"alertname": 1}`)})
	for i := 300; i < 350; i += 10 { // the stream goes on after the bad one
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: eventLines("k", i, i+10, now)})
	}
	produce(t, broker, topic, msgs...)
	const want = 350 + 2 + 1

	d := startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), "")
	q := "SELECT uniqExact(event_id) FROM " + db + ".events"
	eventually(t, 60*time.Second, "all events in ClickHouse", func() bool { return queryUint(t, ch, q) == want })

	// Values of one canonical event and one webhook alert.
	var (
		source, kind, status, severity, ci, summary string
		keys, vals                                  []string
		timeMS                                      uint64
	)
	row := ch.Conn().QueryRow(context.Background(), "SELECT source, toString(kind), toString(status), toString(severity), ci, summary, label_keys, label_values, time_ms FROM "+db+".events WHERE event_id = 'k-7' LIMIT 1")
	if err := row.Scan(&source, &kind, &status, &severity, &ci, &summary, &keys, &vals, &timeMS); err != nil {
		t.Fatal(err)
	}
	if source != "it" || kind != "alert" || status != "firing" || severity != "major" || ci != "host-7" || summary != "HostDown on host-7" {
		t.Errorf("row k-7: %s %s %s %s %s %q", source, kind, status, severity, ci, summary)
	}
	if strings.Join(keys, ",") != "alertname,instance,run" || vals[1] != "host-7:9100" {
		t.Errorf("labels of k-7: %v=%v", keys, vals)
	}
	if wantMS := uint64(now.Add(7 * time.Millisecond).UnixMilli()); timeMS != wantMS {
		t.Errorf("time_ms of k-7 = %d, want %d", timeMS, wantMS)
	}
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".events WHERE source = 'alertmanager' AND severity = 'critical' AND summary = 'db-01 down'"); n != 1 {
		t.Errorf("webhook alert rows: %d, want 1", n)
	}
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".events WHERE status = 'resolved' AND has(label_values, 'DiskFull')"); n != 1 {
		t.Errorf("resolved webhook alert rows: %d, want 1", n)
	}

	// The malformed message is in the dead-letter topic with its reason.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic + ".dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dl, err := r.ReadMessage(rctx)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	hdr := map[string]string{}
	for _, h := range dl.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if hdr[ingest.HeaderErrorReason] != ingest.ReasonMalformed || hdr[ingest.HeaderSourceTopic] != topic || !strings.Contains(hdr[ingest.HeaderError], "JSON") {
		t.Errorf("dead-letter headers: %v", hdr)
	}
	if got := d.metric("correlator_ingest_dead_letter_messages_total", "reason", "malformed"); got != 1 {
		t.Errorf("dead-letter counter = %v, want 1", got)
	}

	// Offsets: after a clean stop, every partition is committed to its end.
	d.stop(t)
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	offs, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	ends, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range offs.Topics[topic] {
		var end int64
		for _, e := range ends.Topics[topic] {
			if e.Partition == p.Partition {
				end = e.LastOffset
			}
		}
		if p.CommittedOffset != end {
			t.Errorf("partition %d: committed %d, end %d", p.Partition, p.CommittedOffset, end)
		}
	}

	// A restart with the same group reprocesses nothing.
	total := queryUint(t, ch, "SELECT count() FROM "+db+".events")
	d2 := startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), "")
	produce(t, broker, topic, kafka.Message{Value: eventLines("after-restart", 0, 1, now)})
	eventually(t, 30*time.Second, "the new event", func() bool { return queryUint(t, ch, q) == want+1 })
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".events"); n != total+1 {
		t.Errorf("after restart %d rows, want %d: something was processed twice", n, total+1)
	}
	d2.stop(t)
}

func devScript(t *testing.T, script string, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join("..", "..", "deploy", "dev", script)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
}

// TestClickHouseOutageLosesNothing stops the real ClickHouse server while
// events flow: they wait in the bounded buffer (offsets uncommitted,
// readiness failing) and all arrive once it is back.
func TestClickHouseOutageLosesNothing(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_outage"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 2)
	ch := openClickHouse(t, chAddr, db)
	now := time.Now().UTC()
	d := startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), "")
	q := "SELECT uniqExact(event_id) FROM " + db + ".events"

	produce(t, broker, topic, kafka.Message{Value: eventLines("before", 0, 500, now)})
	eventually(t, 60*time.Second, "first 500 rows", func() bool { return queryUint(t, ch, q) == 500 })

	devScript(t, "down.sh", "clickhouse")
	t.Cleanup(func() { devScript(t, "up.sh", "clickhouse") }) // never leave it down
	var msgs []kafka.Message
	for i := 0; i < 2000; i += 100 {
		msgs = append(msgs, kafka.Message{Value: eventLines("during", i, i+100, now)})
	}
	produce(t, broker, topic, msgs...)
	eventually(t, 30*time.Second, "the consumer to take the messages", func() bool {
		return d.metric("correlator_ingest_events_received_total") >= 2500
	})
	eventually(t, 15*time.Second, "readyz to fail while ClickHouse is down", func() bool {
		resp, err := http.Get("http://" + d.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// The rows reach the writer once the stateful stage has processed
	// the events, which the first stage's count above does not wait for.
	eventually(t, 30*time.Second, "rows buffered while ClickHouse is down", func() bool {
		return d.metric("correlator_analytics_rows_buffered") > 0
	})

	devScript(t, "up.sh", "clickhouse")
	eventually(t, 120*time.Second, "all 2500 rows after ClickHouse returned", func() bool { return queryUint(t, ch, q) == 2500 })
	n := queryUint(t, ch, "SELECT count() FROM "+db+".events")
	t.Logf("rows written %d for 2500 distinct events (duplicates merge away in ReplacingMergeTree)", n)
}

// TestHTTPIngestThroughKafka: with Kafka on, POST /api/v1/events answers 200
// only after the broker acknowledged, and the event reaches ClickHouse.
func TestHTTPIngestThroughKafka(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_http"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1)
	ch := openClickHouse(t, chAddr, db)
	d := startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), "")
	resp, err := http.Post("http://"+d.addr+"/api/v1/events", "application/json", bytes.NewReader(eventLines("http", 0, 20, time.Now().UTC())))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["accepted"] != float64(20) {
		t.Fatalf("POST: %d %v", resp.StatusCode, body)
	}
	if got := d.metric("correlator_ingest_kafka_produced_messages_total"); got != 20 {
		t.Errorf("produced %v, want 20 before answering", got)
	}
	eventually(t, 30*time.Second, "rows", func() bool {
		return queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+db+".events") == 20
	})
}

// TestAlertmanagerWebhook sends alerts to the real Alertmanager, whose
// webhook receiver (deploy/dev) points at correlatord: the firing and the
// resolved notification both arrive as events.
func TestAlertmanagerWebhook(t *testing.T) {
	am := envOrSkip(t, "CORRELATORD_TEST_ALERTMANAGER")
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	listen := os.Getenv("CORRELATORD_DEV_CORRELATORD")
	if listen == "" {
		listen = "127.0.0.1:9470"
	}
	topic, db, group := randomName("it_am"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1)
	ch := openClickHouse(t, chAddr, db)
	startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), listen)

	run := randomName("run")
	start := time.Now().UTC().Add(-time.Minute)
	post := func(endsAt time.Time) {
		alerts := []map[string]any{{
			"labels":      map[string]string{"alertname": "InstanceDown", "instance": "web-7:9100", "severity": "critical", "run": run},
			"annotations": map[string]string{"summary": "web-7 is down"},
			"startsAt":    start,
		}}
		if !endsAt.IsZero() {
			alerts[0]["endsAt"] = endsAt
		}
		b, _ := json.Marshal(alerts)
		resp, err := http.Post("http://"+am+"/api/v2/alerts", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("Alertmanager answered %s", resp.Status)
		}
	}
	post(time.Time{})
	q := func(status string) uint64 {
		return queryUint(t, ch, "SELECT count() FROM "+db+".events WHERE has(label_values, '"+run+"') AND status = '"+status+"' AND source = 'alertmanager'")
	}
	eventually(t, 60*time.Second, "the firing notification from Alertmanager", func() bool { return q("firing") >= 1 })
	post(time.Now().UTC().Add(-time.Second))
	eventually(t, 60*time.Second, "the resolved notification from Alertmanager", func() bool { return q("resolved") >= 1 })
	var summary string
	if err := ch.Conn().QueryRow(context.Background(), "SELECT summary FROM "+db+".events WHERE has(label_values, '"+run+"') LIMIT 1").Scan(&summary); err != nil || summary != "web-7 is down" {
		t.Errorf("summary %q, %v", summary, err)
	}
}

// TestMetricsPassPromtool runs Prometheus' own linter over /metrics with
// every component on, after traffic, so every metric family is present.
func TestMetricsPassPromtool(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: deploy/dev/up.sh installs it with Debian's prometheus package")
	}
	topic, db, group := randomName("it_metrics"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1)
	ch := openClickHouse(t, chAddr, db)
	d := startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), "")
	produce(t, broker, topic, kafka.Message{Value: eventLines("m", 0, 10, time.Now().UTC())}, kafka.Message{Value: []byte("garbage")})
	eventually(t, 30*time.Second, "rows", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".events") == 10
	})
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = resp.Body
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMigrateCommand: `correlatord migrate` creates the schema, and running
// it again applies nothing.
func TestMigrateCommand(t *testing.T) {
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	db := randomName("it_migrate")
	ch := openClickHouse(t, chAddr, db)
	cfg := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("clickhouse:\n  addr: [%s]\n  database: %s\n", chAddr, db)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if code := realMain([]string{"migrate", "--config.file", cfg, "--log.level", "warn"}); code != 0 {
			t.Fatalf("migrate run %d exit %d", i+1, code)
		}
	}
	if n := queryUint(t, ch, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND name = 'events'"); n != 1 {
		t.Errorf("events table missing after migrate")
	}
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".schema_migrations"); n < 2 {
		t.Errorf("schema_migrations has %d records, want a record per migration", n)
	}
}

// TestCMDBBindingAndSnapshots: events are bound to CIs through aliases
// before they are stored; every topology version the daemon runs on is
// written to ClickHouse, and a changed CMDB file is picked up by polling.
func TestCMDBBindingAndSnapshots(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_cmdb"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1)
	ch := openClickHouse(t, chAddr, db)
	orig, err := os.ReadFile("../../examples/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topoFile := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(topoFile, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := daemonConfig(broker, topic, group, chAddr, db) + fmt.Sprintf("cmdb:\n  file: %s\n  poll_interval: 1s\n", topoFile)
	startDaemon(t, cfg, "")

	now := time.Now().UTC().Format(time.RFC3339Nano)
	produce(t, broker, topic, kafka.Message{Value: []byte(fmt.Sprintf(
		`{"id":"by-alias","time":%q,"labels":{"alertname":"HostDown","instance":"HV-DC1-01.mgmt.example.com:9100"}}`+"\n"+
			`{"id":"by-ip","time":%q,"labels":{"alertname":"HighLatency","instance":"10.10.2.11:9100"}}`+"\n"+
			`{"id":"unbound","time":%q,"labels":{"alertname":"X","instance":"nowhere:1"}}`+"\n", now, now, now))})
	eventually(t, 30*time.Second, "events", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".events") == 3
	})
	for id, want := range map[string]string{"by-alias": "hv-dc1-01", "by-ip": "vm-web-01", "unbound": ""} {
		var ci string
		if err := ch.Conn().QueryRow(context.Background(), "SELECT ci FROM "+db+".events WHERE event_id = ?", id).Scan(&ci); err != nil {
			t.Fatal(err)
		}
		if ci != want {
			t.Errorf("event %s bound to %q, want %q", id, ci, want)
		}
	}
	eventually(t, 30*time.Second, "the first snapshot", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".cmdb_versions") == 1
	})
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".cmdb_cis"); n != 35 {
		t.Errorf("snapshot has %d CIs, want 35", n)
	}
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".cmdb_cis WHERE id = 'vm-web-01' AND has(services, 'online-shop')"); n != 1 {
		t.Errorf("vm-web-01 does not list the online-shop service it impacts")
	}

	// A changed file: a new CI. The poll picks it up, a new snapshot follows.
	changed := strings.Replace(string(orig), "relations:", "  - {id: extra-host, type: host}\nrelations:", 1)
	if err := os.WriteFile(topoFile, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the second snapshot", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".cmdb_versions") == 2
	})
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".cmdb_cis WHERE id = 'extra-host'"); n != 1 {
		t.Errorf("the new CI is not in the second snapshot")
	}
}

// TestRulesDecisionsRecorded runs the example rule files with a CMDB and a
// change topic: every event is recorded in ClickHouse with what the rules
// stage decided (dropped, deduplicated, change window, informational, pass),
// and only the ones passed on are marked for correlation.
func TestRulesDecisionsRecorded(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_rules"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1)
	createTopic(t, broker, topic+".changes", 1)
	ch := openClickHouse(t, chAddr, db)
	rulesDir, _ := filepath.Abs("../../examples/rules")
	cmdbFile, _ := filepath.Abs("../../examples/rules/tests/cmdb.yaml")
	now := time.Now().UTC()
	produce(t, broker, topic+".changes", kafka.Message{Value: []byte(fmt.Sprintf(
		`{"id":"CHG-IT-1","cis":["payments-db"],"status":"approved","planned_start":%q,"planned_end":%q}`,
		now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)))})
	cfg := strings.Replace(daemonConfig(broker, topic, group, chAddr, db),
		"  commit_interval: 200ms\n", "  commit_interval: 200ms\n  change_topic: "+topic+".changes\n", 1) +
		fmt.Sprintf("cmdb:\n  file: %s\nrules:\n  files: [%s]\n", cmdbFile, rulesDir)
	d := startDaemon(t, cfg, "")
	eventually(t, 30*time.Second, "the change record", func() bool {
		return d.metric("correlator_ingest_change_records_total", "result", "applied") == 1
	})

	ts := now.Format(time.RFC3339Nano)
	line := func(id, labels string) string {
		return fmt.Sprintf(`{"id":%q,"time":%q,"source":"it","labels":%s}`+"\n", id, ts, labels)
	}
	produce(t, broker, topic, kafka.Message{Value: []byte(
		line("test-env", `{"alertname":"HighCPU","instance":"vm-qa-01","env":"test","severity":"critical"}`) +
			line("first", `{"alertname":"HighLatency","instance":"orders-api","severity":"major"}`) +
			line("repeat", `{"alertname":"HighLatency","instance":"orders-api","severity":"major"}`) +
			line("in-change", `{"alertname":"PostgresDown","instance":"payments-db","severity":"critical"}`) +
			line("notice", `{"alertname":"BackupCompleted","instance":"orders-db","severity":"critical"}`))})
	eventually(t, 30*time.Second, "5 recorded events", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".events") == 5
	})
	for id, want := range map[string][3]string{
		"test-env":  {"dropped", "drop-test-environments", "0"},
		"first":     {"pass", "", "1"},
		"repeat":    {"deduplicated", "", "0"},
		"in-change": {"change_window", "database-down", "0"},
		"notice":    {"recorded", "routine-notices", "0"},
	} {
		var outcome, rule, change, site string
		var correlate uint8
		row := ch.Conn().QueryRow(context.Background(), "SELECT outcome, rule, correlate, change_id, label_values[indexOf(label_keys, 'site')] FROM "+db+".events WHERE event_id = ?", id)
		if err := row.Scan(&outcome, &rule, &correlate, &change, &site); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if outcome != want[0] || (want[1] != "" && rule != want[1]) || fmt.Sprint(correlate) != want[2] {
			t.Errorf("%s: outcome %q rule %q correlate %d, want %v", id, outcome, rule, correlate, want)
		}
		if id == "in-change" && change != "CHG-IT-1" {
			t.Errorf("in-change: change_id %q, want CHG-IT-1", change)
		}
		if id == "first" && site != "dc1" {
			t.Errorf("first: site label %q, want dc1 enriched from the CMDB", site)
		}
	}
}

// TestTopicsCreatedBeforeJoining: a daemon started before its topics exist
// creates them, so its consumer group gets partitions (kafka-go never
// rebalances a group that joined a missing topic) and consumes what is
// produced afterwards.
func TestTopicsCreatedBeforeJoining(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_missing"), randomName("it_db"), randomName("it_group")
	ch := openClickHouse(t, chAddr, db)
	startDaemon(t, daemonConfig(broker, topic, group, chAddr, db), "")
	// The topic comes into being after the daemon joined (here by the
	// producer's side; the daemon has created it already).
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	if _, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // leaders elected
	produce(t, broker, topic, kafka.Message{Value: eventLines("late", 0, 30, time.Now().UTC())})
	eventually(t, 30*time.Second, "events produced after start", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".events") == 30
	})
}
