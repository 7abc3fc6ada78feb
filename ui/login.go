// Package ui renders the server's HTML pages with templ (login, admin) and
// holds their handlers. Pages never trust the client for identity: login
// goes through the Bayeux handshake authority (server.TryHandshake).
package ui

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/a-h/templ"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// DefaultNext is where a login leads without ?next=.
const DefaultNext = "/chat/"

// Pages serves /login and /logout and guards pages that need a login.
type Pages struct {
	Bayeux *server.Server
	Logins *auth.Logins
	Log    *slog.Logger
	// UserExists, when set, is asked whether a logged-in user still
	// exists; a cookie of a deleted user counts as no login.
	UserExists func(string) bool
	csrf       *http.CrossOriginProtection
}

// User returns the user logged in by r's cookie, or "".
func (p *Pages) User(r *http.Request) string {
	l, _ := p.CurrentLogin(r)
	return l.User
}

// CurrentLogin returns the login of r's cookie, if it stands: its record
// exists (auth.Logins.Current) and so does its user.
func (p *Pages) CurrentLogin(r *http.Request) (auth.Login, bool) {
	l, ok := p.Logins.Current(r)
	if !ok || (p.UserExists != nil && !p.UserExists(l.User)) {
		return auth.Login{}, false
	}
	return l, true
}

// EndLogin ends login id of user and the Bayeux sessions it
// authenticated (their clients are told not to reconnect). It reports
// whether the login existed and how many sessions ended.
func (p *Pages) EndLogin(ctx context.Context, user, id string) (bool, int, error) {
	if id == "" {
		return false, 0, nil // no login; "" would match sessions without one
	}
	_, ok, err := p.Logins.Store.Remove(ctx, user, id)
	if err != nil {
		return ok, 0, err
	}
	n, err := p.Bayeux.DisconnectWhere(ctx, func(in *server.SessionInfo) bool {
		return in.User == user && in.Flags[auth.SessionFlag] == id
	})
	return ok, n, err
}

// EndLogins ends every login of user but except ("" for none), and every
// Bayeux session of user not authenticated by except, whether by a login
// cookie or by ext.auth: after a password change or a deletion nothing
// the user started before goes on. It returns how many logins and
// sessions ended.
func (p *Pages) EndLogins(ctx context.Context, user, except string) (int, int, error) {
	gone, err := p.Logins.Store.RemoveUser(ctx, user, except)
	if err != nil {
		return 0, 0, err
	}
	n, err := p.Bayeux.DisconnectWhere(ctx, func(in *server.SessionInfo) bool {
		return in.User == user && (except == "" || in.Flags[auth.SessionFlag] != except)
	})
	return len(gone), n, err
}

// NewPages returns the page handlers.
func NewPages(b *server.Server, l *auth.Logins, log *slog.Logger) *Pages {
	return &Pages{Bayeux: b, Logins: l, Log: log, csrf: http.NewCrossOriginProtection()}
}

// SafeNext returns next if it is a local path, else DefaultNext, so that
// a login link cannot send the browser to another site.
func SafeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return DefaultNext
	}
	for i := 0; i < len(next); i++ {
		// Browsers drop tabs and newlines inside URLs ("/\t/evil" becomes
		// "//evil") and read a backslash as a slash.
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return DefaultNext
		}
	}
	return next
}

// Login handles GET (the form) and POST (the check) of /login. POSTs are
// refused cross-origin (http.CrossOriginProtection).
func (p *Pages) Login() http.Handler {
	return p.csrf.Handler(http.HandlerFunc(p.login))
}

func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		next := SafeNext(r.URL.Query().Get("next"))
		if p.User(r) != "" {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		render(w, r, http.StatusOK, LoginPage(next, "", ""))
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		user, password := r.PostForm.Get("user"), r.PostForm.Get("password")
		next := SafeNext(r.PostForm.Get("next"))
		cred, _ := json.Marshal(map[string]string{"user": user, "password": password})
		reply, info := p.Bayeux.TryHandshake(r, map[string]json.RawMessage{"auth": cred})
		if !reply.IsSuccessful() || info == nil || info.User == "" {
			render(w, r, http.StatusUnauthorized, LoginPage(next, user, loginError(reply.Error)))
			return
		}
		if _, err := p.Logins.Login(w, r, info.User, info.RemoteAddr); err != nil {
			p.Log.Error("login cookie", "err", err)
			http.Error(w, "cannot log in now", http.StatusInternalServerError)
			return
		}
		p.Log.Info("logged in", "user", info.User, "ip", info.RemoteAddr)
		http.Redirect(w, r, next, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func loginError(bayeuxError string) string {
	e, err := protocol.ParseError(bayeuxError)
	if err != nil {
		return "Login failed."
	}
	switch e.Message {
	case "invalid_credentials":
		return "Wrong user name or password."
	case "rate_limited":
		return "Too many failed logins. Try again in a few minutes."
	}
	return "Login failed (" + e.Message + ")."
}

// Logout ends the browser's login for good (its record is removed, so a
// replayed cookie logs in nobody) and the Bayeux sessions it
// authenticated, or that this browser opened as its user, then leads to
// /login. The response clears the cookie with an empty value. GET is
// accepted for links but refused when the browser says the request came
// from another site.
func (p *Pages) Logout() http.Handler {
	return p.csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			http.Error(w, "cross-site logout refused", http.StatusForbidden)
			return
		}
		l, ok, err := p.Logins.Logout(w, r)
		if err != nil {
			p.Log.Error("logout: ending the login", "err", err)
		}
		if ok {
			browser := ""
			if ck, err := r.Cookie(server.BrowserCookie); err == nil {
				browser = ck.Value
			}
			ctx := context.WithoutCancel(r.Context())
			n, err := p.Bayeux.DisconnectWhere(ctx, func(in *server.SessionInfo) bool {
				return in.User == l.User && (in.Flags[auth.SessionFlag] == l.ID || (browser != "" && in.Browser == browser))
			})
			if err != nil {
				p.Log.Error("logout: ending sessions", "err", err)
			}
			p.Log.Info("logged out", "user", l.User, "sessions", n)
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}))
}

// RequireLogin sends browsers without a login to /login?next=<this URL>.
func (p *Pages) RequireLogin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.User(r) == "" {
			noStore(w)
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// render writes a templ component as an HTML page with status.
func render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = c.Render(r.Context(), w)
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }
