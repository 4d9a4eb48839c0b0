package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/incidents/notify"
)

func exampleTopology(t *testing.T) *cmdb.Topology {
	t.Helper()
	topo, err := loadTopology(context.Background(), "../../examples/topology.yaml", "native", nil)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestPartitionKeys(t *testing.T) {
	topo := exampleTopology(t)
	cfg := correlate.DefaultConfig()
	k := newPartitionKeyer(func() *cmdb.Topology { return topo }, &cfg)
	key := func(ci string, labels map[string]string) string {
		return string(k.appendKey(nil, &event.Event{CI: ci, Labels: event.FromMap(labels)}))
	}
	// CIs of one component share the key, named by its smallest CI id.
	a, b := key("hv-dc1-01", nil), key("core-sw-dc1", nil)
	if a != b || !strings.HasPrefix(a, "comp/") {
		t.Fatalf("one component, two keys: %q %q", a, b)
	}
	// Unbound events are keyed by the group_by labels, as the engine
	// groups them.
	u1 := key("", map[string]string{"cluster": "c1", "job": "api", "instance": "x"})
	u2 := key("", map[string]string{"cluster": "c1", "job": "api", "instance": "y"})
	u3 := key("", map[string]string{"cluster": "c2", "job": "api"})
	if u1 != u2 || u1 == u3 {
		t.Fatalf("label keys: %q %q %q", u1, u2, u3)
	}
	// A CI the CMDB does not know is unbound too.
	if got := key("no-such-ci", map[string]string{"cluster": "c1", "job": "api"}); got != u1 {
		t.Fatalf("unknown CI keyed %q, want the label key %q", got, u1)
	}
	// attribute:site keys by the CI's site.
	cfg.PartitionBy = "attribute:site"
	ks := newPartitionKeyer(func() *cmdb.Topology { return topo }, &cfg)
	if got := string(ks.appendKey(nil, &event.Event{CI: "hv-dc1-01"})); got != "attr/dc1" {
		t.Fatalf("site key %q", got)
	}
	// partitionOf agrees with kafka-go's balancer, which earlier builds
	// used: the partitions of the state must not move on an upgrade.
	keys := []string{a, u1, u3, "attr/dc1", "", "\xff\xfe"}
	for i := range 2000 {
		keys = append(keys, fmt.Sprintf("labels/host-%d:9100/%x", i, i*7919))
	}
	for _, n := range []int{1, 2, 3, 8, 12, 64} {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		for _, key := range keys {
			var h kafka.Hash
			if got, want := partitionOf([]byte(key), n), h.Balance(kafka.Message{Key: []byte(key)}, all...); got != want {
				t.Fatalf("partitionOf(%q, %d) = %d, kafka-go's balancer %d", key, n, got, want)
			}
		}
	}
}

// TestInProcessCorrelation: without Kafka, HTTP ingest feeds the in-process
// partition, and the incidents API shows one incident for a switch and
// the hosts behind it, naming the switch, with every member explained.
func TestInProcessCorrelation(t *testing.T) {
	dir := t.TempDir()
	topo, _ := filepath.Abs("../../examples/topology.yaml")
	cfgFile := filepath.Join(dir, "c.yml")
	cfg := fmt.Sprintf("data_dir: %s\ncmdb:\n  file: %s\n", filepath.Join(dir, "data"), topo)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startUnitDaemon(t, cfgFile)
	defer d.stop(t)
	now := time.Now().UTC()
	var b strings.Builder
	for i, ci := range []string{"tor-sw-dc1-a", "hv-dc1-01", "hv-dc1-02", "vm-web-01"} {
		fmt.Fprintf(&b, `{"id":"e%d","time":%q,"source":"unit","severity":"critical","ci":%q,"labels":{"alertname":"Down","instance":%q}}`+"\n",
			i, now.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), ci, ci)
	}
	if code := d.post(t, "/api/v1/events", b.String(), ""); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	code, body := d.get(t, "/api/v1/incidents?status=open")
	if code != 200 {
		t.Fatalf("GET incidents: %d %s", code, body)
	}
	var list listPage[*incidents.Incident]
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Total != 1 {
		t.Fatalf("want 1 incident, got %d: %s", len(list.Items), body)
	}
	in := list.Items[0]
	if in.RootCauseCI != "tor-sw-dc1-a" || len(in.EventIDs) != 4 {
		t.Fatalf("incident %+v", in)
	}
	code, body = d.get(t, "/api/v1/incidents/"+in.ID)
	if code != 200 {
		t.Fatalf("GET incident: %d %s", code, body)
	}
	var detail struct {
		Members []replayMember `json:"members"`
	}
	if err := json.Unmarshal([]byte(body), &detail); err != nil {
		t.Fatal(err)
	}
	if len(detail.Members) != 4 {
		t.Fatalf("members %+v", detail.Members)
	}
	for _, m := range detail.Members {
		if m.Reason == "" || (m.Reason == "topology" && len(m.Path) < 2) {
			t.Fatalf("member without an explanation: %+v", m)
		}
	}
	if code, _ := d.get(t, "/api/v1/incidents?status=bogus"); code != 400 {
		t.Fatalf("bad status filter: %d, want 400", code)
	}
}

