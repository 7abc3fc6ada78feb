package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a log-linear (HDR-like) histogram of durations in
// nanoseconds. Values below 256 ns are counted exactly; above, every power
// of two is split into 128 buckets, so a reported value is at most 1/128
// (0.8 %) above the true one. Values above ~73 minutes are clamped.
//
// Record is lock-free and safe for concurrent use, so all receivers of a
// run share one Histogram (36 KiB) instead of one each.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // ns; overflows only after ~584 years of samples
	max    atomic.Int64
	min    atomic.Int64 // +1, so that the zero value means "none"
}

const (
	histSubBits  = 7
	histSub      = 1 << histSubBits // buckets per power of two
	histMaxShift = 34               // largest value: 2^(34+8) ns ≈ 73 min
	histBuckets  = (histMaxShift + 2) * histSub
)

// histIndex returns the bucket of v (v >= 0).
func histIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	shift := bits.Len64(u) - (histSubBits + 1)
	if shift < 0 {
		shift = 0
	}
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return shift<<histSubBits + int(u>>uint(shift))
}

// histHigh returns the largest value that falls in bucket i.
func histHigh(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i>>histSubBits - 1
	m := int64(i - shift<<histSubBits)
	return (m+1)<<uint(shift) - 1
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest recorded value (exact), 0 when empty.
func (h *Histogram) Min() time.Duration {
	m := h.min.Load()
	if m == 0 {
		return 0
	}
	return time.Duration(m - 1)
}

// Mean returns the average of the recorded values (exact).
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Percentile returns the value below or at which a fraction q (0..1) of
// the recorded values fall: the upper end of the bucket that holds the
// value of rank ceil(q*count), never more than Max. It is 0 when empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	max := h.max.Load()
	if q >= 1 {
		return time.Duration(max)
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histHigh(i), max))
		}
	}
	return time.Duration(max)
}
