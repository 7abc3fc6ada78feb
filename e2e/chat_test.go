package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bayeux-go/bayeux/wasmclient"
)

// Browser-side helpers. Text is read with JavaScript so that a test does
// not depend on the layout, only on the data-testid contract.

const jsConnected = `(() => {
	const el = document.querySelector('[data-testid="chat-status"]');
	if (!el) return false;
	const t = el.textContent.toLowerCase();
	return t.includes('connected') && !t.includes('disconnected') && !t.includes('reconnect');
})()`

func jsText(testid string) string {
	return `Array.from(document.querySelectorAll('[data-testid="` + testid + `"]')).map(e => e.textContent).join('\n')`
}

// login logs user in through /login and waits until the chat is connected.
func login(t *testing.T, ctx context.Context, b *bayeux, user, password, room string) {
	t.Helper()
	next := "/chat/"
	if room != "" {
		next += "?room=" + room
	}
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(b.URL+"/login?next="+next),
		chromedp.WaitVisible(sel("login-user")),
		chromedp.SendKeys(sel("login-user"), user),
		chromedp.SendKeys(sel("login-password"), password),
		chromedp.Click(sel("login-submit")),
	)
	waitConnected(t, ctx, 30*time.Second)
}

func waitConnected(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	if !poll(ctx, jsConnected, d) {
		t.Fatalf("chat not connected after %v (chat-status %q)", d, text(t, ctx, "chat-status"))
	}
}

// poll evaluates a boolean expression every 20 ms until it is true or d
// passes. Errors (the page navigating, the app still loading) count as
// false: pages reload and navigate under the tests on purpose.
func poll(ctx context.Context, expr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// waitText waits until the joined text of the testid elements contains s.
func waitText(t *testing.T, ctx context.Context, testid, s string, d time.Duration) {
	t.Helper()
	expr := jsText(testid) + `.includes(` + jsString(s) + `)`
	if !poll(ctx, expr, d) {
		t.Fatalf("no %q in %s after %v (have %q)", s, testid, d, text(t, ctx, testid))
	}
}

func text(t *testing.T, ctx context.Context, testid string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(tctx, chromedp.Evaluate[string](jsText(testid)))
	return s
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// send types text into the chat input and presses Enter.
func send(t *testing.T, ctx context.Context, msg string) {
	t.Helper()
	do(t, ctx, 10*time.Second,
		chromedp.WaitVisible(sel("chat-input")),
		chromedp.SendKeys(sel("chat-input"), msg+"\r"),
	)
}

var users = map[string]string{"alice": "alice-pw-1", "bob": "bob-pw-22", "mallory": "mallory-pw-333"}

// TestTwoUsersChat: two users in separate browser contexts see each other
// in the members list and exchange messages within a second.
func TestTwoUsersChat(t *testing.T) {
	b := startBayeux(t, users)
	browser := newBrowser(t)
	alice, bob := browser(), browser()
	login(t, alice, b, "alice", users["alice"], "")
	login(t, bob, b, "bob", users["bob"], "")
	waitText(t, alice, "chat-members", "bob", 10*time.Second)
	waitText(t, bob, "chat-members", "alice", 10*time.Second)
	if room := text(t, alice, "chat-room"); !strings.Contains(room, "demo") {
		t.Errorf("chat-room = %q, want the default room demo", room)
	}

	for _, tc := range []struct {
		from, to context.Context
		msg      string
	}{{alice, bob, "hello bob, from alice"}, {bob, alice, "hi alice, bob here"}} {
		// Typed first: the time is from Enter (the publish) to shown.
		do(t, tc.from, 10*time.Second, chromedp.WaitVisible(sel("chat-input")), chromedp.SendKeys(sel("chat-input"), tc.msg))
		start := time.Now()
		do(t, tc.from, 10*time.Second, chromedp.SendKeys(sel("chat-input"), "\r"))
		waitText(t, tc.to, "chat-message", tc.msg, 5*time.Second)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%q took %v to arrive, want < 1 s", tc.msg, d)
		} else {
			t.Logf("%q arrived in %v", tc.msg, d)
		}
		waitText(t, tc.from, "chat-message", tc.msg, 5*time.Second) // the author sees it too
	}
}

// TestReloadKeepsLogin: a reload keeps the login and reconnects, and the
// history brings back the earlier messages.
func TestReloadKeepsLogin(t *testing.T) {
	b := startBayeux(t, users)
	ctx := newBrowser(t)()
	login(t, ctx, b, "alice", users["alice"], "")
	send(t, ctx, "before the reload")
	waitText(t, ctx, "chat-message", "before the reload", 5*time.Second)
	start := time.Now()
	do(t, ctx, 20*time.Second, chromedp.Reload())
	waitConnected(t, ctx, 20*time.Second)
	t.Logf("navigation to connected: %v", time.Since(start))
	if loc := get(t, ctx, 5*time.Second, chromedp.Location()); strings.Contains(loc, "/login") {
		t.Fatalf("reload went to %s", loc)
	}
	waitText(t, ctx, "chat-message", "before the reload", 5*time.Second)
}

// TestServerRestartReconnects: after a server restart the page reconnects
// by itself and chat works again.
func TestServerRestartReconnects(t *testing.T) {
	b := startBayeux(t, users)
	ctx := newBrowser(t)()
	login(t, ctx, b, "alice", users["alice"], "")
	b.restart()
	time.Sleep(500 * time.Millisecond)
	waitConnected(t, ctx, 30*time.Second)
	send(t, ctx, "after the restart")
	waitText(t, ctx, "chat-message", "after the restart", 10*time.Second)
}

// TestHTMLIsShownAsText: markup in a message is shown literally and never
// runs, for the sender and the receiver.
func TestHTMLIsShownAsText(t *testing.T) {
	b := startBayeux(t, users)
	browser := newBrowser(t)
	alice, bob := browser(), browser()
	login(t, alice, b, "alice", users["alice"], "")
	login(t, bob, b, "bob", users["bob"], "")
	payload := `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>`
	send(t, alice, payload)
	for _, ctx := range []context.Context{alice, bob} {
		waitText(t, ctx, "chat-message", payload, 5*time.Second)
		injected := get(t, ctx, 5*time.Second, chromedp.Evaluate[bool](
			`window.__xss !== undefined || document.querySelector('[data-testid="chat-messages"] img, [data-testid="chat-messages"] script, [data-testid="chat-messages"] b') !== null`))
		if injected {
			t.Fatal("the message was rendered as HTML")
		}
	}
}

// TestForgedUserShowsRealAuthor: a client that claims to be someone else
// in the data is shown under its real, authenticated name.
func TestForgedUserShowsRealAuthor(t *testing.T) {
	b := startBayeux(t, users)
	ctx := newBrowser(t)()
	login(t, ctx, b, "bob", users["bob"], "")
	c := wasmclient.New(b.URL+"/cometd", wasmclient.Options{
		Ext: map[string]any{"auth": map[string]string{"user": "mallory", "password": users["mallory"]}},
	})
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	if err := c.Publish(cctx, "/chat/demo", map[string]string{"user": "alice", "chat": "this is really alice"}); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "chat-message", "this is really alice", 5*time.Second)
	msgs := text(t, ctx, "chat-message")
	line := ""
	for _, l := range strings.Split(msgs, "\n") {
		if strings.Contains(l, "this is really alice") {
			line = l
		}
	}
	if !strings.Contains(line, "mallory") || strings.Contains(strings.ReplaceAll(line, "this is really alice", ""), "alice") {
		t.Errorf("forged message shown as %q, want the author mallory", line)
	}
}

