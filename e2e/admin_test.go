package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAdminDisconnectsAndAnnounces: an admin sees a chat user's session,
// publishes an announcement the chat shows, and ends the session (the chat
// stops being connected); a non-admin is refused; a cross-origin POST to
// an admin action is refused.
func TestAdminDisconnectsAndAnnounces(t *testing.T) {
	b := startBayeux(t, map[string]string{"root": "root-pw-1234", "alice": users["alice"]}, "BAYEUX_ADMINS=root")
	browser := newBrowser(t)
	alice, root := browser(), browser()
	login(t, alice, b, "alice", users["alice"], "")

	do(t, root, 30*time.Second,
		chromedp.Navigate(b.URL+"/login?next=/admin/clients"),
		chromedp.WaitVisible(sel("login-user")),
		chromedp.SendKeys(sel("login-user"), "root"),
		chromedp.SendKeys(sel("login-password"), "root-pw-1234"),
		chromedp.Click(sel("login-submit")),
	)
	if !poll(root, `document.querySelector('[data-testid="admin-client-row"][data-user="alice"]') !== null`, 15*time.Second) {
		body, _ := chromedp.Run(root, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("alice's session is not in the clients table: %q", body)
	}

	// Announcement to the chat room.
	do(t, root, 20*time.Second,
		chromedp.Navigate(b.URL+"/admin/channels"),
		chromedp.WaitVisible(sel("admin-publish")),
		chromedp.SetValue(sel("admin-publish-channel"), "/chat/demo"),
		chromedp.SendKeys(sel("admin-publish-text"), "Maintenance at noon"),
		chromedp.Click(sel("admin-publish-submit")),
	)
	waitText(t, alice, "chat-message", "Maintenance at noon", 10*time.Second)

	// A cross-origin form POST (from a page on another port) is refused.
	id := get(t, root, 10*time.Second, chromedp.Evaluate[string](`(async () => {
		const r = await fetch('/admin/clients');
		const d = new DOMParser().parseFromString(await r.text(), 'text/html');
		const row = d.querySelector('[data-testid="admin-client-row"][data-user="alice"]');
		return row ? row.querySelector('input[name="id"]').value : '';
	})()`, chromedp.EvalAwaitPromise))
	if id == "" {
		t.Fatal("no session id of alice on the clients page")
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action=%q><input name=id value=%q></form><script>document.getElementById('f').submit()</script>`,
			b.URL+"/admin/clients/disconnect", id)
	}))
	defer evil.Close()
	do(t, root, 20*time.Second, chromedp.Navigate(evil.URL))
	if !poll(root, `location.href.includes('/admin/clients/disconnect') && document.readyState === 'complete'`, 10*time.Second) {
		t.Fatal("the cross-origin form did not submit")
	}
	body := get(t, root, 5*time.Second, chromedp.Evaluate[string](`document.body.innerText`))
	if !poll(alice, jsConnected, 2*time.Second) {
		t.Fatalf("a cross-origin POST ended alice's session (admin saw %q)", body)
	}
	if lb := strings.ToLower(body); !strings.Contains(lb, "cross-origin") && !strings.Contains(lb, "403") && !strings.Contains(lb, "forbidden") {
		t.Errorf("cross-origin POST was not refused: the page says %q", body)
	}

	// The admin ends alice's session with the button.
	do(t, root, 20*time.Second,
		chromedp.Navigate(b.URL+"/admin/clients"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="admin-client-row"][data-user="alice"] [data-testid="admin-disconnect"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="admin-client-row"][data-user="alice"] [data-testid="admin-disconnect"]`)),
	)
	if !poll(alice, `!(`+jsConnected+`)`, 15*time.Second) {
		t.Fatalf("alice's chat still says connected after the admin ended her session: %q", text(t, alice, "chat-status"))
	}
	t.Logf("alice's chat-status after the disconnect: %q", text(t, alice, "chat-status"))

	// A logged-in non-admin gets 403.
	status := get(t, alice, 10*time.Second, chromedp.Evaluate[int](`fetch('/admin/').then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != http.StatusForbidden {
		t.Errorf("non-admin GET /admin/ = %d, want 403", status)
	}
}
