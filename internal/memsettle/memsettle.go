// Package memsettle gives the memory of a burst back to the operating
// system once the process is quiet again.
//
// After a burst (10,000 clients connecting at once), the garbage it left
// is only collected at the next GC, which a server with idle clients does
// not trigger (it hardly allocates): Go's forced GC comes every 2 minutes,
// and until then the burst's garbage and freed goroutine stacks stay in
// the resident memory (on the bench machine, 8 KiB per idle long-polling
// client right after the burst against 5 after a GC).
package memsettle

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of Settler.
const (
	// Quiet: less than this allocated during one check is quiet.
	DefaultQuiet = 1 << 20
	// Garbage: at least this allocated since the last GC is worth a GC.
	DefaultGarbage = 16 << 20
)

// Settler decides, from the allocation counters it is given at each
// check, when the process is quiet after allocating: then a GC that
// returns memory to the OS is worth its cost. It is used by one goroutine.
type Settler struct {
	Quiet, Garbage uint64

	started       bool
	lastAlloc     uint64 // bytes allocated in total at the last check
	lastCycles    uint64 // GC cycles at the last check
	allocAtLastGC uint64 // bytes allocated in total when a GC last ran
}

// Check takes the counters now (bytes allocated in total, GC cycles) and
// reports whether to collect now. After a true return the caller
// collects, and the next Check counts from there.
func (s *Settler) Check(alloc, cycles uint64) bool {
	if !s.started {
		s.started = true
		s.lastAlloc, s.lastCycles, s.allocAtLastGC = alloc, cycles, alloc
		return false
	}
	if cycles != s.lastCycles {
		// A GC ran since the last check: what came before it is collected
		// (at most the last check's worth is not).
		s.allocAtLastGC = s.lastAlloc
	}
	quiet := alloc-s.lastAlloc < s.Quiet
	worth := alloc-s.allocAtLastGC >= s.Garbage
	s.lastAlloc, s.lastCycles = alloc, cycles
	if quiet && worth {
		s.allocAtLastGC = alloc
		return true
	}
	return false
}

// Run checks every interval until ctx ends and, when the process is quiet
// after allocating at least DefaultGarbage since the last GC, runs
// debug.FreeOSMemory (a GC, then the free memory is returned). A
// non-positive interval returns at once.
func Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	s := &Settler{Quiet: DefaultQuiet, Garbage: DefaultGarbage}
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		metrics.Read(samples)
		if s.Check(samples[0].Value.Uint64(), samples[1].Value.Uint64()) {
			debug.FreeOSMemory()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
