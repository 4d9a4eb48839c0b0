package cmdb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/correlatord/correlatord/event"
)

// The synthetic estate of the benchmarks and of the larger tests: a
// deterministic, realistic topology of any size.
//
//	sites <- core switches <- access switches <- hosts <- VMs <- databases
//	                                                        <- applications <- services
//
// Per 1,000 CIs: 2 services, 2 switches, 50 hosts, 400 VMs, 50 databases,
// about 496 applications, and a site per 50,000 (at least 2). Each host
// hangs off two access switches of its site; VMs, databases and
// applications run on random VMs/hosts; half the databases replicate from
// a primary. Applications belong to a service's group and call apps further
// down their group (a DAG), 5% of calls go to the shared platform group
// (group 0: auth, messaging, ...), and one call in ten thousand goes back
// up, making a few cycles. Each service depends on the first five apps of
// its group. Call relations fill the relation budget.
type genSpec struct {
	CIs, Relations int
	Seed           uint64
}

type genLayout struct {
	services, sites, switches, hosts, vms, dbs, apps int
}

func (s genSpec) layout() genLayout {
	n := s.CIs
	l := genLayout{
		services: max(3, n/500),
		sites:    max(2, n/50000),
		hosts:    max(4, n/20),
		vms:      max(8, n*2/5),
		dbs:      max(2, n/20),
	}
	l.switches = max(3*l.sites, n/500)
	l.apps = n - l.services - l.sites - l.switches - l.hosts - l.vms - l.dbs
	if l.apps < l.services {
		panic(fmt.Sprintf("genSpec: %d CIs is too few", n))
	}
	return l
}

// genID returns the id of the i-th CI of a kind.
func genID(kind string, i int) string { return fmt.Sprintf("%s-%06d", kind, i) }

func genFQDN(kind string, i, site int) string {
	return fmt.Sprintf("%s-%06d.dc%02d.example.com", kind, i, site)
}

func genIP(kind, i int) string {
	return fmt.Sprintf("10.%d.%d.%d", kind, (i>>8)&255, i&255) // kind keeps ranges apart
}

// genWriter writes the native JSON by hand: encoding a million-CI Document
// with encoding/json would need it in memory first.
type genWriter struct {
	w     *bufio.Writer
	first bool
	rels  int
}

func (g *genWriter) str(s string) { g.w.WriteString(strconv.Quote(s)) }

func (g *genWriter) ci(id, typ, name string, crit int, group string, aliases []string, attrs ...string) {
	if !g.first {
		g.w.WriteString(",\n")
	}
	g.first = false
	g.w.WriteString(`{"id":`)
	g.str(id)
	g.w.WriteString(`,"type":`)
	g.str(typ)
	if name != "" {
		g.w.WriteString(`,"name":`)
		g.str(name)
	}
	if crit != 0 {
		g.w.WriteString(`,"criticality":`)
		g.w.WriteString(strconv.Itoa(crit))
	}
	if group != "" {
		g.w.WriteString(`,"support_group":`)
		g.str(group)
	}
	if len(aliases) > 0 {
		g.w.WriteString(`,"aliases":[`)
		for i, a := range aliases {
			if i > 0 {
				g.w.WriteByte(',')
			}
			g.str(a)
		}
		g.w.WriteByte(']')
	}
	if len(attrs) > 0 {
		g.w.WriteString(`,"attributes":{`)
		for i := 0; i+1 < len(attrs); i += 2 {
			if i > 0 {
				g.w.WriteByte(',')
			}
			g.str(attrs[i])
			g.w.WriteByte(':')
			g.str(attrs[i+1])
		}
		g.w.WriteByte('}')
	}
	g.w.WriteByte('}')
}

func (g *genWriter) rel(src, dst, typ string) {
	if !g.first {
		g.w.WriteString(",\n")
	}
	g.first = false
	g.w.WriteString(`{"source":`)
	g.str(src)
	g.w.WriteString(`,"target":`)
	g.str(dst)
	g.w.WriteString(`,"type":`)
	g.str(typ)
	g.w.WriteByte('}')
	g.rels++
}

