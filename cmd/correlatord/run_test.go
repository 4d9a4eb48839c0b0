package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type unitDaemon struct {
	url    string
	reg    *prometheus.Registry
	reload chan struct{}
	cancel context.CancelFunc
	done   chan error
}

// startUnitDaemon runs the daemon in-process without Kafka or ClickHouse.
func startUnitDaemon(t *testing.T, configFile string) *unitDaemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	d := &unitDaemon{url: "http://" + ln.Addr().String(), reg: prometheus.NewRegistry(), reload: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
	go func() {
		d.done <- runDaemon(ctx, commonFlags{configFile: configFile, logLevel: "error", logFormat: "json"},
			runOptions{listener: ln, ready: ready, registry: d.reg}, d.reload)
	}()
	select {
	case <-ready:
	case err := <-d.done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	return d
}

func (d *unitDaemon) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("daemon stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
}

func (d *unitDaemon) post(t *testing.T, path, body, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (d *unitDaemon) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(d.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func nowEvent(name string) string {
	return fmt.Sprintf(`{"time":%q,"source":"unit","labels":{"alertname":%q}}`, time.Now().UTC().Format(time.RFC3339Nano), name)
}

func TestRunOnEmbeddedDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // the default data_dir is ./data
	d := startUnitDaemon(t, "")
	if code := d.post(t, "/api/v1/events", nowEvent("A")+"\n"+nowEvent("B"), ""); code != 200 {
		t.Fatalf("POST events: %d", code)
	}
	if code, body := d.get(t, "/readyz"); code != 200 {
		// Readiness has no dependencies to check without Kafka and ClickHouse;
		// the first check runs at start.
		time.Sleep(100 * time.Millisecond)
		if code, body = d.get(t, "/readyz"); code != 200 {
			t.Errorf("readyz: %d %s", code, body)
		}
	}
	if code, _ := d.get(t, "/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	code, metrics := d.get(t, "/metrics")
	if code != 200 || !strings.Contains(metrics, `correlator_ingest_events_received_total{kind="alert",source="unit",transport="http"} 2`) {
		t.Errorf("metrics do not count the events:\n%s", metrics)
	}
	if _, err := os.Stat("data/lock"); err != nil {
		t.Errorf("no data directory: %v", err)
	}
	// A second daemon on the same data directory is refused.
	err := runDaemon(context.Background(), commonFlags{logLevel: "error", logFormat: "json"}, runOptions{listenAddress: "127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "in use by another correlatord") {
		t.Errorf("second daemon on one data_dir: %v", err)
	}
	d.stop(t)
}

func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "c.yml")
	write := func(s string) {
		if err := os.WriteFile(cfgFile, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("http:\n  bearer_token: first\n")
	d := startUnitDaemon(t, cfgFile)
	defer d.stop(t)
	okWith := func(token string) bool { return d.post(t, "/api/v1/events", nowEvent("A"), token) == 200 }
	if !okWith("first") || okWith("") {
		t.Fatal("token not enforced")
	}
	reloaded := func(want float64) {
		t.Helper()
		d.reload <- struct{}{}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if got := gaugeValue(d.reg, "correlator_config_last_reload_successful"); got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload_successful never became %v", want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	write("http:\n  bearer_token: second\n  bogus: 1\n")
	reloaded(0)
	if !okWith("first") {
		t.Error("a bad file replaced the running token")
	}
	write("http:\n  bearer_token: second\n")
	reloaded(1)
	if okWith("first") || !okWith("second") {
		t.Error("the token did not rotate on reload")
	}
}

// gaugeValue reads a registered gauge without labels.
func gaugeValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func TestReplayIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "events.jsonl")
	var b bytes.Buffer
	for i := range 50 {
		fmt.Fprintf(&b, `{"time":"2026-11-02T10:%02d:00Z","source":"prometheus","severity":"major","labels":{"alertname":"HostDown","instance":"h%d"}}`+"\n", i%60, i%7)
		if i == 20 {
			b.WriteString("{not json}\n\n")
		}
	}
	if err := os.WriteFile(in, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var outs []string
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("out%d.jsonl", i))
		evOut := filepath.Join(dir, fmt.Sprintf("events%d.jsonl", i))
		var stderr bytes.Buffer
		opts := replayOptions{eventsFile: in, outFile: out, eventsOut: evOut, stderr: &stderr}
		if err := runReplay(context.Background(), commonFlags{}, opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr.String(), "52 lines, 50 events in, 1 rejected, ") {
			t.Errorf("summary: %q", stderr.String())
		}
		got, _ := os.ReadFile(evOut)
		incs, _ := os.ReadFile(out)
		outs = append(outs, string(got)+"\n---\n"+string(incs))
	}
	if outs[0] != outs[1] {
		t.Error("two replays of the same file differ")
	}
	if n := strings.Count(strings.Split(outs[0], "---")[0], "\n"); n != 51 {
		t.Errorf("%d event lines, want 50 (and a separator)", n-1)
	}
	if !strings.Contains(outs[0], `"fingerprint":"`) || strings.Contains(outs[0], `"id":""`) {
		t.Errorf("output events are not normalized:\n%s", outs[0][:200])
	}
}

func TestCLI(t *testing.T) {
	if code := realMain([]string{"version"}); code != 0 {
		t.Errorf("version exit %d", code)
	}
	if code := realMain([]string{"--log.level", "loud", "version"}); code != 2 {
		t.Errorf("bad flag exit %d, want 2", code)
	}
	if code := realMain([]string{"replay", "--events", "/nonexistent"}); code != 1 {
		t.Errorf("replay of a missing file exit %d, want 1", code)
	}
	if code := realMain([]string{"migrate"}); code != 1 {
		t.Errorf("migrate without clickhouse exit %d, want 1", code)
	}
}

func TestCmdbCheckCommand(t *testing.T) {
	if code := realMain([]string{"cmdb", "check", "../../examples/topology.yaml"}); code != 0 {
		t.Errorf("example topology: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("cis:\n  - {id: a, type: host}\nrelations:\n  - {source: a, target: missing}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := runCmdbCheck(&out, cmdbCheckOptions{file: bad, format: "native"})
	if err == nil || !strings.Contains(out.String(), `unknown target CI "missing"`) {
		t.Errorf("bad topology: err %v, report:\n%s", err, out.String())
	}
	if code := realMain([]string{"cmdb", "check", bad}); code != 1 {
		t.Errorf("bad topology: exit %d, want 1", code)
	}
}

func TestReplayBindsAgainstCMDB(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	events := `{"time":"2026-11-02T10:00:00Z","labels":{"alertname":"HostDown","instance":"10.10.1.1:9100"}}` + "\n" +
		`{"time":"2026-11-02T10:00:01Z","labels":{"alertname":"HostDown","instance":"unknown-host:9100"}}` + "\n"
	if err := os.WriteFile(in, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runReplay(context.Background(), commonFlags{}, replayOptions{eventsFile: in, outFile: os.DevNull, eventsOut: out,
		cmdbFile: "../../examples/topology.yaml", cmdbFormat: "native", stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"ci":"hv-dc1-01"`) || strings.Contains(lines[1], `"ci"`) {
		t.Errorf("replay output:\n%s", got)
	}
}

func TestReplayAppliesRules(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	events := `{"id":"a","time":"2026-11-02T10:00:00Z","labels":{"alertname":"HighCPU","env":"test","severity":"critical"}}` + "\n" +
		`{"id":"b","time":"2026-11-02T10:00:01Z","labels":{"alertname":"HighCPU","instance":"h1","severity":"critical"}}` + "\n" +
		`{"id":"c","time":"2026-11-02T10:00:02Z","labels":{"alertname":"HighCPU","instance":"h1","severity":"critical"}}` + "\n" +
		`{"id":"d","time":"2026-11-02T10:00:03Z","labels":{"alertname":"Hint","instance":"h1","severity":"info"}}` + "\n"
	if err := os.WriteFile(in, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runReplay(context.Background(), commonFlags{}, replayOptions{eventsFile: in, outFile: os.DevNull, eventsOut: out,
		rulesFiles: []string{"../../examples/rules"}, stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	for _, want := range []string{
		`"id":"a"`, `"outcome":"dropped","correlate":false,"rule":"drop-test-environments"`,
		`"id":"b"`, `"class":"exception","outcome":"pass","correlate":true`,
		`"id":"c"`, `"outcome":"deduplicated","correlate":false,"dedup_count":2`,
		`"id":"d"`, `"class":"informational","outcome":"recorded","correlate":false`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("replay output lacks %s:\n%s", want, got)
		}
	}
}

// TestReplayWritesIncidents: a host failure and the alerts it causes on the
// VM and databases above it become one incident naming the host, with each
// member explained; an unrelated alert elsewhere stays its own incident.
func TestReplayWritesIncidents(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "incidents.jsonl")
	line := func(id, at, ci, alert string) string {
		return fmt.Sprintf(`{"id":%q,"time":"2026-11-02T10:%s","ci":%q,"severity":"critical","labels":{"alertname":%q,"instance":%q}}`+"\n", id, at, ci, alert, ci)
	}
	events := line("h", "00:00Z", "hv-dc1-03", "HostDown") +
		line("v", "00:20Z", "vm-db-01", "InstanceDown") +
		line("other", "00:30Z", "vm-web-02", "HighCPU") +
		line("d1", "00:40Z", "orders-db", "PostgresDown") +
		line("d2", "00:50Z", "payments-db", "PostgresDown")
	if err := os.WriteFile(in, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := runReplay(context.Background(), commonFlags{}, replayOptions{eventsFile: in, outFile: out,
		cmdbFile: "../../examples/topology.yaml", cmdbFormat: "native", stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	var incs []replayIncident
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r replayIncident
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v in %s", err, l)
		}
		incs = append(incs, r)
	}
	if len(incs) != 2 {
		t.Fatalf("%d incidents, want 2:\n%s", len(incs), data)
	}
	host := incs[0]
	if host.RootCauseCI == nil || *host.RootCauseCI != "hv-dc1-03" || strings.Join(host.EventIDs, ",") != "h,v,d1,d2" {
		t.Errorf("host incident: root %v, events %v", host.RootCauseCI, host.EventIDs)
	}
	if len(host.Members) != 4 || host.Members[3].Reason == "" || !slices.Contains(host.Services, "online-shop") {
		t.Errorf("members or services missing: %+v", host)
	}
	if strings.Join(incs[1].EventIDs, ",") != "other" {
		t.Errorf("unrelated alert joined: %v", incs[1].EventIDs)
	}
	if !strings.Contains(stderr.String(), "5 events in, 0 rejected, 2 incidents out, noise reduction 2.5x") {
		t.Errorf("summary: %s", stderr.String())
	}
}

// TestScenarioReplayEvaluate runs the offline quality loop end to end:
// generate an estate and a storm, replay it, score the incidents.
func TestScenarioReplayEvaluate(t *testing.T) {
	dir := t.TempDir()
	if err := runScenario(io.Discard, scenarioOptions{outDir: dir, seed: 3, cis: 400, faults: 10}); err != nil {
		t.Fatal(err)
	}
	incs := filepath.Join(dir, "incidents.jsonl")
	err := runReplay(context.Background(), commonFlags{}, replayOptions{eventsFile: filepath.Join(dir, "events.jsonl"),
		outFile: incs, cmdbFile: filepath.Join(dir, "cmdb.json"), cmdbFormat: "native", stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runEvaluate(&out, evaluateOptions{truth: filepath.Join(dir, "truth.json"), incidents: incs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"faults 10", "grouping: precision", "root cause top-1 accuracy", "noise reduction"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("evaluate output lacks %q:\n%s", want, out.String())
		}
	}
	err = runEvaluate(io.Discard, evaluateOptions{truth: filepath.Join(dir, "truth.json"), incidents: incs, minF1: 1.01})
	if err == nil || !strings.Contains(err.Error(), "under --min-f1") {
		t.Errorf("a bound no result can reach did not fail: %v", err)
	}
}
