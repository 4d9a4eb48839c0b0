package scenario

import "github.com/correlatord/correlatord/correlate"

// Result are the quality figures of a run.
type Result struct {
	// Pairwise grouping quality over non-noise events: a pair is positive
	// when both events belong to the same fault.
	Precision, Recall, F1 float64
	// RCAAccuracy is the share of faults whose main incident (the one
	// holding most of the fault's events) names the true root CI.
	RCAAccuracy float64
	// NoiseReduction is firing events in over incidents out.
	NoiseReduction float64
	Events         int
	Incidents      int
	// Faults counts the faults with at least one event.
	Faults int
}

func pairs(n int) float64 { return float64(n) * float64(n-1) / 2 }

// Evaluate scores incidents against the truth.
func Evaluate(truth Truth, incidents []*correlate.Incident) Result {
	return evaluate(truth, incidents, func(string) bool { return true })
}

// EvaluateBound is Evaluate over the events with a CI binding only: the
// grouping quality of the topology correlation alone, since unbound events
// are grouped by labels by design and cannot join topology incidents.
func EvaluateBound(truth Truth, incidents []*correlate.Incident) Result {
	return evaluate(truth, incidents, func(id string) bool { return !truth.Unbound[id] })
}

func evaluate(truth Truth, incidents []*correlate.Incident, keep func(string) bool) Result {
	incOf := map[string]int{}
	for i, in := range incidents {
		for _, id := range in.EventIDs {
			incOf[id] = i
		}
	}
	type cell struct {
		fault string
		inc   int
	}
	perFault := map[string]int{}
	perInc := map[int]int{}
	cells := map[cell]int{}
	for id, f := range truth.FaultOf {
		if f == Noise || !keep(id) {
			continue
		}
		perFault[f]++
		inc, ok := incOf[id]
		if !ok {
			continue // in no incident: a singleton, part of no pair
		}
		perInc[inc]++
		cells[cell{f, inc}]++
	}
	var tp, sameFault, sameInc float64
	for _, n := range cells {
		tp += pairs(n)
	}
	for _, n := range perFault {
		sameFault += pairs(n)
	}
	for _, n := range perInc {
		sameInc += pairs(n)
	}
	r := Result{Events: len(truth.FaultOf), Incidents: len(incidents)}
	r.Precision, r.Recall = 1, 1
	if sameInc > 0 {
		r.Precision = tp / sameInc
	}
	if sameFault > 0 {
		r.Recall = tp / sameFault
	}
	if r.Precision+r.Recall > 0 {
		r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
	}
	// Root cause: the incident holding most of each fault's events.
	correct, scored := 0, 0
	for _, f := range truth.Faults {
		if perFault[f.ID] == 0 {
			continue // nothing alerted: nothing to find
		}
		scored++
		best, bestN := -1, 0
		for c, n := range cells {
			if c.fault == f.ID && c.inc >= 0 && (n > bestN || n == bestN && c.inc < best) {
				best, bestN = c.inc, n
			}
		}
		if best >= 0 && incidents[best].RootCauseCI == f.RootCI {
			correct++
		}
	}
	r.Faults = scored
	if scored > 0 {
		r.RCAAccuracy = float64(correct) / float64(scored)
	}
	if len(incidents) > 0 {
		r.NoiseReduction = float64(len(truth.FaultOf)) / float64(len(incidents))
	}
	return r
}