// genWrite writes the synthetic estate as native JSON.
func genWrite(w io.Writer, spec genSpec) error {
	l := spec.layout()
	rng := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15))
	g := &genWriter{w: bufio.NewWriterSize(w, 1<<20), first: true}
	site := func(i, n int) int { return i * l.sites / n }
	siteAttr := func(s int) string { return fmt.Sprintf("dc%02d", s) }
	groupOfApp := func(a int) int { return int(int64(a) * int64(l.services) / int64(l.apps)) }
	groupRange := func(gr, n int) (int, int) {
		lo := int((int64(gr)*int64(n) + int64(l.services) - 1) / int64(l.services))
		hi := int((int64(gr+1)*int64(n) + int64(l.services) - 1) / int64(l.services))
		return lo, hi
	}
	teams := []string{"payments", "orders", "search", "identity", "platform", "data", "web", "mobile"}

	g.w.WriteString("{\"cis\":[\n")
	for s := range l.services {
		g.ci(genID("svc", s), TypeService, fmt.Sprintf("Business service %d", s), 1+s%3, "service-desk", nil,
			"env", "prod", "team", teams[s%len(teams)])
	}
	for s := range l.sites {
		g.ci(genID("site", s), "site", fmt.Sprintf("Datacenter %d", s), 1, "facilities", []string{siteAttr(s)})
	}
	for i := range l.switches {
		s := i % l.sites
		g.ci(genID("sw", i), "switch", "", 2, "network", []string{genFQDN("sw", i, s), genIP(1, i)}, "site", siteAttr(s))
	}
	for i := range l.hosts {
		s := site(i, l.hosts)
		g.ci(genID("host", i), "host", "", 0, "unix", []string{genFQDN("host", i, s), genIP(2, i)},
			"site", siteAttr(s), "env", "prod")
	}
	for i := range l.vms {
		s := i % l.sites
		g.ci(genID("vm", i), "vm", "", 0, "unix", []string{genFQDN("vm", i, s), genIP(3+(i>>16), i)},
			"site", siteAttr(s), "env", "prod")
	}
	for i := range l.dbs {
		g.ci(genID("db", i), "database", fmt.Sprintf("Database %d", i), 1+i%2, "dba", []string{fmt.Sprintf("db-%06d.db.example.com", i)},
			"engine", []string{"postgres", "mysql", "oracle"}[i%3])
	}
	for i := range l.apps {
		gr := groupOfApp(i)
		g.ci(genID("app", i), "application", "", 0, teams[gr%len(teams)], []string{fmt.Sprintf("app-%06d.svc.cluster.local", i)},
			"team", teams[gr%len(teams)], "env", "prod")
	}
	g.w.WriteString("\n],\n\"relations\":[\n")
	g.first = true

	// Infrastructure.
	for i := range l.switches {
		s := i % l.sites
		if i < 2*l.sites { // core switches
			g.rel(genID("sw", i), genID("site", s), RelMemberOf)
			continue
		}
		g.rel(genID("sw", i), genID("sw", s), RelConnectedTo)
		g.rel(genID("sw", i), genID("sw", s+l.sites), RelConnectedTo)
	}
	accessOf := func(s int, k int) int {
		// The k-th access switch of site s (switches i >= 2*sites with i%sites == s).
		per := (l.switches - 2*l.sites) / l.sites
		if per < 1 {
			return s // the core switch
		}
		return 2*l.sites + (k%per)*l.sites + s
	}
	for i := range l.hosts {
		s := site(i, l.hosts)
		a := rng.IntN(1 << 20)
		g.rel(genID("host", i), genID("sw", accessOf(s, a)), RelConnectedTo)
		g.rel(genID("host", i), genID("sw", accessOf(s, a+1)), RelConnectedTo)
	}
	hostInSite := func(s int) int {
		lo := (s*l.hosts + l.sites - 1) / l.sites
		hi := ((s+1)*l.hosts + l.sites - 1) / l.sites
		return lo + rng.IntN(max(1, hi-lo))
	}
	for i := range l.vms {
		g.rel(genID("vm", i), genID("host", hostInSite(i%l.sites)), RelRunsOn)
	}
	for i := range l.dbs {
		g.rel(genID("db", i), genID("vm", rng.IntN(l.vms)), RelRunsOn)
		if i%2 == 1 {
			g.rel(genID("db", i), genID("db", i-1), RelDependsOn)
		}
	}
	// Services and applications.
	for s := range l.services {
		lo, hi := groupRange(s, l.apps)
		for a := lo; a < min(hi, lo+5); a++ {
			g.rel(genID("svc", s), genID("app", a), RelDependsOn)
		}
	}
	fixed := g.rels + l.apps + l.apps/5*3 + min(l.apps%5, 3)
	budget := max(0, spec.Relations-fixed)
	var picked []int
	for a := range l.apps {
		gr := groupOfApp(a)
		g.rel(genID("app", a), genID("vm", rng.IntN(l.vms)), RelRunsOn)
		if a%5 < 3 {
			dlo, dhi := groupRange(gr, l.dbs)
			d := dlo
			if dhi > dlo {
				d += rng.IntN(dhi - dlo)
			}
			g.rel(genID("app", a), genID("db", min(d, l.dbs-1)), RelDependsOn)
		}
		calls := budget / l.apps
		if a < budget%l.apps {
			calls++
		}
		lo, hi := groupRange(gr, l.apps)
		plo, phi := groupRange(0, l.apps)
		picked = picked[:0]
		for c := 0; c < calls; c++ {
			var b int
			for try := 0; ; try++ {
				r := rng.Float64()
				switch {
				case r < 0.0001 && a > lo:
					b = lo + rng.IntN(a-lo) // back up the group: a cycle
				case r < 0.05 || a+1 >= hi:
					b = plo + rng.IntN(phi-plo)
				default:
					b = a + 1 + rng.IntN(hi-a-1)
				}
				dup := b == a
				for _, p := range picked {
					dup = dup || p == b
				}
				if !dup || try > 20 {
					break
				}
			}
			if b == a {
				b = (a + 1) % l.apps
			}
			picked = append(picked, b)
			g.rel(genID("app", a), genID("app", b), RelDependsOn)
		}
	}
	g.w.WriteString("\n]}\n")
	return g.w.Flush()
}

