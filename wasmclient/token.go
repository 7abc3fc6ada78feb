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
	renewAt time.Time // when to fetch a fresh one; zero: never (no exp)
}

// get returns a token: the current one unless fresh is set, there is
// none, or it is due for a refresh; a new one is kept when keep is set
// (a token for a refresh is kept once the server took it: set).
func (s *tokenSource) get(ctx context.Context, fresh, keep bool) (string, error) {
	s.mu.Lock()
	tok := s.tok
	if fresh || tok == "" || (!s.renewAt.IsZero() && !time.Now().Before(s.renewAt)) {
		got := time.Now()
		var err error
		if tok, err = s.fetch(ctx); err != nil {
			s.mu.Unlock()
			return "", err
		}
		if keep {
			s.setLocked(tok, got)
		}
	}
	s.mu.Unlock()
	return tok, nil
}

// set keeps tok, obtained at got: it is the token from now on, renewed
// when a fifth of its lifetime is left (at most a minute), plus a second
// for the whole seconds of exp and iat, but never before half of it:
// early enough for a slow host, late enough not to ask it often.
func (s *tokenSource) set(tok string, got time.Time) {
	s.mu.Lock()
	s.setLocked(tok, got)
	s.mu.Unlock()
}

func (s *tokenSource) setLocked(tok string, got time.Time) {
	s.tok = tok
	s.renewAt = time.Time{}
	if life, ok := tokenLifetime(tok, got); ok {
		s.renewAt = got.Add(life - min(min(life/5, time.Minute)+time.Second, life/2))
	}
}

// due returns when the token needs a refresh (zero: no token, or one
// without exp).
func (s *tokenSource) due() time.Time {
	s.mu.Lock()
	at := s.renewAt
	s.mu.Unlock()
	return at
}

// tokenJSON is {"token": tok}.
func tokenJSON(tok string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"token": tok}) // cannot fail
	return b
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
// ends the session and the next handshake fetches a token itself. While
// there is no session (or no token with an exp) it looks again every
// second.
func (c *Client) refresher(r *runState) {
	defer r.wg.Done()
	failures := 0
	for {
		wait := time.Second
		if at := c.token.due(); !at.IsZero() && c.State().State == Connected {
			wait = max(time.Until(at), c.opts.backoff(failures))
		}
		if !sleep(r.ctx, wait) {
			return
		}
		at := c.token.due()
		if at.IsZero() || time.Now().Before(at) || c.State().State != Connected {
			continue
		}
		got := time.Now()
		tok, err := c.token.get(r.ctx, true, false)
		if err == nil {
			cctx, cancel := context.WithTimeout(r.ctx, 2*c.opts.MaxNetworkDelay)
			_, err = c.Call(cctx, TokenRefreshService, tokenJSON(tok))
			cancel()
		}
		if r.ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			c.log.Warn("wasmclient: token refresh failed", "err", err)
			continue
		}
		failures = 0
		c.token.set(tok, got)
	}
}
