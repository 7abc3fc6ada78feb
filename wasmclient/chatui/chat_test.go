package chatui

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/wasmclient"
)

func TestValidRoom(t *testing.T) {
	for _, tc := range []struct {
		room string
		ok   bool
	}{
		{"demo", true},
		{"a-b_c.d!e~f(g)h$i@j", true},
		{"Room42", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"a/b", false},
		{"*", false},
		{"**", false},
		{"a b", false},
		{"a%20b", false},
		{"<script>", false},
		{`a"b`, false},
		{"a#b", false},
		{"é", false},
	} {
		if got := ValidRoom(tc.room); got != tc.ok {
			t.Errorf("ValidRoom(%q) = %v, want %v", tc.room, got, tc.ok)
		}
	}
}

func TestRoomFromURL(t *testing.T) {
	for _, tc := range []struct {
		url, room string
		ok        bool
	}{
		{"/", DefaultRoom, true},
		{"/?room=", DefaultRoom, true},
		{"/?room=lobby", "lobby", true},
		{"/?room=x%281%29", "x(1)", true},
		{"/?room=a%2Fb", DefaultRoom, false},
		{"/?room=%3Cimg%3E", DefaultRoom, false},
	} {
		u, _ := url.Parse(tc.url)
		room, ok := roomFromURL(u)
		if room != tc.room || ok != tc.ok {
			t.Errorf("roomFromURL(%s) = %q, %v; want %q, %v", tc.url, room, ok, tc.room, tc.ok)
		}
	}
}

func TestLoginURL(t *testing.T) {
	got := loginURL("/chat/", "x(1)&y")
	u, err := url.Parse(got)
	if err != nil || u.Path != "/login" {
		t.Fatalf("loginURL = %q", got)
	}
	next, err := url.Parse(u.Query().Get("next"))
	if err != nil || next.Path != "/chat/" || next.Query().Get("room") != "x(1)&y" || len(next.Query()) != 1 {
		t.Errorf("loginURL = %q: next = %v", got, next)
	}
	if r := roomURL(&url.URL{Path: "/chat/", RawQuery: "room=a&x=1", Fragment: "f"}, "b c"); r.String() != "/chat/?room=b+c" {
		t.Errorf("roomURL = %s", r)
	}
}

func msgAt(id string, sec int, text string) Message {
	return Message{User: "u", Chat: text, ID: id, Time: time.Date(2026, 1, 2, 3, 4, sec, 0, time.UTC).Format(time.RFC3339Nano)}
}

func TestRoomStateAdd(t *testing.T) {
	r := newRoomState("r")
	if n := r.add(msgAt("c", 30, "live 1"), msgAt("d", 40, "live 2")); n != 2 {
		t.Fatalf("add = %d", n)
	}
	// History overlaps the live messages and brings older ones.
	if n := r.add(msgAt("a", 10, "old 1"), msgAt("b", 20, "old 2"), msgAt("c", 30, "live 1")); n != 2 {
		t.Fatalf("add history = %d, want 2 new", n)
	}
	if n := r.add(msgAt("d", 40, "live 2")); n != 0 {
		t.Fatalf("duplicate added")
	}
	var got []string
	for _, m := range r.msgs {
		got = append(got, m.Chat)
	}
	if want := "old 1,old 2,live 1,live 2"; strings.Join(got, ",") != want {
		t.Errorf("order = %v, want %s", got, want)
	}

	// Equal and unparsable times keep the arrival order.
	r = newRoomState("r")
	r.add(Message{ID: "1", Chat: "x"}, Message{ID: "2", Chat: "y"}, msgAt("3", 1, "z"), msgAt("4", 1, "w"))
	got = nil
	for _, m := range r.msgs {
		got = append(got, m.Chat)
	}
	if strings.Join(got, "") != "xyzw" {
		t.Errorf("order = %v", got)
	}

	// The oldest go beyond maxMessages, and may come back from history
	// only to go again.
	r = newRoomState("r")
	for i := range maxMessages + 10 {
		r.add(Message{ID: fmt.Sprint(i), Chat: fmt.Sprint(i), Time: time.Unix(int64(1000+i), 0).UTC().Format(time.RFC3339)})
	}
	if len(r.msgs) != maxMessages || r.msgs[0].Chat != "10" || len(r.ids) != maxMessages {
		t.Errorf("kept %d (ids %d), first %s", len(r.msgs), len(r.ids), r.msgs[0].Chat)
	}
	r.add(Message{ID: "0", Chat: "0", Time: time.Unix(1000, 0).UTC().Format(time.RFC3339)})
	if len(r.msgs) != maxMessages || r.msgs[0].Chat != "10" {
		t.Errorf("after an old one came back: %d, first %s", len(r.msgs), r.msgs[0].Chat)
	}

	r.setMembers([]string{"bob", "alice", "bob"})
	if strings.Join(r.members, ",") != "alice,bob" {
		t.Errorf("members = %v", r.members)
	}
}

