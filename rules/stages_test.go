package rules

import (
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
)

func TestDedup(t *testing.T) {
	t.Run("repeats update the record", func(t *testing.T) {
		h := newHarness(t, `rules: []`)
		d := h.dec(0, alert("A"))
		h.want(d, ClassException, OutcomePass, true)
		if d.DedupCount != 1 || !d.FirstSeen.Equal(t0) {
			t.Errorf("first: count %d first seen %s", d.DedupCount, d.FirstSeen)
		}
		d = h.dec(time.Minute, alert("A"))
		h.want(d, ClassException, OutcomeDeduplicated, false)
		if d.DedupCount != 2 || !d.FirstSeen.Equal(t0) {
			t.Errorf("repeat: count %d first seen %s", d.DedupCount, d.FirstSeen)
		}
		// Another alert is not a repeat.
		h.want(h.dec(time.Minute, alert("B")), ClassException, OutcomePass, true)
		// Resolution passes; a repeated resolution is a duplicate.
		h.want(h.dec(2*time.Minute, resolved(alert("A"))), ClassException, OutcomePass, true)
		h.want(h.dec(3*time.Minute, resolved(alert("A"))), ClassException, OutcomeDeduplicated, false)
		// Firing again is a new episode.
		d = h.dec(4*time.Minute, alert("A"))
		h.want(d, ClassException, OutcomePass, true)
		if d.DedupCount != 1 || !d.FirstSeen.Equal(t0.Add(4*time.Minute)) {
			t.Errorf("new episode: count %d first seen %s", d.DedupCount, d.FirstSeen)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Dedup.Disabled = true }))
		h.want(h.dec(0, alert("A")), ClassException, OutcomePass, true)
		d := h.dec(time.Minute, alert("A"))
		h.want(d, ClassException, OutcomePass, true)
		if d.DedupCount != 2 {
			t.Errorf("count %d", d.DedupCount)
		}
	})
	t.Run("a dropped alert keeps no state", func(t *testing.T) {
		h := newHarness(t, `rules: [{name: d, matchers: ['alertname="A"'], drop: true}]`)
		h.want(h.dec(0, alert("A")), ClassException, OutcomeDropped, false)
		h.want(h.dec(time.Minute, resolved(alert("A"))), ClassException, OutcomeDropped, false)
		if len(h.en.alerts) != 0 {
			t.Errorf("%d entries", len(h.en.alerts))
		}
	})
}

func TestFlapping(t *testing.T) {
	flap := func(h *harness, n int) []Decision {
		var ds []Decision
		for i := 0; i < n; i++ {
			e := alert("Flap")
			if i%2 == 1 {
				e = resolved(e)
			}
			ds = append(ds, h.dec(time.Duration(i)*time.Minute, e))
		}
		return ds
	}
	t.Run("detected, held, released once stable", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Flapping.Threshold = 3; c.Flapping.Window = 10 * time.Minute }))
		ds := flap(h, 6) // F R F R F R: the 4th change (event 4, firing) is the 4th > 3
		for i := 0; i < 4; i++ {
			if ds[i].Flapping || !ds[i].Correlate {
				t.Errorf("event %d: %+v", i, ds[i])
			}
		}
		// Found flapping on a firing delivery: passed on once, flagged.
		h.want(ds[4], ClassException, OutcomePass, true)
		if !ds[4].Flapping {
			t.Error("event 4 not flagged flapping")
		}
		// Further changes are held: the resolution too, for now.
		h.want(ds[5], ClassException, OutcomeFlappingHeld, false)
		h.want(h.dec(6*time.Minute, alert("Flap")), ClassException, OutcomeFlappingHeld, false)
		h.want(h.dec(7*time.Minute, resolved(alert("Flap"))), ClassException, OutcomeFlappingHeld, false)
		if got := h.tick(16 * time.Minute); len(got) != 0 {
			t.Errorf("released before stable: %+v", got)
		}
		got := h.tick(17 * time.Minute)
		if len(got) != 1 || got[0].Event.Status != event.StatusResolved || !got[0].Decision.Correlate || got[0].Decision.Outcome != OutcomePass {
			t.Fatalf("release: %+v", got)
		}
		if st, ok := h.en.alerts[fpOf(alert("Flap"))]; !ok || st.flapping {
			t.Errorf("still flapping: %v %+v", ok, st)
		}
		// Stable and resolved: a new firing is a new incident.
		h.want(h.dec(20*time.Minute, alert("Flap")), ClassException, OutcomePass, true)
	})
	t.Run("stable while firing: nothing to release, the incident stays open", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Flapping.Threshold = 3; c.Flapping.Window = 10 * time.Minute }))
		flap(h, 7) // ends firing
		if got := h.tick(time.Hour); len(got) != 0 {
			t.Errorf("released %+v", got)
		}
		h.want(h.dec(61*time.Minute, alert("Flap")), ClassException, OutcomeDeduplicated, false)
	})
	t.Run("an event after the stable period carries the final state", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Flapping.Threshold = 3; c.Flapping.Window = 10 * time.Minute }))
		flap(h, 6) // ends resolved, held
		h.want(h.dec(time.Hour, resolved(alert("Flap"))), ClassException, OutcomePass, true)
		if got := h.tick(2 * time.Hour); len(got) != 0 {
			t.Errorf("released twice: %+v", got)
		}
	})
	t.Run("changes spread over more than the window are not flapping", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Flapping.Threshold = 3; c.Flapping.Window = 10 * time.Minute }))
		for i := 0; i < 10; i++ {
			e := alert("Slow")
			if i%2 == 1 {
				e = resolved(e)
			}
			if d := h.dec(time.Duration(i)*5*time.Minute, e); d.Flapping || !d.Correlate {
				t.Fatalf("event %d: %+v", i, d)
			}
		}
	})
	t.Run("disabled", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Flapping.Disabled = true }))
		for i, d := range flap(h, 12) {
			if d.Flapping || !d.Correlate {
				t.Fatalf("event %d: %+v", i, d)
			}
		}
	})
}