// genDocument returns the synthetic estate as a Document.
func genDocument(t testing.TB, spec genSpec) *Document {
	t.Helper()
	var buf bytes.Buffer
	if err := genWrite(&buf, spec); err != nil {
		t.Fatal(err)
	}
	doc, err := DecodeNativeJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// genEvents returns n events over the estate of spec, labelled the way
// exporters label them: node exporter instances (fqdn:9100), IPs in a host
// label, pods named after apps, explicit CIs, and a tenth that bind to
// nothing.
func genEvents(spec genSpec, n int) []*event.Event {
	l := spec.layout()
	rng := rand.New(rand.NewPCG(spec.Seed+1, 7))
	evs := make([]*event.Event, n)
	for i := range evs {
		e := &event.Event{Labels: event.FromMap(map[string]string{"alertname": "Test", "severity": "critical"})}
		switch i % 10 {
		case 0, 1, 2:
			v := rng.IntN(l.vms)
			e.Labels = e.Labels.Set("instance", genFQDN("vm", v, v%l.sites)+":9100")
			e.Labels = e.Labels.Set("job", "node")
		case 3:
			h := rng.IntN(l.hosts)
			e.Labels = e.Labels.Set("instance", "["+"fd00::"+strconv.FormatInt(int64(h), 16)+"]:9100") // unknown IPv6
			e.Labels = e.Labels.Set("host", genIP(2, h))
		case 4, 5:
			a := rng.IntN(l.apps)
			e.Labels = e.Labels.Set("pod", "APP-"+fmt.Sprintf("%06d", a))
			e.Labels = e.Labels.Set("namespace", "prod")
		case 6:
			e.CI = genID("db", rng.IntN(l.dbs))
		case 7:
			e.CI = "retired-ci"
			e.Labels = e.Labels.Set("hostname", genID("HOST", rng.IntN(l.hosts)))
		case 8:
			s := rng.IntN(l.switches)
			e.Labels = e.Labels.Set("instance", "https://"+genFQDN("sw", s, s%l.sites)+":443/metrics")
		case 9:
			e.Labels = e.Labels.Set("instance", fmt.Sprintf("unknown-%d.example.org:9100", i))
			e.Labels = e.Labels.Set("job", "blackbox")
		}
		evs[i] = e
	}
	return evs
}

func TestGenerator(t *testing.T) {
	spec := genSpec{CIs: 20000, Relations: 60000, Seed: 1}
	doc := genDocument(t, spec)
	if len(doc.CIs) != spec.CIs || len(doc.Relations) != spec.Relations {
		t.Fatalf("generated %d CIs and %d relations, want %d and %d", len(doc.CIs), len(doc.Relations), spec.CIs, spec.Relations)
	}
	topo, err := Build(doc, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic.
	again, err := Build(genDocument(t, spec), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if topo.Version() != again.Version() {
		t.Fatalf("versions differ: %s, %s", topo.Version(), again.Version())
	}
	var cycles int
	for _, w := range topo.Warnings() {
		if bytes.Contains([]byte(w.Msg), []byte("cycle")) {
			cycles++
		}
	}
	t.Logf("components %d, services %d, warnings %d (cycles among the first: %d), impact sets %d, entries %d",
		topo.Components(), len(topo.Services()), topo.WarningsTotal(), cycles, len(topo.impact.start)-1, len(topo.impact.pool))
	bound := 0
	for _, e := range genEvents(spec, 1000) {
		if _, ok := topo.Bind(e); ok {
			bound++
		}
	}
	if bound < 850 || bound > 950 {
		t.Errorf("%d of 1000 generated events bound, want about 900", bound)
	}
}
