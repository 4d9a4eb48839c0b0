//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// outage sizes: the memory buffer and the spill are small next to the
// storm, so the storm overflows both and the consumer must be throttled.
const (
	outageBufferRows    = 2000
	outageSpillMaxBytes = 1 << 20
	outageStormEvents   = 30000
	outageMalformed     = 5
	outageDown          = 60 * time.Second
)

// stormLines returns canonical JSON lines of events from..to-1: one in ten
// from a test environment (dropped by a rule), two in ten major (the first
// of each alert correlates, repeats are deduplicated), the rest info
// (recorded, not correlated).
func stormLines(run string, from, to int, at time.Time) []byte {
	var b bytes.Buffer
	for i := from; i < to; i++ {
		env, sev := "prod", "info"
		switch i % 10 {
		case 0:
			env = "test"
		case 1, 2:
			sev = "major"
		}
		fmt.Fprintf(&b, `{"id":"%s-%d","time":%q,"source":"storm","severity":%q,"labels":{"alertname":"DiskLatency","instance":"host-%d:9100","env":%q,"run":%q},"summary":"storm event %d"}`+"\n",
			run, i, at.Format(time.RFC3339Nano), sev, i%50, env, run, i)
	}
	return b.Bytes()
}

// vmRSS returns this process's resident set size in bytes (the daemon
// runs in-process), or 0 if /proc does not say.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// committedOffsets sums the offsets a consumer group has committed.
func committedOffsets(t *testing.T, broker, group string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group})
	if err != nil {
		t.Fatalf("offset fetch %s: %v", group, err)
	}
	var sum int64
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
	}
	return sum
}

// topicEnd sums the end offsets of topic's partitions.
func topicEnd(t *testing.T, broker, topic string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	meta, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, meta)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	ends, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	var sum int64
	for _, p := range ends.Topics[topic] {
		sum += p.LastOffset
	}
	return sum
}

// outageSample is the worst seen while ClickHouse was down.
type outageSample struct {
	mu          sync.Mutex
	rowsBuf     map[string]float64 // per table
	spillBytes  map[string]float64 // per table
	rss         int64
	readyFailed bool
}