func fpOf(e event.Event) uint64 {
	e.Time = t0
	if err := event.Normalize(&e, event.DefaultDefaults); err != nil {
		panic(err)
	}
	return fpHash(e.Fingerprint)
}

func TestMaintenance(t *testing.T) {
	rules := `
maintenance:
  - name: by-ci
    cis: [db-1]
    start: 2026-01-05T10:00:00Z
    end: 2026-01-05T11:00:00Z
  - name: by-matchers
    matchers: ['ci.site="lyon"', 'alertname=~"Disk.*"']
    start: 2026-01-05T10:00:00Z
    end: 2026-01-05T11:00:00Z
  - name: both
    cis: [vm-1]
    matchers: ['alertname="Backup"']
    start: 2026-01-05T10:00:00Z
    end: 2026-01-05T11:00:00Z
  - name: sunday-nights
    matchers: ['team="ops"']
    recurring: {every: week, days: [sun], at: "02:00", duration: 2h, time_zone: Europe/Paris}
`
	cases := []struct {
		name   string
		at     time.Duration
		event  event.Event
		window string
	}{
		{"by CI, inside", 0, onCI(alert("A"), "db-1"), "by-ci"},
		{"by CI, end is exclusive", time.Hour, onCI(alert("A"), "db-1"), ""},
		{"by CI, another CI", 0, onCI(alert("A"), "vm-1"), ""},
		{"by matchers", 30 * time.Minute, onCI(alert("DiskFull"), "vm-2"), "by-matchers"},
		{"by matchers, not matching", 30 * time.Minute, onCI(alert("CPU"), "vm-2"), ""},
		{"CI and matchers must both hold", 0, onCI(alert("Backup"), "vm-1"), "both"},
		{"CI without the matchers", 0, onCI(alert("Other"), "vm-1"), ""},
		// Sunday 2026-01-11 02:30 Paris is 01:30 UTC; t0 is Monday 10:00 UTC.
		{"recurring, inside", 6*24*time.Hour - 8*time.Hour - 30*time.Minute, alert("A", "team", "ops"), "sunday-nights"},
		{"recurring, outside", 6*24*time.Hour - 6*time.Hour, alert("A", "team", "ops"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, rules)
			d := h.dec(tc.at, tc.event)
			if d.Maintenance != tc.window {
				t.Fatalf("window %q, want %q", d.Maintenance, tc.window)
			}
			if tc.window != "" {
				h.want(d, ClassException, OutcomeMaintenance, false)
			} else {
				h.want(d, ClassException, OutcomePass, true)
			}
		})
	}
	t.Run("an alert still firing when the window ends is passed on", func(t *testing.T) {
		h := newHarness(t, rules)
		h.want(h.dec(0, onCI(alert("A"), "db-1")), ClassException, OutcomeMaintenance, false)
		h.want(h.dec(30*time.Minute, onCI(alert("A"), "db-1")), ClassException, OutcomeMaintenance, false)
		h.want(h.dec(61*time.Minute, onCI(alert("A"), "db-1")), ClassException, OutcomePass, true)
		h.want(h.dec(62*time.Minute, onCI(alert("A"), "db-1")), ClassException, OutcomeDeduplicated, false)
	})
}

