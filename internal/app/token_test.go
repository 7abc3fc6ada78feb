package app

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/config"
	"github.com/bayeux-go/bayeux/server/auth"
)

var appSecret = base64.StdEncoding.EncodeToString([]byte("an app test secret of 32+ bytes!"))

func tokenConfig(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	all := map[string]string{"BAYEUX_DATA_DIR": t.TempDir(), "BAYEUX_TOKEN_KEYS": "hs256:k1:" + appSecret}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := config.LoadFrom(all)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mintCmd runs `bayeux token args...` and returns what it printed.
func mintCmd(t *testing.T, cfg *config.Config, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Token(cfg, args, &out, &errOut)
	return strings.TrimSpace(out.String()), err
}

// TestTokenSubcommand: `bayeux token` mints a token the server accepts,
// with the ttl and channels asked for, and refuses what it cannot do.
func TestTokenSubcommand(t *testing.T) {
	cfg := tokenConfig(t, map[string]string{"BAYEUX_TOKEN_AUDIENCE": "chat", "BAYEUX_TOKEN_ISSUER": "blog"})
	o, _, err := tokenOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewTokenVerifier(o)
	for _, args := range [][]string{
		{"alice", "-ttl", "2m", "-channels", "/chat/a,/chat/b/*"},
		{"-ttl", "2m", "-channels", "/chat/a,/chat/b/*", "alice"},
	} {
		tok, err := mintCmd(t, cfg, args...)
		if err != nil {
			t.Fatalf("token %q: %v", args, err)
		}
		c, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("the minted token does not verify: %v", err)
		}
		if c.Subject != "alice" || c.Issuer != "blog" || c.Expires.Sub(c.IssuedAt) != 2*time.Minute ||
			!slices.Equal(c.Channels, []string{"/chat/a", "/chat/b/*"}) {
			t.Errorf("claims %+v", c)
		}
	}
	tok, err := mintCmd(t, cfg, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(tok); err != nil || c.Channels != nil || c.Expires.Sub(c.IssuedAt) != 5*time.Minute {
		t.Errorf("default token: %+v, %v", c, err)
	}

	pemFile := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(pemFile, rsaPublicPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	type testCase struct {
		name string
		cfg  *config.Config
		args []string
		want string
	}
	for _, tc := range []testCase{
		{"no name", cfg, nil, "NAME"},
		{"two names", cfg, []string{"a", "b"}, "NAME"},
		{"invalid name", cfg, []string{"a:b"}, "valid user name"},
		{"ttl beyond the maximum lifetime", cfg, []string{"alice", "-ttl", "2h"}, "BAYEUX_TOKEN_MAX_LIFETIME"},
		{"bad channel", cfg, []string{"alice", "-channels", "chat"}, "channels"},
		{"no keys", tokenConfig(t, map[string]string{"BAYEUX_TOKEN_KEYS": " "}), []string{"alice"}, "BAYEUX_TOKEN_KEYS is empty"},
		{"public keys only", tokenConfig(t, map[string]string{"BAYEUX_TOKEN_KEYS": "file:" + pemFile}), []string{"alice"}, "no hs256 key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := mintCmd(t, tc.cfg, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Fatalf("token %q = %q, %v; want an error about %q", tc.args, out, err, tc.want)
			}
		})
	}
}

// TestTokenLoginWired: the binary's wiring turns BAYEUX_TOKEN_* into the
// chat's token login, with refusals on /metrics.
func TestTokenLoginWired(t *testing.T) {
	vars := map[string]string{"BAYEUX_TOKEN_KEYS": "hs256:k1:" + appSecret, "BAYEUX_TOKEN_AUDIENCE": "chat"}
	r := start(t, vars)
	tok, err := mintCmd(t, tokenConfig(t, vars), "alice")
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(tok string) map[string]any {
		b, _ := json.Marshal([]map[string]any{{"channel": "/meta/handshake", "version": "1.0",
			"supportedConnectionTypes": []string{"long-polling"}, "ext": map[string]any{"auth": map[string]string{"token": tok}}}})
		resp, err := http.Post(r.url+"/cometd", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) != 1 {
			t.Fatalf("handshake reply %v %v", out, err)
		}
		return out[0]
	}
	if hs := handshake(tok); hs["successful"] != true {
		t.Fatalf("token handshake: %v", hs)
	}
	bad := tok[:len(tok)-4] + "AAAA"
	if hs := handshake(bad); hs["successful"] != false || hs["error"] != "403::invalid_token" {
		t.Fatalf("forged token handshake: %v", hs)
	}
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`bayeux_refused_total{reason="token_signature"} 1`, `bayeux_refused_total{reason="token_expired"} 0`,
		`bayeux_refused_total{reason="session_deadline"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func rsaPublicPEM(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
