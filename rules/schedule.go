package rules

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones of maintenance windows work on machines without tzdata
)

// schedule says when a maintenance window is open: once, between start and
// end, or on a recurring weekly or daily schedule in a time zone.
type schedule struct {
	// One-off window: [start, end).
	start, end time.Time
	// Recurring window: opens at hour:min local time in loc on the days in
	// days (bit i = time.Weekday(i)), for dur. recurring is false for a
	// one-off window.
	recurring bool
	days      uint8
	hour, min int
	dur       time.Duration
	loc       *time.Location
}

// interval returns whether the window is open at t and an interval
// [from, to) around t over which that answer holds, so that a caller can
// cache it. Recurring windows are computed on the calendar of their time
// zone, and last dur of real time even across a DST change. A start time
// that does not exist (02:30 Europe/Paris on the night clocks spring
// forward) opens the window at 03:30 CEST, as time.Date normalises it; one
// that exists twice (02:30 on the night clocks fall back) opens it the
// first time the clock shows it.
func (s *schedule) interval(t time.Time) (open bool, from, to time.Time) {
	if !s.recurring {
		switch {
		case t.Before(s.start):
			return false, time.Time{}, s.start
		case t.Before(s.end):
			return true, s.start, s.end
		default:
			return false, s.end, maxTime
		}
	}
	lt := t.In(s.loc)
	y, mo, d := lt.Date()
	// Occurrences that can contain t started at most ceil(dur) days before
	// it; the next one starts within 8 days.
	back := int(s.dur/(24*time.Hour)) + 1
	from = minTime
	to = maxTime
	for i := -back; i <= 8; i++ {
		day := time.Date(y, mo, d+i, 0, 0, 0, 0, s.loc)
		if s.days&(1<<uint(day.Weekday())) == 0 {
			continue
		}
		st := firstInstant(y, mo, d+i, s.hour, s.min, s.loc)
		en := st.Add(s.dur)
		switch {
		case !t.Before(st) && t.Before(en):
			return true, st, en
		case !t.Before(en): // occurrence ended before t
			if en.After(from) {
				from = en
			}
		default: // occurrence starts after t
			if st.Before(to) {
				to = st
			}
		}
	}
	return false, from, to
}

// firstInstant is time.Date, except that a wall clock time that occurs
// twice (DST fall back) gives its first occurrence.
func firstInstant(y int, mo time.Month, d, h, m int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, m, 0, 0, loc)
	for _, back := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
		if c := t.Add(-back); sameWallClock(c.In(loc), t) {
			return c
		}
	}
	return t
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute()
}

var (
	minTime = time.Unix(-1<<62, 0)
	maxTime = time.Unix(1<<62, 0)
)

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// compileSchedule checks and compiles a window's schedule. bad reports an
// error on a field of the window.
func compileSchedule(w *windowDoc, bad func(field, format string, args ...any)) schedule {
	var s schedule
	oneOff := w.Start != "" || w.End != ""
	switch {
	case oneOff && w.Recurring != nil:
		bad("recurring", "give either start/end or recurring, not both")
		return s
	case !oneOff && w.Recurring == nil:
		bad("start", "missing: give start and end (RFC 3339) or a recurring schedule")
		return s
	case oneOff:
		var err error
		if s.start, err = time.Parse(time.RFC3339, w.Start); err != nil {
			bad("start", "%q is not an RFC 3339 time (2026-11-01T02:00:00+01:00)", w.Start)
		}
		if s.end, err = time.Parse(time.RFC3339, w.End); err != nil {
			bad("end", "%q is not an RFC 3339 time (2026-11-01T04:00:00+01:00)", w.End)
		}
		if !s.start.IsZero() && !s.end.IsZero() && !s.end.After(s.start) {
			bad("end", "%s is not after start %s", w.End, w.Start)
		}
		return s
	}
	r := w.Recurring
	s.recurring = true
	var period time.Duration
	switch r.Every {
	case "day":
		period = 24 * time.Hour
		if len(r.Days) == 0 {
			s.days = 0x7f
		}
	case "week":
		period = 7 * 24 * time.Hour
		if len(r.Days) == 0 {
			bad("recurring.days", "missing: a weekly window needs days: [sun, ...]")
		}
	default:
		bad("recurring.every", "%q is not one of day, week", r.Every)
	}
	for i, d := range r.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			bad(fmt.Sprintf("recurring.days[%d]", i), "%q is not a day (sun, mon, tue, wed, thu, fri, sat)", d)
			continue
		}
		s.days |= 1 << uint(wd)
	}
	if _, err := fmt.Sscanf(r.At, "%d:%d", &s.hour, &s.min); err != nil || len(r.At) != 5 || s.hour < 0 || s.hour > 23 || s.min < 0 || s.min > 59 {
		bad("recurring.at", "%q is not a time of day HH:MM (02:00)", r.At)
	}
	s.dur = r.Duration
	if s.dur <= 0 || period > 0 && s.dur > period {
		bad("recurring.duration", "must be > 0 and at most one period (%s), got %s", period, r.Duration)
	}
	tz := r.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		bad("recurring.time_zone", "%q is not a known time zone (Europe/Paris, UTC): %v", r.TimeZone, err)
		loc = time.UTC
	}
	s.loc = loc
	return s
}
