package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// A session may have a deadline (SessionInfo.Deadline): the time it ends
// however active it is, typically the expiry of the token it logged in
// with. The hook sets it at handshake with Client.SetDeadline, and
// Server.SetDeadline moves it (a token refresh). The deadline is stored
// with the session in the engine, so every node enforces it: a message of
// a session past its deadline ends the session and is answered with
// ErrTokenExpired and reconnect:"handshake" advice, and a /meta/connect
// is never held past the deadline, so an idle session ends on time too
// (its next connect gets the error).
//
// Why "handshake" and not "none": the session is gone, and a client that
// can get a new token (wasmclient.Options.Token, the JavaScript API's
// getToken) handshakes again at once with a fresh one. A client that
// cannot (a CometD client with a fixed ext) handshakes with its expired
// token and is refused with reconnect:"none", so nothing loops.

// ErrTokenExpired ends a session whose deadline passed.
var ErrTokenExpired = &protocol.Error{Code: 403, Message: "token_expired"}

// RefusedDeadline counts the messages refused because their session's
// deadline passed (each ends its session).
const RefusedDeadline = "session_deadline"

// ErrNoDeadlines is returned by Server.SetDeadline when the engine cannot
// change a session's deadline (it does not implement DeadlineSetter).
var ErrNoDeadlines = errors.New("bayeux: the engine cannot change a session's deadline")

// DeadlineSetter is implemented by engines that can move a session's
// Deadline after its handshake; the memory and Redis engines do. The new
// deadline is what Session returns from then on, on every node.
type DeadlineSetter interface {
	// SetDeadline sets the session's Deadline (zero: none). It returns
	// protocol.ErrSessionUnknown when the session does not exist.
	SetDeadline(ctx context.Context, id string, deadline time.Time) error
}

// SetDeadline sets the time the session clientID ends, whatever its
// activity (zero: never), for example to the expiry of a fresh token. A
// connect already held keeps the shorter wait it started with; it is then
// answered normally and the next one waits until the new deadline.
func (s *Server) SetDeadline(ctx context.Context, clientID string, deadline time.Time) error {
	ds, ok := s.engine.(DeadlineSetter)
	if !ok {
		return ErrNoDeadlines
	}
	return ds.SetDeadline(ctx, clientID, deadline)
}

// SetDeadline sets the time the session ends whatever its activity (see
// Server.SetDeadline). It has an effect only while authorizing
// /meta/handshake.
func (c *Client) SetDeadline(t time.Time) {
	if c.handshaking {
		c.info.Deadline = t
	}
}

// Deadline returns the session's deadline, zero when it has none.
func (c *Client) Deadline() time.Time { return c.info.Deadline }

// pastDeadline reports whether info's deadline has passed.
func (info *SessionInfo) pastDeadline(now time.Time) bool {
	return !info.Deadline.IsZero() && !now.Before(info.Deadline)
}

// errPastDeadline is what exchange.client returns for a session it ended
// because its deadline passed.
var errPastDeadline = ErrTokenExpired

// endAtDeadline removes a session whose deadline passed and counts the
// refusal of the message that found it.
func (x *exchange) endAtDeadline(info *SessionInfo) {
	s := x.s
	s.stats.Refused.Add(RefusedDeadline)
	rs, err := s.engine.DestroySession(context.WithoutCancel(x.ctx), info.ID)
	if err != nil {
		x.engineError("destroy session at its deadline failed", err, "client", shortID(info.ID))
		return
	}
	s.log.Debug("session ended at its deadline", "client", shortID(info.ID), "user", info.User)
	s.removed(rs, "deadline")
}

// holdUntilDeadline shortens a connect's wait so that it ends at the
// session's deadline.
func holdUntilDeadline(timeout time.Duration, info *SessionInfo) time.Duration {
	if info.Deadline.IsZero() {
		return timeout
	}
	return max(min(timeout, time.Until(info.Deadline)), 0)
}

// SetDeadline implements DeadlineSetter.
func (e *MemoryEngine) SetDeadline(_ context.Context, id string, deadline time.Time) error {
	s := e.lookup(id)
	if s == nil {
		return protocol.ErrSessionUnknown
	}
	s.deadline.Set(deadline)
	return nil
}

// DeadlineOverride is the deadline DeadlineSetter.SetDeadline gave a live
// session, which an engine keeps beside the session's info (as read at
// handshake or claim) instead of copying the info at every change. The
// zero value means "as in the info". Safe for concurrent use.
type DeadlineOverride struct {
	d atomic.Int64 // unix nanoseconds; noDeadline: removed; 0: as in the info
}

// noDeadline marks a deadline removed by Set(time.Time{}).
const noDeadline = -1

// Set replaces the deadline; the zero time removes it.
func (o *DeadlineOverride) Set(t time.Time) {
	d := t.UnixNano()
	if t.IsZero() {
		d = noDeadline
	}
	o.d.Store(d)
}

// Reset forgets the override: the info's deadline holds again.
func (o *DeadlineOverride) Reset() { o.d.Store(0) }

// Apply returns info with the deadline set last, if any: info itself
// when there was none, else a copy.
func (o *DeadlineOverride) Apply(info *SessionInfo) *SessionInfo {
	d := o.d.Load()
	if d == 0 {
		return info
	}
	in := *info
	if d == noDeadline {
		in.Deadline = time.Time{}
	} else {
		in.Deadline = time.Unix(0, d)
	}
	return &in
}
