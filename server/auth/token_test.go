package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testKeys are the keys of the token tests: two HMAC secrets (ids "a" and
// "b"), an RSA, a P-256 and an Ed25519 key pair.
type testKeys struct {
	secretA, secretB []byte
	rsa              *rsa.PrivateKey
	ec               *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
	rsaPEM           []byte            // the RSA public key as PEM
	files            map[string][]byte // rsa.pem, keys.jwks, ed.pem
}

var (
	keysOnce sync.Once
	keysVal  *testKeys
)

func makeTestKeys(t *testing.T) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		k := &testKeys{secretA: []byte(strings.Repeat("a", 32)), secretB: []byte(strings.Repeat("b", 40))}
		var err error
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		k.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		edDER, _ := x509.MarshalPKIXPublicKey(k.ed.Public())
		jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &k.ec.PublicKey, KeyID: "ec1", Algorithm: "ES256", Use: "sig"},
		}})
		k.files = map[string][]byte{
			"rsa.pem":   k.rsaPEM,
			"ed.pem":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}),
			"keys.jwks": jwks,
		}
		keysVal = k
	})
	return keysVal
}

// spec writes the key files into a temporary directory and returns it
// with the BAYEUX_TOKEN_KEYS of every test key.
func (k *testKeys) spec(t *testing.T) (spec, dir string) {
	t.Helper()
	dir = t.TempDir()
	for name, b := range k.files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join([]string{
		"hs256:a:" + base64.StdEncoding.EncodeToString(k.secretA),
		"hs256:b:" + base64.RawURLEncoding.EncodeToString(k.secretB),
		"file:" + filepath.Join(dir, "rsa.pem"),
		"file:" + filepath.Join(dir, "keys.jwks"),
		"file:" + filepath.Join(dir, "ed.pem"),
	}, ","), dir
}

