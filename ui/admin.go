package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"sync"

	"github.com/bayeux-go/bayeux/internal/admin"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// AdminOptions configures Pages.Admin.
type AdminOptions struct {
	// Users is the users file the Users page edits.
	Users *auth.Users
	// Admins decides who may use /admin/ (BAYEUX_ADMINS and the admins
	// file).
	Admins *admin.Admins
	// Recorder must be attached to the Bayeux server.
	Recorder *admin.Recorder
	// FailedLogins returns the failed-login count (Authenticator.Failed);
	// may be nil.
	FailedLogins func() int64
	// Version and Engine are shown on the overview (Engine: see
	// admin.EngineName).
	Version, Engine string
	// TokenKey keys the form tokens (HMAC-SHA256). Give every node of a
	// cluster the same key (FormTokenKey derives one from the session
	// keys); nil: a random key per process, so a page loaded before a
	// restart must be reloaded before its forms work again.
	TokenKey []byte
	// MaxRows bounds the rows of the clients table. Default 500.
	MaxRows int
	// MaxText bounds the text of an announcement in characters. Default
	// 2000 (the chat's limit).
	MaxText int
}

// FormTokenKey derives the admin form-token key from the login cookie
// keys (newest first), so that every node with the same keys accepts the
// same tokens. The tokens themselves are bound to the server-side login
// (see formToken).
func FormTokenKey(sessionKeys [][]byte) []byte {
	if len(sessionKeys) == 0 {
		return nil
	}
	k := sha256.Sum256(append([]byte("bayeux admin form token\x00"), sessionKeys[0]...))
	return k[:]
}

// adminHandler serves /admin/.
type adminHandler struct {
	p   *Pages
	o   AdminOptions
	key []byte
	mux *http.ServeMux

	lcMu sync.Mutex
	lc   *server.LocalClient
}

// Admin returns the handler of /admin/ and everything below it (mount it
// on "/admin/"). Only users that Admins lists get in: a browser without a
// login is sent to /login?next=..., a logged-in user who is not an admin
// gets 403. Every POST must pass http.CrossOriginProtection and carry the
// per-login form token (see formToken).
func (p *Pages) Admin(o AdminOptions) http.Handler {
	if o.Users == nil || o.Admins == nil || o.Recorder == nil {
		panic("ui: AdminOptions needs Users, Admins and Recorder")
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 500
	}
	if o.MaxText <= 0 {
		o.MaxText = 2000
	}
	h := &adminHandler{p: p, o: o, key: o.TokenKey, mux: http.NewServeMux()}
	if len(h.key) == 0 {
		h.key = make([]byte, 32)
		_, _ = rand.Read(h.key)
	}
	m := h.mux
	m.HandleFunc("GET /admin/assets/{name}", serveAdminAsset)
	m.Handle("GET /admin/{$}", h.guard(h.overview))
	m.Handle("GET /admin/live", h.guard(h.live))
	m.Handle("GET /admin/clients", h.guard(h.clients))
	m.Handle("POST /admin/clients/disconnect", h.guard(h.disconnect))
	m.Handle("GET /admin/channels", h.guard(h.channels))
	m.Handle("POST /admin/channels/publish", h.guard(h.publish))
	m.Handle("GET /admin/users", h.guard(h.users))
	m.Handle("POST /admin/users/{action}", h.guard(h.userAction))
	m.Handle("/admin/", h.guard(h.notFound))
	csrf := p.csrf
	if csrf == nil {
		csrf = http.NewCrossOriginProtection()
	}
	return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", adminCSP)
		hdr.Set("Referrer-Policy", "same-origin")
		h.mux.ServeHTTP(w, r)
	}))
}

// adminCSP allows only this origin's scripts and styles (admin.js,
// admin.css): no inline script or style anywhere on the admin pages.
const adminCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// adminFunc handles an admin request for the logged-in admin user.
type adminFunc func(w http.ResponseWriter, r *http.Request, user string)

// loginKey is the context key of the admin's current login (auth.Login).
type loginKey struct{}

// currentLogin returns the login guard let through.
func currentLogin(r *http.Request) auth.Login {
	l, _ := r.Context().Value(loginKey{}).(auth.Login)
	return l
}

