//go:build !js

package chatui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/internal/testutil/chattest"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/wasmclient"
)

const wait = 10 * time.Second

// chatServer is a real Bayeux server with the chat policy; users log in
// with ext.auth, each password being the name followed by "-pw".
type chatServer struct {
	srv *server.Server
	url string
}

func newChatServer(t *testing.T) *chatServer {
	t.Helper()
	return newChatServerRules(t, chat.DefaultRules())
}

// newChatServerRules is newChatServer with other channel rules.
func newChatServerRules(t *testing.T, rules []server.ChannelRule) *chatServer {
	t.Helper()
	path := testutil.WriteUsers(t, "", "alice", "bob", "carol")
	c, _, _ := chattest.New(t, path)
	srv, hs := chattest.Serve(t, c, server.Options{Channels: rules})
	return &chatServer{srv: srv, url: hs.URL + "/cometd"}
}

// recorder collects a session's events.
type recorder struct {
	mu        sync.Mutex
	states    []wasmclient.StateInfo
	user      string
	rooms     map[string]*roomState
	logins    []string
	errs      []string
	histories int
	changed   chan struct{}
}

func (r *recorder) room(name string) *roomState {
	if r.rooms[name] == nil {
		r.rooms[name] = newRoomState(name)
	}
	return r.rooms[name]
}

func (r *recorder) do(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) events() events {
	return events{
		state:         func(s wasmclient.StateInfo) { r.do(func() { r.states = append(r.states, s) }) },
		user:          func(n string) { r.do(func() { r.user = n }) },
		message:       func(room string, m Message) { r.do(func() { r.room(room).add(m) }) },
		members:       func(room string, m []string) { r.do(func() { r.room(room).setMembers(m) }) },
		loginRequired: func(room string) { r.do(func() { r.logins = append(r.logins, room) }) },
		roomError: func(room string, err error) {
			r.do(func() { r.errs = append(r.errs, room+": "+err.Error()) })
		},
		history: func(room string, msgs []Message, older, more bool) {
			r.do(func() {
				st := r.room(room)
				if older {
					st.addOlder(msgs, more)
				} else {
					st.add(msgs...)
					st.more = more
				}
				st.loaded = true
				r.histories++
			})
		},
	}
}

// waitFor waits until cond, called with the lock held, is true.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s (states %v, logins %v, errors %v, messages %v)", what, r.states, r.logins, r.errs, r.texts("r1"))
		}
	}
}

func (r *recorder) texts(room string) []string {
	var out []string
	for _, m := range r.room(room).msgs {
		out = append(out, m.User+": "+m.Chat)
	}
	return out
}

// user opens a session as name (ext.auth) unless anon is set, when the
// handshake carries no credentials, like a browser without a login.
type testUser struct {
	s    *session
	rec  *recorder
	anon atomic.Bool
	// handshakes, when set, holds the user's next handshakes until it is
	// closed (or wait passes).
	handshakes atomic.Pointer[chan struct{}]
}

func (cs *chatServer) user(t *testing.T, name string) *testUser {
	t.Helper()
	u := &testUser{rec: &recorder{rooms: map[string]*roomState{}, changed: make(chan struct{}, 1)}}
	opts := wasmclient.Options{
		MaxNetworkDelay: 3 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
		OutgoingExt: func(m *protocol.Message) {
			if m.Channel != protocol.MetaHandshake {
				return
			}
			if u.anon.Load() {
				delete(m.Ext, "auth")
			}
			if gate := u.handshakes.Load(); gate != nil {
				select {
				case <-*gate:
				case <-time.After(wait):
				}
			}
		},
	}
	if name != "" {
		opts.Ext = map[string]any{"auth": map[string]string{"user": name, "password": name + "-pw"}}
	} else {
		u.anon.Store(true)
	}
	u.s = newSession(cs.url, opts, u.rec.events())
	t.Cleanup(u.s.stop)
	return u
}

func (u *testUser) start(t *testing.T) {
	t.Helper()
	if err := u.s.start(); err != nil {
		t.Fatalf("start: %v", err)
	}
}

