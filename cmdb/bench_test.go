package cmdb

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
)

// The benchmarks run on the synthetic estate of gen_test.go at the scale
// the issue sets: 1,000,000 CIs and 3,000,000 relations, written once per
// process as a native JSON file in a temporary directory. Set
// CMDB_BENCH_CIS to run them smaller (relations are three per CI), and
// CMDB_BENCH_DIR to keep the file there between runs.
//
//	go test -run '^$' -bench . -benchmem ./cmdb
//
// BenchmarkLoad reports, besides ns/op (one load: read, decode, validate,
// index), the heap: peak-heap-MB is the highest live+unswept heap seen
// during the load above the heap before it (sampled every 5ms through
// runtime/metrics), live-heap-MB what the topology keeps after a GC, and
// alloc-MB the total allocated by the load.

var benchSpec = func() genSpec {
	n := 1_000_000
	if s := os.Getenv("CMDB_BENCH_CIS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v >= 1000 {
			n = v
		}
	}
	return genSpec{CIs: n, Relations: 3 * n, Seed: 42}
}()

var (
	benchDir     string
	benchFileMu  sync.Mutex
	benchFile    string
	benchTopoMu  sync.Mutex
	benchTopo    *Topology
	benchSources = map[string]string{}
)

func cleanupBenchFixtures() {
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
}

// benchFixture returns the path of the synthetic estate's JSON file,
// writing it on first use.
func benchFixture(b *testing.B) string {
	benchFileMu.Lock()
	defer benchFileMu.Unlock()
	if benchFile != "" {
		return benchFile
	}
	dir := os.Getenv("CMDB_BENCH_DIR") // kept between runs, for profiling
	if dir == "" {
		if benchDir == "" {
			d, err := os.MkdirTemp("", "cmdb-bench-")
			if err != nil {
				b.Fatal(err)
			}
			benchDir = d
		}
		dir = benchDir
	}
	path := filepath.Join(dir, fmt.Sprintf("estate-%d-%d.json", benchSpec.CIs, benchSpec.Seed))
	if _, err := os.Stat(path); err == nil && dir != benchDir {
		benchFile = path
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := genWrite(f, benchSpec); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(path)
	b.Logf("wrote %s: %d CIs, %d relations, %.0f MB in %s", path, benchSpec.CIs, benchSpec.Relations, float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))
	benchFile = path
	return path
}

