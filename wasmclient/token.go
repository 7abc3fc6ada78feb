package wasmclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// TokenRefreshService is where the client presents a fresh token
// (Options.Token) so that its session outlives the one it logged in with:
// the bayeux server's token refresh. The request's data is {"token": ...}.
const TokenRefreshService = "/service/auth/refresh"

// tokenSource keeps the token of Options.Token and knows when it is due
// for a refresh. It never verifies a token (the server does): it only
// reads exp and iat from the payload to plan the refresh, so the client
// links no JWT library.
type tokenSource struct {
	fetch func(context.Context) (string, error)

	mu      sync.Mutex // serialises fetches and guards the fields
	tok     string
	renewAt time.Time     // when to fetch a fresh one; zero: never (no exp)
	changed chan struct{} // signalled when tok changes
}

func newTokenSource(fetch func(context.Context) (string, error)) *tokenSource {
	return &tokenSource{fetch: fetch, changed: make(chan struct{}, 1)}
}

// get returns the current token, fetching one when there is none, when
// the current one is due for a refresh, or when fresh is set.
func (s *tokenSource) get(ctx context.Context, fresh bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fresh && s.tok != "" && (s.renewAt.IsZero() || time.Now().Before(s.renewAt)) {
		return s.tok, nil
	}
	tok, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.setLocked(tok, time.Now())
	return tok, nil
}

// fetchNew fetches a token without keeping it (keep it with set once the
// server accepted it).
func (s *tokenSource) fetchNew(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetch(ctx)
}

// set keeps tok, obtained at got.
func (s *tokenSource) set(tok string, got time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(tok, got)
}

func (s *tokenSource) setLocked(tok string, got time.Time) {
	s.tok = tok
	s.renewAt = time.Time{}
	if life, ok := tokenLifetime(tok, got); ok {
		// Renew when a fifth of the lifetime is left (at most a minute),
		// plus a second for the whole seconds of exp and iat, but never
		// before half of it: early enough for a slow host, late enough
		// not to ask it often.
		s.renewAt = got.Add(life - min(min(life/5, time.Minute)+time.Second, life/2))
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// due returns when the token needs a refresh (ok=false: no token, or one
// without exp).
func (s *tokenSource) due() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewAt, s.tok != "" && !s.renewAt.IsZero()
}

// tokenLifetime reads how long a JWT is valid from got: exp - iat when it
// has iat (both from the issuer's clock, so the client's clock does not
// matter), else exp - got. ok is false without a readable exp.
func tokenLifetime(tok string, got time.Time) (time.Duration, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, false
	}
	var c struct {
		Exp float64 `json:"exp"`
		Iat float64 `json:"iat"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp <= 0 {
		return 0, false
	}
	from := float64(got.UnixNano()) / 1e9
	if c.Iat > 0 && c.Iat <= c.Exp {
		from = c.Iat
	}
	return max(time.Duration((c.Exp-from)*float64(time.Second)), 0), true
}

// refresher presents a fresh token on TokenRefreshService before the
// current one expires, for as long as run r lasts. A refresh that fails
// is tried again with backoff until the token expires; then the server
// ends the session and the next handshake fetches a token itself.
func (c *Client) refresher(r *runState) {
	defer r.wg.Done()
	ts := c.token
	failures := 0
	for {
		var timer *time.Timer
		var fire <-chan time.Time
		if at, ok := ts.due(); ok {
			wait := time.Until(at)
			if failures > 0 {
				wait = max(wait, c.opts.backoff(failures))
			}
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		stop := func() {
			if timer != nil {
				timer.Stop()
			}
		}
		select {
		case <-r.ctx.Done():
			stop()
			return
		case <-ts.changed:
			stop()
			failures = 0
			continue
		case <-fire:
		}
		if c.State().State != Connected {
			// No session to refresh: the next handshake fetches a token.
			failures++
			continue
		}
		err := c.refreshToken(r.ctx)
		if r.ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			c.log.Warn("wasmclient: token refresh failed", "err", err, "failures", failures)
		}
	}
}

// refreshToken fetches a token and presents it; the server's acceptance
// makes it the client's token.
func (c *Client) refreshToken(ctx context.Context) error {
	got := time.Now()
	tok, err := c.token.fetchNew(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*c.opts.MaxNetworkDelay)
	defer cancel()
	if _, err := c.Call(cctx, TokenRefreshService, map[string]string{"token": tok}); err != nil {
		return err
	}
	c.token.set(tok, got)
	return nil
}

// tokenAuth is the handshake's ext.auth for tok.
func tokenAuth(tok string) (json.RawMessage, error) {
	return json.Marshal(map[string]string{"token": tok})
}
