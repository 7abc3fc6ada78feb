// Package tokentest gives tests a chat with token login and the tokens it
// accepts. It is imported by _test.go files only.
package tokentest

import (
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/server/auth"
)

// Prefix is put before a token's sub to name its user.
const Prefix = "site:"

// Secret is the HS256 secret of the tokens (BAYEUX_TOKEN_KEYS hs256:...).
var Secret = []byte("a shared test secret of 32 bytes")

// Key returns the hs256 key of Secret.
func Key(t testing.TB) auth.TokenKey {
	t.Helper()
	keys, err := auth.ParseTokenKeys("hs256:" + base64.StdEncoding.EncodeToString(Secret))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// Chat returns a chat whose token login accepts the tokens of Mint (users
// Prefix+sub, no clock skew allowance, so that sessions end exactly at
// their tokens' expiry). Give its Authorize, Authorizers and Services to
// server.Options, then Attach the server.
func Chat(t testing.TB) *chat.Chat {
	t.Helper()
	v, err := auth.NewTokenVerifier(auth.TokenOptions{Keys: []auth.TokenKey{Key(t)}, Leeway: -1})
	if err != nil {
		t.Fatal(err)
	}
	users, err := auth.OpenUsers(testutil.WriteUsers(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	c := chat.New(auth.NewAuthenticator(users), nil, slog.New(slog.DiscardHandler))
	if c.Tokens, err = chat.NewTokens(v, Prefix, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// Mint returns a token for sub, valid for ttl from issued.
func Mint(t testing.TB, sub string, ttl time.Duration, issued time.Time) string {
	t.Helper()
	tok, err := auth.MintToken(Key(t), auth.MintOptions{Subject: sub, TTL: ttl, Now: issued})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