func TestChangeWindows(t *testing.T) {
	rec := func(id string, st ChangeStatus, ci string) ChangeRecord {
		return ChangeRecord{ID: id, CIs: []string{ci}, Status: st, PlannedStart: t0, PlannedEnd: t0.Add(time.Hour)}
	}
	t.Run("events on a CI under change are tagged and suppressed", func(t *testing.T) {
		h := newHarness(t, `rules: []`)
		if err := h.changes.Apply(rec("CHG1", ChangeApproved, "db-1")); err != nil {
			t.Fatal(err)
		}
		d := h.dec(10*time.Minute, onCI(alert("A"), "db-1"))
		h.want(d, ClassException, OutcomeChangeWindow, false)
		if d.ChangeID != "CHG1" {
			t.Errorf("change id %q", d.ChangeID)
		}
		h.want(h.dec(10*time.Minute, onCI(alert("A"), "vm-1")), ClassException, OutcomePass, true)
		h.want(h.dec(61*time.Minute, onCI(alert("B"), "db-1")), ClassException, OutcomePass, true)
	})
	t.Run("open_incidents: tagged, not suppressed", func(t *testing.T) {
		h := newHarness(t, `rules: []`, withConfig(func(c *Config) { c.Changes.OpenIncidents = true }))
		_ = h.changes.Apply(rec("CHG1", ChangeInProgress, "db-1"))
		d := h.dec(10*time.Minute, onCI(alert("A"), "db-1"))
		h.want(d, ClassException, OutcomePass, true)
		if d.ChangeID != "CHG1" {
			t.Errorf("change id %q", d.ChangeID)
		}
	})
	t.Run("cancelled changes do not count", func(t *testing.T) {
		h := newHarness(t, `rules: []`)
		_ = h.changes.Apply(rec("CHG1", ChangeApproved, "db-1"))
		_ = h.changes.Apply(rec("CHG1", ChangeCancelled, "db-1"))
		d := h.dec(10*time.Minute, onCI(alert("A"), "db-1"))
		h.want(d, ClassException, OutcomePass, true)
	})
	t.Run("maintenance wins but the change id is still tagged", func(t *testing.T) {
		h := newHarness(t, `maintenance: [{name: m, cis: [db-1], start: "2026-01-05T10:00:00Z", end: "2026-01-05T12:00:00Z"}]`)
		_ = h.changes.Apply(rec("CHG1", ChangeApproved, "db-1"))
		d := h.dec(10*time.Minute, onCI(alert("A"), "db-1"))
		h.want(d, ClassException, OutcomeMaintenance, false)
		if d.ChangeID != "CHG1" || d.Maintenance != "m" {
			t.Errorf("tags %+v", d)
		}
	})
}

