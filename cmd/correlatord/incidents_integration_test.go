//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/incidents"
)

func apiDo(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestIncidentLifecycleThroughKafka: a switch and the hosts behind it fail;
// the daemon opens one P1 incident naming the switch, the API lists it to
// a read token, refuses an action to it, and applies an operator's
// acknowledgement, which travels as a command on the keyed topic to the
// partition that owns the incident. ClickHouse holds the latest version,
// its timeline and its members.
func TestIncidentLifecycleThroughKafka(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	chAddr := envOrSkip(t, "CORRELATORD_TEST_CLICKHOUSE")
	topic, db, group := randomName("it_inc"), randomName("it_db"), randomName("it_group")
	createTopic(t, broker, topic, 1)
	ch := openClickHouse(t, chAddr, db)
	topo, _ := filepath.Abs("../../examples/topology.yaml")
	const reader, operator = "read-token-0123456789", "operator-token-0123456789"
	cfg := daemonConfig(broker, topic, group, chAddr, db) + fmt.Sprintf(`cmdb:
  file: %s
http:
  tokens:
    - {name: grafana, token: %s, roles: [read]}
    - {name: alice, token: %s, roles: [operator]}
`, topo, reader, operator)
	d := startDaemon(t, cfg, "")
	now := time.Now().UTC()
	var b strings.Builder
	for i, ci := range []string{"tor-sw-dc1-a", "hv-dc1-01", "hv-dc1-02", "vm-web-01", "vm-app-01"} {
		fmt.Fprintf(&b, `{"id":"life-%d","time":%q,"severity":"critical","ci":%q,"labels":{"alertname":"Down","instance":%q}}`+"\n",
			i, now.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), ci, ci)
	}
	produce(t, broker, topic, kafka.Message{Value: []byte(b.String())})

	base := "http://" + d.addr + "/api/v1/incidents"
	var list listPage[*incidents.Incident]
	eventually(t, 60*time.Second, "the incident with its five events", func() bool {
		code, body := apiDo(t, "GET", base, reader, "")
		if code != 200 {
			t.Fatalf("list with a read token: %d %s", code, body)
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		return len(list.Items) == 1 && len(list.Items[0].EventIDs) == 5
	})
	in := list.Items[0]
	if in.RootCauseCI != "tor-sw-dc1-a" || in.Priority != incidents.P1 || in.Status != incidents.StatusNew || in.EscalationLevel != incidents.LevelIncidentManager {
		t.Fatalf("incident %s: root %s %s %s level %d", in.ID, in.RootCauseCI, in.Priority, in.Status, in.EscalationLevel)
	}
	if code, _ := apiDo(t, "GET", base, "", ""); code != 401 {
		t.Fatalf("list without a token: %d, want 401", code)
	}
	if code, _ := apiDo(t, "POST", base+"/"+in.ID+"/acknowledge", reader, ""); code != 403 {
		t.Fatalf("acknowledge with a read token: %d, want 403", code)
	}
	code, body := apiDo(t, "POST", base+"/"+in.ID+"/acknowledge", operator, `{"note":"on it"}`)
	if code != 200 {
		t.Fatalf("acknowledge: %d %s", code, body)
	}
	var acked incidents.Incident
	if err := json.Unmarshal(body, &acked); err != nil {
		t.Fatal(err)
	}
	last := acked.Transitions[len(acked.Transitions)-1]
	if acked.Status != incidents.StatusAcknowledged || last.By != "alice" || acked.AcknowledgedAt.IsZero() {
		t.Fatalf("after acknowledge: %s by %s", acked.Status, last.By)
	}
	if code, _ := apiDo(t, "POST", base+"/"+in.ID+"/acknowledge", operator, ""); code != 409 {
		t.Fatalf("acknowledge twice: %d, want 409", code)
	}
	// An unknown id is asked of the other instances (none): while the
	// consumer group still settles after the start, that is 503, which
	// says the record may be elsewhere; then 404.
	eventually(t, 15*time.Second, "404 for an unknown id", func() bool {
		code, body := apiDo(t, "POST", base+"/INC-nope/acknowledge", operator, "")
		if code != 404 && code != 503 {
			t.Fatalf("acknowledge an unknown id: %d %s, want 404 (or 503 while the group settles)", code, body)
		}
		return code == 404
	})
	// The detail view explains every member.
	code, body = apiDo(t, "GET", base+"/"+in.ID, reader, "")
	if code != 200 || !strings.Contains(string(body), `"reason":"topology"`) || !strings.Contains(string(body), `"path"`) {
		t.Fatalf("detail: %d %s", code, body)
	}
	// Analytics: the latest version, the timeline and the members.
	eventually(t, 60*time.Second, "the acknowledged version in ClickHouse", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".incidents FINAL WHERE id = '"+in.ID+"' AND status = 'acknowledged' AND priority = 'P1'") == 1
	})
	if n := queryUint(t, ch, "SELECT count() FROM "+db+".incident_members FINAL WHERE incident_id = '"+in.ID+"'"); n != 5 {
		t.Errorf("members in ClickHouse: %d, want 5", n)
	}
	eventually(t, 30*time.Second, "the timeline in ClickHouse", func() bool {
		return queryUint(t, ch, "SELECT count() FROM "+db+".incident_timeline FINAL WHERE incident_id = '"+in.ID+"' AND kind = 'transition'") == 2
	})
}
