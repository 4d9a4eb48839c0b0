//go:build unix

package ingest

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used so far. Benchmarks
// report throughput per CPU second as well as per wall second, because on a
// shared machine the wall clock also counts time other processes took.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
