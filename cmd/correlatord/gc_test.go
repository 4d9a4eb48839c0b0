package main

import (
	"runtime/debug"
	"testing"
)

// TestApplyGCDefault: without GOGC the daemon sets its own target; with
// GOGC, whatever the runtime took from it stays.
func TestApplyGCDefault(t *testing.T) {
	previous := debug.SetGCPercent(100)
	defer debug.SetGCPercent(previous)
	current := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }

	unset := func(string) (string, bool) { return "", false }
	if got := applyGCDefault(unset); got != "200" || current() != defaultGCPercent {
		t.Fatalf("without GOGC: reported %q, target %d; want %d", got, current(), defaultGCPercent)
	}
	debug.SetGCPercent(100)
	set := func(k string) (string, bool) { return "100", k == "GOGC" }
	if got := applyGCDefault(set); got != "100" || current() != 100 {
		t.Fatalf("with GOGC=100: reported %q, target %d; want 100 left alone", got, current())
	}
}
