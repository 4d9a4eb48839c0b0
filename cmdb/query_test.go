package cmdb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// smallYAML is a hand-built estate with known answers:
//
//	svc-orders -> app-a -> vm-2 -> host-2 -> sw-1 -> site-a
//	              app-a -> db-1 -> vm-1 -> host-1 -> sw-1
//	svc-billing -> app-b -> vm-2;  app-b <-> app-c (a cycle)
//	svc-search -> app-x -> host-9 (a second component)
//	lonely (a third component, no relation)
const smallYAML = `
cis:
  - {id: site-a, type: site}
  - {id: sw-1, type: switch}
  - {id: host-1, type: host}
  - {id: host-2, type: host}
  - {id: vm-1, type: vm}
  - {id: vm-2, type: vm}
  - {id: db-1, type: database, criticality: 1, support_group: dba, attributes: {site: a}}
  - {id: app-a, type: application}
  - {id: app-b, type: application}
  - {id: app-c, type: application}
  - {id: svc-orders, type: service, criticality: 1}
  - {id: svc-billing, type: service}
  - {id: svc-search, type: service}
  - {id: app-x, type: application}
  - {id: host-9, type: host}
  - {id: lonely, type: host}
relations:
  - {source: sw-1, target: site-a, type: member_of}
  - {source: host-1, target: sw-1, type: connected_to}
  - {source: host-2, target: sw-1, type: connected_to}
  - {source: vm-1, target: host-1, type: runs_on}
  - {source: vm-2, target: host-2, type: runs_on}
  - {source: db-1, target: vm-1, type: runs_on}
  - {source: app-a, target: vm-2, type: runs_on}
  - {source: app-a, target: db-1}
  - {source: app-b, target: vm-2, type: runs_on}
  - {source: app-b, target: app-c}
  - {source: app-c, target: app-b}
  - {source: svc-orders, target: app-a}
  - {source: svc-billing, target: app-b}
  - {source: svc-search, target: app-x}
  - {source: app-x, target: host-9, type: runs_on}
`

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestQueries(t *testing.T) {
	for _, idx := range []struct {
		name string
		max  int
	}{{"index", 0}, {"walk", -1}} {
		t.Run(idx.name, func(t *testing.T) {
			topo := mustBuild(t, smallYAML, BuildOptions{MaxImpactEntries: idx.max})
			if (topo.impact.set != nil) != (idx.max == 0) {
				t.Fatalf("index built: %v", topo.impact.set != nil)
			}
			testQueries(t, topo)
		})
	}
}

