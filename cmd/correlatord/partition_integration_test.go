//go:build integration

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/incidents"
)

// partitionTestConfig is the configuration of the partitioned-stage tests:
// no ClickHouse, four keyed partitions, and incidents kept in the state for
// the whole scenario (no reopen-window or idle closing, no idle clock
// advance), so that the instances' state at the end can be compared with
// replay's output in full.
func partitionTestConfig(broker, topic, group, cmdbFile string) string {
	return fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  dead_letter_topic: %s.dlq
  keyed_topic: %s.keyed
  state_topic: %s.state
  topic_partitions: 4
  commit_interval: 200ms
  state_interval: 1s
cmdb:
  file: %s
ingest:
  max_event_age: 100000h
correlate:
  reopen_window: 100000h
  max_idle: 100000h
  idle_advance: 1h
incidents:
  auto_close_after: 100000h
`, broker, topic, group, topic, topic, topic, cmdbFile)
}

// scenarioFiles writes a generated estate and its alert storm.
func scenarioFiles(t *testing.T, seed uint64, cis, faults int) (dir string, lines [][]byte) {
	t.Helper()
	dir = t.TempDir()
	if err := runScenario(io.Discard, scenarioOptions{outDir: dir, seed: seed, cis: cis, faults: faults}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		lines = append(lines, l)
	}
	return dir, lines
}

// stormCase is a generated storm with the configuration to run it and
// what replay, with the keyed topic's 4 partitions, makes of it.
type stormCase struct {
	dir, topic, cfg string
	lines           [][]byte
	want            map[string]replayIncident
}

// newStormCase generates a storm, creates its one-partition input topic
// (one partition keeps the file order, as replay reads it) and computes the
// expected incidents with replay on the same configuration; extra is
// appended to the configuration.
func newStormCase(t *testing.T, broker, prefix string, seed uint64, cis, faults int, extra string) stormCase {
	t.Helper()
	dir, lines := scenarioFiles(t, seed, cis, faults)
	topic, group := randomName("it_"+prefix), randomName("g_"+prefix)
	createTopic(t, broker, topic, 1)
	cfg := partitionTestConfig(broker, topic, group, filepath.Join(dir, "cmdb.json")) + extra
	cfgFile := filepath.Join(dir, "replay.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	want := replayIncidents(t, cfgFile, dir, 4)
	if len(want) < 10 {
		t.Fatalf("replay gave %d incidents; the scenario is too small to test with", len(want))
	}
	return stormCase{dir: dir, topic: topic, cfg: cfg, lines: lines, want: want}
}

func replayIncidents(t *testing.T, cfgFile, dir string, partitions int) map[string]replayIncident {
	t.Helper()
	out := filepath.Join(dir, "replay-incidents.jsonl")
	err := runReplay(t.Context(), commonFlags{configFile: cfgFile, logLevel: "warn", logFormat: "json"},
		replayOptions{eventsFile: filepath.Join(dir, "events.jsonl"), outFile: out, partitions: partitions, stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]replayIncident{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var in replayIncident
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			t.Fatal(err)
		}
		m[in.ID] = in
	}
	return m
}

// liveIncidents pages through the incidents API, in the terms replay's
// --out uses (status open or resolved).
func liveIncidents(t *testing.T, addr string) map[string]replayIncident {
	t.Helper()
	return listIncidentsOf(t, addr, false)
}

// listIncidentsOf is liveIncidents; with ownOnly, of the instance's own
// partitions only, as another instance asks it.
func listIncidentsOf(t *testing.T, addr string, ownOnly bool) map[string]replayIncident {
	t.Helper()
	m := map[string]replayIncident{}
	for offset := 0; ; {
		req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/incidents?limit=1000&offset=%d", addr, offset), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ownOnly {
			req.Header.Set(forwardedHeader, "http://test")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page listPage[*incidents.Incident]
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range page.Items {
			if in.MergedInto != "" {
				continue // the same incident as the one it went into
			}
			if _, dup := m[in.ID]; dup {
				t.Errorf("incident %s listed twice", in.ID)
			}
			r := replayIncident{ID: in.ID, EventIDs: in.EventIDs, RootCauseCI: optional(in.RootCauseCI), Status: "resolved"}
			if in.Status.Open() {
				r.Status = "open"
			}
			m[in.ID] = r
		}
		offset += len(page.Items)
		if len(page.Items) == 0 || offset >= page.Total {
			return m
		}
	}
}

func compareIncidents(t *testing.T, live, want map[string]replayIncident) {
	t.Helper()
	diffs := 0
	report := func(format string, args ...any) {
		if diffs++; diffs <= 20 {
			t.Errorf(format, args...)
		}
	}
	for id, w := range want {
		g, ok := live[id]
		if !ok {
			report("incident %s (%d events, root cause %v) lost", id, len(w.EventIDs), deref(w.RootCauseCI))
			continue
		}
		if !slices.Equal(g.EventIDs, w.EventIDs) {
			report("incident %s: events %v, want %v", id, g.EventIDs, w.EventIDs)
		}
		if deref(g.RootCauseCI) != deref(w.RootCauseCI) || g.Status != w.Status {
			report("incident %s: root cause %s status %s, want %s %s", id, deref(g.RootCauseCI), g.Status, deref(w.RootCauseCI), w.Status)
		}
	}
	for id, g := range live {
		if _, ok := want[id]; !ok {
			report("incident %s (%d events) is extra: a duplicate or a split", id, len(g.EventIDs))
		}
	}
	if diffs > 20 {
		t.Errorf("... %d differences in all", diffs)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

func produceLines(t *testing.T, broker, topic string, lines [][]byte) {
	t.Helper()
	msgs := make([]kafka.Message, len(lines))
	for i, l := range lines {
		msgs[i] = kafka.Message{Value: l}
	}
	produce(t, broker, topic, msgs...)
}

// processed is the number of events the stateful stage of d decided about.
func processed(d *testDaemon) float64 { return d.metric("correlator_rules_events_total") }

// TestTwoInstancesShareTheWork runs two instances in one consumer group
// against the real broker. Half of a generated storm goes through both;
// then one instance stops, the other takes over its partitions with their
// state from the changelog and processes the rest. Every event is processed
// exactly once, and the survivor's incidents equal replay's over the same
// file with the same partitioning: none lost, none duplicated, none split.
func TestTwoInstancesShareTheWork(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	sc := newStormCase(t, broker, "two", 11, 1000, 20, "")
	topic, cfg, lines, want := sc.topic, sc.cfg, sc.lines, sc.want

	a := startDaemon(t, cfg, "")
	b := startDaemon(t, cfg, "")
	assigned := func(d *testDaemon) float64 { return d.metric("correlator_partitions_assigned") }
	eventually(t, 90*time.Second, "both instances to own keyed partitions", func() bool {
		return assigned(a) > 0 && assigned(b) > 0 && assigned(a)+assigned(b) == 4
	})
	half := len(lines) / 2
	produceLines(t, broker, topic, lines[:half])
	eventually(t, 90*time.Second, "the first half to be processed", func() bool {
		return processed(a)+processed(b) >= float64(half)
	})
	doneA := processed(a)
	if doneA == 0 {
		t.Fatal("instance A processed nothing before it stopped: the test would not test a hand-over")
	}
	checkEitherInstanceAnswers(t, a, b)
	a.stop(t)
	eventually(t, 90*time.Second, "the survivor to own every keyed partition", func() bool { return assigned(b) == 4 })
	produceLines(t, broker, topic, lines[half:])
	eventually(t, 120*time.Second, "every event to be processed", func() bool {
		return doneA+processed(b) >= float64(len(lines))
	})
	// Nothing more arrives: a redelivery would show as a count above the
	// number of events.
	time.Sleep(2 * time.Second)
	if got := doneA + processed(b); got != float64(len(lines)) {
		t.Fatalf("events processed: %.0f, want %d (each exactly once)", got, len(lines))
	}
	if r := b.metric("correlator_partition_restores_total"); r < 4 {
		t.Errorf("partition restores on the survivor: %.0f, want at least 4", r)
	}
	live := liveIncidents(t, b.addr)
	t.Logf("%d events; instance A processed %.0f before stopping; %d incidents live, %d from replay", len(lines), doneA, len(live), len(want))
	compareIncidents(t, live, want)
}

// checkEitherInstanceAnswers checks that each of two instances sharing the
// partitions answers the incidents API for both: the same incidents, which
// neither holds alone, and a record of the other read through it.
func checkEitherInstanceAnswers(t *testing.T, a, b *testDaemon) {
	t.Helper()
	var ownA, ownB, fromA, fromB map[string]replayIncident
	// The group's members are looked up every 2 s, and the partitions may
	// still be settling: wait until both views agree.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		ownA, ownB = listIncidentsOf(t, a.addr, true), listIncidentsOf(t, b.addr, true)
		fromA, fromB = liveIncidents(t, a.addr), liveIncidents(t, b.addr)
		if len(ownA) > 0 && len(ownB) > 0 && len(fromA) == len(ownA)+len(ownB) && len(fromB) == len(fromA) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incidents held: A %d, B %d; listed through A %d, through B %d: want both lists to hold all of them",
				len(ownA), len(ownB), len(fromA), len(fromB))
		}
	}
	for id := range ownB {
		resp, err := http.Get("http://" + a.addr + "/api/v1/incidents/" + id)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+id+`"`) {
			t.Fatalf("GET %s (held by B) through A: %d %s", id, resp.StatusCode, body)
		}
		break
	}
}