// sign makes a compact JWS of claims with key and alg, with kid when not "".
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned makes a token with alg "none" (or another alg) and no signature.
func unsigned(alg string, claims any) string {
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func TestTokenVerify(t *testing.T) {
	k := makeTestKeys(t)
	spec, dir := k.spec(t)
	keys, err := ParseTokenKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("%d keys, want 5", len(keys))
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	ok := func(sub string) jwt.Claims {
		return jwt.Claims{Subject: sub, IssuedAt: at(0), Expiry: at(5 * time.Minute)}
	}
	with := func(c jwt.Claims, extra map[string]any) map[string]any {
		b, _ := json.Marshal(c)
		m := map[string]any{}
		json.Unmarshal(b, &m)
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	rsaOnly, err := ParseTokenKeys("file:" + filepath.Join(dir, "rsa.pem"))
	if err != nil {
		t.Fatal(err)
	}
	type testCase struct {
		name  string
		token string
		opts  func(*TokenOptions)
		// want is the refusal reason, or "" for a valid token.
		want     string
		sub      string
		channels []string
	}
	for _, tc := range []testCase{
		{name: "hs256 with kid a", token: sign(t, jose.HS256, k.secretA, "a", ok("alice")), sub: "alice"},
		{name: "rotation: kid b", token: sign(t, jose.HS256, k.secretB, "b", ok("bob")), sub: "bob"},
		{name: "rotation: no kid, each key tried", token: sign(t, jose.HS256, k.secretB, "", ok("bob")), sub: "bob"},
		{name: "unknown kid: each key tried", token: sign(t, jose.HS256, k.secretA, "old", ok("carol")), sub: "carol"},
		{name: "kid a but signed with b", token: sign(t, jose.HS256, k.secretB, "a", ok("mallory")), want: TokenSignature},
		{name: "rs256", token: sign(t, jose.RS256, k.rsa, "", ok("rsa")), sub: "rsa"},
		{name: "es256 from a JWKS with kid", token: sign(t, jose.ES256, k.ec, "ec1", ok("ec")), sub: "ec"},
		{name: "eddsa", token: sign(t, jose.EdDSA, k.ed, "", ok("ed")), sub: "ed"},
		{name: "wrong secret", token: sign(t, jose.HS256, []byte(strings.Repeat("x", 32)), "", ok("alice")), want: TokenSignature},
		{name: "wrong RSA key", token: sign(t, jose.RS256, mustRSA(t), "", ok("alice")), want: TokenSignature},
		{name: "tampered payload", token: tamper(sign(t, jose.HS256, k.secretA, "a", ok("alice")), ok("admin")), want: TokenSignature},
		{name: "alg none", token: unsigned("none", ok("admin")), want: TokenAlg},
		{name: "alg None", token: unsigned("None", ok("admin")), want: TokenAlg},
		{name: "alg HS512", token: sign(t, jose.HS512, append(k.secretA, k.secretA...), "a", ok("alice")), want: TokenAlg},
		{name: "alg confusion: HS256 keyed with the RSA public key, no hs256 key configured",
			token: sign(t, jose.HS256, k.rsaPEM, "", ok("admin")),
			opts:  func(o *TokenOptions) { o.Keys = rsaOnly }, want: TokenAlg},
		{name: "alg confusion: HS256 keyed with the RSA public key, hs256 keys configured",
			token: sign(t, jose.HS256, k.rsaPEM, "", ok("admin")), want: TokenSignature},
		{name: "expired", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Expiry: at(-time.Minute)}), want: TokenExpired},
		{name: "expired within the clock skew allowance", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Expiry: at(-20 * time.Second)}), sub: "alice"},
		{name: "expired, no allowance", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Expiry: at(-20 * time.Second)}),
			opts: func(o *TokenOptions) { o.Leeway = -1 }, want: TokenExpired},
		{name: "not yet valid (nbf)", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", NotBefore: at(2 * time.Minute), Expiry: at(5 * time.Minute)}), want: TokenNotYetValid},
		{name: "nbf within the allowance", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", NotBefore: at(20 * time.Second), Expiry: at(5 * time.Minute)}), sub: "alice"},
		{name: "issued in the future", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", IssuedAt: at(time.Minute), Expiry: at(5 * time.Minute)}), want: TokenNotYetValid},
		{name: "lifetime too long (exp)", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Expiry: at(2 * time.Hour)}), want: TokenLifetime},
		{name: "lifetime too long (exp - iat)", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", IssuedAt: at(-50 * time.Minute), Expiry: at(20 * time.Minute)}), want: TokenLifetime},
		{name: "lifetime within a shorter maximum", token: sign(t, jose.HS256, k.secretA, "a", ok("alice")), opts: func(o *TokenOptions) { o.MaxLifetime = 4 * time.Minute }, want: TokenLifetime},
		{name: "no exp", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice"}), want: TokenClaimsInvalid},
		{name: "no sub", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Expiry: at(time.Minute)}), want: TokenClaimsInvalid},
		{name: "sub with a colon", token: sign(t, jose.HS256, k.secretA, "a", ok("blog:admin")), want: TokenClaimsInvalid},
		{name: "sub with a space", token: sign(t, jose.HS256, k.secretA, "a", ok("al ice")), want: TokenClaimsInvalid},
		{name: "exp not a number", token: sign(t, jose.HS256, k.secretA, "a", map[string]any{"sub": "alice", "exp": "soon"}), want: TokenClaimsInvalid},
		{name: "audience matches", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Audience: jwt.Audience{"other", "chat"}, Expiry: at(time.Minute)}),
			opts: func(o *TokenOptions) { o.Audience = "chat" }, sub: "alice"},
		{name: "wrong audience", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Audience: jwt.Audience{"other"}, Expiry: at(time.Minute)}),
			opts: func(o *TokenOptions) { o.Audience = "chat" }, want: TokenAudience},
		{name: "no audience when one is expected", token: sign(t, jose.HS256, k.secretA, "a", ok("alice")),
			opts: func(o *TokenOptions) { o.Audience = "chat" }, want: TokenAudience},
		{name: "wrong issuer", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Issuer: "evil.example", Expiry: at(time.Minute)}),
			opts: func(o *TokenOptions) { o.Issuer = "blog.example" }, want: TokenIssuer},
		{name: "issuer matches", token: sign(t, jose.HS256, k.secretA, "a", jwt.Claims{Subject: "alice", Issuer: "blog.example", Expiry: at(time.Minute)}),
			opts: func(o *TokenOptions) { o.Issuer = "blog.example" }, sub: "alice"},
		{name: "channels claim", token: sign(t, jose.HS256, k.secretA, "a", with(ok("alice"), map[string]any{"channels": []string{"/chat/support", "/members/*"}})),
			sub: "alice", channels: []string{"/chat/support", "/members/*"}},
		{name: "empty channels claim", token: sign(t, jose.HS256, k.secretA, "a", with(ok("alice"), map[string]any{"channels": []string{}})),
			sub: "alice", channels: []string{}},
		{name: "channels claim with a bad pattern", token: sign(t, jose.HS256, k.secretA, "a", with(ok("alice"), map[string]any{"channels": []string{"/chat/**/x"}})), want: TokenClaimsInvalid},
		{name: "channels claim not a list", token: sign(t, jose.HS256, k.secretA, "a", with(ok("alice"), map[string]any{"channels": "/chat/x"})), want: TokenClaimsInvalid},
		{name: "too long", token: sign(t, jose.HS256, k.secretA, "a", with(ok("alice"), map[string]any{"pad": strings.Repeat("x", 9000)})), want: TokenMalformed},
		{name: "garbage", token: "not-a-token", want: TokenMalformed},
		{name: "empty", token: "", want: TokenMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := TokenOptions{Keys: keys, Now: func() time.Time { return now }}
			if tc.opts != nil {
				tc.opts(&o)
			}
			v, err := NewTokenVerifier(o)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(tc.token)
			if tc.want != "" {
				var te *TokenError
				if !errors.As(err, &te) || te.Reason != tc.want {
					t.Fatalf("Verify = %+v, %v; want refusal %s", c, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != tc.sub {
				t.Errorf("Subject %q, want %q", c.Subject, tc.sub)
			}
			if (c.Channels == nil) != (tc.channels == nil) || !slices.Equal(c.Channels, tc.channels) {
				t.Errorf("Channels %q, want %q", c.Channels, tc.channels)
			}
		})
	}
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tamper replaces the payload of a compact JWS, keeping its signature.
func tamper(tok string, claims any) string {
	parts := strings.Split(tok, ".")
	p, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func TestParseTokenKeysErrors(t *testing.T) {
	k := makeTestKeys(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	octJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.secretA, KeyID: "s"}}})
	wrongAlg, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.ec.PublicKey, Algorithm: "RS256"}}})
	type testCase struct {
		name, spec, want string
	}
	for _, tc := range []testCase{
		{"unknown kind", "rsa:abc", "want hs256"},
		{"short secret", "hs256:" + base64.StdEncoding.EncodeToString([]byte("short")), "at least 32"},
		{"not base64", "hs256:%%%%", "not base64"},
		{"empty kid", "hs256::" + base64.StdEncoding.EncodeToString(k.secretA), "empty kid"},
		{"missing file", "file:" + filepath.Join(dir, "nope.pem"), "no such file"},
		{"private key PEM", "file:" + write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})), "never a private key"},
		{"RSA 1024", "file:" + write("small.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER})), "2048"},
		{"P-384", "file:" + write("p384.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p384DER})), "P-256"},
		{"empty file", "file:" + write("empty.pem", []byte("\n")), "no public key"},
		{"secret in a JWKS", "file:" + write("oct.jwks", octJWKS), "not a public key"},
		{"JWKS alg mismatch", "file:" + write("alg.jwks", wrongAlg), "want ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokenKeys(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseTokenKeys(%q) = %v, want an error containing %q", tc.spec, err, tc.want)
			}
			if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k.secretA)) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
	if keys, err := ParseTokenKeys(" , "); err != nil || len(keys) != 0 {
		t.Errorf("blank spec: %v, %v", keys, err)
	}
	if _, err := NewTokenVerifier(TokenOptions{}); err == nil {
		t.Error("a verifier without keys")
	}
}