func TestInhibition(t *testing.T) {
	equal := `
inhibit:
  - name: crit-over-warn
    source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|minor"']
    equal: [alertname, instance]
`
	t.Run("equal labels", func(t *testing.T) {
		h := newHarness(t, equal)
		src, srcD := h.at(0, sev(alert("Q", "instance", "a"), "critical"))
		h.want(srcD, ClassException, OutcomePass, true)
		d := h.dec(time.Minute, sev(alert("Q", "instance", "a", "x", "1"), "minor"))
		h.want(d, ClassException, OutcomeInhibited, true)
		if d.InhibitedBy != src.Fingerprint || d.InhibitRule != "crit-over-warn" {
			t.Errorf("tags %+v", d)
		}
		// A repeat of the symptom is deduplicated.
		h.want(h.dec(2*time.Minute, sev(alert("Q", "instance", "a", "x", "1"), "minor")), ClassException, OutcomeDeduplicated, false)
		// Other instance: not inhibited.
		h.want(h.dec(time.Minute, sev(alert("Q", "instance", "b", "x", "1"), "minor")), ClassException, OutcomePass, true)
		// The source resolves: the symptom, still firing, now opens its own incident.
		h.dec(3*time.Minute, resolved(sev(alert("Q", "instance", "a"), "critical")))
		h.want(h.dec(4*time.Minute, sev(alert("Q", "instance", "a", "x", "1"), "minor")), ClassException, OutcomePass, true)
	})
	t.Run("an alert matching source and target does not inhibit itself", func(t *testing.T) {
		h := newHarness(t, `inhibit: [{name: i, source_matchers: ['alertname="A"'], target_matchers: ['alertname="A"'], equal: [instance]}]`)
		h.want(h.dec(0, alert("A", "instance", "x")), ClassException, OutcomePass, true)
		h.want(h.dec(time.Minute, alert("A", "instance", "x")), ClassException, OutcomeDeduplicated, false)
	})
	t.Run("stale sources stop inhibiting", func(t *testing.T) {
		h := newHarness(t, equal, withConfig(func(c *Config) { c.State.FiringTTL = time.Hour }))
		h.dec(0, sev(alert("Q", "instance", "a"), "critical"))
		h.want(h.dec(2*time.Hour, sev(alert("Q", "instance", "a", "x", "1"), "minor")), ClassException, OutcomePass, true)
	})
	topo := `
inhibit:
  - name: host-down
    source_matchers: ['alertname="HostDown"']
    topology: {max_hops: 3}
maintenance:
  - {name: m, cis: [host-2], start: "2026-01-05T10:00:00Z", end: "2026-01-05T12:00:00Z"}
`
	t.Run("topology: dependents within max_hops are symptoms", func(t *testing.T) {
		h := newHarness(t, topo)
		root, d := h.at(0, onCI(alert("HostDown"), "host-1"))
		h.want(d, ClassException, OutcomePass, true)
		for _, tc := range []struct {
			ci        string
			inhibited bool
		}{
			{"host-1", true}, // another alert on the root CI
			{"vm-1", true},   // 1 hop
			{"db-1", true},   // 2 hops
			{"app-1", true},  // 3 hops
			{"switch-1", false},
			{"vm-2", false},
			{"", false},
		} {
			d := h.dec(time.Minute, onCI(alert("Symptom", "ci", tc.ci), tc.ci))
			if tc.inhibited {
				h.want(d, ClassException, OutcomeInhibited, true)
				if d.InhibitedByCI != "host-1" || d.InhibitedBy != root.Fingerprint {
					t.Errorf("%s: tags %+v", tc.ci, d)
				}
			} else {
				h.want(d, ClassException, OutcomePass, true)
			}
		}
	})
	t.Run("topology: beyond max_hops is not a symptom", func(t *testing.T) {
		h := newHarness(t, `inhibit: [{name: h, source_matchers: ['alertname="HostDown"'], topology: {max_hops: 2}}]`)
		h.dec(0, onCI(alert("HostDown"), "host-1"))
		h.want(h.dec(time.Minute, onCI(alert("S"), "db-1")), ClassException, OutcomeInhibited, true)
		h.want(h.dec(time.Minute, onCI(alert("S"), "app-1")), ClassException, OutcomePass, true)
	})
	t.Run("topology: a root must be an exception passed on", func(t *testing.T) {
		h := newHarness(t, topo)
		// In maintenance: no incident for the symptoms to join.
		h.want(h.dec(0, onCI(alert("HostDown"), "host-2")), ClassException, OutcomeMaintenance, false)
		h.want(h.dec(time.Minute, onCI(alert("S"), "vm-2")), ClassException, OutcomePass, true)
		// Warning class: not a root.
		h.dec(0, onCI(sev(alert("HostDown", "ci", "host-1"), "warning"), "host-1"))
		h.want(h.dec(time.Minute, onCI(alert("S", "ci", "vm-1"), "vm-1")), ClassException, OutcomePass, true)
	})
	t.Run("topology: the root resolves, symptoms become incidents", func(t *testing.T) {
		h := newHarness(t, topo)
		h.dec(0, onCI(alert("HostDown"), "host-1"))
		h.want(h.dec(time.Minute, onCI(alert("S"), "vm-1")), ClassException, OutcomeInhibited, true)
		h.dec(2*time.Minute, resolved(onCI(alert("HostDown"), "host-1")))
		h.want(h.dec(3*time.Minute, onCI(alert("S"), "vm-1")), ClassException, OutcomePass, true)
	})
	t.Run("sources survive a reload when their rule is unchanged", func(t *testing.T) {
		h := newHarness(t, topo)
		h.dec(0, onCI(alert("HostDown"), "host-1"))
		h.setRules(topo + "rules: [{name: new, matchers: ['alertname=\"X\"'], drop: true}]\n")
		h.want(h.dec(time.Minute, onCI(alert("S"), "vm-1")), ClassException, OutcomeInhibited, true)
		h.setRules(`inhibit: [{name: host-down, source_matchers: ['alertname="HostDown"'], topology: {max_hops: 1}}]`)
		// Changed definition: sources start afresh.
		h.want(h.dec(2*time.Minute, onCI(alert("S2"), "vm-1")), ClassException, OutcomePass, true)
	})
}

