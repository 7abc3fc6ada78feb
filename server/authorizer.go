package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bayeux-go/bayeux/protocol"
)

// Per-channel authorizers, with the semantics of CometD's Authorizer
// (org.cometd.bayeux.server.Authorizer and its reference manual section
// "Authorizers"):
//
//   - An authorizer is registered for a channel pattern: a channel name
//     ("/game/123") or a wildcard ("/game/*", "/game/**", "/**"). The
//     authorizers of an operation on channel C are those registered for
//     C itself and for every wildcard that covers C: for /chat/demo those
//     of /chat/demo, /chat/*, /chat/** and /**; for a subscription to
//     /chat/* those of /chat/*, /chat/** and /**. Those registered for
//     channels below C are not asked: a subscription to /** is decided
//     by the authorizers of /** alone.
//   - Each one grants, denies or ignores (has no opinion). With no
//     authorizer at all the operation is granted; one deny wins (the rest
//     are not asked); otherwise one grant is needed: ignore-only is
//     denied, as denied_by_not_granting.
//   - They are asked from the widest pattern (/**) to the channel itself,
//     and for one pattern in the order they were registered, so that a
//     cross-cutting deny on /** stops the request before a narrower
//     authorizer with side effects (a rate limit) runs.
//   - The operations are create, subscribe and publish. A subscribe or a
//     publish on a channel that does not exist asks create first (see
//     Server.channelExists). Meta channels are never asked about;
//     service channels are, like broadcast ones.
//
// Where they stand among the other checks: Options.Authorize (CometD's
// SecurityPolicy) decides every message first, and a message it refuses
// goes no further; the authorizers then decide the channel operations of
// the messages it let through. Local clients are asked neither: both are
// for remote clients (Client.IsLocal code is the application's own).
// /service/history and /service/presence, and a subscription to the
// presence channel of C, are read as a subscribe to C: Authorize and the
// authorizers of C are asked.
//
// A denial is answered as CometD does: successful:false with error
// 403:REASON:publish_denied, 403:REASON:subscribe_denied, or, for the
// create a subscribe or a publish asked first, 403:REASON:create_denied
// and 403:REASON:channel_create_denied.

// Operation is what an Authorizer is asked about.
type Operation uint8

// Operations on channels.
const (
	// OpCreate: a subscribe or publish needs the channel to exist.
	OpCreate Operation = iota + 1
	// OpSubscribe: a /meta/subscribe of the channel, or a read of its
	// history or presence.
	OpSubscribe
	// OpPublish: a message published on the channel.
	OpPublish
)

func (o Operation) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpSubscribe:
		return "subscribe"
	case OpPublish:
		return "publish"
	}
	return fmt.Sprintf("Operation(%d)", uint8(o))
}

// Result is an Authorizer's answer: Grant, Ignore or Deny. The zero
// Result ignores.
type Result struct {
	verdict int8 // 0 ignore, 1 grant, -1 deny
	reason  string
}

// Grant grants the operation, unless another authorizer denies it.
func Grant() Result { return Result{verdict: 1} }

// Ignore has no opinion; when no authorizer grants, the operation is
// denied (denied_by_not_granting).
func Ignore() Result { return Result{} }

// Deny denies the operation whatever the other authorizers say. reason
// goes into the error's arguments (403:reason:publish_denied); an empty
// one is "denied_by_authorizer". It should be a short snake_case word
// without ':' or ','.
func Deny(reason string) Result {
	if reason == "" {
		reason = "denied_by_authorizer"
	}
	return Result{verdict: -1, reason: reason}
}

// Granted reports whether r grants.
func (r Result) Granted() bool { return r.verdict > 0 }

// Denied reports whether r denies.
func (r Result) Denied() bool { return r.verdict < 0 }

// Reason is a denial's reason ("" unless Denied).
func (r Result) Reason() string { return r.reason }

func (r Result) String() string {
	switch {
	case r.Granted():
		return "grant"
	case r.Denied():
		return "deny(" + r.reason + ")"
	}
	return "ignore"
}

// Reasons the server itself gives in denials.
const (
	// DeniedByNotGranting: authorizers apply to the channel but none
	// granted the operation.
	DeniedByNotGranting = "denied_by_not_granting"
)

// Authorizer decides operations on the channels it is registered for
// (see Options.Authorizers and Server.AddAuthorizer). channel is the
// channel (or, for a subscription, the pattern) operated on; c is the
// client, Anonymous for a publish without a session (Options.AnonPublish),
// and m the message that asks (for history and presence reads, a
// /meta/subscribe made for the purpose).
//
// Authorize runs on the request's goroutine, concurrently with other
// requests: it must be safe for concurrent use, and quick (it delays the
// session's later messages). It must not modify m.
type Authorizer interface {
	Authorize(ctx context.Context, op Operation, channel string, c *Client, m *protocol.Message) Result
}

// AuthorizerFunc is an Authorizer written as a function.
type AuthorizerFunc func(ctx context.Context, op Operation, channel string, c *Client, m *protocol.Message) Result

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, op Operation, channel string, c *Client, m *protocol.Message) Result {
	return f(ctx, op, channel, c, m)
}

// ChannelAuthorizer registers Authorizer for the channels Pattern
// covers (Options.Authorizers).
type ChannelAuthorizer struct {
	// Pattern is a channel name or a wildcard pattern; not a meta
	// channel.
	Pattern    string
	Authorizer Authorizer
}

// authzEntry is one registration; its pointer identifies it for removal.
type authzEntry struct {
	pattern string
	a       Authorizer
}

// authzTable is an immutable set of registrations: replaced as a whole
// when one is added or removed, read without a lock.
type authzTable struct {
	// names are the registrations on channel names, by name.
	names map[string][]*authzEntry
	// wilds are those on wildcard patterns, widest first: by the length
	// of the pattern's prefix, "**" before "*", then in registration
	// order.
	wilds []*authzEntry
}