// TestRestartKeepsIncidents stops the only instance mid-storm and starts a
// new one: it restores the open incidents from the changelog, opens no
// duplicates for what was processed before, and ends with replay's
// incidents.
func TestRestartKeepsIncidents(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	sc := newStormCase(t, broker, "restart", 12, 1000, 20, "")
	topo, cfg, lines, want := sc.topic, sc.cfg, sc.lines, sc.want

	first := startDaemon(t, cfg, "")
	half := len(lines) / 2
	produceLines(t, broker, topo, lines[:half])
	eventually(t, 90*time.Second, "the first half to be processed", func() bool { return processed(first) >= float64(half) })
	// The rules stage counts a batch before correlation finishes it: wait
	// until the incidents stop changing.
	before := liveIncidents(t, first.addr)
	eventually(t, 30*time.Second, "the incidents to settle", func() bool {
		time.Sleep(300 * time.Millisecond)
		now := liveIncidents(t, first.addr)
		a, _ := json.Marshal(now)
		b, _ := json.Marshal(before)
		settled := bytes.Equal(a, b)
		before = now
		return settled
	})
	first.stop(t)

	second := startDaemon(t, cfg, "")
	eventually(t, 90*time.Second, "the restarted instance to own every partition", func() bool {
		return second.metric("correlator_partitions_assigned") == 4
	})
	// Restored before anything new arrives: the same incidents as before
	// the stop.
	restored := liveIncidents(t, second.addr)
	if len(restored) != len(before) {
		t.Fatalf("restored %d incidents, %d before the stop", len(restored), len(before))
	}
	for id, in := range before {
		if r, ok := restored[id]; !ok || !slices.Equal(r.EventIDs, in.EventIDs) {
			t.Fatalf("incident %s not restored as it was", id)
		}
	}
	produceLines(t, broker, topo, lines[half:])
	eventually(t, 120*time.Second, "the rest to be processed", func() bool {
		return processed(second) >= float64(len(lines)-half)
	})
	time.Sleep(2 * time.Second)
	if got := processed(second); got != float64(len(lines)-half) {
		t.Fatalf("the restarted instance processed %.0f events, want %d: none again, none missed", got, len(lines)-half)
	}
	compareIncidents(t, liveIncidents(t, second.addr), want)
}
