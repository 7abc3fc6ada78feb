package abuse

import (
	"fmt"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/internal/bench"
)

// rssEvery is how often the server's RSS is sampled.
const rssEvery = 25 * time.Millisecond

// rssWatch samples a process's resident set size (VmRSS, KiB) until
// stopped: the first sample, the last, the peak over the whole run and
// the peak since the last mark. Safe for concurrent use; a nil *rssWatch
// (no PID) reports nothing.
type rssWatch struct {
	pid        int
	stop, done chan struct{}

	mu                          sync.Mutex // guards the fields below
	first, last, peak, markPeak int64
	err                         error
}

// watchRSS starts sampling pid; it fails when the process's RSS cannot
// be read (no such process, not Linux).
func watchRSS(pid int) (*rssWatch, error) {
	kb, err := bench.ProcRSS(pid)
	if err != nil {
		return nil, fmt.Errorf("RSS of pid %d: %w", pid, err)
	}
	w := &rssWatch{pid: pid, first: kb, last: kb, peak: kb, markPeak: kb, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

func (w *rssWatch) loop() {
	defer close(w.done)
	t := time.NewTicker(rssEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.sample()
		}
	}
}

// sample reads the RSS now and returns it (0 when it cannot).
func (w *rssWatch) sample() int64 {
	kb, err := bench.ProcRSS(w.pid)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return 0
	}
	w.last = kb
	w.peak = max(w.peak, kb)
	w.markPeak = max(w.markPeak, kb)
	return kb
}

// mark starts a new window for sinceMark and returns the RSS now.
func (w *rssWatch) mark() int64 {
	if w == nil {
		return 0
	}
	kb := w.sample()
	w.mu.Lock()
	w.markPeak = kb
	w.mu.Unlock()
	return kb
}

// sinceMark returns the peak RSS since the last mark (this instant
// included).
func (w *rssWatch) sinceMark() int64 {
	if w == nil {
		return 0
	}
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.markPeak
}

// end stops sampling and returns the first, last and peak samples and
// the first error met after the start (the process may have exited).
func (w *rssWatch) end() (first, last, peak int64, err error) {
	close(w.stop)
	<-w.done
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, w.last, w.peak, w.err
}

// mb formats KiB as MB with one decimal.
func mb(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
