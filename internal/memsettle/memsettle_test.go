package memsettle

import (
	"context"
	"testing"
	"time"
)

const mib = 1 << 20

func TestSettlerCheck(t *testing.T) {
	type step struct {
		alloc, cycles uint64
		want          bool
	}
	type testCase struct {
		name  string
		steps []step
	}
	for _, tc := range []testCase{
		{"idle from the start", []step{{10 * mib, 3, false}, {10 * mib, 3, false}, {10*mib + 100, 3, false}}},
		{"burst then quiet: once", []step{{0, 1, false}, {40 * mib, 1, false}, {40*mib + 10, 1, true}, {40*mib + 20, 1, false}, {40*mib + 30, 1, false}}},
		{"busy: never while allocating", []step{{0, 1, false}, {20 * mib, 1, false}, {40 * mib, 1, false}, {60 * mib, 1, false}}},
		{"a GC ran during the burst", []step{{0, 1, false}, {40 * mib, 1, false}, {50 * mib, 4, false}, {50*mib + 10, 4, false}}},
		{"small burst: not worth it", []step{{0, 1, false}, {8 * mib, 1, false}, {8*mib + 10, 1, false}}},
		{"second burst after the first settled", []step{{0, 1, false}, {40 * mib, 1, false}, {40 * mib, 1, true}, {41 * mib, 2, false}, {80 * mib, 2, false}, {80 * mib, 2, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Settler{Quiet: DefaultQuiet, Garbage: DefaultGarbage}
			for i, st := range tc.steps {
				if got := s.Check(st.alloc, st.cycles); got != st.want {
					t.Fatalf("step %d (%d MiB, %d cycles): collect %v, want %v", i, st.alloc/mib, st.cycles, got, st.want)
				}
			}
		})
	}
}

func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, time.Millisecond); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
	Run(context.Background(), 0) // off: returns at once
}