func TestWarningPersistence(t *testing.T) {
	rules := `
rules:
  - {name: slow, matchers: ['alertname="Slow"'], class: warning, persist: 30m}
maintenance:
  - {name: m, matchers: ['alertname="Late"'], start: "2026-01-05T10:20:00Z", end: "2026-01-05T10:40:00Z"}
`
	t.Run("promoted by Tick", func(t *testing.T) {
		h := newHarness(t, rules)
		h.want(h.dec(0, sev(alert("W"), "warning")), ClassWarning, OutcomeWarningPending, false)
		if got := h.tick(9 * time.Minute); len(got) != 0 {
			t.Fatalf("promoted early: %+v", got)
		}
		got := h.tick(10 * time.Minute)
		if len(got) != 1 || !got[0].Decision.Promoted || !got[0].Decision.Correlate || got[0].Decision.Class != ClassWarning || got[0].Event.Labels.Get("alertname") != "W" {
			t.Fatalf("promotion: %+v", got)
		}
		if got := h.tick(20 * time.Minute); len(got) != 0 {
			t.Fatalf("promoted twice: %+v", got)
		}
		h.want(h.dec(21*time.Minute, sev(alert("W"), "warning")), ClassWarning, OutcomeDeduplicated, false)
		h.want(h.dec(22*time.Minute, resolved(sev(alert("W"), "warning"))), ClassWarning, OutcomePass, true)
	})
	t.Run("promoted by a repeat past the persist duration of its rule", func(t *testing.T) {
		h := newHarness(t, rules)
		h.want(h.dec(0, alert("Slow")), ClassWarning, OutcomeWarningPending, false)
		h.want(h.dec(20*time.Minute, alert("Slow")), ClassWarning, OutcomeWarningPending, false)
		d := h.dec(30*time.Minute, alert("Slow"))
		h.want(d, ClassWarning, OutcomePass, true)
		if !d.Promoted || d.Rule != "slow" || d.DedupCount != 3 {
			t.Errorf("%+v", d)
		}
		if got := h.tick(time.Hour); len(got) != 0 {
			t.Errorf("promoted twice: %+v", got)
		}
	})
	t.Run("resolved before persisting: recorded, never an incident", func(t *testing.T) {
		h := newHarness(t, rules)
		h.dec(0, sev(alert("W"), "warning"))
		h.want(h.dec(5*time.Minute, resolved(sev(alert("W"), "warning"))), ClassWarning, OutcomeRecorded, false)
		if got := h.tick(time.Hour); len(got) != 0 {
			t.Errorf("promoted: %+v", got)
		}
	})
	t.Run("not promoted while a window suppresses it", func(t *testing.T) {
		h := newHarness(t, rules)
		h.dec(0, sev(alert("Late"), "warning"))
		if got := h.tick(30 * time.Minute); len(got) != 0 {
			t.Fatalf("promoted in maintenance: %+v", got)
		}
		if got := h.tick(41 * time.Minute); len(got) != 1 {
			t.Fatalf("not promoted after the window: %+v", got)
		}
	})
	t.Run("reclassified by a reload", func(t *testing.T) {
		h := newHarness(t, rules)
		h.dec(0, alert("Slow"))
		h.setRules(`rules: []`)
		h.want(h.dec(time.Minute, alert("Slow")), ClassException, OutcomePass, true)
		if got := h.tick(time.Hour); len(got) != 0 {
			t.Errorf("promoted after being passed on: %+v", got)
		}
	})
	t.Run("inhibited when promoted", func(t *testing.T) {
		h := newHarness(t, rules+`
inhibit: [{name: i, source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: [instance]}]`)
		h.dec(0, sev(alert("W", "instance", "a"), "warning"))
		h.dec(time.Minute, sev(alert("C", "instance", "a"), "critical"))
		got := h.tick(10 * time.Minute)
		if len(got) != 1 || got[0].Decision.Outcome != OutcomeInhibited || !got[0].Decision.Correlate {
			t.Fatalf("%+v", got)
		}
	})
}