func testQueries(t *testing.T, topo *Topology) {
	eq := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	eq("Dependents(site-a, all)", sorted(topo.Dependents("site-a", 0)),
		sorted([]string{"sw-1", "host-1", "host-2", "vm-1", "vm-2", "db-1", "app-a", "app-b", "app-c", "svc-orders", "svc-billing"}))
	eq("Dependents(host-1, 1)", topo.Dependents("host-1", 1), []string{"vm-1"})
	eq("Dependents(host-1, 2)", topo.Dependents("host-1", 2), []string{"vm-1", "db-1"})
	eq("Dependents(host-1, 3)", topo.Dependents("host-1", 3), []string{"vm-1", "db-1", "app-a"})
	eq("Dependents(app-c, all) (cycle: not itself)", sorted(topo.Dependents("app-c", -1)), []string{"app-b", "svc-billing"})
	eq("Dependents(svc-orders)", topo.Dependents("svc-orders", 0), nil)
	eq("Dependents(unknown)", topo.Dependents("nope", 0), nil)
	eq("Dependencies(app-a, 1)", topo.Dependencies("app-a", 1), []string{"vm-2", "db-1"})
	eq("Dependencies(app-a, 2)", topo.Dependencies("app-a", 2), []string{"vm-2", "db-1", "host-2", "vm-1"})
	eq("Dependencies(svc-billing, all)", sorted(topo.Dependencies("svc-billing", 0)),
		sorted([]string{"app-b", "app-c", "vm-2", "host-2", "sw-1", "site-a"}))
	eq("Dependencies(site-a)", topo.Dependencies("site-a", 0), nil)

	eq("ImpactedServices(db-1)", topo.ImpactedServices("db-1"), []string{"svc-orders"})
	eq("ImpactedServices(host-2)", topo.ImpactedServices("host-2"), []string{"svc-orders", "svc-billing"})
	eq("ImpactedServices(site-a)", topo.ImpactedServices("site-a"), []string{"svc-orders", "svc-billing"})
	eq("ImpactedServices(app-c) (through the cycle)", topo.ImpactedServices("app-c"), []string{"svc-billing"})
	eq("ImpactedServices(svc-orders) (itself)", topo.ImpactedServices("svc-orders"), []string{"svc-orders"})
	eq("ImpactedServices(host-9)", topo.ImpactedServices("host-9"), []string{"svc-search"})
	eq("ImpactedServices(lonely)", topo.ImpactedServices("lonely"), nil)
	eq("ImpactedServices(unknown)", topo.ImpactedServices("nope"), nil)

	for _, tc := range []struct {
		a, b     string
		max      int
		directed bool
		want     int // -1: none
	}{
		{"vm-1", "vm-2", 0, false, 3}, // vm-1 <- db-1 <- app-a -> vm-2
		{"vm-1", "vm-2", 3, false, 3},
		{"vm-1", "vm-2", 2, false, -1},
		{"vm-2", "vm-1", 0, false, 3},
		{"app-a", "app-a", 1, false, 0},
		{"app-a", "site-a", 0, true, 4}, // app-a -> vm-2 -> host-2 -> sw-1 -> site-a
		{"app-a", "site-a", 4, true, 4},
		{"app-a", "site-a", 3, true, -1},
		{"site-a", "app-a", 0, true, -1},
		{"site-a", "app-a", 0, false, 4},
		{"app-b", "app-c", 1, true, 1},
		{"app-c", "app-b", 1, true, 1},
		{"svc-billing", "app-c", 0, true, 2},
		{"app-c", "svc-billing", 0, true, -1},
		{"svc-orders", "svc-billing", 0, false, 4}, // svc-orders - app-a - vm-2 - app-b - svc-billing
		{"svc-orders", "svc-search", 0, false, -1}, // other component
		{"lonely", "site-a", 0, false, -1},
		{"nope", "site-a", 0, false, -1},
	} {
		var got int
		var ok bool
		if tc.directed {
			got, ok = topo.DependsOn(tc.a, tc.b, tc.max)
		} else {
			got, ok = topo.ShortestPath(tc.a, tc.b, tc.max)
		}
		if !ok {
			got = -1
		}
		if got != tc.want {
			t.Errorf("path %s -> %s (max %d, directed %v) = %d, want %d", tc.a, tc.b, tc.max, tc.directed, got, tc.want)
		}
	}

	if got := topo.Components(); got != 3 {
		t.Errorf("Components = %d, want 3", got)
	}
	comp := func(id string) int {
		c, ok := topo.Component(id)
		if !ok {
			t.Fatalf("Component(%s) unknown", id)
		}
		return c
	}
	if comp("site-a") != 0 || comp("svc-billing") != 0 || comp("app-x") != comp("svc-search") || comp("lonely") == comp("host-9") || comp("lonely") == 0 {
		t.Errorf("components: site-a %d, svc-billing %d, app-x %d, svc-search %d, lonely %d",
			comp("site-a"), comp("svc-billing"), comp("app-x"), comp("svc-search"), comp("lonely"))
	}
	if got := topo.ComponentSize(0); got != 12 {
		t.Errorf("ComponentSize(0) = %d, want 12", got)
	}
	if _, ok := topo.Component("nope"); ok {
		t.Error("Component(unknown) ok")
	}

	ci, ok := topo.CI("db-1")
	if !ok || ci.SupportGroup != "dba" || ci.Attributes["site"] != "a" || ci.Criticality != 1 {
		t.Errorf("CI(db-1) = %+v", ci)
	}
	if c, ok := topo.Criticality("vm-1"); !ok || c != DefaultCriticality {
		t.Errorf("Criticality(vm-1) = %d, %v", c, ok)
	}
	if g, ok := topo.SupportGroup("db-1"); !ok || g != "dba" {
		t.Errorf("SupportGroup(db-1) = %q", g)
	}
	if _, ok := topo.Criticality("nope"); ok {
		t.Error("Criticality(unknown) ok")
	}
	if _, ok := topo.SupportGroup("nope"); ok {
		t.Error("SupportGroup(unknown) ok")
	}
	if _, ok := topo.CI("DB-1"); ok {
		t.Error("CI lookups are by exact id")
	}
	if got := len(topo.Services()); got != 3 {
		t.Errorf("Services = %d", got)
	}
	var cycle bool
	for _, w := range topo.Warnings() {
		cycle = cycle || w.Msg == "dependency cycle among 2 CIs: app-b, app-c"
	}
	if !cycle {
		t.Errorf("no cycle warning in %v", topo.Warnings())
	}
	n := 0
	topo.EachCI(func(*CI) { n++ })
	m := 0
	topo.EachRelation(func(Relation) { m++ })
	if n != topo.Len() || n != 16 || m != topo.NumRelations() || m != 15 {
		t.Errorf("EachCI %d, EachRelation %d", n, m)
	}
}