// benchTopology returns the estate's topology, loading it on first use.
func benchTopology(b *testing.B) *Topology {
	path := benchFixture(b)
	benchTopoMu.Lock()
	defer benchTopoMu.Unlock()
	if benchTopo == nil {
		src, err := NewFileSource(path, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		doc, err := src.Load(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if benchTopo, err = Build(doc, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return benchTopo
}

// heapSampler tracks the peak of the heap (live and not yet swept objects)
// while running.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	h.peak.Store(heapObjects())
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if v := heapObjects(); v > h.peak.Load() {
					h.peak.Store(v)
				}
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	if v := heapObjects(); v > h.peak.Load() {
		h.peak.Store(v)
	}
	return h.peak.Load()
}

func BenchmarkLoad(b *testing.B) {
	path := benchFixture(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var decode, build time.Duration
	var peak, live, alloc, n float64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		sampler := startHeapSampler()
		b.StartTimer()

		t0 := time.Now()
		src, err := NewFileSource(path, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		doc, err := src.Load(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		topo, err := Build(doc, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		doc = nil
		t2 := time.Now()

		b.StopTimer()
		p := sampler.Stop()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		runtime.GC()
		var kept runtime.MemStats
		runtime.ReadMemStats(&kept)
		runtime.KeepAlive(topo)
		decode += t1.Sub(t0)
		build += t2.Sub(t1)
		peak += float64(p - min(p, before.HeapAlloc))
		live += float64(kept.HeapAlloc - min(kept.HeapAlloc, before.HeapAlloc))
		alloc += float64(after.TotalAlloc - before.TotalAlloc)
		n++
		topo = nil
		b.StartTimer()
	}
	b.ReportMetric(decode.Seconds()/n, "decode-s")
	b.ReportMetric(build.Seconds()/n, "build-s")
	b.ReportMetric(peak/n/1e6, "peak-heap-MB")
	b.ReportMetric(live/n/1e6, "live-heap-MB")
	b.ReportMetric(alloc/n/1e6, "alloc-MB")
}

func BenchmarkBind(b *testing.B) {
	topo := benchTopology(b)
	all := genEvents(benchSpec, 1<<12)
	// Pick the events of each kind.
	kinds := map[string][]*event.Event{}
	for i, e := range all {
		switch i % 10 {
		case 0, 1, 2:
			kinds["instance"] = append(kinds["instance"], e)
		case 9:
			kinds["unbound"] = append(kinds["unbound"], e)
		}
	}
	kinds["mixed"] = all
	for _, name := range []string{"mixed", "instance", "unbound"} {
		evs := kinds[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i, bound := 0, 0
			for b.Loop() {
				if _, ok := topo.BindNode(evs[i%len(evs)]); ok {
					bound++
				}
				i++
			}
			b.ReportMetric(float64(bound)/float64(i), "bound/op")
		})
	}
}

// benchNodes returns random nodes: kinds picks from each CI kind equally,
// so that infrastructure (few CIs, huge impact) weighs as much as VMs.
func benchNodes(topo *Topology, n int) []Node {
	byType := map[string][]Node{}
	for i := range topo.Len() {
		byType[topo.At(Node(i)).Type] = append(byType[topo.At(Node(i)).Type], Node(i))
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.Sort(types) // determinism
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]Node, n)
	for i := range out {
		list := byType[types[i%len(types)]]
		out[i] = list[rng.IntN(len(list))]
	}
	return out
}

func BenchmarkImpactedServices(b *testing.B) {
	topo := benchTopology(b)
	nodes := benchNodes(topo, 1<<12)
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = topo.ID(n)
	}
	var sites []Node
	for _, n := range nodes {
		if topo.At(n).Type == "site" {
			sites = append(sites, n)
		}
	}
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		i, total := 0, 0
		for b.Loop() {
			total += len(topo.ImpactedServicesOf(nodes[i%len(nodes)]))
			i++
		}
		b.ReportMetric(float64(total)/float64(i), "services/op")
		b.ReportMetric(float64(len(topo.impact.pool)), "index-entries")
		b.ReportMetric(float64(len(topo.impact.start)-1), "index-sets")
	})
	b.Run("by-id", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = topo.ImpactedServices(ids[i%len(ids)])
			i++
		}
	})
	b.Run("by-id-site", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = topo.ImpactedServices(topo.ID(sites[i%len(sites)]))
			i++
		}
	})
	// Without the index: what each query would cost walking the graph.
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = topo.impactedWalk(nodes[i%len(nodes)])
			i++
		}
	})
}

func BenchmarkQueries(b *testing.B) {
	topo := benchTopology(b)
	nodes := benchNodes(topo, 1<<12)
	var leaves []Node // VMs, apps, databases: where alerts come from
	for _, n := range nodes {
		switch topo.At(n).Type {
		case "vm", "application", "database", "host":
			leaves = append(leaves, n)
		}
	}
	var buf []Node
	b.Run("dependencies-depth3", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf = topo.AppendDependencies(buf[:0], leaves[i%len(leaves)], 3)
			i++
		}
	})
	b.Run("dependents-depth2", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			buf = topo.AppendDependents(buf[:0], leaves[i%len(leaves)], 2)
			i++
		}
	})
	b.Run("pathlen-max4", func(b *testing.B) {
		b.ReportAllocs()
		i, found := 0, 0
		for b.Loop() {
			if _, ok := topo.PathLen(leaves[i%len(leaves)], leaves[(i*7+1)%len(leaves)], 4); ok {
				found++
			}
			i++
		}
		b.ReportMetric(float64(found)/float64(i), "found/op")
	})
	b.Run("dependson-max6", func(b *testing.B) {
		b.ReportAllocs()
		i, found := 0, 0
		for b.Loop() {
			if _, ok := topo.DependsOnPathLen(leaves[i%len(leaves)], nodes[(i*7+1)%len(nodes)], 6); ok {
				found++
			}
			i++
		}
		b.ReportMetric(float64(found)/float64(i), "found/op")
	})
	var keys []string
	for _, n := range nodes {
		if a := topo.At(n).Aliases; len(a) > 0 {
			keys = append(keys, a[0])
		}
	}
	b.Run("lookup-alias", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = topo.Lookup(keys[i%len(keys)])
			i++
		}
	})
}

// BenchmarkDecodeExample decodes the human-sized example (YAML).
func BenchmarkDecodeExample(b *testing.B) {
	data, err := os.ReadFile(exampleTopologyPath)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		doc, err := DecodeNative(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Build(doc, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
