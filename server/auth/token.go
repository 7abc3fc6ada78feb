package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bayeux-go/bayeux/protocol"
)

// Token login: a JWT (JSON Web Token) minted by another site's backend
// for its own user, verified with github.com/go-jose/go-jose/v4. go-jose
// was chosen over golang-jwt/jwt because it reads JWKS files itself
// (jose.JSONWebKeySet), so keys published as a JWKS need no second
// library, and because its parser takes the list of acceptable
// algorithms up front: "none" and anything not listed are refused before
// a key is looked at.

// Token algorithms accepted, one per kind of key.
const (
	AlgHS256 = "HS256" // HMAC-SHA256 with a shared secret (hs256:...)
	AlgRS256 = "RS256" // RSA PKCS#1 v1.5 with SHA-256, RSA keys of 2048 bits or more
	AlgES256 = "ES256" // ECDSA on P-256 with SHA-256
	AlgEdDSA = "EdDSA" // Ed25519
)

var tokenAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.RS256, jose.ES256, jose.EdDSA}

// Reasons a token is refused (TokenError.Reason). They double as the
// reasons counted in the server's refusals (bayeux_refused_total).
const (
	TokenMalformed     = "token_malformed"      // not a compact JWS, bad encoding, too long
	TokenAlg           = "token_alg"            // alg "none", or an alg no configured key has
	TokenSignature     = "token_signature"      // no key of its alg verifies it
	TokenExpired       = "token_expired"        // exp passed (beyond the leeway)
	TokenNotYetValid   = "token_not_yet_valid"  // nbf or iat in the future (beyond the leeway)
	TokenLifetime      = "token_lifetime"       // exp further away than the maximum lifetime
	TokenAudience      = "token_audience"       // aud does not name the expected audience
	TokenIssuer        = "token_issuer"         // iss is not the expected issuer
	TokenClaimsInvalid = "token_claims"         // sub or exp missing or invalid, bad channels
	TokenRateLimited   = "token_rate"           // too many invalid tokens from one address
	TokenMismatch      = "token_refresh_change" // a refresh token names another user or channels
)

// TokenReasons lists every reason above, to declare them as metrics.
var TokenReasons = []string{TokenMalformed, TokenAlg, TokenSignature, TokenExpired, TokenNotYetValid,
	TokenLifetime, TokenAudience, TokenIssuer, TokenClaimsInvalid, TokenRateLimited, TokenMismatch}

// TokenError is why a token was refused. Reason is one of the Token*
// constants; Err says more, for logs (never for the client).
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string {
	if e.Err == nil {
		return "invalid token: " + e.Reason
	}
	return "invalid token: " + e.Reason + ": " + e.Err.Error()
}

func (e *TokenError) Unwrap() error { return e.Err }

func tokenErr(reason string, format string, args ...any) *TokenError {
	return &TokenError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// TokenKey is one key that verifies tokens: an HMAC secret or a public
// key, with the algorithm it verifies and an optional key id (kid).
type TokenKey struct {
	// ID is the key id a token names in its "kid" header; "" when the key
	// has none.
	ID string
	// Alg is AlgHS256, AlgRS256, AlgES256 or AlgEdDSA.
	Alg string
	// key is []byte (HS256), *rsa.PublicKey, *ecdsa.PublicKey or
	// ed25519.PublicKey.
	key any
}

// Secret returns the HMAC secret of an HS256 key (nil for public keys).
// Minting needs it; keep it out of logs.
func (k TokenKey) Secret() []byte {
	b, _ := k.key.([]byte)
	return b
}

// minSecret is the shortest HS256 secret accepted: as long as the hash
// (RFC 7518, 3.2).
const minSecret = 32

// ParseTokenKeys reads keys from spec, comma-separated entries of
//
//	hs256:<base64 secret>        an HMAC secret (standard or URL base64, at least 32 bytes)
//	hs256:<kid>:<base64 secret>  the same with a key id
//	file:<path>                  a PEM file (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE blocks)
//	                             or a JWKS file ({"keys":[...]}) of RSA, P-256 or Ed25519 public keys
//
// Several keys may be given at once, for rotation: a token's kid picks
// the keys with that id, else every key of the token's algorithm is
// tried. An empty spec gives no keys (token login off).
func ParseTokenKeys(spec string) ([]TokenKey, error) {
	var keys []TokenKey
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		kind, rest, _ := strings.Cut(entry, ":")
		switch strings.ToLower(kind) {
		case "hs256":
			k, err := parseSecret(rest)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		case "file":
			ks, err := readKeyFile(rest)
			if err != nil {
				return nil, err
			}
			keys = append(keys, ks...)
		default:
			return nil, fmt.Errorf("token key %q: want hs256:<base64 secret> or file:<path>", redact(entry))
		}
	}
	return keys, nil
}

