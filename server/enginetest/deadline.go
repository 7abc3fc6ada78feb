package enginetest

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// testDeadline: a session's Deadline is stored with it, and an engine that
// is a server.DeadlineSetter moves it for every node, keeping the rest of
// the session's info.
func testDeadline(t *testing.T, m *maker) {
	ctx := context.Background()
	n := m.node(t, Options{})
	e, peer := n.Engine, m.peer(t, n, Options{}).Engine
	first := time.Now().Add(time.Minute).Round(time.Millisecond)
	in := &server.SessionInfo{ID: "dl", Created: time.Now().Round(time.Millisecond), User: "token:alice",
		Flags: map[string]string{"auth": "token", "token_channels": "/chat/a,/chat/b/**"}, Ack: true, Deadline: first}
	if err := e.CreateSession(ctx, in); err != nil {
		t.Fatal(err)
	}
	check := func(eng server.Engine, want time.Time) {
		t.Helper()
		got, ok, err := eng.Session(ctx, "dl")
		if err != nil || !ok {
			t.Fatalf("Session: %v, %v", ok, err)
		}
		if !got.Deadline.Equal(want) {
			t.Errorf("Deadline %v, want %v", got.Deadline, want)
		}
		if got.User != in.User || !maps.Equal(got.Flags, in.Flags) || !got.Ack || !got.Created.Equal(in.Created) {
			t.Errorf("the rest of the info changed: %+v, want %+v", got, in)
		}
	}
	check(peer, first)
	ds, ok := e.(server.DeadlineSetter)
	if !ok {
		t.Skipf("%T cannot move deadlines", e)
	}
	later := first.Add(5 * time.Minute)
	if err := ds.SetDeadline(ctx, "dl", later); err != nil {
		t.Fatal(err)
	}
	check(peer, later)
	check(e, later)
	if err := peer.(server.DeadlineSetter).SetDeadline(ctx, "dl", time.Time{}); err != nil {
		t.Fatal(err)
	}
	check(e, time.Time{})
	if err := ds.SetDeadline(ctx, "nobody", later); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("SetDeadline of an unknown session: %v", err)
	}
	if rs, err := e.DestroySession(ctx, "dl"); err != nil || rs == nil {
		t.Fatalf("DestroySession: %v, %v", rs, err)
	}
	if err := ds.SetDeadline(ctx, "dl", later); !errors.Is(err, protocol.ErrSessionUnknown) {
		t.Errorf("SetDeadline of a destroyed session: %v", err)
	}
}