func (t *authzTable) empty() bool { return t == nil || (len(t.names) == 0 && len(t.wilds) == 0) }

// authorizers holds the server's authorizers.
type authorizers struct {
	mu    sync.Mutex // serializes changes
	table atomic.Pointer[authzTable]
}

func validAuthzPattern(pattern string) error {
	if err := protocol.ValidatePattern(pattern); err != nil {
		return err
	}
	if protocol.IsMeta(pattern) {
		return fmt.Errorf("bayeux: authorizers do not apply to meta channels (%s)", pattern)
	}
	return nil
}

// add registers e and returns the function that removes it again.
func (az *authorizers) add(e *authzEntry) func() {
	az.mu.Lock()
	defer az.mu.Unlock()
	old := az.table.Load()
	t := &authzTable{names: make(map[string][]*authzEntry)}
	if old != nil {
		for k, v := range old.names {
			t.names[k] = v
		}
		t.wilds = old.wilds
	}
	if protocol.IsWild(e.pattern) {
		t.wilds = append(slices.Clip(t.wilds), e)
		slices.SortStableFunc(t.wilds, func(a, b *authzEntry) int { return wildRank(a.pattern) - wildRank(b.pattern) })
	} else {
		t.names[e.pattern] = append(slices.Clip(t.names[e.pattern]), e)
	}
	az.table.Store(t)
	var once sync.Once
	return func() { once.Do(func() { az.remove(e) }) }
}

func (az *authorizers) remove(e *authzEntry) {
	az.mu.Lock()
	defer az.mu.Unlock()
	old := az.table.Load()
	t := &authzTable{names: make(map[string][]*authzEntry, len(old.names))}
	for k, v := range old.names {
		if k == e.pattern {
			v = slices.DeleteFunc(slices.Clone(v), func(x *authzEntry) bool { return x == e })
			if len(v) == 0 {
				continue
			}
		}
		t.names[k] = v
	}
	t.wilds = slices.DeleteFunc(slices.Clone(old.wilds), func(x *authzEntry) bool { return x == e })
	az.table.Store(t)
}

// wildRank orders wildcard patterns from the widest: the patterns that
// cover one channel are "**" patterns on ever longer prefixes and at
// most one "*" pattern on the longest.
func wildRank(pattern string) int {
	prefix := strings.TrimRight(pattern, "*")
	r := 2 * len(prefix)
	if !strings.HasSuffix(pattern, "/**") {
		r++
	}
	return r
}

// decide asks the authorizers of channel about op (see the rules above).
// applied reports whether any authorizer applies.
func (t *authzTable) decide(ctx context.Context, op Operation, channel string, c *Client, m *protocol.Message) (r Result, applied bool) {
	granted := false
	ask := func(e *authzEntry) bool {
		applied = true
		res := e.a.Authorize(ctx, op, channel, c, m)
		if res.Denied() {
			r = res
			return false
		}
		granted = granted || res.Granted()
		return true
	}
	for _, e := range t.wilds {
		if protocol.Covers(e.pattern, channel) && !ask(e) {
			return r, true
		}
	}
	for _, e := range t.names[channel] {
		if !ask(e) {
			return r, true
		}
	}
	if granted || !applied {
		return Grant(), applied
	}
	return Deny(DeniedByNotGranting), true
}

// applies reports whether any authorizer applies to channel.
func (t *authzTable) applies(channel string) bool {
	if t.empty() {
		return false
	}
	if len(t.names[channel]) > 0 {
		return true
	}
	for _, e := range t.wilds {
		if protocol.Covers(e.pattern, channel) {
			return true
		}
	}
	return false
}

// AddAuthorizer registers a for the channels pattern covers, after those
// of Options.Authorizers and earlier calls, and returns the function that
// removes it again. An authorizer registered on a channel name makes that
// channel exist (no create is asked for it), as adding an authorizer to a
// channel creates it in CometD. It is safe to call at any time; requests
// already being decided may not see the change.
func (s *Server) AddAuthorizer(pattern string, a Authorizer) (remove func(), err error) {
	if err := validAuthzPattern(pattern); err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("bayeux: nil Authorizer")
	}
	return s.authz.add(&authzEntry{pattern: pattern, a: a}), nil
}

// authorizeChannel decides op (OpSubscribe or OpPublish) on channel for
// c's message m with the authorizers, asking create first when create is
// set and the channel does not exist. It returns nil when granted, else
// the error to answer m with.
func (s *Server) authorizeChannel(ctx context.Context, c *Client, m *protocol.Message, op Operation, channel string, create bool) error {
	t := s.authz.table.Load()
	if c.transport == transportLocal || protocol.IsMeta(channel) || !t.applies(channel) {
		return nil
	}
	if create {
		exists, err := s.channelExists(ctx, t, channel)
		if err != nil {
			s.log.Error("channel lookup failed", "channel", channel, "err", err)
			return protocol.ErrServerError
		}
		if !exists {
			if r, _ := t.decide(ctx, OpCreate, channel, c, m); r.Denied() {
				if op == OpSubscribe {
					return protocol.ErrCreateDenied.WithArgs(r.Reason())
				}
				return protocol.ErrChannelCreateDenied.WithArgs(r.Reason())
			}
			s.known.add(channel)
		}
	}
	r, _ := t.decide(ctx, op, channel, c, m)
	switch {
	case !r.Denied():
		return nil
	case op == OpSubscribe:
		return protocol.ErrSubscribeDenied.WithArgs(r.Reason())
	}
	return protocol.ErrPublishDenied.WithArgs(r.Reason())
}
