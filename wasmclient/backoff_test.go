package wasmclient

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const inc, maxB = time.Second, 30 * time.Second
	if d := backoff(0, inc, maxB, 0.7); d != 0 {
		t.Errorf("no failures: %v, want 0", d)
	}
	// The bounds of the jitter: [50%, 150%) of increment × failures.
	if d := backoff(4, inc, maxB, 0); d != 2*time.Second {
		t.Errorf("backoff(4, r=0) = %v, want 2s", d)
	}
	if d := backoff(4, inc, maxB, 0.999999); d < 5990*time.Millisecond || d >= 6*time.Second {
		t.Errorf("backoff(4, r→1) = %v, want just under 6s", d)
	}
	// Never beyond the maximum, even for absurd failure counts.
	for _, n := range []int{30, 31, 1000, math.MaxInt32, math.MaxInt} {
		for _, r := range []float64{0, 0.5, 0.999} {
			if d := backoff(n, inc, maxB, r); d > maxB || d < maxB/2 {
				t.Errorf("backoff(%d, r=%v) = %v, want within [15s, 30s]", n, r, d)
			}
		}
	}

	// Statistically: bounded, jittered, and the mean grows with failures
	// until it reaches the cap.
	rng := rand.New(rand.NewPCG(1, 2))
	prevMean := time.Duration(0)
	for n := 1; n <= 40; n++ {
		const samples = 2000
		var sum time.Duration
		lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
		for range samples {
			d := backoff(n, inc, maxB, rng.Float64())
			if d <= 0 || d > maxB {
				t.Fatalf("backoff(%d) = %v out of (0, %v]", n, d, maxB)
			}
			sum += d
			lo, hi = min(lo, d), max(hi, d)
		}
		mean := sum / samples
		if hi-lo < inc*time.Duration(min(n, 30))/4 {
			t.Errorf("failures=%d: spread %v..%v too narrow for jitter", n, lo, hi)
		}
		base := inc * time.Duration(n)
		if base < maxB*2/3 && mean <= prevMean {
			t.Errorf("failures=%d: mean %v not above previous %v", n, mean, prevMean)
		}
		if mean < prevMean-500*time.Millisecond {
			t.Errorf("failures=%d: mean %v fell from %v", n, mean, prevMean)
		}
		if base <= maxB*2/3 {
			// Uncapped: the mean is the base.
			if diff := mean - base; diff < -base/20 || diff > base/20 {
				t.Errorf("failures=%d: mean %v, want about %v", n, mean, base)
			}
		}
		prevMean = mean
	}
}

func TestBackoffOptions(t *testing.T) {
	o := Options{}
	o.Transport = TransportFunc(nil)
	o.setDefaults()
	if o.BackoffIncrement != time.Second || o.MaxBackoff != 30*time.Second || o.MaxNetworkDelay != 10*time.Second {
		t.Errorf("defaults %+v", o)
	}
	for range 100 {
		if d := o.backoff(100); d > o.MaxBackoff {
			t.Fatalf("o.backoff(100) = %v", d)
		}
	}
}
