package cmdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/correlatord/correlatord/event"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	// Write then rename, as operators should.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// storeMetricNames are the gauges and counters a reload sets.
var storeMetricNames = []string{
	"correlator_cmdb_cis", "correlator_cmdb_relations", "correlator_cmdb_last_reload_successful",
	"correlator_cmdb_reload_failures_total", "correlator_cmdb_warnings",
}

func wantStoreMetrics(t *testing.T, reg *prometheus.Registry, cis, rels, ok, failures int) {
	t.Helper()
	want := fmt.Sprintf(`
# HELP correlator_cmdb_cis Configuration items in the topology in use.
# TYPE correlator_cmdb_cis gauge
correlator_cmdb_cis %d
# HELP correlator_cmdb_relations Relations in the topology in use.
# TYPE correlator_cmdb_relations gauge
correlator_cmdb_relations %d
# HELP correlator_cmdb_last_reload_successful Whether the last load of the CMDB succeeded (1) or failed (0).
# TYPE correlator_cmdb_last_reload_successful gauge
correlator_cmdb_last_reload_successful %d
# HELP correlator_cmdb_reload_failures_total Loads of the CMDB that failed (unreadable, undecodable or invalid document); the previous topology stays in use.
# TYPE correlator_cmdb_reload_failures_total counter
correlator_cmdb_reload_failures_total %d
`, cis, rels, ok, failures)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), storeMetricNames[:4]...); err != nil {
		t.Error(err)
	}
}

func TestStoreReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cmdb.yaml")
	writeFile(t, path, smallYAML)
	src, err := NewFileSource(path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	core, logs := observer.New(zap.DebugLevel)
	s, err := NewStore(StoreOptions{Source: src, Registerer: reg, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Topology() == nil || s.Topology().Len() != 0 {
		t.Fatal("a new store should serve an empty topology")
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := s.Topology()
	if first.Len() != 16 {
		t.Fatalf("loaded %d CIs", first.Len())
	}
	wantStoreMetrics(t, reg, 16, 15, 1, 0)
	if n := logs.FilterMessage("CMDB loaded").Len(); n != 1 {
		t.Errorf("%d 'CMDB loaded' logs", n)
	}
	if n := logs.FilterMessage("CMDB warning").Len(); n != 1 { // the cycle
		t.Errorf("%d warnings logged", n)
	}

	// A bad file keeps the previous topology and counts the failure.
	for i, bad := range []string{
		"cis: [{id: a, type: host, colour: red}]",                         // unknown field
		"cis: [{id: a, type: host}, {id: a, type: host}]",                 // duplicate id
		"cis: [{id: a, type: host}]\nrelations: [{source: a, target: b}]", // unknown CI
	} {
		writeFile(t, path, bad)
		err := s.Reload(context.Background())
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad file %d: error %v", i, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
		if s.Topology() != first {
			t.Fatal("a failed reload replaced the topology")
		}
		wantStoreMetrics(t, reg, 16, 15, 0, i+1)
	}
	if n := logs.FilterMessage("CMDB reload failed; keeping the previous topology").Len(); n != 3 {
		t.Errorf("%d failure logs, want 3", n)
	}
	// The same failure again is counted but logged once.
	if err := s.Reload(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if n := logs.FilterMessage("CMDB reload failed; keeping the previous topology").Len(); n != 3 {
		t.Errorf("a repeated failure was logged again (%d)", n)
	}
	wantStoreMetrics(t, reg, 16, 15, 0, 4)

	// A missing file fails the same way.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	wantStoreMetrics(t, reg, 16, 15, 0, 5)

	// Fixed: loads again.
	writeFile(t, path, "cis: [{id: a, type: host}, {id: b, type: host}]\nrelations: [{source: a, target: b}]")
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStoreMetrics(t, reg, 2, 1, 1, 5)
	if s.Topology().Len() != 2 {
		t.Error("not swapped")
	}

	// Binding counts.
	s.Bind(&event.Event{CI: "a"})
	s.Bind(&event.Event{CI: "zz"})
	s.CountBindings(3, 4)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP correlator_cmdb_bindings_total Events bound to a CI (result=bound) or to none (result=unbound).
# TYPE correlator_cmdb_bindings_total counter
correlator_cmdb_bindings_total{result="bound"} 4
correlator_cmdb_bindings_total{result="unbound"} 5
`), "correlator_cmdb_bindings_total"); err != nil {
		t.Error(err)
	}
}

func TestStoreOptions(t *testing.T) {
	if _, err := NewStore(StoreOptions{}); err == nil {
		t.Error("no source accepted")
	}
	src := &seqSource{docs: []string{"cis: []"}}
	if _, err := NewStore(StoreOptions{Source: src, PollInterval: -time.Second}); err == nil {
		t.Error("negative interval accepted")
	}
	// Bind labels reach the topologies, the empty one included.
	s, err := NewStore(StoreOptions{Source: src, Build: BuildOptions{BindLabels: []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Topology().BindLabels(); len(got) != 1 || got[0] != "x" {
		t.Errorf("BindLabels = %v", got)
	}
}

// seqSource serves documents in turn: a Source that is not a Poller.
type seqSource struct {
	mu    sync.Mutex
	docs  []string
	i     int
	loads atomic.Int32
}

func (s *seqSource) Name() string { return "seq" }

func (s *seqSource) Load(ctx context.Context) (*Document, error) {
	s.loads.Add(1)
	s.mu.Lock()
	d := s.docs[s.i%len(s.docs)]
	s.i++
	s.mu.Unlock()
	return DecodeNative(strings.NewReader(d))
}

// estateDoc is a document whose every CI id and alias starts with prefix,
// with n CIs in a chain under one service.
func estateDoc(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("cis:\n")
	fmt.Fprintf(&b, "  - {id: %s-svc, type: service}\n", prefix)
	for i := range n {
		fmt.Fprintf(&b, "  - {id: %s-%d, type: host, aliases: [host-%d.example.com]}\n", prefix, i, i)
	}
	b.WriteString("relations:\n")
	fmt.Fprintf(&b, "  - {source: %s-svc, target: %s-0}\n", prefix, prefix)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - {source: %s-%d, target: %s-%d}\n", prefix, i-1, prefix, i)
	}
	return b.String()
}

// TestStoreConcurrentReaders hammers a store with readers while it reloads
// two different estates in turn: every snapshot a reader gets must be one
// estate or the other, whole (run with -race).
func TestStoreConcurrentReaders(t *testing.T) {
	sizes := map[string]int{"a": 50, "b": 80}
	src := &seqSource{docs: []string{estateDoc("a", sizes["a"]), estateDoc("b", sizes["b"])}}
	s, err := NewStore(StoreOptions{Source: src, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for r := range 4 {
		wg.Go(func() {
			e := &event.Event{Labels: event.FromMap(map[string]string{"instance": "host-7.example.com:9100"})}
			for i := 0; !stop.Load(); i++ {
				topo := s.Topology()
				prefix := strings.SplitN(topo.ID(0), "-", 2)[0]
				n := sizes[prefix]
				if topo.Len() != n+1 || topo.NumRelations() != n {
					errc <- fmt.Errorf("reader %d: %d CIs and %d relations with prefix %q", r, topo.Len(), topo.NumRelations(), prefix)
					return
				}
				id, ok := topo.Bind(e)
				if !ok || id != prefix+"-7" {
					errc <- fmt.Errorf("reader %d: bound to %q in estate %q", r, id, prefix)
					return
				}
				if got := topo.ImpactedServices(prefix + "-" + fmt.Sprint(i%n)); len(got) != 1 || got[0] != prefix+"-svc" {
					errc <- fmt.Errorf("reader %d: impacted %v in estate %q", r, got, prefix)
					return
				}
				if deps := topo.Dependents(prefix+"-3", 0); len(deps) != 4 {
					errc <- fmt.Errorf("reader %d: dependents %v", r, deps)
					return
				}
			}
		})
	}
	for range 60 {
		if err := s.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestStoreRun runs the loop in a synctest bubble: polls on the interval
// (fake time), reloads on the reload channel, and stops with the context.
func TestStoreRun(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(dir, "cmdb.yaml")
		writeFile(t, path, estateDoc("a", 3))
		src, err := NewFileSource(path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		s, err := NewStore(StoreOptions{Source: src, PollInterval: 30 * time.Second, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		start := time.Now() // 2000-01-01 in the bubble
		ctx, cancel := context.WithCancel(t.Context())
		reload := make(chan struct{}, 1)
		done := make(chan error)
		go func() { done <- s.Run(ctx, reload) }()

		first := s.Topology()
		// Unchanged file: polls keep the same snapshot.
		time.Sleep(95 * time.Second)
		synctest.Wait()
		if s.Topology() != first {
			t.Fatal("an unchanged file was reloaded")
		}
		// Changed: the next poll loads it.
		writeFile(t, path, estateDoc("b", 5))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := s.Topology().Len(); got != 6 {
			t.Fatalf("after a poll: %d CIs, want 6", got)
		}
		// The success time comes from the clock (fake here).
		want := float64(start.Add(120*time.Second).UnixNano()) / 1e9
		if got := testutil.ToFloat64(s.metrics.lastSuccessTS); got != want {
			t.Errorf("last success timestamp %v, want %v", got, want)
		}
		// Briefly missing (a non-atomic replace), then back unchanged: one
		// failure, then the gauge recovers without a rebuild.
		loaded := s.Topology()
		if err := os.Rename(path, path+".away"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if testutil.ToFloat64(s.metrics.lastSuccessful) != 0 || testutil.ToFloat64(s.metrics.reloadFailures) != 1 {
			t.Error("a missing file was not a failure")
		}
		if err := os.Rename(path+".away", path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if testutil.ToFloat64(s.metrics.lastSuccessful) != 1 || s.Topology() != loaded {
			t.Error("the file back unchanged did not restore last_reload_successful without a rebuild")
		}
		s.metrics.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "reset"})
		// A bad file fails once: later polls see it unchanged.
		writeFile(t, path, "cis: [{id: x}]")
		time.Sleep(5 * 30 * time.Second)
		synctest.Wait()
		if got := testutil.ToFloat64(s.metrics.reloadFailures); got != 1 {
			t.Errorf("failures = %v, want 1 (a bad file is not retried until it changes)", got)
		}
		if s.Topology().Len() != 6 {
			t.Error("bad file replaced the topology")
		}
		// SIGHUP reloads even an unchanged file, and fails again.
		reload <- struct{}{}
		synctest.Wait()
		if got := testutil.ToFloat64(s.metrics.reloadFailures); got != 2 {
			t.Errorf("failures after SIGHUP = %v, want 2", got)
		}
		// Fixed file: back to success.
		writeFile(t, path, estateDoc("c", 2))
		reload <- struct{}{}
		synctest.Wait()
		if s.Topology().Len() != 3 || testutil.ToFloat64(s.metrics.lastSuccessful) != 1 {
			t.Error("SIGHUP did not load the fixed file")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
}

// TestStoreRunNonPoller reloads a plain Source on every tick.
func TestStoreRunNonPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &seqSource{docs: []string{estateDoc("a", 2), estateDoc("b", 3)}}
		s, err := NewStore(StoreOptions{Source: src, PollInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx, nil) }()
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if got := src.loads.Load(); got != 3 {
			t.Errorf("%d loads in 3 intervals", got)
		}
		cancel()
		<-done
	})
}

func TestStoreFuncSource(t *testing.T) {
	// An importer's output through a plain function.
	src := NewSource("servicenow-api", func(ctx context.Context) (*Document, error) {
		return DecodeNative(strings.NewReader(smallYAML))
	})
	s, err := NewStore(StoreOptions{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Topology().Len() != 16 || src.Name() != "servicenow-api" {
		t.Error("not loaded")
	}
}

func TestStoreReloadCanceled(t *testing.T) {
	src := &seqSource{docs: []string{"cis: [{id: x}]"}}
	s, err := NewStore(StoreOptions{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Reload(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got := testutil.ToFloat64(s.metrics.reloadFailures); got != 0 {
		t.Error("a canceled reload counted as a failure")
	}
}
