package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/server/auth"
)

// slowUsers writes a users file whose hashes cost what real ones cost
// under -race (bcrypt cost 8), so that concurrent checks overlap as they
// do in production: alice and bob, password NAME-pw.
func slowUsers(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	var b strings.Builder
	for _, u := range []string{"alice", "bob"} {
		b.WriteString(u + ":" + testutil.HashCost(t, testutil.Password(u), 8) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loginOutcome posts a login form with hc and says what the page said:
// "ok" (logged in), "wrong" (the password was checked and wrong),
// "limited" (refused unchecked) or the error.
func loginOutcome(hc *http.Client, base, user, password string) string {
	form := url.Values{"user": {user}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := hc.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusSeeOther:
		return "ok"
	case strings.Contains(string(body), "Wrong user name or password."):
		return "wrong"
	case strings.Contains(string(body), "Too many failed logins"):
		return "limited"
	}
	return "HTTP " + resp.Status
}

// TestLoginConcurrentGuessesAreCounted is finding 1 of issue 13 through
// /login: 100 wrong passwords for one user from one address, all at once,
// get no more password checks than the limit (5); on the old code about a
// third of them were checked.
func TestLoginConcurrentGuessesAreCounted(t *testing.T) {
	s := newSiteUsers(t, slowUsers(t))
	hc := testutil.ClientFrom("127.0.0.2", nil)
	outcomes := make(chan string, 100)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { outcomes <- loginOutcome(hc, s.hs.URL, "alice", "wrong") })
	}
	wg.Wait()
	close(outcomes)
	counts := map[string]int{}
	for o := range outcomes {
		counts[o]++
	}
	if counts["wrong"] > 5 || counts["wrong"]+counts["limited"] != 100 {
		t.Errorf("100 concurrent wrong passwords: %v; want at most 5 checked (wrong), the rest refused unchecked", counts)
	}
	if n := s.auth.Checked.Load(); n > 5 {
		t.Errorf("%d passwords checked (bcrypt), want at most 5", n)
	}
	if n := s.srv.Stats().Refused.Load(auth.RefusedLoginUserIP); n != int64(counts["limited"]) {
		t.Errorf("bayeux_refused_total{reason=%q} = %d, want %d", auth.RefusedLoginUserIP, n, counts["limited"])
	}
	// Now even the right password from there is refused, unchecked.
	if o := loginOutcome(hc, s.hs.URL, "alice", "alice-pw"); o != "limited" {
		t.Errorf("the right password from the guessing address: %s, want limited", o)
	}
}

// TestLoginLockoutIsPerAddress is finding 5 of issue 13: wrong passwords
// from one address do not keep the owner out from another; and when many
// addresses guess (a user under attack), the owner from a clean address
// still gets in while the guessing addresses are refused.
func TestLoginLockoutIsPerAddress(t *testing.T) {
	s := newSite(t)
	attacker := testutil.ClientFrom("127.0.0.2", nil)
	for i := range 5 {
		if o := loginOutcome(attacker, s.hs.URL, "alice", "wrong"); o != "wrong" {
			t.Fatalf("guess %d: %s", i+1, o)
		}
	}
	owner := s.browserFrom("127.0.0.3")
	if r := owner.postLogin("alice", "alice-pw", ""); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the owner from another address after 5 wrong passwords elsewhere: HTTP %d, want 303 (logged in)", r.StatusCode)
	}
	if r := owner.get("/chat/"); r.StatusCode != http.StatusOK {
		t.Errorf("the owner's chat: HTTP %d", r.StatusCode)
	}

	// A distributed guesser: 30 more addresses, two guesses each. Alice
	// is under attack (more than 20 failures); every guessing address
	// is refused its second guess, the owner from a clean one is not.
	limited := 0
	for a := range 30 {
		hc := testutil.ClientFrom("127.0.1."+strconv.Itoa(a+1), nil)
		for range 2 {
			if loginOutcome(hc, s.hs.URL, "alice", "wrong") == "limited" {
				limited++
			}
		}
	}
	if limited == 0 {
		t.Error("60 guesses from 30 addresses: none refused")
	}
	if n := s.auth.Checked.Load(); n > 1+5+20+30 {
		t.Errorf("%d passwords checked, want at most %d (20 before the alarm, then one per address)", n, 1+5+20+30)
	}
	if o := loginOutcome(testutil.ClientFrom("127.0.0.4", nil), s.hs.URL, "alice", "alice-pw"); o != "ok" {
		t.Errorf("the owner from a clean address while alice is under attack: %s, want ok", o)
	}
	if o := loginOutcome(testutil.ClientFrom("127.0.1.1", nil), s.hs.URL, "alice", "alice-pw"); o != "limited" {
		t.Errorf("the right password from a guessing address: %s, want limited", o)
	}
}