// redact shows the kind of a key entry without its secret.
func redact(entry string) string {
	kind, _, _ := strings.Cut(entry, ":")
	if len(kind) > 16 {
		kind = kind[:16]
	}
	return kind + ":…"
}

func parseSecret(s string) (TokenKey, error) {
	kid := ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		kid, s = s[:i], s[i+1:]
		if kid == "" {
			return TokenKey{}, errors.New("token key hs256:<kid>:<secret>: empty kid")
		}
	}
	var secret []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return TokenKey{}, errors.New("token key hs256: the secret is not base64")
	}
	if len(secret) < minSecret {
		return TokenKey{}, fmt.Errorf("token key hs256: the secret has %d bytes, want at least %d", len(secret), minSecret)
	}
	return TokenKey{ID: kid, Alg: AlgHS256, key: secret}, nil
}

func readKeyFile(path string) ([]TokenKey, error) {
	if path == "" {
		return nil, errors.New("token key file: empty path")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token key file: %w", err)
	}
	var keys []TokenKey
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "{") {
		keys, err = parseJWKS(b)
	} else {
		keys, err = parsePEM(b)
	}
	if err != nil {
		return nil, fmt.Errorf("token key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("token key file %s: no public key in it", path)
	}
	return keys, nil
}

func parsePEM(b []byte) ([]TokenKey, error) {
	var keys []TokenKey
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return keys, nil
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %q: %w", block.Type, err)
		}
		k, err := publicKey("", pub)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
}

func parseJWKS(b []byte) ([]TokenKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := make([]TokenKey, 0, len(set.Keys))
	for i, jwk := range set.Keys {
		if jwk.Use != "" && jwk.Use != "sig" {
			continue // an encryption key
		}
		if !jwk.IsPublic() {
			return nil, fmt.Errorf("JWKS key %d (kid %q): not a public key (HMAC secrets go in hs256:, private keys nowhere)", i, jwk.KeyID)
		}
		k, err := publicKey(jwk.KeyID, jwk.Key)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, jwk.KeyID, err)
		}
		if jwk.Algorithm != "" && jwk.Algorithm != k.Alg {
			return nil, fmt.Errorf("JWKS key %d (kid %q): alg %q, want %s for this key", i, jwk.KeyID, jwk.Algorithm, k.Alg)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// publicKey checks a public key and names its algorithm.
func publicKey(kid string, pub any) (TokenKey, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return TokenKey{}, fmt.Errorf("RSA key of %d bits, want 2048 or more", p.N.BitLen())
		}
		return TokenKey{ID: kid, Alg: AlgRS256, key: p}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return TokenKey{}, fmt.Errorf("ECDSA key on %s, want P-256 (ES256)", p.Curve.Params().Name)
		}
		return TokenKey{ID: kid, Alg: AlgES256, key: p}, nil
	case ed25519.PublicKey:
		return TokenKey{ID: kid, Alg: AlgEdDSA, key: p}, nil
	}
	return TokenKey{}, fmt.Errorf("unsupported key type %T (want RSA, P-256 or Ed25519)", pub)
}

