package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bayeux-go/bayeux/internal/faultproxy"
	"github.com/bayeux-go/bayeux/internal/testutil"
)

// messageTexts returns the texts of the messages shown, in order.
func messageTexts(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return get(t, ctx, 5*time.Second, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('[data-testid="chat-message"] .chat-text')).map(e => e.textContent)`))
}

// waitTexts waits until the messages shown are want, in order.
func waitTexts(t *testing.T, ctx context.Context, want []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var got []string
	for time.Now().Before(deadline) {
		if got = messageTexts(t, ctx); slices.Equal(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("messages shown %q, want %q", got, want)
}

// loginAt logs user in through /login of base (a proxy, say) and waits
// until the chat is connected.
func loginAt(t *testing.T, ctx context.Context, base, user, room string) {
	t.Helper()
	do(t, ctx, 30*time.Second,
		chromedp.Navigate(base+"/login?next=/chat/?room="+room),
		chromedp.WaitVisible(sel("login-user")),
		chromedp.SendKeys(sel("login-user"), user),
		chromedp.SendKeys(sel("login-password"), users[user]),
		chromedp.Click(sel("login-submit")),
	)
	waitConnected(t, ctx, 30*time.Second)
}

// TestHistoryAfterRestart: what was said is there after the server
// restarts (gracefully, and killed with SIGKILL after a publish was
// acknowledged), for a user who opens the room afterwards, and a page
// that was open shows nothing twice.
func TestHistoryAfterRestart(t *testing.T) {
	b := startBayeux(t, users)
	browser := newBrowser(t)
	alice := browser()
	login(t, alice, b, "alice", users["alice"], "keep")
	for _, m := range []string{"one", "two", "three"} {
		send(t, alice, m)
		waitText(t, alice, "chat-message", m, 5*time.Second)
	}
	b.restart()
	waitConnected(t, alice, 30*time.Second)
	send(t, alice, "four, after the restart")
	waitTexts(t, alice, []string{"one", "two", "three", "four, after the restart"}, 10*time.Second)

	// Acknowledged, then killed: it is kept.
	c := goClient(t, b, "bob")
	publishChat(t, c, "keep", "five, just before a crash")
	b.kill()
	b.start()

	bob := browser()
	start := time.Now()
	login(t, bob, b, "bob", users["bob"], "keep")
	want := []string{"one", "two", "three", "four, after the restart", "five, just before a crash"}
	waitTexts(t, bob, want, 10*time.Second)
	t.Logf("login to the history shown after a crash: %v", time.Since(start))
	waitConnected(t, alice, 30*time.Second)
	waitTexts(t, alice, want, 10*time.Second)
}

// TestScrollBackToFirst: a room with 150 messages opens with its newest;
// scrolling up loads older pages until the first, each message once, in
// order.
func TestScrollBackToFirst(t *testing.T) {
	b := startBayeux(t, users)
	c := goClient(t, b, "bob")
	var want []string
	for i := range 150 {
		want = append(want, fmt.Sprintf("message %03d", i))
		publishChat(t, c, "long", want[i])
	}
	ctx := newBrowser(t)()
	start := time.Now()
	login(t, ctx, b, "alice", users["alice"], "long")
	waitText(t, ctx, "chat-message", "message 149", 10*time.Second)
	t.Logf("login to connected with the newest messages shown: %v", time.Since(start))
	if got := messageTexts(t, ctx); len(got) >= 150 || got[len(got)-1] != "message 149" {
		t.Fatalf("the room opened with %d messages, the last %q: want the newest page", len(got), got[len(got)-1])
	}
	scrollUp := `(() => {
		const el = document.querySelector('[data-testid="chat-messages"]');
		el.scrollTop = 0;
		el.dispatchEvent(new Event('scroll'));
		return document.querySelector('[data-testid="chat-beginning"]') !== null;
	})()`
	if !poll(ctx, scrollUp, 20*time.Second) {
		t.Fatalf("no beginning after scrolling up: %d messages shown", len(messageTexts(t, ctx)))
	}
	waitTexts(t, ctx, want, 5*time.Second)
	// Still live at the bottom.
	publishChat(t, c, "long", "message 150")
	waitText(t, ctx, "chat-message", "message 150", 5*time.Second)
}

// TestRecoverAfterCut: a user cut off the network longer than the session
// timeout sees, once reconnected, what was said meanwhile: every message
// once, in order, then the live ones.
func TestRecoverAfterCut(t *testing.T) {
	b := startBayeux(t, users, "BAYEUX_CONNECT_TIMEOUT=2s", "BAYEUX_LOG_LEVEL=debug")
	p, err := faultproxy.Start(faultproxy.Options{Target: b.addr})
	if err != nil {
		t.Fatal(err)
	}
	p.SetFaults(false)
	t.Cleanup(func() { p.Close() })
	ctx := newBrowser(t)()
	loginAt(t, ctx, "http://"+p.Addr(), "alice", "cut")
	c := goClient(t, b, "bob")
	publishChat(t, c, "cut", "before the cut")
	waitText(t, ctx, "chat-message", "before the cut", 5*time.Second)

	p.Cut(true)
	want := []string{"before the cut"}
	for i := range 5 {
		want = append(want, fmt.Sprintf("while alice was away %d", i))
		publishChat(t, c, "cut", want[len(want)-1])
	}
	expired := func() bool {
		for _, l := range strings.Split(b.log(), "\n") {
			if strings.Contains(l, `msg="session expired"`) && strings.Contains(l, "user=alice") {
				return true
			}
		}
		return false
	}
	testutil.Eventually(t, 20*time.Second, expired, "alice's session to expire during the cut")
	start := time.Now()
	p.Cut(false)
	waitTexts(t, ctx, want, 30*time.Second)
	t.Logf("reconnected and recovered %d messages %v after the network came back", len(want)-1, time.Since(start))
	publishChat(t, c, "cut", "welcome back")
	waitTexts(t, ctx, append(want, "welcome back"), 5*time.Second)
}
