package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/correlate"
	"github.com/correlatord/correlatord/event"
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
		return k.key(&event.Event{CI: ci, Labels: labels})
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
	if got := ks.key(&event.Event{CI: "hv-dc1-01"}); got != "attr/dc1" {
		t.Fatalf("site key %q", got)
	}
	// partitionOf agrees with the producer's balancer.
	for _, key := range []string{a, u1, u3, "attr/dc1"} {
		var h kafka.Hash
		if got, want := partitionOf(key, 8), h.Balance(kafka.Message{Key: []byte(key)}, 0, 1, 2, 3, 4, 5, 6, 7); got != want {
			t.Fatalf("partitionOf(%q) = %d, producer %d", key, got, want)
		}
	}
}

// TestInProcessCorrelation: without Kafka, HTTP ingest feeds the in-process
// partition, and GET /api/v1/incidents shows one incident for a switch and
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
	var incs []replayIncident
	if err := json.Unmarshal([]byte(body), &incs); err != nil {
		t.Fatal(err)
	}
	if len(incs) != 1 {
		t.Fatalf("want 1 incident, got %d: %s", len(incs), body)
	}
	in := incs[0]
	if in.RootCauseCI == nil || *in.RootCauseCI != "tor-sw-dc1-a" || len(in.EventIDs) != 4 {
		t.Fatalf("incident %+v", in)
	}
	for _, m := range in.Members {
		if m.Reason == "" || (m.Reason == "topology" && len(m.Path) < 2) {
			t.Fatalf("member without an explanation: %+v", m)
		}
	}
	if code, _ := d.get(t, "/api/v1/incidents?status=bogus"); code != 400 {
		t.Fatalf("bad status filter: %d, want 400", code)
	}
}
