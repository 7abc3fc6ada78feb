// Package chattest starts the chat on a real server for tests: a chat
// over a users file with browser logins, and a server wired to it behind
// httptest. It is imported by _test.go files only.
package chattest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
)

// New returns a chat deciding logins with the users file at path (see
// testutil.WriteUsers), with its authenticator and its browser logins
// (one fixed cookie key), and a logger that discards.
func New(t testing.TB, path string) (*chat.Chat, *auth.Authenticator, *auth.Logins) {
	t.Helper()
	users, err := auth.OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(users)
	logins, err := auth.NewLogins([][]byte{bytes.Repeat([]byte{7}, 32)}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return chat.New(a, logins, slog.New(slog.DiscardHandler)), a, logins
}

// Serve starts a server for c with opts, c's Authorize, Authorizers and
// Services in place (Channels chat.DefaultRules() when nil, a discarding
// Logger when nil, PollTimeout 2 s when 0), attaches c, and serves the
// server's Site behind an httptest.Server (the Bayeux endpoint is its URL
// + "/cometd"). Both are shut down with t.Cleanup.
func Serve(t testing.TB, c *chat.Chat, opts server.Options) (*server.Server, *httptest.Server) {
	t.Helper()
	opts.Authorize, opts.Authorizers, opts.Services = c.Authorize, c.Authorizers(), c.Services()
	if opts.Channels == nil {
		opts.Channels = chat.DefaultRules()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollTimeout == 0 {
		opts.PollTimeout = 2 * time.Second
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Attach(srv)
	hs := httptest.NewServer(srv.Site(server.SiteOptions{}))
	t.Cleanup(func() {
		srv.BeginShutdown()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, hs
}