func TestMintToken(t *testing.T) {
	k := makeTestKeys(t)
	spec, _ := k.spec(t)
	keys, err := ParseTokenKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := MintToken(keys[1], MintOptions{Subject: "alice", TTL: time.Minute, Audience: "chat", Issuer: "blog", Channels: []string{"/chat/support"}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewTokenVerifier(TokenOptions{Keys: keys[1:2], Audience: "chat", Issuer: "blog"})
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("a minted token does not verify: %v", err)
	}
	if c.Subject != "alice" || c.Issuer != "blog" || !slices.Equal(c.Channels, []string{"/chat/support"}) ||
		c.Expires.Sub(c.IssuedAt) != time.Minute {
		t.Errorf("claims %+v", c)
	}
	parsed, _ := jwt.ParseSigned(tok, tokenAlgs)
	if parsed.Headers[0].KeyID != "b" {
		t.Errorf("kid %q, want b", parsed.Headers[0].KeyID)
	}
	if _, err := MintToken(keys[2], MintOptions{Subject: "alice"}); err == nil {
		t.Error("minted with a public key")
	}
	if _, err := MintToken(keys[0], MintOptions{Subject: "a:b"}); err == nil {
		t.Error("minted for an invalid user name")
	}
}

func TestTokenLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewTokenLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if !l.Reserve("1.2.3.4") {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if l.Reserve("1.2.3.4") {
		t.Fatal("a 4th attempt within the window was allowed")
	}
	if !l.Reserve("5.6.7.8") {
		t.Fatal("another address was refused")
	}
	l.Release("1.2.3.4") // one of them was valid
	if !l.Reserve("1.2.3.4") || l.Reserve("1.2.3.4") {
		t.Fatal("a released attempt was not given back exactly once")
	}
	now = now.Add(time.Minute)
	if !l.Reserve("1.2.3.4") {
		t.Fatal("refused after the window")
	}
	if !NewTokenLimiter(0, 0).Reserve("x") {
		t.Fatal("max 0 limits")
	}
}