// TestClosedTabLeavesAtOnce: when a tab closes, the others see its user
// leave the members list at once, not after the session timeout.
func TestClosedTabLeavesAtOnce(t *testing.T) {
	b := startBayeux(t, users, "BAYEUX_CONNECT_TIMEOUT=60s")
	browser := newBrowser(t)
	alice, bob := browser(), browser()
	login(t, alice, b, "alice", users["alice"], "")
	login(t, bob, b, "bob", users["bob"], "")
	waitText(t, alice, "chat-members", "bob", 10*time.Second)
	start := time.Now()
	if err := chromedp.Cancel(bob); err != nil {
		t.Fatalf("close bob's tab: %v", err)
	}
	if !poll(alice, `!`+jsText("chat-members")+`.includes("bob")`, 10*time.Second) {
		t.Fatalf("bob still listed 10 s after closing his tab: %q", text(t, alice, "chat-members"))
	}
	t.Logf("bob left the members list %v after closing his tab", time.Since(start))
}

// goClient connects a Go client logged in as user (for a test that only
// needs someone to publish, a browser is slower).
func goClient(t *testing.T, b *bayeux, user string) *wasmclient.Client {
	t.Helper()
	c := wasmclient.New(b.URL+"/cometd", wasmclient.Options{
		Ext: map[string]any{"auth": map[string]string{"user": user, "password": users[user]}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(context.Background()) })
	return c
}

func publishChat(t *testing.T, c *wasmclient.Client, room, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, "/chat/"+room, map[string]string{"chat": text}); err != nil {
		t.Fatal(err)
	}
}

