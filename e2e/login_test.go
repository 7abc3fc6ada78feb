package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestLoginWrongPasswordShowsError: a wrong password keeps the browser on
// /login with login-error shown, and the right one leads on to the chat.
func TestLoginWrongPasswordShowsError(t *testing.T) {
	b := startBayeux(t, map[string]string{"alice": "alice-secret"})
	ctx := newBrowser(t)()
	do(t, ctx, 20*time.Second,
		chromedp.Navigate(b.URL+"/chat/"),
		chromedp.WaitVisible(sel("login-user")),
		chromedp.SendKeys(sel("login-user"), "alice"),
		chromedp.SendKeys(sel("login-password"), "wrong"),
		chromedp.Click(sel("login-submit")),
		chromedp.WaitVisible(sel("login-error")),
	)
	msg := get(t, ctx, 5*time.Second, chromedp.Text(sel("login-error")))
	if !strings.Contains(strings.ToLower(msg), "wrong") {
		t.Errorf("login-error = %q", msg)
	}
	loc := get(t, ctx, 5*time.Second, chromedp.Location())
	if !strings.Contains(loc, "/login") {
		t.Errorf("after a wrong password the browser is at %s", loc)
	}
	do(t, ctx, 20*time.Second,
		chromedp.SendKeys(sel("login-password"), "alice-secret"),
		chromedp.Click(sel("login-submit")),
		chromedp.WaitVisible(sel("chat-status")),
	)
	if loc := get(t, ctx, 5*time.Second, chromedp.Location()); !strings.Contains(loc, "/chat/") {
		t.Errorf("after login the browser is at %s, want the chat", loc)
	}
}