func TestSessionChat(t *testing.T) {
	cs := newChatServer(t)
	alice, bob := cs.user(t, "alice"), cs.user(t, "bob")
	alice.start(t)
	alice.rec.waitFor(t, "whoami", func() bool { return alice.rec.user == "alice" })
	if err := alice.s.join("lobby"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "alice's history", func() bool { return alice.rec.room("lobby").loaded })
	if err := alice.s.join("lobby"); err != nil { // joined already: nothing happens
		t.Fatal(err)
	}

	bob.start(t)
	if err := bob.s.join("lobby"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "bob in alice's member list", func() bool {
		return slices.Equal(alice.rec.room("lobby").members, []string{"alice", "bob"})
	})
	if err := alice.s.send("lobby", "hello bob"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*testUser{alice, bob} {
		u.rec.waitFor(t, "the message", func() bool { return slices.Contains(u.rec.texts("lobby"), "alice: hello bob") })
	}
	bob.rec.mu.Lock()
	if m := bob.rec.room("lobby").msgs[0]; m.ID == "" || m.at.IsZero() {
		t.Errorf("message without server id or time: %+v", m)
	}
	bob.rec.mu.Unlock()

	// A later joiner gets the message from the history, once.
	carol := cs.user(t, "carol")
	carol.start(t)
	if err := carol.s.join("lobby"); err != nil {
		t.Fatal(err)
	}
	carol.rec.waitFor(t, "carol's history", func() bool { return carol.rec.room("lobby").loaded })
	carol.rec.mu.Lock()
	if got := carol.rec.texts("lobby"); !slices.Equal(got, []string{"alice: hello bob"}) {
		t.Errorf("carol's history = %q", got)
	}
	carol.rec.mu.Unlock()

	// Leaving ends the presence.
	bob.s.leave("lobby")
	alice.rec.waitFor(t, "bob gone from the member list", func() bool {
		return slices.Equal(alice.rec.room("lobby").members, []string{"alice", "carol"})
	})
}

// After the server ended the session, a reconnect brings back what was
// said meanwhile (the client recovers it), without duplicates.
func TestSessionReconnectRecovers(t *testing.T) {
	cs := newChatServer(t)
	alice, bob := cs.user(t, "alice"), cs.user(t, "bob")
	alice.start(t)
	bob.start(t)
	for _, u := range []*testUser{alice, bob} {
		if err := u.s.join("r1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.s.send("r1", "before"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "before", func() bool { return len(alice.rec.texts("r1")) == 1 })

	alice.rec.mu.Lock()
	id := alice.rec.states[len(alice.rec.states)-1].ClientID
	alice.rec.mu.Unlock()
	if _, err := cs.srv.DisconnectWhere(context.Background(), func(in *server.SessionInfo) bool { return in.User == "alice" }); err != nil {
		t.Fatal(err)
	}
	if err := bob.s.send("r1", "while alice was away"); err != nil {
		t.Fatal(err)
	}
	// Depending on whether its connect was held, the client hears that
	// its session ended (then the user reconnects) or that it is unknown
	// (then it handshakes again by itself).
	var ended bool
	alice.rec.waitFor(t, "the session end", func() bool {
		last := alice.rec.states[len(alice.rec.states)-1]
		ended = last.State == wasmclient.Disconnected && errors.Is(last.LastError, wasmclient.ErrSessionEnded)
		return ended || last.State == wasmclient.Connected && last.ClientID != id
	})
	if ended {
		if err := alice.s.reconnect(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"bob: before", "bob: while alice was away"}
	alice.rec.waitFor(t, "the history after the reconnect", func() bool { return slices.Equal(alice.rec.texts("r1"), want) })
	// Live messages flow again (the client re-subscribed).
	if err := bob.s.send("r1", "welcome back"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "a live message", func() bool { return slices.Contains(alice.rec.texts("r1"), "bob: welcome back") })
}

func TestSessionLoginRequired(t *testing.T) {
	cs := newChatServer(t)
	anon := cs.user(t, "")
	anon.start(t)
	if err := anon.s.join("r1"); err == nil || !isLoginRequired(err) {
		t.Fatalf("join without a login: %v, want login_required", err)
	}
	// whoami answers "" (no login) and the join fails: both say so.
	anon.rec.waitFor(t, "loginRequired", func() bool { return slices.Contains(anon.rec.logins, "r1") })
	anon.rec.mu.Lock()
	defer anon.rec.mu.Unlock()
	if len(anon.rec.errs) != 0 {
		t.Errorf("room errors besides login_required: %v", anon.rec.errs)
	}
}

// A session that comes back without its login (logged out in another
// tab) leads to the login page.
func TestSessionLoginLostWhileAway(t *testing.T) {
	cs := newChatServer(t)
	alice := cs.user(t, "alice")
	alice.start(t)
	if err := alice.s.join("r1"); err != nil {
		t.Fatal(err)
	}
	alice.anon.Store(true)
	if _, err := cs.srv.DisconnectWhere(context.Background(), func(*server.SessionInfo) bool { return true }); err != nil {
		t.Fatal(err)
	}
	// The session ended (the user reconnects) or was unknown (the client
	// handshook again by itself, without credentials).
	var ended bool
	alice.rec.waitFor(t, "the session end", func() bool {
		ended = alice.rec.states[len(alice.rec.states)-1].State == wasmclient.Disconnected
		return ended || len(alice.rec.logins) > 0
	})
	if ended {
		alice.s.reconnect()
	}
	alice.rec.waitFor(t, "loginRequired", func() bool { return len(alice.rec.logins) > 0 })
	alice.rec.mu.Lock()
	defer alice.rec.mu.Unlock()
	if len(alice.rec.errs) != 0 {
		t.Errorf("room errors: %v", alice.rec.errs)
	}
}

// A forged user field is replaced by the server.
func TestSessionSendCannotForgeUser(t *testing.T) {
	cs := newChatServer(t)
	alice := cs.user(t, "alice")
	alice.start(t)
	if err := alice.s.join("r1"); err != nil {
		t.Fatal(err)
	}
	if err := alice.s.c.Publish(context.Background(), "/chat/r1", map[string]string{"user": "bob", "chat": "forged"}); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "the message", func() bool { return len(alice.rec.texts("r1")) == 1 })
	alice.rec.mu.Lock()
	defer alice.rec.mu.Unlock()
	if got := alice.rec.texts("r1")[0]; got != "alice: forged" {
		t.Errorf("got %q", got)
	}
}

// Leaving and at once joining again (the UI unsubscribes in the
// background) leaves the room joined.
func TestSessionLeaveRejoin(t *testing.T) {
	cs := newChatServer(t)
	alice, bob := cs.user(t, "alice"), cs.user(t, "bob")
	alice.start(t)
	bob.start(t)
	if err := alice.s.join("r1"); err != nil {
		t.Fatal(err)
	}
	j := alice.s.forget("r1")
	done := make(chan struct{})
	go func() { alice.s.unsubscribe(j); close(done) }()
	if err := alice.s.join("r1"); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := bob.s.send("r1", "still there?"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "the message after rejoining", func() bool { return slices.Contains(alice.rec.texts("r1"), "bob: still there?") })
}

// Scrolling back loads older pages until the first message, without a
// gap or a duplicate at the joins, while new messages come in.
func TestSessionScrollBack(t *testing.T) {
	cs := newChatServer(t)
	alice, bob := cs.user(t, "alice"), cs.user(t, "bob")
	bob.start(t)
	for i := range 120 {
		if err := bob.s.send("old", fmt.Sprintf("m%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice.start(t)
	if err := alice.s.join("old"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "the newest page", func() bool { return alice.rec.room("old").loaded })
	alice.rec.mu.Lock()
	if st := alice.rec.room("old"); len(st.msgs) != pageSize || !st.more {
		t.Fatalf("the room opens with %d messages (more %v), want the newest %d and more", len(st.msgs), st.more, pageSize)
	}
	alice.rec.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		for i := 120; i < 130; i++ {
			if err := bob.s.send("old", fmt.Sprintf("m%03d", i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for pages := 0; ; pages++ {
		alice.rec.mu.Lock()
		st := alice.rec.room("old")
		more := st.more
		pos, ok := st.oldest()
		alice.rec.mu.Unlock()
		if !more {
			break
		}
		if !ok || pages > 5 {
			t.Fatalf("page %d: oldest position %v %v", pages, pos, ok)
		}
		if err := alice.s.loadOlder("old", pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 130 {
		want = append(want, fmt.Sprintf("bob: m%03d", i))
	}
	alice.rec.waitFor(t, "every message once, in order", func() bool { return slices.Equal(alice.rec.texts("old"), want) })
}

// A client that missed more than a room keeps shows the room's newest
// messages again.
func TestSessionGapReloads(t *testing.T) {
	cs := newChatServerRules(t, []server.ChannelRule{{Pattern: "/chat/**", History: 3, Presence: true}})
	alice, bob := cs.user(t, "alice"), cs.user(t, "bob")
	alice.start(t)
	bob.start(t)
	for _, u := range []*testUser{alice, bob} {
		if err := u.s.join("r1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.s.send("r1", "before"); err != nil {
		t.Fatal(err)
	}
	alice.rec.waitFor(t, "before", func() bool { return len(alice.rec.texts("r1")) == 1 })
	id := alice.s.c.ClientID()
	// Alice's new session starts after bob has written: she missed 6
	// messages, of which the room keeps 3.
	gate := make(chan struct{})
	alice.handshakes.Store(&gate)
	if _, err := cs.srv.DisconnectWhere(context.Background(), func(in *server.SessionInfo) bool { return in.User == "alice" }); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if err := bob.s.send("r1", fmt.Sprintf("away %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	var ended bool
	alice.rec.waitFor(t, "the session end", func() bool {
		last := alice.rec.states[len(alice.rec.states)-1]
		ended = last.State == wasmclient.Disconnected && errors.Is(last.LastError, wasmclient.ErrSessionEnded)
		return ended || last.State == wasmclient.Connected && last.ClientID != id
	})
	if ended {
		if err := alice.s.reconnect(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"bob: before", "bob: away 3", "bob: away 4", "bob: away 5"}
	alice.rec.waitFor(t, "the newest messages after the gap", func() bool { return slices.Equal(alice.rec.texts("r1"), want) })
}
