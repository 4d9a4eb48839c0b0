package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/event"
)

// benchRules returns a rule file of n rules shaped like a real one: most
// keyed by alertname (indexed), some by job or a severity set, and about 5%
// that the index cannot key (regexps, CMDB attributes) and every event
// evaluates; plus maintenance windows and inhibit rules.
func benchRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: rule-%d\n", i)
		switch {
		case i%20 == 7: // unindexed: a regexp and a CMDB attribute
			fmt.Fprintf(&b, "    matchers: ['ci.site=\"site-%d\"', 'alertname=~\"Disk.*%d\"']\n    class: warning\n", i, i)
		case i%10 == 3:
			fmt.Fprintf(&b, "    matchers: ['job=\"job-%d\"', 'instance=~\"host-.*\"']\n    drop: true\n", i)
		case i%10 == 5:
			fmt.Fprintf(&b, "    matchers: ['alertname=~\"A%d|B%d|C%d\"', 'env=\"prod\"']\n    enrich: [site]\n", i, i, i)
		default:
			fmt.Fprintf(&b, "    matchers: ['alertname=\"Alert%d\"', 'severity=~\"critical|major\"']\n    class: exception\n    set: {labels: {team: team-%d}}\n", i, i%17)
		}
	}
	b.WriteString(`maintenance:
  - name: weekly
    matchers: ['ci.site="site-3"']
    recurring: {every: week, days: [sun], at: "02:00", duration: 2h, time_zone: Europe/Paris}
  - name: one-off
    cis: [ci-1, ci-2]
    start: 2020-01-01T00:00:00Z
    end: 2020-01-02T00:00:00Z
inhibit:
  - name: host-down
    source_matchers: ['alertname="HostDown"']
    topology: {max_hops: 3}
  - name: crit-over-warn
    source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, instance]
`)
	return b.String()
}

func benchTopology(n int) *fixtureTopology {
	doc := &cmdb.Document{}
	for i := 0; i < n; i++ {
		doc.CIs = append(doc.CIs, cmdb.CI{ID: fmt.Sprintf("ci-%d", i), Type: "vm", Attributes: map[string]string{"site": fmt.Sprintf("dc-%d", i%4), "env": "prod"}})
		if i > 0 {
			doc.Relations = append(doc.Relations, cmdb.Relation{Source: fmt.Sprintf("ci-%d", i), Target: fmt.Sprintf("ci-%d", i/8), Type: "runs_on"})
		}
	}
	return newFixtureTopology(doc)
}

// benchEvents returns n distinct firing alerts that no rule matches.
func benchEvents(tb testing.TB, n int, match bool) []event.Event {
	evs := make([]event.Event, n)
	sev := []event.Severity{"critical", "major", "minor", "warning", "info"}
	for i := range evs {
		name := fmt.Sprintf("NoMatch%d", i)
		if match {
			name = fmt.Sprintf("Alert%d", (i*2)%500) // even rules are exception/set rules
		}
		evs[i] = event.Event{
			Time:     time.Unix(1e9, 0),
			Source:   "prometheus",
			Severity: sev[i%len(sev)],
			CI:       fmt.Sprintf("ci-%d", i%1000),
			Labels: event.FromMap(map[string]string{
				"alertname": name, "instance": fmt.Sprintf("host-%d:9100", i),
				"job": "node", "env": "prod", "severity": string(sev[i%len(sev)]),
			}),
		}
		if match {
			evs[i].Severity = "critical"
		}
		if err := event.Normalize(&evs[i], event.DefaultDefaults); err != nil {
			tb.Fatal(err)
		}
	}
	return evs
}

func benchEngine(tb testing.TB, rules int) *Engine {
	rs, err := Parse("bench.yml", []byte(benchRules(rules)))
	if err != nil {
		tb.Fatal(err)
	}
	topo := benchTopology(1000)
	changes := NewChangeStore(ChangeStoreOptions{})
	if err := changes.Apply(ChangeRecord{ID: "CHG1", CIs: []string{"ci-999"}, Status: ChangeApproved,
		PlannedStart: time.Unix(0, 0), PlannedEnd: time.Unix(10, 0)}); err != nil {
		tb.Fatal(err)
	}
	en, err := NewEngine(EngineOptions{
		Rules:    func() *RuleSet { return rs },
		Topology: func() Topology { return topo },
		Changes:  changes,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return en
}

// BenchmarkProcess measures the whole rules stage (rules, dedup, flapping,
// windows, changes, inhibition) over 500 rules, one op = one batch of 256
// events; ns/event and events/s are reported.
func BenchmarkProcess(b *testing.B) {
	for _, bc := range []struct {
		name  string
		rules int
		match bool
	}{
		{"rules=500/no-match", 500, false},
		{"rules=500/match", 500, true},
		{"rules=50/no-match", 50, false},
		{"rules=5000/no-match", 5000, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			en := benchEngine(b, bc.rules)
			evs := benchEvents(b, 4096, bc.match)
			const batch = 256
			out := make([]Decision, 0, batch)
			now := time.Unix(1.7e9, 0)
			// Warm the state: every alert seen once.
			for i := 0; i < len(evs); i += batch {
				out = en.Process(evs[i:i+batch], now, out[:0])
			}
			b.ReportAllocs()
			i := 0
			n := 0
			for b.Loop() {
				out = en.Process(evs[i:i+batch], now, out[:0])
				i = (i + batch) % len(evs)
				n += batch
			}
			el := b.Elapsed()
			b.ReportMetric(float64(el.Nanoseconds())/float64(n), "ns/event")
			b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		})
	}
}
