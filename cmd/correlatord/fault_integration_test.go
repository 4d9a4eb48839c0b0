//go:build integration

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/correlatord/correlatord/incidents/notify"
)

// These tests run correlatord as a separate process, so it can be killed
// with SIGKILL: no deferred flush, no final commit, no goodbye to the
// consumer group.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

func daemonBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "correlatord-bin")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "correlatord")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProc runs `correlatord run` with cfg in dataDir and waits until it
// serves.
func startProc(t *testing.T, cfg, dataDir string) *proc {
	t.Helper()
	bin := daemonBinary(t)
	cfgFile := filepath.Join(dataDir, "correlatord.yml")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+filepath.Join(dataDir, "data")+"\n"+cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, addr: freeAddr(t), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "run", "--config.file="+cfgFile, "--web.listen-address="+p.addr, "--log.level=warn", "--log.format=json")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("correlatord %s stderr (last 4 KiB):\n%s", p.addr, tail(p.stderr.String(), 4096))
		}
	})
	eventually(t, 60*time.Second, "correlatord to serve", func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("correlatord exited: %v\n%s", err, p.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// metric sums every series of name on the process's /metrics.
func (p *proc) metric(name string) float64 {
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return -1
	}
	mf, ok := mfs[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

// receiver is a webhook target that records every delivery by idempotency
// key, as a receiver that honours the keys would.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]int
	byIn map[string]map[string]bool // incident -> kinds delivered, by key
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{keys: map[string]int{}, byIn: map[string]map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var n notify.Notification
		if err := json.Unmarshal(b, &n); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.keys[req.Header.Get(notify.HeaderIdempotencyKey)]++
		if r.byIn[n.IncidentID] == nil {
			r.byIn[n.IncidentID] = map[string]bool{}
		}
		r.byIn[n.IncidentID][string(n.Kind)+"|"+req.Header.Get(notify.HeaderIdempotencyKey)] = true
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// createdKeys returns, per incident, the distinct keys of its "created"
// notifications.
func (r *receiver) createdKeys() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for in, ks := range r.byIn {
		for k := range ks {
			if strings.HasPrefix(k, "created|") {
				out[in]++
			}
		}
	}
	return out
}

func (r *receiver) repeats() (keys, deliveries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.keys {
		keys++
		deliveries += n
	}
	return keys, deliveries
}

func notifyConfig(url string) string {
	return fmt.Sprintf(`notify:
  targets:
    - name: pager
      type: webhook
      url: %s
      secret: test-secret
  retry:
    initial_backoff: 100ms
    max_backoff: 1s
`, url)
}

// checkNotifications: every incident was announced once as created: one
// key, whatever the redeliveries.
func checkNotifications(t *testing.T, r *receiver, live map[string]replayIncident) {
	t.Helper()
	eventually(t, 60*time.Second, "a created notification for every incident", func() bool {
		ck := r.createdKeys()
		for id := range live {
			if ck[id] == 0 {
				return false
			}
		}
		return true
	})
	for id, n := range r.createdKeys() {
		if n != 1 {
			t.Errorf("incident %s announced as created under %d different keys", id, n)
		}
	}
	keys, deliveries := r.repeats()
	t.Logf("notifications: %d keys, %d deliveries (%d repeated to a receiver that honours the key)", keys, deliveries, deliveries-keys)
}

// TestKillMidStormLosesNothing kills the only instance with SIGKILL while
// it works through a storm, and starts it again on the same data
// directory. Its incidents at the end equal replay's (none lost, none
// duplicated), and every incident was announced under one idempotency key.
func TestKillMidStormLosesNothing(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	rcv := newReceiver(t)
	sc := newStormCase(t, broker, "kill", 21, 1500, 40, notifyConfig(rcv.srv.URL))
	dir, topic, cfg, lines, want := sc.dir, sc.topic, sc.cfg, sc.lines, sc.want

	data := filepath.Join(dir, "instance")
	p := startProc(t, cfg, data)
	produceLines(t, broker, topic, lines)
	eventually(t, 60*time.Second, "a third of the storm to be processed", func() bool {
		return p.metric("correlator_rules_events_total") >= float64(len(lines)/3)
	})
	before := p.metric("correlator_rules_events_total")
	p.kill()
	t.Logf("killed after %.0f of %d events", before, len(lines))

	p2 := startProc(t, cfg, data)
	eventually(t, 120*time.Second, "the restarted instance to catch up", func() bool {
		return p2.metric("correlator_kafka_consumer_lag") == 0 && p2.metric("correlator_partitions_assigned") == 4 &&
			len(liveIncidents(t, p2.addr)) >= len(want)
	})
	time.Sleep(2 * time.Second)
	live := liveIncidents(t, p2.addr)
	compareIncidents(t, live, want)
	checkNotifications(t, rcv, live)
}

// TestTwoInstancesOneKilled: two instances share a storm; one is killed
// with SIGKILL. The survivor takes its partitions with their state (after
// the group's session timeout), and ends with replay's incidents.
func TestTwoInstancesOneKilled(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	sc := newStormCase(t, broker, "kill2", 22, 1500, 40, "")
	dir, topic, cfg, lines, want := sc.dir, sc.topic, sc.cfg, sc.lines, sc.want

	a := startProc(t, cfg, filepath.Join(dir, "a"))
	b := startProc(t, cfg, filepath.Join(dir, "b"))
	eventually(t, 90*time.Second, "both instances to own partitions", func() bool {
		pa, pb := a.metric("correlator_partitions_assigned"), b.metric("correlator_partitions_assigned")
		return pa > 0 && pb > 0 && pa+pb == 4
	})
	produceLines(t, broker, topic, lines)
	eventually(t, 60*time.Second, "a third of the storm to be processed", func() bool {
		return a.metric("correlator_rules_events_total")+b.metric("correlator_rules_events_total") >= float64(len(lines)/3)
	})
	a.kill()
	eventually(t, 120*time.Second, "the survivor to own every partition and catch up", func() bool {
		return b.metric("correlator_partitions_assigned") == 4 && b.metric("correlator_kafka_consumer_lag") == 0 &&
			len(liveIncidents(t, b.addr)) >= len(want)
	})
	time.Sleep(2 * time.Second)
	compareIncidents(t, liveIncidents(t, b.addr), want)
}

// TestBrokerRestart stops the Kafka broker mid-stream and starts it again:
// the daemon reconnects by itself, and its incidents equal replay's.
func TestBrokerRestart(t *testing.T) {
	broker := envOrSkip(t, "CORRELATORD_TEST_KAFKA")
	sc := newStormCase(t, broker, "broker", 23, 1000, 20, "")
	dir, topic, cfg, lines, want := sc.dir, sc.topic, sc.cfg, sc.lines, sc.want

	p := startProc(t, cfg, filepath.Join(dir, "instance"))
	half := len(lines) / 2
	produceLines(t, broker, topic, lines[:half])
	eventually(t, 60*time.Second, "the first half to be processed", func() bool {
		return p.metric("correlator_rules_events_total") >= float64(half)
	})
	devScript(t, "down.sh", "kafka")
	t.Cleanup(func() { devScript(t, "up.sh", "kafka") }) // never leave it down
	time.Sleep(5 * time.Second)
	devScript(t, "up.sh", "kafka")
	produceLines(t, broker, topic, lines[half:])
	eventually(t, 180*time.Second, "the rest to be processed after the broker returned", func() bool {
		return p.metric("correlator_kafka_consumer_lag") == 0 && p.metric("correlator_partitions_assigned") == 4 &&
			len(liveIncidents(t, p.addr)) >= len(want)
	})
	time.Sleep(2 * time.Second)
	compareIncidents(t, liveIncidents(t, p.addr), want)
	if n := p.metric("correlator_rules_events_total"); n < float64(len(lines)) {
		t.Errorf("processed %.0f of %d events", n, len(lines))
	}
}