func TestStatusText(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		info wasmclient.StateInfo
		want string
	}{
		{wasmclient.StateInfo{State: wasmclient.Connecting}, "connecting…"},
		{wasmclient.StateInfo{State: wasmclient.Connected}, "connected"},
		{wasmclient.StateInfo{State: wasmclient.Reconnecting, NextRetry: now.Add(2400 * time.Millisecond)}, "reconnecting in 3s"},
		{wasmclient.StateInfo{State: wasmclient.Reconnecting, NextRetry: now.Add(time.Second)}, "reconnecting in 1s"},
		{wasmclient.StateInfo{State: wasmclient.Reconnecting, NextRetry: now.Add(-time.Second)}, "reconnecting…"},
		{wasmclient.StateInfo{State: wasmclient.Disconnected}, "disconnected"},
		{wasmclient.StateInfo{State: wasmclient.Disconnected, LastError: wasmclient.ErrSessionEnded}, "disconnected: the server ended the session"},
		{wasmclient.StateInfo{State: wasmclient.Disconnected, LastError: &protocol.Error{Code: 403, Message: "login_required"}}, "disconnected: login required"},
		{wasmclient.StateInfo{State: wasmclient.Disconnected, LastError: &wasmclient.HTTPError{StatusCode: 503, Status: "503 Service Unavailable"}}, "disconnected: the server answered 503 Service Unavailable"},
		{wasmclient.StateInfo{State: wasmclient.Disconnected, LastError: errors.New("wasmclient: boom")}, "disconnected: boom"},
	} {
		if got := statusText(tc.info, now); got != tc.want {
			t.Errorf("statusText(%v) = %q, want %q", tc.info, got, tc.want)
		}
	}
}

