package auth

import (
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

// LoginLifetime is how long a browser stays logged in.
const LoginLifetime = 30 * 24 * time.Hour

// Logins keeps browsers logged in with a signed and encrypted cookie. The
// cookie is HttpOnly, SameSite=Lax, and Secure when the client came over
// HTTPS (TLS here, or at a trusted proxy: internal/realip); it holds the
// user name and the login time, nothing secret.
type Logins struct {
	store *sessions.CookieStore
}

// NewLogins returns Logins using keys, newest first (older keys still
// decode cookies, so keys can be rotated without logging everyone out).
func NewLogins(keys [][]byte) (*Logins, error) {
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
	store := sessions.NewCookieStore(pairs...)
	store.Options = &sessions.Options{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	store.MaxAge(int(LoginLifetime / time.Second))
	return &Logins{store: store}, nil
}

// User returns the user logged in by r's cookie, or "". It only reads r:
// unlike store.Get, it stores no session registry in r's context (a
// WebSocket's upgrade request lives as long as the socket).
func (l *Logins) User(r *http.Request) string {
	s, err := l.store.New(r, LoginCookie)
	if err != nil || s.IsNew {
		return ""
	}
	u, _ := s.Values["user"].(string)
	return u
}

// Login sets the login cookie for user on w.
func (l *Logins) Login(w http.ResponseWriter, r *http.Request, user string) error {
	s, _ := l.store.New(r, LoginCookie)
	s.Values["user"] = user
	s.Values["at"] = time.Now().Unix()
	s.Options.Secure = realip.FromRequest(r).Secure
	return s.Save(r, w)
}

// Logout clears the login cookie.
func (l *Logins) Logout(w http.ResponseWriter, r *http.Request) {
	s, _ := l.store.New(r, LoginCookie)
	s.Options.MaxAge = -1
	s.Options.Secure = realip.FromRequest(r).Secure
	_ = s.Save(r, w)
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