// TestReplayRaisesProblemCandidates: a host of the example estate fails
// three times in five days (each time with its VM), and a P1 outage of the
// core switch resolves; replay's problem records hold a recurring-problem
// candidate linking the three incidents, and a major-incident review.
func TestReplayRaisesProblemCandidates(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	start := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	line := func(id string, at time.Time, ci, alert, sev, status string) {
		fmt.Fprintf(&b, `{"id":%q,"time":%q,"source":"unit","severity":%q,"status":%q,"ci":%q,"labels":{"alertname":%q,"instance":%q}}`+"\n",
			id, at.Format(time.RFC3339Nano), sev, status, ci, alert, ci)
	}
	for i := range 3 {
		at := start.Add(time.Duration(i) * 48 * time.Hour)
		line(fmt.Sprintf("h%d", i), at, "hv-dc2-02", "HostDown", "major", "firing")
		line(fmt.Sprintf("v%d", i), at.Add(20*time.Second), "vm-db-02", "InstanceDown", "major", "firing")
		line(fmt.Sprintf("h%d-r", i), at.Add(10*time.Minute), "hv-dc2-02", "HostDown", "major", "resolved")
		line(fmt.Sprintf("v%d-r", i), at.Add(10*time.Minute), "vm-db-02", "InstanceDown", "major", "resolved")
	}
	at := start.Add(5 * 24 * time.Hour)
	line("sw", at, "core-sw-dc1", "SwitchDown", "critical", "firing")
	line("sw-r", at.Add(30*time.Minute), "core-sw-dc1", "SwitchDown", "critical", "resolved")
	line("end", at.Add(2*time.Hour), "wiki-nonexistent", "Heartbeat", "info", "firing")
	events := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(events, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, probs := filepath.Join(dir, "inc.jsonl"), filepath.Join(dir, "problems.jsonl")
	err := runReplay(context.Background(), commonFlags{}, replayOptions{eventsFile: events, outFile: out, problemsOut: probs,
		cmdbFile: "../../examples/topology.yaml", cmdbFormat: "native", stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var problems []incidents.Problem
	readLines(t, probs, func(l []byte) {
		var p incidents.Problem
		if err := json.Unmarshal(l, &p); err != nil {
			t.Fatal(err)
		}
		problems = append(problems, p)
	})
	var recurring, major *incidents.Problem
	for i := range problems {
		switch problems[i].Reason {
		case incidents.ReasonRecurring:
			recurring = &problems[i]
		case incidents.ReasonMajorIncident:
			major = &problems[i]
		}
	}
	if recurring == nil || recurring.RootCauseCI != "hv-dc2-02" || len(recurring.Incidents) != 3 || recurring.Status != incidents.ProblemCandidate {
		t.Fatalf("recurring problem: %+v (all: %+v)", recurring, problems)
	}
	if major == nil || major.RootCauseCI != "core-sw-dc1" {
		t.Fatalf("major-incident review: %+v", major)
	}
	var linked int
	readLines(t, out, func(l []byte) {
		var in replayIncident
		if err := json.Unmarshal(l, &in); err != nil {
			t.Fatal(err)
		}
		if in.Priority == "" || in.Impact == 0 || in.Urgency == 0 {
			t.Errorf("incident %s without priority, impact or urgency", in.ID)
		}
		if in.ProblemID != nil && *in.ProblemID == recurring.ID {
			linked++
		}
		if in.RootCauseCI != nil && *in.RootCauseCI == "core-sw-dc1" && in.Priority != "P1" {
			t.Errorf("core switch outage under the critical shop: %s, want P1", in.Priority)
		}
	})
	if linked != 3 {
		t.Fatalf("%d incidents link the recurring problem, want 3", linked)
	}
}

func readLines(t *testing.T, path string, fn func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			fn([]byte(l))
		}
	}
}

// TestNotificationsThroughTheFileOutbox: without Kafka, a new incident is
// delivered to a webhook target through the file outbox, signed, with an
// idempotency key, and the incidents API shows its record.
func TestNotificationsThroughTheFileOutbox(t *testing.T) {
	type delivery struct {
		key, sig string
		body     []byte
	}
	got := make(chan delivery, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Get(notify.HeaderIdempotencyKey), r.Header.Get(notify.HeaderSignature), b}
	}))
	defer recv.Close()
	dir := t.TempDir()
	topo, _ := filepath.Abs("../../examples/topology.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
cmdb:
  file: %s
notify:
  targets:
    - name: chat
      type: webhook
      url: %s
      secret: s3cret
`, filepath.Join(dir, "data"), topo, recv.URL)
	cfgFile := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startUnitDaemon(t, cfgFile)
	defer d.stop(t)
	ev := fmt.Sprintf(`{"id":"n1","time":%q,"source":"unit","severity":"critical","ci":"core-sw-dc1","labels":{"alertname":"SwitchDown","instance":"core-sw-dc1"}}`,
		time.Now().UTC().Format(time.RFC3339Nano))
	if code := d.post(t, "/api/v1/events", ev, ""); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	select {
	case dl := <-got:
		var n notify.Notification
		if err := json.Unmarshal(dl.body, &n); err != nil {
			t.Fatalf("body %s: %v", dl.body, err)
		}
		if n.Kind != notify.KindCreated || n.Ticket.Priority != "P1" || n.Ticket.RootCauseCI != "core-sw-dc1" || dl.key != n.Key || dl.key == "" {
			t.Fatalf("notification %+v key %q", n, dl.key)
		}
		if !notify.VerifySignature([]byte("s3cret"), dl.body, dl.sig) {
			t.Fatalf("signature %q does not verify", dl.sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
}

// TestMemberUpdatesWaitForTheSyncInterval: on the Kafka path, a batch that
// only adds members to an incident leaves its record as it was until
// incidentSyncInterval has passed on the wall clock, or until a checkpoint,
// a flush or a command; a batch that opens an incident reaches the records
// at once.
func TestMemberUpdatesWaitForTheSyncInterval(t *testing.T) {
	cfg, err := parseConfig([]byte("correlate:\n  group_by: [instance]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := newRulesStage(cfg.Rules, nil, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	state := newStateStage(cfg, nil, rs, nil, nil, nil, prometheus.NewRegistry(), zap.NewNop())
	wall := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	state.wall = func() time.Time { return wall }
	pw, _, err := state.open(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := pw.(*partitionWorker)
	at := wall.Add(-time.Minute)
	alert := func(i int) event.Event {
		ev := event.Event{ID: fmt.Sprintf("e%d", i), Time: at.Add(time.Duration(i) * time.Millisecond), Source: "unit",
			Kind: event.KindAlert, Status: event.StatusFiring, Severity: event.SeverityCritical,
			Labels: event.FromMap(map[string]string{"alertname": fmt.Sprintf("A%d", i), "instance": "host-1:9100"})}
		if err := event.Normalize(&ev, event.DefaultDefaults); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	members := func() int {
		t.Helper()
		incs := w.inc.Incidents()
		if len(incs) != 1 {
			t.Fatalf("%d incident records, want 1", len(incs))
		}
		return len(incs[0].EventIDs)
	}
	handle := func(i int) {
		t.Helper()
		if err := w.Handle(context.Background(), []event.Event{alert(i)}, int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}

	handle(0) // opens the incident: its record at once
	if n := members(); n != 1 {
		t.Fatalf("after the first alert the record has %d events, want 1", n)
	}
	handle(1)
	at = at.Add(5 * time.Second) // the event clock runs ahead, as in a backlog: timers run, members wait
	handle(2)
	if n := members(); n != 1 {
		t.Fatalf("members joined within the interval: the record has %d events, want it held at 1", n)
	}
	wall = wall.Add(incidentSyncInterval)
	handle(3)
	if n := members(); n != 4 {
		t.Fatalf("after the interval the record has %d events, want 4", n)
	}
	for _, sync := range []struct {
		name string
		do   func()
	}{
		{"checkpoint", func() { w.Checkpoint() }},
		{"flush", func() { w.Flush() }},
		{"command", func() { _ = w.Command(context.Background(), []byte(`{}`), 100) }},
		{"idle", func() { _ = w.Idle(context.Background(), wall) }},
	} {
		before := members()
		handle(before)
		if n := members(); n != before {
			t.Fatalf("%s: a member joined within the interval was synced at once (%d events)", sync.name, n)
		}
		sync.do()
		if n := members(); n != before+1 {
			t.Fatalf("%s did not sync the held member: %d events, want %d", sync.name, n, before+1)
		}
	}
}
