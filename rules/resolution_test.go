package rules

import (
	"testing"
	"time"

	"github.com/correlatord/correlatord/event"
)

// TestResolutionNeverLost checks the invariant for every stage: maintenance,
// change windows, inhibition, flapping holds, drops and state eviction
// suppress the creation of incidents, never the resolution of an alert that
// was passed on. A resolution always reaches the incident it belongs to,
// and is always recorded (it gets a Decision).
func TestResolutionNeverLost(t *testing.T) {
	const window = `
maintenance:
  - {name: m, matchers: ['alertname="A"'], start: "2026-01-05T10:10:00Z", end: "2026-01-05T12:00:00Z"}
`
	const topo = `
inhibit:
  - {name: host-down, source_matchers: ['alertname="HostDown"'], topology: {max_hops: 3}}
`
	a := func() event.Event { return onCI(alert("A"), "db-1") }
	cases := []struct {
		name    string
		rules   string
		cfg     func(*Config)
		setup   func(h *harness)
		resolve time.Duration
		outcome Outcome // of the resolution
		// deferred: the resolution is held and released by Tick at this
		// time instead of passing at once.
		deferred time.Duration
	}{
		{
			name: "plain", rules: `rules: []`,
			setup:   func(h *harness) { h.dec(0, a()); h.dec(time.Minute, a()) },
			resolve: 5 * time.Minute, outcome: OutcomePass,
		},
		{
			name: "maintenance began after the alert was passed on", rules: window,
			setup:   func(h *harness) { h.want(h.dec(0, a()), ClassException, OutcomePass, true) },
			resolve: 20 * time.Minute, outcome: OutcomeMaintenance,
		},
		{
			name: "change window began after the alert was passed on", rules: `rules: []`,
			setup: func(h *harness) {
				h.want(h.dec(0, a()), ClassException, OutcomePass, true)
				_ = h.changes.Apply(ChangeRecord{ID: "CHG9", CIs: []string{"db-1"}, Status: ChangeApproved, PlannedStart: t0.Add(10 * time.Minute), PlannedEnd: t0.Add(time.Hour)})
			},
			resolve: 20 * time.Minute, outcome: OutcomeChangeWindow,
		},
		{
			name: "inhibited: passed on as a symptom; the root still fires", rules: topo,
			setup: func(h *harness) {
				h.dec(0, onCI(alert("HostDown"), "host-1"))
				h.want(h.dec(time.Minute, a()), ClassException, OutcomeInhibited, true)
			},
			resolve: 5 * time.Minute, outcome: OutcomePass,
		},
		{
			name: "a drop rule added by a reload after the alert was passed on", rules: `rules: []`,
			setup: func(h *harness) {
				h.want(h.dec(0, a()), ClassException, OutcomePass, true)
				h.setRules(`rules: [{name: d, matchers: ['alertname="A"'], drop: true}]`)
				h.want(h.dec(time.Minute, a()), ClassException, OutcomeDropped, false)
			},
			resolve: 5 * time.Minute, outcome: OutcomeDropped,
		},
		{
			name: "a warning promoted, then in maintenance", rules: window,
			cfg: func(c *Config) { c.WarningPersist = 5 * time.Minute },
			setup: func(h *harness) {
				h.dec(0, sev(a(), "warning"))
				if got := h.tick(6 * time.Minute); len(got) != 1 {
					h.t.Fatalf("not promoted: %+v", got)
				}
			},
			resolve: 20 * time.Minute, outcome: OutcomeMaintenance,
		},
		{
			name: "flapping: held, released once stable", rules: `rules: []`,
			cfg: func(c *Config) { c.Flapping.Threshold = 2; c.Flapping.Window = 10 * time.Minute },
			setup: func(h *harness) {
				h.dec(0, a())
				h.dec(time.Minute, resolved(a()))
				h.dec(2*time.Minute, a()) // 2 changes
			},
			resolve: 3 * time.Minute, outcome: OutcomeFlappingHeld, deferred: 20 * time.Minute,
		},
		{
			name: "flapping, then evicted while holding the resolution", rules: `rules: []`,
			cfg: func(c *Config) { c.Flapping.Threshold = 2; c.State.MaxAlerts = 1 },
			setup: func(h *harness) {
				h.dec(0, a())
				h.dec(time.Minute, resolved(a()))
				h.dec(2*time.Minute, a())
			},
			resolve: 3 * time.Minute, outcome: OutcomeFlappingHeld, deferred: 4 * time.Minute,
		},
		{
			name: "evicted (state full): an unknown resolution is passed on", rules: `rules: []`,
			cfg: func(c *Config) { c.State.MaxAlerts = 1 },
			setup: func(h *harness) {
				h.dec(0, a())
				h.dec(time.Minute, alert("Other")) // evicts A
			},
			resolve: 5 * time.Minute, outcome: OutcomePass,
		},
		{
			name: "expired (firing TTL): an unknown resolution is passed on", rules: window,
			cfg: func(c *Config) { c.State.FiringTTL = time.Minute },
			setup: func(h *harness) {
				h.dec(0, a())
				h.tick(5 * time.Minute)
			},
			resolve: 20 * time.Minute, outcome: OutcomeMaintenance,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []harnessOpt
			if tc.cfg != nil {
				opts = append(opts, withConfig(tc.cfg))
			}
			h := newHarness(t, tc.rules, opts...)
			tc.setup(h)
			d := h.dec(tc.resolve, resolved(a()))
			if d.Outcome != tc.outcome {
				t.Errorf("outcome %s, want %s", d.Outcome, tc.outcome)
			}
			if tc.deferred == 0 {
				if !d.Correlate {
					t.Fatalf("resolution not passed on: %+v", d)
				}
				return
			}
			if d.Correlate {
				t.Fatalf("held resolution passed at once: %+v", d)
			}
			if tc.cfg != nil {
				var c Config
				tc.cfg(&c)
				if c.State.MaxAlerts == 1 {
					h.dec(tc.resolve+time.Second, alert("Other")) // evicts A and its held resolution
				}
			}
			got := h.tick(tc.deferred)
			if len(got) != 1 || got[0].Event.Status != event.StatusResolved || !got[0].Decision.Correlate {
				t.Fatalf("held resolution not released by Tick: %+v", got)
			}
			if got[0].Event.Labels.Get("alertname") != "A" || got[0].Event.CI != "db-1" {
				t.Errorf("released %+v", got[0].Event)
			}
		})
	}
}

