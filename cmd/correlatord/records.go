package main

import (
	"time"

	"github.com/correlatord/correlatord/incidents"
)

// recordWriters writes incident and problem versions, their timelines and
// memberships to analytics; run.go builds write over the ClickHouse
// writers.
type recordWriters struct {
	write func(chs []incidents.Change, now time.Time)
}

func (r *recordWriters) add(chs []incidents.Change, now time.Time) { r.write(chs, now) }
