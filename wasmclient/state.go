package wasmclient

import (
	"sync"
	"time"
)

// State is the connection state of a Client.
type State int

// Connection states.
const (
	// Disconnected: not started, stopped by Disconnect, or stopped for
	// good by the server or a failed handshake (StateInfo.LastError).
	Disconnected State = iota
	// Connecting: a handshake is on its way (the first, or a new one after
	// the server forgot the session).
	Connecting
	// Connected: the last /meta/connect succeeded.
	Connected
	// Reconnecting: the last attempt failed; the next one starts at
	// StateInfo.NextRetry.
	Reconnecting
)

// String returns "disconnected", "connecting", "connected" or
// "reconnecting".
func (s State) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	}
	return "unknown"
}

// StateInfo describes a connection state change.
type StateInfo struct {
	State State
	// ClientID is the session id, "" while there is none.
	ClientID string
	// NextRetry is when the next attempt starts (Reconnecting only). It is
	// in the past while that attempt is on its way.
	NextRetry time.Time
	// LastError is why the last attempt failed (Reconnecting, Connecting
	// after a failure), or why the client stopped (Disconnected; nil after
	// Disconnect).
	LastError error
	// Failures counts consecutive failed attempts.
	Failures int
}

// stateListeners is the list of OnState callbacks.
type stateListeners struct {
	mu   sync.Mutex
	next int
	fns  []stateListener
}

type stateListener struct {
	id int
	fn func(StateInfo)
}

func (l *stateListeners) add(fn func(StateInfo)) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.next
	l.next++
	l.fns = append(l.fns, stateListener{id, fn})
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, e := range l.fns {
			if e.id == id {
				// Copy, so that a snapshot taken by call stays intact.
				l.fns = append(l.fns[:i:i], l.fns[i+1:]...)
				return
			}
		}
	}
}

// call runs the callbacks registered now, in registration order.
func (l *stateListeners) call(info StateInfo) {
	l.mu.Lock()
	fns := l.fns
	l.mu.Unlock()
	for _, e := range fns {
		e.fn(info)
	}
}
