package abuse

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"

	"github.com/bayeux-go/bayeux/server/auth"
)

// probe is one thing an attacker tried with what it stole, and whether it
// got through.
type probe struct {
	what    string
	reached bool   // the attack got what it wanted
	saw     string // the server's answer
}

// judgeProbes fails when any probe reached what it wanted.
func judgeProbes(name, tried string, probes []probe) Result {
	var f findings
	for _, p := range probes {
		if p.reached {
			f.fail("%s: %s", p.what, p.saw)
		} else {
			f.note("%s: %s", p.what, p.saw)
		}
	}
	return f.result(name, tried)
}

// loggedOutOf says how a GET of a guarded page went for a browser that
// must not be logged in: reached when it was served (anything but a
// redirect to /login or a refusal).
func loggedOutOf(what string, a answer) probe {
	if a.err != nil {
		return probe{what: what, reached: false, saw: a.err.Error()}
	}
	loc := a.header.Get("Location")
	switch {
	case a.status == http.StatusSeeOther && strings.HasPrefix(loc, "/login"):
		return probe{what: what, saw: "HTTP 303 to /login"}
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return probe{what: what, saw: fmt.Sprintf("HTTP %d", a.status)}
	}
	return probe{what: what, reached: true, saw: fmt.Sprintf("HTTP %d %s (served as logged in)", a.status, loc)}
}

// formToken returns the admin form token of an admin page ("" if none).
func formToken(body []byte) string {
	d, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	return d.Find(`input[name="token"]`).First().AttrOr("value", "")
}

// logoutReplay is finding 4 of issue 13: log in, keep the login cookie
// (and, for an admin, a form token), log out, then replay the cookie from
// another browser on /chat/, /admin/, a Bayeux handshake and an admin
// form, and the cookie the logout response set, if any. None may be
// logged in.
func logoutReplay(ctx context.Context, e *env) Result {
	acct, role := e.t.user, "user"
	if e.t.admin.name != "" {
		acct, role = e.t.admin, "admin"
	}
	tried := fmt.Sprintf("log in as %s (%s), keep the cookie, log out, replay the cookie on /chat/, /admin/, a cookie handshake and an admin form", acct.name, role)
	fail := func(err error) Result { return errorResult("logout-replay", tried, err) }

	p := e.peer()
	if o := p.login(ctx, acct.name, acct.password); o != loginOK {
		return fail(fmt.Errorf("login as %s: %s", acct.name, o))
	}
	saved := p.cookie(auth.LoginCookie)
	if saved == "" {
		return fail(fmt.Errorf("no %s cookie after the login", auth.LoginCookie))
	}
	if pr := loggedOutOf("/chat/ before the logout", p.get(ctx, "/chat/")); !pr.reached {
		return fail(fmt.Errorf("the fresh login does not reach /chat/: %s", pr.saw))
	}
	token := ""
	if a := p.get(ctx, "/admin/users"); a.status == http.StatusOK {
		token = formToken(a.body)
	}
	out := p.get(ctx, "/logout")
	if out.err != nil || out.status != http.StatusSeeOther {
		return fail(fmt.Errorf("logout: %v", out))
	}
	fresh := ""
	for _, c := range (&http.Response{Header: out.header}).Cookies() {
		if c.Name == auth.LoginCookie && c.Value != "" && c.MaxAge >= 0 {
			fresh = c.Value
		}
	}

	thief := e.peer()
	thief.setCookie(auth.LoginCookie, saved)
	probes := []probe{
		loggedOutOf("replayed on /chat/", thief.get(ctx, "/chat/")),
		loggedOutOf("replayed on /admin/", thief.get(ctx, "/admin/")),
	}
	if s, b := thief.handshake(ctx, nil); s == nil {
		probes = append(probes, probe{what: "cookie handshake", saw: b.describe("/meta/handshake")})
	} else {
		user, err := s.user(ctx)
		pr := probe{what: "cookie handshake", saw: fmt.Sprintf("session of %q", user)}
		if err != nil {
			pr.saw = err.Error()
		}
		pr.reached = user != ""
		probes = append(probes, pr)
		s.disconnect()
	}
	if token != "" {
		// Make the victim account an admin with the dead login's token.
		a := thief.postForm(ctx, "/admin/users/grant", url.Values{"name": {e.t.victim.name}, "token": {token}})
		pr := probe{what: "admin form with the old token", saw: a.String()}
		pr.reached = a.err == nil && a.status < 400
		probes = append(probes, pr)
	} else {
		probes = append(probes, probe{what: "admin form", saw: "not tried (" + acct.name + " is not an admin)"})
	}
	if fresh != "" {
		q := e.peer()
		q.setCookie(auth.LoginCookie, fresh)
		probes = append(probes, loggedOutOf("the cookie the logout set, on /chat/", q.get(ctx, "/chat/")))
	} else {
		probes = append(probes, probe{what: "logout response", saw: "clears the cookie"})
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	return judgeProbes("logout-replay", tried, probes)
}