func TestFormatTime(t *testing.T) {
	now := time.Date(2026, 5, 6, 12, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, ""},
		{time.Date(2026, 5, 6, 9, 5, 0, 0, time.Local), "09:05"},
		{time.Date(2026, 5, 5, 9, 5, 0, 0, time.Local), "May 5 09:05"},
		{time.Date(2025, 5, 5, 9, 5, 0, 0, time.Local), "May 5 2025 09:05"},
	} {
		if got := formatTime(tc.t, now); got != tc.want {
			t.Errorf("formatTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// render returns the markup of c as the server prerenders it.
func render(t *testing.T, c *Chat) string {
	t.Helper()
	e := app.NewTestEngine()
	if err := e.Load(c); err != nil {
		t.Fatal(err)
	}
	e.ConsumeAll()
	return app.HTMLString(c)
}

func TestRenderTestIDs(t *testing.T) {
	Register()
	Register() // twice is fine
	html := render(t, &Chat{})
	for _, id := range []string{"chat-status", "chat-input", "chat-send", "chat-messages", "chat-members", "chat-room"} {
		if !strings.Contains(html, `data-testid="`+id+`"`) {
			t.Errorf("no data-testid %s in\n%s", id, html)
		}
	}
	// Before the client runs (prerendering), the status is "connecting".
	if !strings.Contains(html, "connecting…") || strings.Contains(html, ">connected<") {
		t.Errorf("status not connecting:\n%s", html)
	}
	if !strings.Contains(html, ">"+DefaultRoom+"</h2>") {
		t.Errorf("default room not shown:\n%s", html)
	}
}

func TestRenderMessagesAsText(t *testing.T) {
	const evil = `<img src=x onerror=alert(1)>`
	c := &Chat{user: "alice"}
	c.init()
	st := newRoomState("demo")
	st.add(
		Message{User: "<b>mallory</b>", Chat: evil, Time: "2026-01-02T03:04:05Z", ID: "1"},
		Message{User: "alice", Chat: "mine & yours", Time: "2026-01-02T03:04:06Z", ID: "2"},
	)
	st.setMembers([]string{"alice", "<i>bob</i>"})
	st.loaded = true
	c.rooms["demo"], c.order, c.room = st, []string{"demo"}, "demo"
	html := render(t, c)

	if strings.Contains(html, "<img") || strings.Contains(html, "<b>") || strings.Contains(html, "<i>") {
		t.Fatalf("markup from messages or names was not escaped:\n%s", html)
	}
	for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;mallory&lt;/b&gt;", "mine &amp; yours", "&lt;i&gt;bob&lt;/i&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("missing %s in\n%s", want, html)
		}
	}
	if n := strings.Count(html, `data-testid="chat-message"`); n != 2 {
		t.Errorf("%d chat-message elements, want 2", n)
	}
	// Only alice's own message is marked.
	if n := strings.Count(html, `class="chat-message own"`); n != 1 {
		t.Errorf("%d own messages, want 1:\n%s", n, html)
	}
	// Member names are elements inside chat-members.
	members := html[strings.Index(html, `data-testid="chat-members"`):]
	if !strings.Contains(members, `<li class="chat-member me">alice</li>`) {
		t.Errorf("member alice not in a li of chat-members:\n%s", members)
	}
}

func TestRenderStatus(t *testing.T) {
	now := time.Now()
	c := &Chat{started: true, now: now}
	c.status = wasmclient.StateInfo{State: wasmclient.Reconnecting, NextRetry: now.Add(5 * time.Second), LastError: errors.New("fetch: Failed to fetch")}
	html := render(t, c)
	if !strings.Contains(html, "reconnecting in 5s") || !strings.Contains(html, `data-state="reconnecting"`) {
		t.Errorf("reconnecting status:\n%s", html)
	}
	c = &Chat{started: true, status: wasmclient.StateInfo{State: wasmclient.Disconnected, LastError: wasmclient.ErrSessionEnded}}
	html = render(t, c)
	if !strings.Contains(html, "disconnected: the server ended the session") || !strings.Contains(html, "Reconnect") {
		t.Errorf("stopped status:\n%s", html)
	}
}

// TestRenderLinks: http(s) URLs in a message are links that open in a new
// tab without opener or referrer; other schemes and markup stay text.
func TestRenderLinks(t *testing.T) {
	c := &Chat{user: "alice"}
	c.init()
	st := newRoomState("demo")
	st.add(Message{User: "bob", ID: "1", Time: "2026-01-02T03:04:05Z",
		Chat: `see (https://example.com/a_(b)?q=1&r=%20) or javascript:alert(1) <a href="javascript:x">y</a>`})
	st.loaded = true
	c.rooms["demo"], c.order, c.room = st, []string{"demo"}, "demo"
	html := render(t, c)

	msgs := html[strings.Index(html, `data-testid="chat-messages"`):strings.Index(html, `data-testid="chat-members"`)]
	if n := strings.Count(msgs, "<a "); n != 1 {
		t.Fatalf("%d links in the messages, want 1:\n%s", n, msgs)
	}
	start := strings.Index(msgs, "<a ")
	tag := msgs[start : start+strings.Index(msgs[start:], ">")+1] // attributes in any order
	for _, want := range []string{`class="chat-link"`, `href="https://example.com/a_(b)?q=1&r=%20"`, `rel="noopener noreferrer nofollow"`, `target="_blank"`} {
		if !strings.Contains(tag, want) {
			t.Errorf("link %s lacks %s", tag, want)
		}
	}
	if strings.Contains(html, `href="javascript`) || !strings.Contains(html, `&lt;a href=&#34;javascript:x&#34;&gt;y&lt;/a&gt;`) {
		t.Errorf("javascript: or markup became a link:\n%s", html)
	}
	if !strings.Contains(html, `>https://example.com/a_(b)?q=1&amp;r=%20</a>`) || !strings.Contains(html, `) or javascript:alert(1) &lt;a`) {
		t.Errorf("the text around the link is not kept:\n%s", html)
	}
}