// guard lets admins through to next. Without a login a GET is redirected
// to the login page and anything else is refused; a user who is not an
// admin gets the 403 page. A POST must also carry a valid form token.
// Both the login and the admin right are checked on every request, so an
// ended login or a revoked right stops at the next one.
func (h *adminHandler) guard(next adminFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		l, ok := h.p.CurrentLogin(r)
		if ok && !h.o.Users.Exists(l.User) {
			ok = false // deleted meanwhile
		}
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "login required", http.StatusForbidden)
			return
		}
		user := l.User
		if !h.o.Admins.IsAdmin(user) {
			h.p.Log.Warn("admin: refused a user who is not an admin", "user", user, "path", r.URL.Path)
			render(w, r, http.StatusForbidden, adminForbiddenPage(user, "You are logged in as "+user+", who is not an admin."))
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if !h.validToken(l, r.PostForm.Get("token")) {
				h.p.Log.Warn("admin: POST without a valid form token", "user", user, "path", r.URL.Path)
				render(w, r, http.StatusForbidden, adminForbiddenPage(user,
					"This form has expired (its token does not match your login). Reload the page and try again."))
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), loginKey{}, l)), user)
	})
}

// formToken is the per-login form token: HMAC-SHA256, keyed with the
// admin key, of the user name and the server-side login's ID. It is
// unknown to other sites (they can neither read the page nor compute the
// HMAC) and to other logins, and it dies with the login: a token of an
// ended login is refused because the login is. It needs no state of its
// own, so it works on every node that shares the key and the logins.
func (h *adminHandler) formToken(l auth.Login) string {
	if l.ID == "" {
		return ""
	}
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte("admin-form\x00" + l.User + "\x00" + l.ID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (h *adminHandler) validToken(l auth.Login, token string) bool {
	want := h.formToken(l)
	return want != "" && token != "" && hmac.Equal([]byte(token), []byte(want))
}

// frame returns the parts every admin page shows.
func (h *adminHandler) frame(r *http.Request, user, title, active string) adminFrame {
	f := adminFrame{Title: title, Active: active, User: user, Token: h.formToken(currentLogin(r))}
	if fl, ok := flashes[r.URL.Query().Get("msg")]; ok {
		f.Flash = fl
	}
	return f
}

func (h *adminHandler) notFound(w http.ResponseWriter, r *http.Request, user string) {
	f := h.frame(r, user, "Not found", "")
	f.Flash = flash{Text: "There is no admin page at " + r.URL.Path + ".", Error: true}
	render(w, r, http.StatusNotFound, adminNotFoundPage(f))
}

// flashes are the fixed messages a redirect after a POST may show
// (?msg=CODE); a link cannot make the page say anything else.
var flashes = map[string]flash{
	"disconnected":  {Text: "Session ended; its client was told not to reconnect."},
	"gone":          {Text: "That session had already ended.", Error: true},
	"published":     {Text: "Announcement published."},
	"user-added":    {Text: "User added."},
	"password-set":  {Text: "Password changed; the user's other logins and sessions were ended."},
	"user-deleted":  {Text: "User deleted and their logins and sessions ended."},
	"login-ended":   {Text: "Login ended; its sessions were told not to reconnect."},
	"logins-ended":  {Text: "All of the user's logins and sessions were ended."},
	"login-gone":    {Text: "That login had already ended.", Error: true},
	"admin-granted": {Text: "Admin rights granted."},
	"admin-revoked": {Text: "Admin rights revoked."},
}

// redirectMsg answers a POST with a redirect to path showing flash msg.
func redirectMsg(w http.ResponseWriter, r *http.Request, path string, q url.Values, msg string) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("msg", msg)
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}

// localClient returns the admin's LocalClient, creating it on first use
// (or again after it was removed).
func (h *adminHandler) localClient(fresh bool) (*server.LocalClient, error) {
	h.lcMu.Lock()
	defer h.lcMu.Unlock()
	if h.lc != nil && !fresh {
		return h.lc, nil
	}
	if h.lc != nil {
		h.lc.Close()
		h.lc = nil
	}
	lc, err := h.p.Bayeux.NewLocalClient("admin")
	if err != nil {
		return nil, err
	}
	h.lc = lc
	return lc, nil
}

// publishAs publishes data on channel through the admin LocalClient,
// recreating it once if its session is gone.
func (h *adminHandler) publishAs(ctx context.Context, channel string, data any) error {
	lc, err := h.localClient(false)
	if err != nil {
		return err
	}
	err = lc.Publish(ctx, channel, data)
	if errors.Is(err, errSessionUnknown) {
		if lc, err = h.localClient(true); err != nil {
			return err
		}
		err = lc.Publish(ctx, channel, data)
	}
	return err
}
