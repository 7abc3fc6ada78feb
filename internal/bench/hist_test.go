package bench

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestHistogramIndexRoundTrip(t *testing.T) {
	// Every value falls in a bucket whose upper end is >= it and within
	// 1/128 of it; buckets are monotonic.
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1e6, 123456789, 1e12, 1 << 41} {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index of %d (%d) below previous %d", v, i, prev)
		}
		prev = i
		hi := histHigh(i)
		if hi < v || float64(hi-v) > float64(v)/128+1 {
			t.Errorf("value %d: bucket %d high %d", v, i, hi)
		}
		if i > 0 && histHigh(i-1) >= v {
			t.Errorf("value %d: previous bucket already reaches %d", v, histHigh(i-1))
		}
	}
	if i := histIndex(1 << 62); i != histBuckets-1 {
		t.Errorf("huge value not clamped: %d", i)
	}
}

func TestHistogramPercentiles(t *testing.T) {
	tests := []struct {
		name   string
		values func() []time.Duration
		q      map[float64]time.Duration
		max    time.Duration
	}{
		{
			name: "1..10000 µs",
			values: func() []time.Duration {
				var v []time.Duration
				for i := 1; i <= 10000; i++ {
					v = append(v, time.Duration(i)*time.Microsecond)
				}
				return v
			},
			q: map[float64]time.Duration{
				0.5: 5000 * time.Microsecond, 0.9: 9000 * time.Microsecond,
				0.99: 9900 * time.Microsecond, 0.999: 9990 * time.Microsecond,
			},
			max: 10 * time.Millisecond,
		},
		{
			name: "99 fast, one slow",
			values: func() []time.Duration {
				v := []time.Duration{time.Second}
				for range 99 {
					v = append(v, time.Millisecond)
				}
				rand.Shuffle(len(v), func(i, j int) { v[i], v[j] = v[j], v[i] })
				return v
			},
			q:   map[float64]time.Duration{0.5: time.Millisecond, 0.99: time.Millisecond, 0.999: time.Second},
			max: time.Second,
		},
		{
			name:   "small exact values",
			values: func() []time.Duration { return []time.Duration{3, 1, 2, 4} },
			q:      map[float64]time.Duration{0.25: 1, 0.5: 2, 0.75: 3, 0.9: 4},
			max:    4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := tc.values()
			var wg sync.WaitGroup
			for part := range 4 { // concurrently, as receivers do
				wg.Go(func() {
					for i := part; i < len(vals); i += 4 {
						h.Record(vals[i])
					}
				})
			}
			wg.Wait()
			if h.Count() != uint64(len(vals)) {
				t.Fatalf("count %d, want %d", h.Count(), len(vals))
			}
			for q, want := range tc.q {
				got := h.Percentile(q)
				if got < want || float64(got-want) > float64(want)/128+1 {
					t.Errorf("p%v = %v, want %v (within 1/128 above)", q*100, got, want)
				}
			}
			if h.Max() != tc.max || h.Percentile(1) != tc.max {
				t.Errorf("max %v, p100 %v, want %v", h.Max(), h.Percentile(1), tc.max)
			}
		})
	}
	var empty Histogram
	if empty.Percentile(0.99) != 0 || empty.Max() != 0 || empty.Mean() != 0 || empty.Min() != 0 {
		t.Error("empty histogram is not all zero")
	}
}