// TestChatLinks: an http(s) URL in a message is a link that opens in a
// new tab without opener or referrer, for the sender and the others; a
// javascript: URL and markup stay text.
func TestChatLinks(t *testing.T) {
	b := startBayeux(t, users)
	ctx := newBrowser(t)()
	login(t, ctx, b, "alice", users["alice"], "")
	bob := goClient(t, b, "bob")
	publishChat(t, bob, "demo", `from bob: (https://example.com/a_(b)). javascript:alert(1) <a href="javascript:alert(2)">x</a>`)
	send(t, ctx, "from alice: HTTPS://EXAMPLE.ORG/x?y=1, data:text/html,hi")
	waitText(t, ctx, "chat-message", "from bob", 5*time.Second)
	waitText(t, ctx, "chat-message", "from alice", 5*time.Second)

	type link struct{ Href, Rel, Target, Text string }
	links := get(t, ctx, 5*time.Second, chromedp.Evaluate[[]link](`Array.from(document.querySelectorAll('[data-testid="chat-messages"] a')).map(a => ({
		href: a.getAttribute("href"), rel: a.rel, target: a.target, text: a.textContent}))`))
	want := []string{"https://example.com/a_(b)", "HTTPS://EXAMPLE.ORG/x?y=1"}
	if len(links) != len(want) {
		t.Fatalf("links in the messages: %+v, want %q", links, want)
	}
	for i, l := range links {
		if l.Href != want[i] || l.Text != want[i] || l.Rel != "noopener noreferrer nofollow" || l.Target != "_blank" {
			t.Errorf("link %d = %+v, want %s with rel noopener noreferrer nofollow, target _blank", i, l, want[i])
		}
	}
	if !strings.Contains(text(t, ctx, "chat-message"), `javascript:alert(1) <a href="javascript:alert(2)">x</a>`) {
		t.Errorf("the javascript: text is not shown as text: %q", text(t, ctx, "chat-message"))
	}
}

// unreadJS is the unread badge of a room in the room list ("" when none).
func unreadJS(room string) string {
	return `(document.querySelector('[data-room=` + jsString(room) + `] [data-testid="chat-unread"]') || {textContent: ""}).textContent`
}

// clickRoom opens a room from the room list.
func clickRoom(t *testing.T, ctx context.Context, room string) {
	t.Helper()
	do(t, ctx, 10*time.Second, chromedp.Click(`[data-room="`+room+`"] .chat-roomlink`))
	waitText(t, ctx, "chat-room", room, 5*time.Second)
}

// TestChatUnreadCounts: messages in a room the user is not looking at are
// counted in the room list, the count survives a reload (the room list
// comes back from localStorage), and opening the room clears it.
func TestChatUnreadCounts(t *testing.T) {
	b := startBayeux(t, users)
	ctx := newBrowser(t)()
	login(t, ctx, b, "alice", users["alice"], "")
	do(t, ctx, 10*time.Second, chromedp.SendKeys("#chat-join-input", "other\r"))
	waitText(t, ctx, "chat-room", "other", 5*time.Second)
	waitText(t, ctx, "chat-messages", "No messages yet", 5*time.Second) // joined
	clickRoom(t, ctx, "demo")

	bob := goClient(t, b, "bob")
	start := time.Now()
	publishChat(t, bob, "other", "one")
	if !poll(ctx, unreadJS("other")+` === "1"`, 5*time.Second) {
		t.Fatalf("unread for other = %q, want 1", get(t, ctx, time.Second, chromedp.Evaluate[string](unreadJS("other"))))
	}
	t.Logf("publish to unread count shown: %v", time.Since(start))
	publishChat(t, bob, "other", "two")
	send(t, ctx, "alice in demo") // her own messages elsewhere do not count
	if !poll(ctx, unreadJS("other")+` === "2"`, 5*time.Second) {
		t.Fatalf("unread for other = %q, want 2", get(t, ctx, time.Second, chromedp.Evaluate[string](unreadJS("other"))))
	}
	if u := get(t, ctx, time.Second, chromedp.Evaluate[string](unreadJS("demo"))); u != "" {
		t.Errorf("the current room shows unread %q", u)
	}

	do(t, ctx, 20*time.Second, chromedp.Reload())
	waitConnected(t, ctx, 20*time.Second)
	publishChat(t, bob, "other", "three")
	if !poll(ctx, unreadJS("other")+` === "3"`, 10*time.Second) {
		t.Fatalf("after a reload unread for other = %q, want 3", get(t, ctx, time.Second, chromedp.Evaluate[string](unreadJS("other"))))
	}

	clickRoom(t, ctx, "other")
	waitText(t, ctx, "chat-message", "three", 5*time.Second)
	clickRoom(t, ctx, "demo")
	if u := get(t, ctx, time.Second, chromedp.Evaluate[string](unreadJS("other"))); u != "" {
		t.Errorf("after opening other its unread is %q, want none", u)
	}
	do(t, ctx, 20*time.Second, chromedp.Reload())
	waitConnected(t, ctx, 20*time.Second)
	waitText(t, ctx, "chat-message", "alice in demo", 5*time.Second)
	if !poll(ctx, `document.querySelector('[data-room="other"]') !== null`, 5*time.Second) {
		t.Fatal("the room list lost other after a reload")
	}
	if u := get(t, ctx, time.Second, chromedp.Evaluate[string](unreadJS("other"))); u != "" {
		t.Errorf("after a reload other shows unread %q, though it was read", u)
	}
}
