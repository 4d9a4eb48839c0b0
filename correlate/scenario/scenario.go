// Package scenario generates deterministic correlation scenarios (a CMDB
// topology, a time-ordered event stream with injected faults and noise, and
// the ground truth) and scores the engine's incidents against the truth.
package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// Noise is the fault id of background events that belong to no fault.
const Noise = "noise"

// Options shape a scenario. Zero fields take the defaults in Generate.
type Options struct {
	Seed uint64
	// CIs is the approximate size of the topology (default 2000).
	CIs int
	// Faults is the number of injected faults (default 50).
	Faults int
	// Start is the time of the first fault (default 2026-01-01 UTC).
	Start time.Time
	// FaultGap is the mean time between fault onsets (default 3m), so
	// several faults overlap.
	FaultGap time.Duration
	// Cascade bounds the delay of a symptom alert after the fault (3m).
	Cascade time.Duration
	// Missing is the share of dependents that do not alert (0.15), and
	// RootMissing the share of faults whose root does not alert (0.1).
	Missing, RootMissing float64
	// Unbound is the share of symptom events without a CI (0.03).
	Unbound float64
	// NoisePerFault is the number of background noise events per fault (3).
	NoisePerFault int
}

// Fault is one injected fault.
type Fault struct {
	ID     string
	RootCI string
	Type   string
	Start  time.Time
}

// Truth is the ground truth of a scenario.
type Truth struct {
	// FaultOf maps each firing event's id to its fault id, or Noise.
	FaultOf map[string]string
	// Unbound holds the firing events generated without a CI.
	Unbound map[string]bool
	Faults  []Fault
}

// Scenario is a generated input with its truth.
type Scenario struct {
	Doc      *cmdb.Document
	Topology *cmdb.Topology
	// Events are time-ordered: firing and resolved alerts.
	Events []event.Event
	Truth  Truth
}

type gen struct {
	rng  *rand.Rand
	doc  *cmdb.Document
	site map[string]string // CI -> site
	typ  map[string]string
	ids  []string
	byTy map[string][]string
}

func (g *gen) add(id, typ, site string) {
	g.doc.CIs = append(g.doc.CIs, cmdb.CI{ID: id, Type: typ, Attributes: map[string]string{"site": site}})
	g.site[id], g.typ[id] = site, typ
	g.ids = append(g.ids, id)
	g.byTy[typ] = append(g.byTy[typ], id)
}

func (g *gen) rel(s, d, typ string) {
	g.doc.Relations = append(g.doc.Relations, cmdb.Relation{Source: s, Target: d, Type: typ})
}

