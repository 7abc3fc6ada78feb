// Package netpoll tells a server when an idle connection becomes readable,
// so that it need not keep a goroutine blocked in Read for every idle
// connection.
//
// A [Poller] owns one epoll instance and one goroutine. [Poller.Wait]
// registers a connection's descriptor in that epoll set, one-shot and
// level-triggered, and calls a function once the connection has bytes to
// read, has been closed by the peer or has an error; the caller then starts
// a goroutine that reads with the ordinary conn.Read. The connection stays
// owned by Go's runtime (it remains registered in Go's own netpoller, which
// this package never touches), so reads, writes, deadlines and Close behave
// as usual.
//
// Only Linux is supported; elsewhere [New] returns an error wrapping
// [errors.ErrUnsupported] and callers should fall back to a goroutine per
// connection.
package netpoll

import "errors"

// ErrClosed is returned by [Poller.Wait] and by a second [Poller.Close]
// once the poller has been closed.
var ErrClosed = errors.New("netpoll: poller closed")

// ErrPending is returned by [Poller.Wait] when the connection already has a
// Wait whose function has neither run nor been cancelled.
var ErrPending = errors.New("netpoll: connection already has a pending Wait")