func TestQueriesIndexAPIAllocs(t *testing.T) {
	topo := mustBuild(t, smallYAML)
	a, _ := topo.Node("app-a")
	s, _ := topo.Node("site-a")
	buf := make([]Node, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		buf = topo.AppendDependents(buf[:0], s, 0)
		buf = topo.AppendDependencies(buf[:0], a, 2)
		topo.ImpactedServicesOf(s)
		topo.PathLen(a, s, 5)
		topo.DependsOnPathLen(a, s, 5)
	})
	if allocs != 0 {
		t.Errorf("index-based queries allocate %v times", allocs)
	}
}

// TestImpactIndexMatchesWalk checks the precomputed sets against a plain
// walk on every node of a generated estate with cycles, and the
// bidirectional path search against a one-sided BFS.
func TestImpactIndexMatchesWalk(t *testing.T) {
	doc := genDocument(t, genSpec{CIs: 5000, Relations: 15000, Seed: 9})
	topo, err := Build(doc, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if topo.impact.set == nil {
		t.Fatal("no index")
	}
	for n := range Node(topo.Len()) {
		if got, want := topo.ImpactedServicesOf(n), topo.impactedWalk(n); !slices.Equal(got, want) {
			t.Fatalf("node %s: index %v, walk %v", topo.ID(n), got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a, b := Node(rng.IntN(topo.Len())), Node(rng.IntN(topo.Len()))
		for _, directed := range []bool{false, true} {
			want, wok := bfsHops(topo, a, b, directed)
			got, ok := topo.hops(a, b, 0, directed)
			if ok != wok || got != want {
				t.Fatalf("%s -> %s directed %v: got %d %v, want %d %v", topo.ID(a), topo.ID(b), directed, got, ok, want, wok)
			}
			if wok && want > 1 {
				if _, ok := topo.hops(a, b, want-1, directed); ok {
					t.Fatalf("found within %d hops, shortest is %d", want-1, want)
				}
			}
		}
	}
	// A tiny index budget makes Build drop the index; answers stay.
	small, err := Build(genDocument(t, genSpec{CIs: 5000, Relations: 15000, Seed: 9}), BuildOptions{MaxImpactEntries: 10})
	if err != nil {
		t.Fatal(err)
	}
	if small.impact.set != nil {
		t.Fatal("index kept over budget")
	}
	for n := range Node(small.Len()) {
		if got, want := small.ImpactedServicesOf(n), topo.ImpactedServicesOf(n); !slices.Equal(got, want) {
			t.Fatalf("node %d: %v, want %v", n, got, want)
		}
	}
}

// bfsHops is the plain one-sided breadth-first search.
func bfsHops(t *Topology, a, b Node, directed bool) (int, bool) {
	dist := map[Node]int{a: 0}
	q := []Node{a}
	for len(q) > 0 {
		u := q[0]
		q = q[1:]
		if u == b {
			return dist[u], true
		}
		next := slices.Clone(t.out.of(int32(u)))
		if !directed {
			next = append(next, t.in.of(int32(u))...)
		}
		for _, w := range next {
			if _, seen := dist[Node(w)]; !seen {
				dist[Node(w)] = dist[u] + 1
				q = append(q, Node(w))
			}
		}
	}
	return 0, false
}

func TestVersion(t *testing.T) {
	a := mustBuild(t, smallYAML)
	// Reordered CIs and relations, same content: same version.
	doc, err := DecodeNative(stringsReader(smallYAML))
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(doc.CIs)
	slices.Reverse(doc.Relations)
	b, err := Build(doc, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != b.Version() || len(a.Version()) != 16 {
		t.Errorf("versions %s, %s", a.Version(), b.Version())
	}
	// Explicit default criticality: same content.
	doc, _ = DecodeNative(stringsReader(smallYAML))
	doc.CIs[0].Criticality = DefaultCriticality
	c, _ := Build(doc, BuildOptions{})
	if c.Version() != a.Version() {
		t.Error("explicit default criticality changed the version")
	}
	for i, change := range []func(d *Document){
		func(d *Document) { d.CIs[0].Name = "x" },
		func(d *Document) { d.CIs[6].Attributes["site"] = "b" },
		func(d *Document) { d.CIs[0].Aliases = []string{"x"} },
		func(d *Document) { d.Relations[0].Type = "located_in" },
		func(d *Document) { d.Relations = d.Relations[1:] },
		func(d *Document) {
			d.Relations[0].Source, d.Relations[0].Target = d.Relations[0].Target, d.Relations[0].Source
		},
	} {
		doc, _ := DecodeNative(stringsReader(smallYAML))
		change(doc)
		d, err := Build(doc, BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Version() == a.Version() {
			t.Errorf("change %d kept the version", i)
		}
	}
	if Empty().Version() == a.Version() || Empty().Len() != 0 {
		t.Error("empty topology")
	}
}

// TestQueriesConcurrent runs every walking query from several goroutines
// on one topology (sharing its visit states) and checks each answer
// against one computed alone.
func TestQueriesConcurrent(t *testing.T) {
	topo, err := Build(genDocument(t, genSpec{CIs: 3000, Relations: 9000, Seed: 5}), BuildOptions{MaxImpactEntries: -1})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		a, b        Node
		hops, dhops int
		ok, dok     bool
		deps, dents int
		impacted    []Node
	}
	rng := rand.New(rand.NewPCG(7, 8))
	answers := make([]answer, 300)
	for i := range answers {
		a, b := Node(rng.IntN(topo.Len())), Node(rng.IntN(topo.Len()))
		h, ok := topo.PathLen(a, b, 6)
		dh, dok := topo.DependsOnPathLen(a, b, 0)
		answers[i] = answer{a, b, h, dh, ok, dok,
			len(topo.AppendDependencies(nil, a, 3)), len(topo.AppendDependents(nil, b, 0)), slices.Clone(topo.ImpactedServicesOf(b))}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			var buf []Node
			for r := range 5 {
				for i := range answers {
					w := &answers[(i*(g+1)+r)%len(answers)]
					h, ok := topo.PathLen(w.a, w.b, 6)
					dh, dok := topo.DependsOnPathLen(w.a, w.b, 0)
					buf = topo.AppendDependencies(buf[:0], w.a, 3)
					deps := len(buf)
					buf = topo.AppendDependents(buf[:0], w.b, 0)
					if h != w.hops || ok != w.ok || dh != w.dhops || dok != w.dok || deps != w.deps || len(buf) != w.dents ||
						!slices.Equal(topo.ImpactedServicesOf(w.b), w.impacted) {
						errs <- fmt.Sprintf("goroutine %d: answers for %d, %d differ", g, w.a, w.b)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
