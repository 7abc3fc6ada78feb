package wasmclient

import (
	"fmt"
	"sync"
)

// dispatcher runs callbacks one at a time, in the order they were posted,
// on a goroutine that exists only while there is work.
type dispatcher struct {
	log Logger

	mu      sync.Mutex
	queue   []func()
	running bool
	idle    *sync.Cond // signalled when the queue empties
}

func (d *dispatcher) post(fn func()) {
	d.mu.Lock()
	d.queue = append(d.queue, fn)
	if !d.running {
		d.running = true
		go d.run()
	}
	d.mu.Unlock()
}

func (d *dispatcher) run() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			d.queue = nil
			if d.idle != nil {
				d.idle.Broadcast()
			}
			d.mu.Unlock()
			return
		}
		fn := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		d.safe(fn)
	}
}

// wait blocks until everything posted so far has run.
func (d *dispatcher) wait() {
	d.mu.Lock()
	if d.idle == nil {
		d.idle = sync.NewCond(&d.mu)
	}
	for d.running {
		d.idle.Wait()
	}
	d.mu.Unlock()
}

// safe runs fn; a panic is logged, like net/http does for handlers, so that
// one bad listener does not take the connection (or the page) down.
func (d *dispatcher) safe(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			d.log.Warn("wasmclient: listener panicked", "panic", fmt.Sprint(v))
		}
	}()
	fn()
}