// TokenOptions configures a TokenVerifier.
type TokenOptions struct {
	// Keys verify tokens (see ParseTokenKeys). Required.
	Keys []TokenKey
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Issuer, when set, must be the token's iss.
	Issuer string
	// MaxLifetime is the longest a token may be valid: a token whose exp
	// is further away than that (from now, or from its iat) is refused,
	// so that a leaked token is of use for a short time only. Default 1h.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed between the token's issuer and
	// this server when checking exp, nbf and iat. Default 30s; negative:
	// none.
	Leeway time.Duration
	// MaxSize bounds the token's length in bytes; longer ones are refused
	// before they are decoded. Default 8192.
	MaxSize int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// TokenClaims is what a verified token says.
type TokenClaims struct {
	// Subject is the token's sub: the user on the issuing site.
	Subject string
	Issuer  string
	// Expires is exp; IssuedAt is iat (zero when absent).
	Expires, IssuedAt time.Time
	// Channels is the channels claim: the channel patterns the session
	// may subscribe and publish to. nil when the token has none (no
	// limit); empty when it lists none (nothing allowed).
	Channels []string
}

// TokenVerifier verifies JWTs against its keys and claims rules. It is
// safe for concurrent use. A token is accepted only if its alg is one of
// HS256, RS256, ES256 or EdDSA and a configured key of that algorithm
// verifies its signature (so an HS256 token "signed" with an RSA public
// key as the secret never meets that key), its sub is a valid user name,
// its exp is present and not passed, and no further away than
// MaxLifetime, its nbf and iat are not in the future, and its aud and iss
// match when Audience and Issuer are set.
type TokenVerifier struct {
	o TokenOptions
}

// NewTokenVerifier returns a verifier, or an error when o has no keys.
func NewTokenVerifier(o TokenOptions) (*TokenVerifier, error) {
	if len(o.Keys) == 0 {
		return nil, errors.New("token verifier: no keys")
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = time.Hour
	}
	if o.Leeway == 0 {
		o.Leeway = 30 * time.Second
	} else if o.Leeway < 0 {
		o.Leeway = 0
	}
	if o.MaxSize <= 0 {
		o.MaxSize = 8192
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Keys = slices.Clone(o.Keys)
	return &TokenVerifier{o: o}, nil
}

// Options returns the verifier's options with defaults filled in.
func (v *TokenVerifier) Options() TokenOptions { return v.o }

// claimsJSON is the payload as decoded.
type claimsJSON struct {
	jwt.Claims
	Channels *[]string `json:"channels"`
}

// Verify checks raw and returns its claims, or a *TokenError.
func (v *TokenVerifier) Verify(raw string) (*TokenClaims, error) {
	if len(raw) > v.o.MaxSize {
		return nil, tokenErr(TokenMalformed, "%d bytes, at most %d", len(raw), v.o.MaxSize)
	}
	tok, err := jwt.ParseSigned(raw, tokenAlgs)
	if err != nil {
		if alg := headerAlg(raw); alg != "" && !slices.Contains(tokenAlgs, jose.SignatureAlgorithm(alg)) {
			return nil, tokenErr(TokenAlg, "alg %q is not accepted", alg)
		}
		return nil, &TokenError{Reason: TokenMalformed, Err: err}
	}
	if len(tok.Headers) != 1 {
		return nil, tokenErr(TokenMalformed, "%d signatures", len(tok.Headers))
	}
	h := tok.Headers[0]
	var keys []TokenKey
	for _, k := range v.o.Keys {
		if k.Alg == h.Algorithm {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, tokenErr(TokenAlg, "no key for alg %s", h.Algorithm)
	}
	if h.KeyID != "" {
		// A kid picks its keys; a kid no key has falls back to trying
		// every key of the algorithm (keys may have no ids).
		if byID := slices.DeleteFunc(slices.Clone(keys), func(k TokenKey) bool { return k.ID != h.KeyID }); len(byID) > 0 {
			keys = byID
		}
	}
	for _, k := range keys {
		if tok.Claims(k.key) != nil { // verifies only
			continue
		}
		// The payload of tok is the one just verified.
		var c claimsJSON
		if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
			return nil, &TokenError{Reason: TokenClaimsInvalid, Err: err}
		}
		return v.check(&c)
	}
	return nil, tokenErr(TokenSignature, "no key of alg %s verifies it (kid %q)", h.Algorithm, h.KeyID)
}

// check applies the claims rules to a verified payload.
func (v *TokenVerifier) check(c *claimsJSON) (*TokenClaims, error) {
	now := v.o.Now()
	leeway := v.o.Leeway
	if c.Expiry == nil {
		return nil, tokenErr(TokenClaimsInvalid, "no exp")
	}
	if !ValidName(c.Subject) {
		return nil, tokenErr(TokenClaimsInvalid, "sub %q is not a valid user name", c.Subject)
	}
	exp := c.Expiry.Time()
	if now.Add(-leeway).After(exp) {
		return nil, tokenErr(TokenExpired, "expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time()) {
		return nil, tokenErr(TokenNotYetValid, "nbf %s", c.NotBefore.Time().UTC().Format(time.RFC3339))
	}
	var iat time.Time
	if c.IssuedAt != nil {
		iat = c.IssuedAt.Time()
		if now.Add(leeway).Before(iat) {
			return nil, tokenErr(TokenNotYetValid, "iat %s", iat.UTC().Format(time.RFC3339))
		}
		if exp.Sub(iat) > v.o.MaxLifetime {
			return nil, tokenErr(TokenLifetime, "valid for %s, at most %s", exp.Sub(iat), v.o.MaxLifetime)
		}
	}
	if exp.Sub(now) > v.o.MaxLifetime+leeway {
		return nil, tokenErr(TokenLifetime, "valid for %s more, at most %s", exp.Sub(now).Round(time.Second), v.o.MaxLifetime)
	}
	if v.o.Audience != "" && !c.Audience.Contains(v.o.Audience) {
		return nil, tokenErr(TokenAudience, "aud %q does not name %q", []string(c.Audience), v.o.Audience)
	}
	if v.o.Issuer != "" && c.Issuer != v.o.Issuer {
		return nil, tokenErr(TokenIssuer, "iss %q, want %q", c.Issuer, v.o.Issuer)
	}
	out := &TokenClaims{Subject: c.Subject, Issuer: c.Issuer, Expires: exp, IssuedAt: iat}
	if c.Channels != nil {
		out.Channels = make([]string, 0, len(*c.Channels))
		for _, ch := range *c.Channels {
			if protocol.ValidatePattern(ch) != nil {
				return nil, tokenErr(TokenClaimsInvalid, "channels: %q is not a channel pattern", ch)
			}
			out.Channels = append(out.Channels, ch)
		}
	}
	return out, nil
}

// headerAlg returns the alg of a compact JWS's header, or "".
func headerAlg(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	if h.Alg == "" {
		return "(none given)"
	}
	return h.Alg
}

// MintOptions describes a token to mint.
type MintOptions struct {
	// Subject is the sub claim (the user). Required.
	Subject string
	// TTL is how long the token is valid. Default 5m.
	TTL time.Duration
	// Audience and Issuer, when set, become aud and iss.
	Audience, Issuer string
	// Channels, when not nil, becomes the channels claim.
	Channels []string
	// Now is the issue time. Default time.Now().
	Now time.Time
}

// MintToken signs an HS256 token with key (an hs256 key from
// ParseTokenKeys; its kid, if any, goes in the header). It is what `bayeux
// token` does, and what a host site's backend does with the same secret.
func MintToken(key TokenKey, o MintOptions) (string, error) {
	secret := key.Secret()
	if key.Alg != AlgHS256 || secret == nil {
		return "", errors.New("mint: only an hs256 key can mint (public keys verify only)")
	}
	if !ValidName(o.Subject) {
		return "", fmt.Errorf("mint: %q is not a valid user name", o.Subject)
	}
	for _, ch := range o.Channels {
		if err := protocol.ValidatePattern(ch); err != nil {
			return "", fmt.Errorf("mint: channels: %w", err)
		}
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if key.ID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), key.ID)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, opts)
	if err != nil {
		return "", err
	}
	c := jwt.Claims{
		Subject:  o.Subject,
		Issuer:   o.Issuer,
		IssuedAt: jwt.NewNumericDate(o.Now),
		Expiry:   jwt.NewNumericDate(o.Now.Add(o.TTL)),
	}
	if o.Audience != "" {
		c.Audience = jwt.Audience{o.Audience}
	}
	b := jwt.Signed(sig).Claims(c)
	if o.Channels != nil {
		b = b.Claims(map[string]any{"channels": o.Channels})
	}
	return b.Serialize()
}
