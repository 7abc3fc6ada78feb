package server

import "sync"

// Response buffers are pooled: at high rates, encoding every response into
// a new slice was the largest source of garbage. A buffer goes back to the
// pool once its response was written (exchange.done).

const maxPooledBuffer = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// getBuf returns an empty buffer with room for at least n bytes.
func getBuf(n int) *[]byte {
	b := bufPool.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, 0, n)
	}
	return b
}

// putBuf returns b to the pool; it must not be used afterwards.
func putBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

var eventsPool = sync.Pool{New: func() any { e := make([][]byte, 0, 64); return &e }}

// getEvents returns an empty slice of events with room for n.
func getEvents(n int) *[][]byte {
	e := eventsPool.Get().(*[][]byte)
	if cap(*e) < n {
		*e = make([][]byte, 0, n)
	}
	return e
}

func putEvents(e *[][]byte) {
	if e == nil || cap(*e) > 4096 {
		return
	}
	clear((*e)[:cap(*e)])
	*e = (*e)[:0]
	eventsPool.Put(e)
}
