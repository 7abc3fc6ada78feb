package server

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// deadlineHarness is a server whose Authorize hook gives a session the
// deadline ext.until (milliseconds from now) asks for.
func deadlineHarness(t *testing.T) *harness {
	return newHarness(t, Options{
		PollTimeout: 20 * time.Second, // far beyond any deadline here
		Authorize: func(_ context.Context, c *Client, m *protocol.Message) error {
			if m.Channel == protocol.MetaHandshake {
				if raw, ok := m.Ext["until"]; ok {
					ms, _ := strconv.Atoi(string(raw))
					c.SetDeadline(time.Now().Add(time.Duration(ms) * time.Millisecond))
				}
			}
			return nil
		},
	})
}

func (c *rawClient) handshakeUntil(d time.Duration) time.Time {
	c.t.Helper()
	hs := handshakeMsg()
	hs.Ext = map[string]json.RawMessage{"until": json.RawMessage(strconv.FormatInt(d.Milliseconds(), 10))}
	r := only(c.t, c.must(hs), protocol.MetaHandshake)
	if !r.IsSuccessful() {
		c.t.Fatalf("handshake: %s", dump([]*protocol.Message{r}))
	}
	c.id = r.ClientID
	info, ok, err := c.h.srv.Engine().Session(context.Background(), c.id)
	if err != nil || !ok || info.Deadline.IsZero() {
		c.t.Fatalf("session %v %v, deadline %v", ok, err, info)
	}
	return info.Deadline
}

// TestSessionDeadline: a held connect returns at the session's deadline
// (not at the poll timeout), and the next message ends the session with
// 403::token_expired and handshake advice, counted and reported.
func TestSessionDeadline(t *testing.T) {
	t.Parallel()
	h := deadlineHarness(t)
	c := h.client()
	deadline := c.handshakeUntil(300 * time.Millisecond)
	c.connectNow()
	r := c.wait(c.connectAsync(), hWait) // the poll timeout is 20s
	if reply := replyTo(t, r.msgs, protocol.MetaConnect); !reply.IsSuccessful() {
		t.Fatalf("the held connect: %s", dump(r.msgs))
	}
	if time.Now().Before(deadline) {
		t.Fatalf("the held connect returned before the deadline")
	}
	reply := replyTo(t, c.must(connectMsg(c.id, nil)), protocol.MetaConnect)
	wantError(t, reply, "403::token_expired")
	wantHandshakeAdvice(t, reply)
	if n := h.sessionCount(); n != 0 {
		t.Errorf("%d sessions after the deadline", n)
	}
	ev := h.events.wait(t, "client_disconnect", func(ev Event) bool { return ev.Kind == EventClientDisconnect && ev.ClientID == c.id })
	if ev.Reason != "deadline" {
		t.Errorf("client_disconnect reason %q, want deadline", ev.Reason)
	}
	if n := h.srv.Stats().Refused.Load(RefusedDeadline); n != 1 {
		t.Errorf("refused %s = %d, want 1", RefusedDeadline, n)
	}

	// A publish past the deadline gets the same answer.
	p := h.client()
	deadline = p.handshakeUntil(50 * time.Millisecond)
	testutil.Eventually(t, hWait, func() bool { return time.Now().After(deadline) }, "the deadline")
	reply = replyTo(t, p.must(publishMsg(p.id, "/a", "late")), "/a")
	wantError(t, reply, "403::token_expired")
	wantHandshakeAdvice(t, reply)
}

// TestSetDeadline: Server.SetDeadline moves a session's deadline (a token
// refresh): the session lives on past the first one.
func TestSetDeadline(t *testing.T) {
	t.Parallel()
	h := deadlineHarness(t)
	c := h.client()
	first := c.handshakeUntil(100 * time.Millisecond)
	later := time.Now().Add(time.Hour)
	if err := h.srv.SetDeadline(context.Background(), c.id, later); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, hWait, func() bool { return time.Now().After(first) }, "the first deadline")
	c.connectNow()
	c.subscribe("/a")
	info, _, _ := h.srv.Engine().Session(context.Background(), c.id)
	if !info.Deadline.Equal(later) {
		t.Errorf("deadline %v, want %v", info.Deadline, later)
	}
	if err := h.srv.SetDeadline(context.Background(), "nobody", later); err != protocol.ErrSessionUnknown {
		t.Errorf("SetDeadline of an unknown session: %v", err)
	}
	// Outside a handshake, Client.SetDeadline does nothing.
	cl := &Client{info: &SessionInfo{}}
	cl.SetDeadline(later)
	if !cl.Deadline().IsZero() {
		t.Error("SetDeadline outside a handshake had an effect")
	}
}