// Generate builds a scenario; the same Options give the same scenario.
func Generate(o Options) (*Scenario, error) {
	if o.CIs == 0 {
		o.CIs = 2000
	}
	if o.Faults == 0 {
		o.Faults = 50
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.FaultGap == 0 {
		o.FaultGap = 3 * time.Minute
	}
	if o.Cascade == 0 {
		o.Cascade = 3 * time.Minute
	}
	if o.Missing == 0 {
		o.Missing = 0.15
	}
	if o.RootMissing == 0 {
		o.RootMissing = 0.1
	}
	if o.Unbound == 0 {
		o.Unbound = 0.03
	}
	if o.NoisePerFault == 0 {
		o.NoisePerFault = 3
	}
	g := &gen{rng: rand.New(rand.NewPCG(o.Seed, 0x5eed)), doc: &cmdb.Document{}, site: map[string]string{}, typ: map[string]string{}, byTy: map[string][]string{}}
	g.topology(o.CIs)
	topo, err := cmdb.Build(g.doc, cmdb.BuildOptions{})
	if err != nil {
		return nil, fmt.Errorf("build scenario topology: %w", err)
	}
	s := &Scenario{Doc: g.doc, Topology: topo, Truth: Truth{FaultOf: map[string]string{}, Unbound: map[string]bool{}}}
	g.faults(s, o)
	slices.SortStableFunc(s.Events, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	return s, nil
}

// topology builds sites -> ToR switches -> hosts -> VMs -> apps, databases
// on hosts used by some apps, and services over apps (about 5.4 CIs per
// host).
func (g *gen) topology(n int) {
	hosts := max(16, n*100/535)
	sites := max(2, hosts/25)
	perSwitch := 8
	var sw string
	var siteApps = map[string][]string{}
	for i := 0; i < sites; i++ {
		g.add(fmt.Sprintf("site-%d", i), "site", fmt.Sprintf("site-%d", i))
	}
	for h := 0; h < hosts; h++ {
		site := fmt.Sprintf("site-%d", h*sites/hosts)
		if h%perSwitch == 0 {
			sw = fmt.Sprintf("sw-%d", h/perSwitch)
			g.add(sw, "switch", site)
			g.rel(sw, site, cmdb.RelMemberOf)
		}
		host := fmt.Sprintf("host-%d", h)
		g.add(host, "host", site)
		g.rel(host, sw, cmdb.RelConnectedTo)
		if h%10 == 5 {
			db := fmt.Sprintf("db-%d", h/10)
			g.add(db, "database", site)
			g.rel(db, host, cmdb.RelRunsOn)
		}
		for v := 0; v < 2; v++ {
			vm := fmt.Sprintf("vm-%d-%d", h, v)
			app := fmt.Sprintf("app-%d-%d", h, v)
			g.add(vm, "vm", site)
			g.add(app, "application", site)
			g.rel(vm, host, cmdb.RelHostedOn)
			g.rel(app, vm, cmdb.RelRunsOn)
			siteApps[site] = append(siteApps[site], app)
		}
	}
	for _, app := range g.byTy["application"] {
		if g.rng.IntN(10) < 3 {
			var dbs []string
			for _, db := range g.byTy["database"] {
				if g.site[db] == g.site[app] {
					dbs = append(dbs, db)
				}
			}
			if len(dbs) > 0 {
				g.rel(app, dbs[g.rng.IntN(len(dbs))], cmdb.RelDependsOn)
			}
		}
	}
	for i := 0; i < len(g.byTy["application"])/20; i++ {
		site := fmt.Sprintf("site-%d", i%sites)
		svc := fmt.Sprintf("svc-%d", i)
		g.add(svc, cmdb.TypeService, site)
		apps := siteApps[site]
		for k := 0; k < 3; k++ {
			g.rel(svc, apps[g.rng.IntN(len(apps))], cmdb.RelDependsOn)
		}
	}
}

var alertNames = map[string]string{
	"switch": "SwitchDown", "host": "HostDown", "vm": "VMDown", "application": "AppDown",
	"database": "DatabaseDown", cmdb.TypeService: "ServiceDegraded", "site": "SiteDown",
}

func (g *gen) emit(s *Scenario, ci, alert, fault string, t, end time.Time, labels map[string]string, bind bool) {
	id := "ev-" + strconv.Itoa(len(s.Events))
	l := map[string]string{"alertname": alert, "site": g.site[ci]}
	for k, v := range labels {
		l[k] = v
	}
	if !bind {
		// No CI: the labels correlation groups an unbound alert by.
		l["cluster"] = g.site[ci]
		l["job"] = g.typ[ci]
	}
	fp := strconv.FormatUint(xxhash.Sum64String(ci+"\x00"+alert+"\x00"+fault), 16)
	e := event.Event{ID: id, Time: t, Source: "scenario", Kind: event.KindAlert, Status: event.StatusFiring,
		Severity: event.SeverityMajor, Labels: event.FromMap(l), Fingerprint: fp}
	if bind {
		e.CI = ci
	} else {
		s.Truth.Unbound[id] = true
	}
	s.Events = append(s.Events, e)
	s.Truth.FaultOf[id] = fault
	r := e
	r.ID = id + "-r"
	r.Time = end
	r.Status = event.StatusResolved
	s.Events = append(s.Events, r)
}

func (g *gen) faults(s *Scenario, o Options) {
	types := []string{"switch", "host", "host", "database", "application", cmdb.TypeService}
	type active struct {
		site     string
		from, to time.Time
	}
	var act []active
	t := o.Start
	for f := 0; f < o.Faults; f++ {
		t = t.Add(time.Duration(g.rng.Int64N(int64(2 * o.FaultGap))))
		dur := 5*time.Minute + time.Duration(g.rng.Int64N(int64(15*time.Minute)))
		// Concurrent faults are unrelated: a fault hits a site with no
		// fault active (or resolved less than 5m ago). When every site is
		// busy it takes the site idle longest.
		busyUntil := map[string]time.Time{}
		for _, a := range act {
			if u := a.to.Add(5 * time.Minute); u.After(busyUntil[a.site]) {
				busyUntil[a.site] = u
			}
		}
		var root string
		var bestUntil time.Time
		for try := 0; try < 200; try++ {
			cands := g.byTy[types[g.rng.IntN(len(types))]]
			c := cands[g.rng.IntN(len(cands))]
			u := busyUntil[g.site[c]]
			if root == "" || u.Before(bestUntil) {
				root, bestUntil = c, u
			}
			if !t.Before(u) {
				break
			}
		}
		end := t.Add(dur)
		act = append(act, active{g.site[root], t, end})
		fid := fmt.Sprintf("fault-%d", f)
		s.Truth.Faults = append(s.Truth.Faults, Fault{ID: fid, RootCI: root, Type: g.typ[root], Start: t})
		jitter := func(d time.Duration) time.Duration { return time.Duration(g.rng.Int64N(int64(d))) }
		if g.rng.Float64() >= o.RootMissing {
			g.emit(s, root, alertNames[g.typ[root]], fid, t.Add(jitter(20*time.Second)), end.Add(jitter(time.Minute)), nil, true)
		}
		for _, d := range s.Topology.Dependents(root, 3) {
			if g.rng.Float64() < o.Missing {
				continue
			}
			bind := g.rng.Float64() >= o.Unbound
			g.emit(s, d, alertNames[g.typ[d]], fid, t.Add(10*time.Second+jitter(o.Cascade-10*time.Second)), end.Add(jitter(2*time.Minute)), nil, bind)
		}
	}
	// Background noise over the whole span.
	span := t.Sub(o.Start) + 30*time.Minute
	for i := 0; i < o.NoisePerFault*o.Faults; i++ {
		ci := g.ids[g.rng.IntN(len(g.ids))]
		at := o.Start.Add(time.Duration(g.rng.Int64N(int64(span))))
		g.emit(s, ci, "HighLatency", Noise+strconv.Itoa(i), at, at.Add(time.Minute+jitterN(g.rng, 9*time.Minute)), nil, true)
		s.Truth.FaultOf[s.Events[len(s.Events)-2].ID] = Noise
	}
}

func jitterN(r *rand.Rand, d time.Duration) time.Duration { return time.Duration(r.Int64N(int64(d))) }
