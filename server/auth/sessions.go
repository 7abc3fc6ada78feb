package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"github.com/bayeux-go/bayeux/internal/realip"
)

// LoginCookie is the name of the browser login cookie.
const LoginCookie = "bayeux_login"

// LoginLifetime is how long a browser stays logged in by default
// (LoginLimits.MaxAge).
const LoginLifetime = 30 * 24 * time.Hour

// SessionFlag is the Bayeux session flag (server.Client.SetFlag) that
// names the login (Login.ID) a session was authenticated by, so that
// ending the login ends its sessions.
const SessionFlag = "login"

// SeenEvery is how often a login's LastSeen is recorded at most.
const SeenEvery = time.Minute

// Logins keeps browsers logged in. The cookie (signed and encrypted,
// HttpOnly, SameSite=Lax, Secure when the client came over HTTPS: TLS here,
// or at a trusted proxy, see internal/realip) holds a
// random secret and the user name; the login itself is a record in a
// LoginStore, so a cookie whose login was ended (logout, an admin, a
// password change, expiry) logs in nobody, however valid its signature.
// Safe for concurrent use.
type Logins struct {
	cookies *sessions.CookieStore
	Store   LoginStore
	maxAge  time.Duration
	now     func() time.Time
}

// NewLogins returns Logins using keys, newest first (older keys still
// decode cookies, so keys can be rotated without logging everyone out),
// and keeping the logins in store (nil: in memory, with the default
// limits). maxAge is the cookie's lifetime, normally the store's
// LoginLimits.MaxAge (0: LoginLifetime).
func NewLogins(keys [][]byte, store LoginStore, maxAge time.Duration) (*Logins, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: no session keys")
	}
	var pairs [][]byte
	for _, k := range keys {
		if len(k) < 16 {
			return nil, errors.New("auth: session key shorter than 16 bytes")
		}
		hash := sha256.Sum256(append([]byte("bayeux hash key\x00"), k...))
		block := sha256.Sum256(append([]byte("bayeux block key\x00"), k...))
		pairs = append(pairs, hash[:], block[:])
	}
	if maxAge <= 0 {
		maxAge = LoginLifetime
	}
	if store == nil {
		store, _ = OpenFileLogins("", LoginLimits{MaxAge: maxAge})
	}
	cs := sessions.NewCookieStore(pairs...)
	cs.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	cs.MaxAge(int(maxAge / time.Second))
	return &Logins{cookies: cs, Store: store, maxAge: maxAge, now: time.Now}, nil
}

// cookie returns the secret and user in r's login cookie, or "".
func (l *Logins) cookie(r *http.Request) (secret, user string) {
	// store.New only reads r: unlike store.Get, it stores no session
	// registry in r's context (a WebSocket's upgrade request lives as
	// long as the socket).
	s, err := l.cookies.New(r, LoginCookie)
	if err != nil || s.IsNew {
		return "", ""
	}
	secret, _ = s.Values["secret"].(string)
	user, _ = s.Values["user"].(string)
	return secret, user
}

// Current returns the login of r's cookie, if its record still exists,
// and records that it was seen (at most every SeenEvery). When the store
// fails the request counts as not logged in.
func (l *Logins) Current(r *http.Request) (Login, bool) {
	secret, user := l.cookie(r)
	if secret == "" {
		return Login{}, false
	}
	ctx := r.Context()
	rec, ok, err := l.Store.Get(ctx, user, LoginID(secret))
	if err != nil || !ok {
		return Login{}, false
	}
	if now := l.now(); now.Sub(rec.LastSeen) >= SeenEvery {
		if l.Store.Seen(ctx, rec.User, rec.ID, now) == nil {
			rec.LastSeen = now
		}
	}
	return rec, true
}

// User returns the user logged in by r's cookie, or "".
func (l *Logins) User(r *http.Request) string {
	rec, _ := l.Current(r)
	return rec.User
}

// Login starts a login of user, who came from ip, and sets its cookie on
// w.
func (l *Logins) Login(w http.ResponseWriter, r *http.Request, user, ip string) (Login, error) {
	secret := rand.Text() + rand.Text() // 2 x 128 bits
	now := l.now()
	rec := Login{ID: LoginID(secret), User: user, Created: now, LastSeen: now, IP: ip, UserAgent: CleanUserAgent(r.UserAgent())}
	if err := l.Store.Add(r.Context(), rec); err != nil {
		return Login{}, err
	}
	s, _ := l.cookies.New(r, LoginCookie)
	s.Values = map[any]any{"secret": secret, "user": user}
	s.Options.Secure = realip.FromRequest(r).Secure
	if err := s.Save(r, w); err != nil {
		_, _, _ = l.Store.Remove(context.WithoutCancel(r.Context()), user, rec.ID)
		return Login{}, err
	}
	return rec, nil
}

// Logout ends the login of r's cookie, if any, and tells the browser to
// drop the cookie: the response carries an empty, expired cookie, never a
// valid one. It returns the login it ended.
func (l *Logins) Logout(w http.ResponseWriter, r *http.Request) (Login, bool, error) {
	ClearCookie(w, r)
	secret, user := l.cookie(r)
	if secret == "" {
		return Login{}, false, nil
	}
	return l.Store.Remove(context.WithoutCancel(r.Context()), user, LoginID(secret))
}

// ClearCookie sets an empty, expired login cookie on w.
func ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: LoginCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: realip.FromRequest(r).Secure,
	})
}

// LoadKeys returns the session keys: from env (comma-separated base64,
// newest first) when given, else from <dataDir>/session-keys, which is
// created with a new random key when missing, so logins survive restarts.
func LoadKeys(env []string, dataDir string) ([][]byte, error) {
	var given []string
	for _, e := range env {
		if e = strings.TrimSpace(e); e != "" {
			given = append(given, e)
		}
	}
	if len(given) > 0 {
		return decodeKeys(given, "BAYEUX_SESSION_KEYS")
	}
	path := filepath.Join(dataDir, "session-keys")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		line := base64.StdEncoding.EncodeToString(k) + "\n"
		if err := WriteFileAtomic(path, []byte(line)); err != nil {
			return nil, fmt.Errorf("auth: writing %s: %w", path, err)
		}
		return [][]byte{k}, nil
	}
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return decodeKeys(lines, path)
}

func decodeKeys(encoded []string, source string) ([][]byte, error) {
	var keys [][]byte
	for i, e := range encoded {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			k, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(e, "="))
		}
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("auth: %s: key %d is not base64 of at least 16 bytes", source, i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: %s holds no key", source)
	}
	return keys, nil
}