// TestResolutionOfWhatWasNeverPassedOn: recorded, not passed on.
func TestResolutionOfWhatWasNeverPassedOn(t *testing.T) {
	h := newHarness(t, `
rules: [{name: d, matchers: ['alertname="Noise"'], drop: true}]
maintenance: [{name: m, matchers: ['alertname="M"'], start: "2026-01-05T10:00:00Z", end: "2026-01-05T11:00:00Z"}]
`)
	for _, tc := range []struct {
		e       event.Event
		outcome Outcome
	}{
		{alert("Noise"), OutcomeDropped},
		{alert("M"), OutcomeMaintenance},
		{sev(alert("W"), "warning"), OutcomeRecorded},
		{sev(alert("I"), "info"), OutcomeRecorded},
	} {
		h.dec(0, fresh(tc.e))
		d := h.dec(time.Minute, resolved(tc.e))
		if d.Correlate || d.Outcome != tc.outcome {
			t.Errorf("%s: %+v, want %s not passed on", tc.e.Labels.Get("alertname"), d, tc.outcome)
		}
	}
	// The maintenance window ended before the resolution: still never
	// passed on.
	h.want(h.dec(0, alert("M", "x", "y")), ClassException, OutcomeMaintenance, false)
	h.want(h.dec(2*time.Hour, resolved(alert("M", "x", "y"))), ClassException, OutcomeRecorded, false)
}
