package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/bayeux-go/bayeux/server/auth"
)

// A host site's backend and the chat server share an HMAC secret: the
// backend mints a short-lived token for its logged-in user, the server
// verifies it.
func ExampleTokenVerifier() {
	// BAYEUX_TOKEN_KEYS: the secret, base64 (at least 32 bytes).
	keys, err := auth.ParseTokenKeys("hs256:c2l0ZS1zZWNyZXQtb2YtYXQtbGVhc3QtMzItYnl0ZXMh")
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, _ := auth.MintToken(keys[0], auth.MintOptions{Subject: "alice", TTL: 5 * time.Minute,
		Audience: "chat", Channels: []string{"/chat/support"}})

	v, _ := auth.NewTokenVerifier(auth.TokenOptions{Keys: keys, Audience: "chat"})
	c, err := v.Verify(tok)
	fmt.Println(c.Subject, c.Channels, err)

	// A token for another audience is refused, with a reason for the logs
	// and metrics.
	other, _ := auth.MintToken(keys[0], auth.MintOptions{Subject: "alice", Audience: "shop"})
	_, err = v.Verify(other)
	var te *auth.TokenError
	if errors.As(err, &te) {
		fmt.Println(te.Reason)
	}
	// Output:
	// alice [/chat/support] <nil>
	// token_audience
}

// Count invalid tokens per address before verifying them.
func ExampleTokenLimiter() {
	l := auth.NewTokenLimiter(2, time.Minute)
	for i := range 3 {
		ok := l.Reserve("203.0.113.7")
		fmt.Println(i+1, ok) // verify only when ok; Release when the token was valid
	}
	// Output:
	// 1 true
	// 2 true
	// 3 false
}