// TestClickHouseDownForAMinute: ClickHouse stops for a minute during a
// storm. The events table holds buffer_rows rows in memory, then spills to
// disk up to spill_max_bytes, then throttles the consumer: memory and disk
// stay bounded, no offset of the stateful stage is committed, readiness
// fails, and the storm waits in Kafka. Once ClickHouse is back every event
// produced is accounted for: stored with the rules' decision (dropped ones
// naming their rule, correlated ones in an incident) or, for malformed
// messages, dead-lettered; and after a clean stop every offset is
// committed.
//
// Checkpoints wait for ClickHouse off the partitions' consume loops (one in
// flight per partition), so consumption goes on until the writer's bounds
// throttle it.
func TestClickHouseDownForAMinute(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_down"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 2)
	createTopic(t, broker, topic+".dlq", 1)
	ch := openClickHouse(t, chAddr, db)
	dir := t.TempDir()
	spillDir := filepath.Join(dir, "spill")
	rulesFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesFile, []byte("rules:\n  - name: drop-storm-test-env\n    matchers: ['env=\"test\"']\n    drop: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(daemonConfig(broker, topic, group, chAddr, db),
		"  commit_interval: 200ms\n", "  commit_interval: 200ms\n  max_batch_events: 1000\n", 1) +
		fmt.Sprintf("  buffer_rows: %d\n  spill_dir: %s\n  spill_max_bytes: %d\n", outageBufferRows, spillDir, outageSpillMaxBytes) +
		fmt.Sprintf("rules:\n  files: [%s]\n", rulesFile)
	d := startDaemon(t, cfg, "")
	run := randomName("storm")
	events := fmt.Sprintf("%s.events", db)

	// Warm up: the pipeline runs and writes.
	now := time.Now().UTC()
	produce(t, broker, topic, kafka.Message{Value: stormLines(run, 0, 200, now)})
	eventually(t, 60*time.Second, "the first 200 events", func() bool {
		return queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events) == 200
	})
	keyed := topic + ".keyed"
	rssBefore := vmRSS()
	if rssBefore == 0 {
		t.Fatal("no VmRSS in /proc/self/status")
	}
	stateGroup := group + "-state"

	devScript(t, "down.sh", "clickhouse")
	t.Cleanup(func() { devScript(t, "up.sh", "clickhouse") }) // never leave it down
	downAt := time.Now()

	// Watch the bounds while ClickHouse is down.
	worst := &outageSample{rowsBuf: map[string]float64{}, spillBytes: map[string]float64{}}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			mfs, _ := d.reg.Gather()
			worst.mu.Lock()
			for _, mf := range mfs {
				var into map[string]float64
				switch mf.GetName() {
				case "correlator_analytics_rows_buffered":
					into = worst.rowsBuf
				case "correlator_analytics_spill_bytes":
					into = worst.spillBytes
				default:
					continue
				}
				for _, m := range mf.GetMetric() {
					for _, lp := range m.GetLabel() {
						if lp.GetName() == "table" {
							into[lp.GetValue()] = max(into[lp.GetValue()], m.GetGauge().GetValue())
						}
					}
				}
			}
			worst.rss = max(worst.rss, vmRSS())
			worst.mu.Unlock()
			if resp, err := http.Get("http://" + d.addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					worst.mu.Lock()
					worst.readyFailed = true
					worst.mu.Unlock()
				}
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	// The storm: 30000 events over 40s, 50 a message, with malformed
	// messages among them.
	const rounds, perMessage = 40, 50
	const perRound = outageStormEvents / rounds
	produced := 200
	malformed := 0
	var committedDown, checkpointsDown, processedLate float64
	for r := range rounds {
		at := time.Now().UTC()
		var msgs []kafka.Message
		for i := 0; i < perRound; i += perMessage {
			msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(produced + i)), Value: stormLines(run, produced+i, produced+i+perMessage, at)})
		}
		if r%8 == 3 && malformed < outageMalformed {
			msgs = append(msgs, kafka.Message{Key: []byte("bad"), Value: []byte(`{"time": "yesterday", "labels": {"alertname": 1}`)})
			malformed++
		}
		produce(t, broker, topic, msgs...)
		produced += perRound
		if r == 0 {
			committedDown = float64(committedOffsets(t, broker, stateGroup))
			checkpointsDown = d.metric("correlator_partition_checkpoints_total", "result", "ok")
		}
		time.Sleep(time.Until(downAt.Add(time.Duration(r+1) * time.Second)))
	}
	if malformed != outageMalformed {
		t.Fatalf("produced %d malformed messages, want %d", malformed, outageMalformed)
	}
	time.Sleep(time.Until(downAt.Add(outageDown - 10*time.Second)))
	processedLate = d.metric("correlator_rules_events_total")
	time.Sleep(time.Until(downAt.Add(outageDown)))

	// Still down: bounded, throttled, nothing committed, not ready.
	stopWatch()
	<-watched
	processed := d.metric("correlator_rules_events_total")
	waiting := float64(produced) - processed // in Kafka, not taken by the stateful stage
	spillFull := d.metric("correlator_analytics_spill_full_total", "table", "events")
	spilled := d.metric("correlator_analytics_spilled_rows_total", "table", "events")
	committedEnd := float64(committedOffsets(t, broker, stateGroup))
	checkpointsEnd := d.metric("correlator_partition_checkpoints_total", "result", "ok")
	worst.mu.Lock()
	t.Logf("while down: worst rows buffered %v, worst spill bytes %v, spilled rows %v, spill full %v, events processed %v (%v 10s earlier), waiting in Kafka %v, RSS %d MiB -> %d MiB",
		worst.rowsBuf, worst.spillBytes, spilled, spillFull, processed, processedLate, waiting, rssBefore>>20, worst.rss>>20)
	for table, n := range worst.rowsBuf {
		if n > outageBufferRows {
			t.Errorf("%s: %v rows in memory, bound %d", table, n, outageBufferRows)
		}
	}
	for table, n := range worst.spillBytes {
		if n > outageSpillMaxBytes {
			t.Errorf("%s: %v bytes spilled, bound %d", table, n, outageSpillMaxBytes)
		}
	}
	if worst.spillBytes["events"] == 0 || spilled == 0 {
		t.Error("the events table did not spill")
	}
	if growth := worst.rss - rssBefore; growth > 512<<20 {
		t.Errorf("RSS grew by %d MiB while ClickHouse was down", growth>>20)
	}
	if !worst.readyFailed {
		t.Error("/readyz never failed while ClickHouse was down")
	}
	worst.mu.Unlock()
	if spillFull == 0 || processed != processedLate || waiting < outageStormEvents/2 {
		t.Errorf("the consumer was not throttled: spill full %v, events processed %v then %v, %v waiting in Kafka",
			spillFull, processedLate, processed, waiting)
	}
	if committedEnd != committedDown || checkpointsEnd != checkpointsDown {
		t.Errorf("the stateful stage committed while ClickHouse was down: offsets %v -> %v, checkpoints %v -> %v",
			committedDown, committedEnd, checkpointsDown, checkpointsEnd)
	}
	if n := d.metric("correlator_ingest_dead_letter_messages_total", "reason", "malformed"); n != outageMalformed {
		t.Errorf("dead-lettered %v messages, want %d", n, outageMalformed)
	}

	// ClickHouse returns: everything arrives, the spill empties, offsets
	// catch up.
	devScript(t, "up.sh", "clickhouse")
	upAt := time.Now()
	eventually(t, 120*time.Second, "every event in ClickHouse", func() bool {
		return queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events) == uint64(produced)
	})
	t.Logf("all %d events stored %s after ClickHouse returned", produced, time.Since(upAt).Round(time.Second))
	eventually(t, 30*time.Second, "the spill to empty", func() bool {
		files, _ := filepath.Glob(filepath.Join(spillDir, "*", "*.spill"))
		return len(files) == 0 && d.metric("correlator_analytics_spill_bytes") == 0
	})

	// Count-based accounting of every event produced.
	if n := queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events+" WHERE event_id NOT LIKE '"+run+"-%'"); n != 0 {
		t.Errorf("%d events in the table that were not produced", n)
	}
	wantDropped := uint64(0)
	for i := range produced {
		if i%10 == 0 {
			wantDropped++
		}
	}
	if n := queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events+" WHERE outcome = 'dropped' AND rule = 'drop-storm-test-env'"); n != wantDropped {
		t.Errorf("%d events dropped by drop-storm-test-env, want %d", n, wantDropped)
	}
	if n := queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events+" WHERE outcome = 'dropped' AND rule = ''"); n != 0 {
		t.Errorf("%d events dropped without a rule", n)
	}
	if n := queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events+" WHERE outcome = ''"); n != 0 {
		t.Errorf("%d events without a decision", n)
	}
	rows, err := ch.Conn().Query(context.Background(), "SELECT outcome, rule, uniqExact(event_id) FROM "+events+" GROUP BY outcome, rule ORDER BY outcome, rule")
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for rows.Next() {
		var outcome, rule string
		var n uint64
		if err := rows.Scan(&outcome, &rule, &n); err != nil {
			t.Fatal(err)
		}
		t.Logf("outcome %-14s rule %-22q %6d events", outcome, rule, n)
		sum += n
	}
	rows.Close()
	if sum != uint64(produced) {
		t.Errorf("outcomes account for %d events, %d produced", sum, produced)
	}
	correlated := queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+events+" WHERE correlate = 1")
	if correlated == 0 {
		t.Error("no event went on to correlation")
	}
	eventually(t, 60*time.Second, "every correlated event in an incident", func() bool {
		return queryUint(t, ch, "SELECT uniqExact(event_id) FROM "+db+".incident_members WHERE event_id IN (SELECT event_id FROM "+events+" WHERE correlate = 1)") == correlated
	})

	// A clean stop commits everything, now that it is stored.
	d.stop(t)
	if c, end := committedOffsets(t, broker, stateGroup), topicEnd(t, broker, keyed); c != end {
		t.Errorf("stateful stage committed %d of %d offsets after a clean stop", c, end)
	}
	if c, end := committedOffsets(t, broker, group), topicEnd(t, broker, topic); c != end {
		t.Errorf("first stage committed %d of %d offsets after a clean stop", c, end)
	}

	// The malformed messages are in the dead-letter topic, and only they.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic + ".dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i := range outageMalformed + 1 {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if i == outageMalformed {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("dead-letter topic holds more than %d messages: %v %q", outageMalformed, err, m.Value)
			}
			break
		}
		if err != nil {
			t.Fatalf("dead letter %d of %d: %v", i+1, outageMalformed, err)
		}
		if !bytes.Contains(m.Value, []byte("yesterday")) {
			t.Errorf("dead letter %d: %q", i+1, m.Value)
		}
	}
}
