package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// Token login: a handshake with "ext":{"auth":{"token":"<JWT>"}} logs in
// as Tokens.Prefix + the token's sub, with the session ending at the
// token's expiry (server.Client.SetDeadline) unless the client presents a
// fresh token on RefreshService first.

// RefreshService is the service a token session calls with {"token":
// "<fresh JWT>"} before its token expires; the reply is {"expires": unix
// milliseconds}, the session's new end.
const RefreshService = "/service/auth/refresh"

// Flags a token session carries.
const (
	// FlagAuth says how the session logged in: "password", "cookie" or
	// "token".
	FlagAuth = "auth"
	// FlagTokenChannels is the token's channels claim as a JSON array;
	// absent when the token had none (no limit).
	FlagTokenChannels = "token_channels"
)

// Errors of token logins.
var (
	// ErrInvalidToken refuses a token for any reason; the reason is
	// logged and counted, not told.
	ErrInvalidToken = &protocol.Error{Code: 403, Message: "invalid_token"}
	// ErrNotTokenSession answers a refresh from a session that did not
	// log in with a token.
	ErrNotTokenSession = &protocol.Error{Code: 403, Message: "not_a_token_session"}
)

// Refusal reasons of token logins besides auth.TokenReasons.
const (
	// RefusedTokenChannels: a create, subscribe or publish outside the
	// token's channels claim (the site rule of Authorizers; service
	// channels are not limited by it, the history and presence services
	// ask about the channel they read).
	RefusedTokenChannels = "token_channels"
	// RefusedTokenDisabled: a token where token login is not configured.
	RefusedTokenDisabled = "token_disabled"
)

// Tokens is the chat's token login: who verifies tokens, how token users
// are named, and how many invalid tokens an address may present.
type Tokens struct {
	Verifier *auth.TokenVerifier
	// Prefix is put before a token's sub to make the user name. It must
	// contain ':', which local user names cannot (auth.ValidName), so a
	// token user is never a local user or an admin, whatever its sub.
	Prefix string
	// Limiter bounds the invalid tokens per client address (nil: none).
	Limiter *auth.TokenLimiter
}

// NewTokens returns the token login for v, naming users prefix+sub.
func NewTokens(v *auth.TokenVerifier, prefix string, limiter *auth.TokenLimiter) (*Tokens, error) {
	if v == nil {
		return nil, errors.New("chat: token login without a verifier")
	}
	if !strings.Contains(prefix, ":") || strings.ContainsFunc(prefix, func(r rune) bool { return r <= ' ' }) ||
		len(prefix) > 32 {
		return nil, fmt.Errorf("chat: token user prefix %q must contain ':' (local user names cannot), no spaces, at most 32 bytes", prefix)
	}
	return &Tokens{Verifier: v, Prefix: prefix, Limiter: limiter}, nil
}

// verify checks raw from addr, counting and logging a refusal.
func (c *Chat) verifyToken(addr, raw, what string) (*auth.TokenClaims, error) {
	t := c.Tokens
	if t == nil {
		c.refuse(RefusedTokenDisabled)
		c.Log.Info("token refused: token login is not configured (BAYEUX_TOKEN_KEYS)", "ip", addr)
		return nil, ErrInvalidToken
	}
	if !t.Limiter.Reserve(addr) {
		c.refuse(auth.TokenRateLimited)
		c.Log.Warn("token refused: too many invalid tokens from this address", "ip", addr, "at", what)
		return nil, ErrRateLimited
	}
	claims, err := t.Verifier.Verify(raw)
	if err != nil {
		reason := auth.TokenMalformed
		var te *auth.TokenError
		if errors.As(err, &te) {
			reason = te.Reason
		}
		c.refuse(reason)
		c.Log.Info("token refused", "reason", reason, "ip", addr, "at", what, "err", err)
		return nil, ErrInvalidToken
	}
	t.Limiter.Release(addr)
	return claims, nil
}

func (c *Chat) refuse(reason string) {
	if c.srv != nil {
		c.srv.Stats().Refused.Add(reason)
	}
}

// deadline is when a session of claims ends: the token's expiry, plus the
// clock skew allowance it was accepted with.
func (t *Tokens) deadline(claims *auth.TokenClaims) time.Time {
	return claims.Expires.Add(t.Verifier.Options().Leeway)
}

// tokenLogin authenticates a handshake with a token.
func (c *Chat) tokenLogin(cl *server.Client, raw string) error {
	claims, err := c.verifyToken(cl.RemoteAddr(), raw, "handshake")
	if err != nil {
		return err
	}
	cl.SetUser(c.Tokens.Prefix + claims.Subject)
	cl.SetFlag(FlagAuth, "token")
	if claims.Channels != nil {
		b, err := json.Marshal(claims.Channels)
		if err != nil {
			return err
		}
		cl.SetFlag(FlagTokenChannels, string(b))
	}
	cl.SetDeadline(c.Tokens.deadline(claims))
	return nil
}

// tokenChannels returns the channels claim of a token session, and false
// when the session is not limited by one.
func tokenChannels(cl *server.Client) ([]string, bool) {
	raw := cl.Flag(FlagTokenChannels)
	if raw == "" {
		return nil, false
	}
	var chs []string
	if json.Unmarshal([]byte(raw), &chs) != nil {
		return []string{}, true // unreadable: nothing is allowed
	}
	return chs, true
}

// allowedByToken reports whether a session limited to patterns may use
// channel (a name or a subscription pattern): a pattern of the claim must
// cover it. A room's presence channel /presence/chat/<room> goes with its room
// /chat/<room>.
func allowedByToken(patterns []string, channel string) bool {
	also := ""
	if rest, ok := strings.CutPrefix(channel, PresencePrefix); ok {
		also = RoomPrefix + rest
	}
	for _, p := range patterns {
		if protocol.Covers(p, channel) || (also != "" && protocol.Covers(p, also)) {
			return true
		}
	}
	return false
}

// refresh is RefreshService: a fresh token for the same user and channels
// moves the session's end to the new token's expiry.
func (c *Chat) refresh(ctx context.Context, cl *server.Client, m *protocol.Message) ([]*protocol.Message, error) {
	if cl.Flag(FlagAuth) != "token" || cl.ID() == "" {
		return nil, ErrNotTokenSession
	}
	var in struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(m.Data, &in) != nil || in.Token == "" {
		return nil, ErrBadAuth
	}
	claims, err := c.verifyToken(cl.RemoteAddr(), in.Token, "refresh")
	if err != nil {
		return nil, err
	}
	same := c.Tokens.Prefix+claims.Subject == cl.User()
	old, limited := tokenChannels(cl)
	if limited != (claims.Channels != nil) || !slices.Equal(old, claims.Channels) {
		same = false
	}
	if !same {
		c.refuse(auth.TokenMismatch)
		c.Log.Info("token refresh refused: another user or other channels", "user", cl.User(), "sub", claims.Subject, "ip", cl.RemoteAddr())
		return nil, ErrInvalidToken
	}
	deadline := c.Tokens.deadline(claims)
	if err := c.srv.SetDeadline(ctx, cl.ID(), deadline); err != nil {
		if errors.Is(err, protocol.ErrSessionUnknown) {
			return nil, err
		}
		c.Log.Error("token refresh failed", "user", cl.User(), "err", err)
		return nil, protocol.ErrServerError
	}
	out, err := json.Marshal(map[string]int64{"expires": deadline.UnixMilli()})
	if err != nil {
		return nil, err
	}
	return []*protocol.Message{{Data: out}}, nil
}
