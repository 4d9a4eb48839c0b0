//go:build integration

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestLogsBecomeEvents: log records shipped by Fluent Bit from a host of
// the example estate arrive on a log topic. Info lines stay records (their
// templates are counted); 500 repeats of one error line become one event
// bound to the host's CI, and then one update with the count; the error
// opens an incident like an alert would. Template counts per minute reach
// ClickHouse, and a malformed record is dead-lettered.
func TestLogsBecomeEvents(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_logs"), randomName("it_db"), randomName("it_group")
	logTopic := topic + ".logs"
	createTopic(t, broker, topic, 1)
	createTopic(t, broker, logTopic, 1)
	ch := openClickHouse(t, chAddr, db)
	topo, _ := filepath.Abs("../../examples/topology.yaml")
	cfg := daemonConfig(broker, topic, group, chAddr, db) + fmt.Sprintf("cmdb:\n  file: %s\n", topo)
	cfg = strings.Replace(cfg, "  commit_interval: 200ms\n", "  commit_interval: 200ms\n  log_topics: ["+logTopic+"]\n", 1) +
		"logs:\n  aggregate_window: 2s\n"
	d := startDaemon(t, cfg, "")

	now := time.Now().UTC()
	var msgs []kafka.Message
	record := func(at time.Time, level, msg string) kafka.Message {
		return kafka.Message{Value: []byte(fmt.Sprintf(
			`{"time":%q,"log":%q,"level":%q,"kubernetes":{"pod_name":"orders-7f9b4-qz8lm","namespace_name":"shop","host":"hv-dc1-01.mgmt.example.com","container_name":"orders"}}`,
			at.Format(time.RFC3339Nano), msg, level))}
	}
	for i := range 200 {
		msgs = append(msgs, record(now.Add(time.Duration(i)*time.Millisecond), "info", fmt.Sprintf("served request %d in %d ms", i, i%40)))
	}
	for i := range 500 {
		msgs = append(msgs, record(now.Add(time.Second+time.Duration(i)*time.Millisecond), "error",
			fmt.Sprintf("failed to reserve stock for order %d: connection refused to 10.10.3.%d:3306", 88000+i, i%250)))
	}
	msgs = append(msgs, kafka.Message{Value: []byte(`{"time": 12, "log": [}`)})
	produce(t, broker, logTopic, msgs...)

	q := "SELECT count() FROM " + db + ".events WHERE kind = 'log' AND ci = 'hv-dc1-01'"
	eventually(t, 60*time.Second, "the log error as an event bound to hv-dc1-01", func() bool { return queryUint(t, ch, q) >= 1 })
	// The later lines aggregate into an update carrying the count (500, the
	// first line included), not 499
	// more events.
	eventually(t, 60*time.Second, "the aggregated update with its count", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".events WHERE kind = 'log' AND has(annotation_keys, 'count') AND "+
			"annotation_values[indexOf(annotation_keys, 'count')] = '500'") >= 1
	})
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".events WHERE kind = 'log'"); n > 3 {
		t.Errorf("%d log events for one repeated error line, want at most 3 (opening, update, new template)", n)
	}
	eventually(t, 60*time.Second, "template counts per minute", func() bool {
		return queryUint(t, ch, "SELECT sum(count) FROM "+db+".log_template_counts WHERE ci = 'hv-dc1-01'") == 700
	})
	eventually(t, 30*time.Second, "the log event in an incident", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".incident_members FINAL WHERE ci = 'hv-dc1-01'") >= 1
	})
	if n := d.metric("correlator_ingest_dead_letter_messages_total"); n != 1 {
		t.Errorf("dead letters: %.0f, want the 1 malformed record", n)
	}
}
