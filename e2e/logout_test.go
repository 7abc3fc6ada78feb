package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestLogoutByAdminShowsInChat: an admin sets a new password for alice
// while her chat is open; her chat stops at once and says she was logged
// out, with a link to the login page (no spinning, no reconnect button),
// and the link leads to a login that works with the new password.
func TestLogoutByAdminShowsInChat(t *testing.T) {
	b := startBayeux(t, map[string]string{"root": "root-pw-1234", "alice": users["alice"]}, "BAYEUX_ADMINS=root")
	browser := newBrowser(t)
	alice, root := browser(), browser()
	login(t, alice, b, "alice", users["alice"], "")

	do(t, root, 30*time.Second,
		chromedp.Navigate(b.URL+"/login?next=/admin/users"),
		chromedp.WaitVisible(sel("login-user")),
		chromedp.SendKeys(sel("login-user"), "root"),
		chromedp.SendKeys(sel("login-password"), "root-pw-1234"),
		chromedp.Click(sel("login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="alice"] [data-testid="admin-user-password"]`)),
	)
	if !poll(root, `document.querySelector('[data-testid="admin-login-row"][data-user="alice"]') !== null`, 5*time.Second) {
		t.Error("the Users page does not list alice's login")
	}
	start := time.Now()
	do(t, root, 20*time.Second,
		chromedp.SendKeys(chromedp.CSS(`tr[data-user="alice"] [data-testid="admin-user-password"]`), "alice-new-pw"),
		chromedp.Click(chromedp.CSS(`tr[data-user="alice"] [data-testid="admin-user-password-submit"]`)),
	)

	if !poll(alice, `(() => {
		const s = document.querySelector('[data-testid="chat-status"]');
		return s !== null && s.textContent.includes('logged out') &&
			document.querySelector('[data-testid="chat-logged-out"]') !== null;
	})()`, 10*time.Second) {
		t.Fatalf("alice's chat does not say she was logged out: status %q, page %q", text(t, alice, "chat-status"),
			get(t, alice, 5*time.Second, chromedp.Evaluate[string](`document.body.innerText`)))
	}
	t.Logf("alice's chat showed the logout %v after the admin's click", time.Since(start))
	if n := get(t, alice, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('.chat-reconnect').length`)); n != 0 {
		t.Error("the logged-out chat offers to reconnect")
	}
	do(t, alice, 20*time.Second,
		chromedp.Click(sel("chat-login-link")),
		chromedp.WaitVisible(sel("login-user")),
	)
	if loc := get(t, alice, 5*time.Second, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("the link led to %s", loc)
	}
	do(t, alice, 30*time.Second,
		chromedp.SendKeys(sel("login-user"), "alice"),
		chromedp.SendKeys(sel("login-password"), "alice-new-pw"),
		chromedp.Click(sel("login-submit")),
	)
	waitConnected(t, alice, 30*time.Second)
}
