package main

import (
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the garbage collector's target (GOGC) when the
// environment sets none: a collection starts when the heap has grown by
// this much over what the last one left live.
//
// The daemon's live heap is mostly its correlation state, large and long
// lived, while the events flowing through it are short-lived garbage. At
// Go's default of 100 the collector marked that whole state again for every
// few hundred megabytes of garbage. 200 halves the collections: in 3
// interleaved runs of 500,000 alerts over HTTP with Kafka on it took 18% off
// the CPU of the daemon and the broker, for 24% more peak memory
// (docs/PERFORMANCE.md). Where memory is bounded, GOMEMLIMIT makes the
// collector work harder near the bound rather than grow past it; the Helm
// chart sets it from the memory limit, and the systemd example shows it.
// GOGC in the environment overrides this default.
const defaultGCPercent = 200

// applyGCDefault sets the collector's target to defaultGCPercent unless
// the environment (lookupEnv) sets GOGC, and returns the target in effect,
// as GOGC would spell it.
func applyGCDefault(lookupEnv func(string) (string, bool)) string {
	if v, ok := lookupEnv("GOGC"); ok {
		return v // the runtime read it at start
	}
	debug.SetGCPercent(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent)
}
