package rules

import (
	"testing"
	"time"
)

func mustSchedule(t *testing.T, w windowDoc) schedule {
	t.Helper()
	var errs []string
	s := compileSchedule(&w, func(field, format string, args ...any) { errs = append(errs, field) })
	if len(errs) > 0 {
		t.Fatalf("errors on %v", errs)
	}
	return s
}

func TestRecurringScheduleDST(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	weekly := mustSchedule(t, windowDoc{Recurring: &recurDoc{Every: "week", Days: []string{"sun"}, At: "02:30", Duration: 2 * time.Hour, TimeZone: "Europe/Paris"}})
	cases := []struct {
		name string
		at   time.Time
		open bool
	}{
		// Winter (CET, UTC+1): Sunday 2026-01-11 02:30-04:30 Paris.
		{"winter before", time.Date(2026, 1, 11, 2, 29, 0, 0, paris), false},
		{"winter start", time.Date(2026, 1, 11, 2, 30, 0, 0, paris), true},
		{"winter end exclusive", time.Date(2026, 1, 11, 4, 30, 0, 0, paris), false},
		{"winter, in UTC", time.Date(2026, 1, 11, 1, 45, 0, 0, time.UTC), true},
		{"monday", time.Date(2026, 1, 12, 3, 0, 0, 0, paris), false},
		// Summer (CEST, UTC+2): 02:30 Paris is 00:30 UTC.
		{"summer, in UTC", time.Date(2026, 7, 5, 0, 45, 0, 0, time.UTC), true},
		{"summer, an hour late in UTC", time.Date(2026, 7, 5, 2, 45, 0, 0, time.UTC), false},
		// Spring forward: Sunday 2026-03-29, 02:00 -> 03:00. 02:30 does not
		// exist; the window opens at the normalised instant (03:30 CEST,
		// 01:30 UTC) and lasts 2h of real time.
		{"spring forward, before", time.Date(2026, 3, 29, 1, 29, 0, 0, time.UTC), false},
		{"spring forward, open", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), true},
		{"spring forward, last minute", time.Date(2026, 3, 29, 3, 29, 0, 0, time.UTC), true},
		{"spring forward, closed", time.Date(2026, 3, 29, 3, 30, 0, 0, time.UTC), false},
		// Fall back: Sunday 2026-10-25, 03:00 CEST -> 02:00 CET; 02:30
		// happens twice and Go picks the first (CEST, 00:30 UTC).
		{"fall back, open", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), true},
		{"fall back, closed after 2h", time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC), false},
	}
	for _, tc := range cases {
		if open, from, to := weekly.interval(tc.at); open != tc.open {
			t.Errorf("%s (%s): open=%v, want %v", tc.name, tc.at.UTC(), open, tc.open)
		} else if tc.at.Before(from) || !tc.at.Before(to) {
			t.Errorf("%s: interval [%s, %s) does not hold %s", tc.name, from, to, tc.at)
		}
	}
}

// TestScheduleIntervalsAreConsistent checks the cached intervals: every
// instant in [from, to) gets the same answer as a fresh computation.
func TestScheduleIntervalsAreConsistent(t *testing.T) {
	scheds := []schedule{
		mustSchedule(t, windowDoc{Recurring: &recurDoc{Every: "week", Days: []string{"sun", "wed"}, At: "23:00", Duration: 3 * time.Hour, TimeZone: "America/New_York"}}),
		mustSchedule(t, windowDoc{Recurring: &recurDoc{Every: "day", At: "02:30", Duration: 30 * time.Minute, TimeZone: "Europe/Paris"}}),
		mustSchedule(t, windowDoc{Recurring: &recurDoc{Every: "day", Days: []string{"mon", "tue", "wed", "thu", "fri"}, At: "12:00", Duration: time.Hour}}),
		mustSchedule(t, windowDoc{Recurring: &recurDoc{Every: "day", At: "00:00", Duration: 24 * time.Hour}}),
		mustSchedule(t, windowDoc{Start: "2026-03-01T00:00:00Z", End: "2026-03-02T00:00:00Z"}),
	}
	start := time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
	for si, s := range scheds {
		for at := start; at.Before(start.Add(60 * 24 * time.Hour)); at = at.Add(17 * time.Minute) {
			open, from, to := s.interval(at)
			if at.Before(from) || !at.Before(to) {
				t.Fatalf("schedule %d at %s: [%s, %s) does not hold it", si, at, from, to)
			}
			for _, probe := range []time.Time{from, to.Add(-time.Nanosecond), from.Add(to.Sub(from) / 2)} {
				if probe.Before(start.Add(-30*24*time.Hour)) || probe.After(start.Add(120*24*time.Hour)) {
					continue
				}
				if o, _, _ := s.interval(probe); o != open {
					t.Fatalf("schedule %d: %s says %v, %s in the same interval says %v", si, at, open, probe, o)
				}
			}
		}
	}
	// Always open.
	if open, _, _ := scheds[3].interval(start); !open {
		t.Error("24h daily window not open")
	}
}
