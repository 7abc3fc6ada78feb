package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/internal/config"
	"github.com/bayeux-go/bayeux/server/auth"
)

// tokenOptions are the verifier's options from cfg, or ok=false when
// token login is off (no BAYEUX_TOKEN_KEYS).
func tokenOptions(cfg *config.Config) (o auth.TokenOptions, ok bool, err error) {
	if strings.TrimSpace(cfg.TokenKeys) == "" {
		return o, false, nil
	}
	keys, err := auth.ParseTokenKeys(cfg.TokenKeys)
	if err != nil {
		return o, false, fmt.Errorf("BAYEUX_TOKEN_KEYS: %w", err)
	}
	if len(keys) == 0 {
		return o, false, errors.New("BAYEUX_TOKEN_KEYS: no key")
	}
	leeway := cfg.TokenLeeway
	if leeway == 0 {
		leeway = -1 // none (zero would be the verifier's default)
	}
	return auth.TokenOptions{
		Keys:        keys,
		Audience:    cfg.TokenAudience,
		Issuer:      cfg.TokenIssuer,
		MaxLifetime: cfg.TokenMaxLifetime,
		Leeway:      leeway,
		MaxSize:     cfg.TokenMaxBytes,
	}, true, nil
}

// newTokens is the chat's token login from cfg, nil when it is off.
func newTokens(cfg *config.Config) (*chat.Tokens, error) {
	o, ok, err := tokenOptions(cfg)
	if err != nil || !ok {
		return nil, err
	}
	v, err := auth.NewTokenVerifier(o)
	if err != nil {
		return nil, err
	}
	return chat.NewTokens(v, cfg.TokenPrefix, auth.NewTokenLimiter(cfg.TokenIPFailures, 5*time.Minute))
}

// Token implements `bayeux token NAME [-ttl 5m] [-channels a,b]`: it mints
// a token for NAME with the first hs256 key of cfg.TokenKeys (with cfg's
// audience and issuer) and writes it to out. Tokens for public keys are
// minted by whoever holds the private key; this server never has it.
func Token(cfg *config.Config, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("bayeux token", flag.ContinueOnError)
	fs.SetOutput(errOut)
	ttl := fs.Duration("ttl", 5*time.Minute, "how long the token is valid")
	channels := fs.String("channels", "", "comma-separated channel patterns the token limits its session to (default: no limit)")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "usage: bayeux token NAME [-ttl 5m] [-channels /chat/a,/chat/b/*]")
		fs.PrintDefaults()
	}
	// NAME may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != name) {
		fs.Usage()
		return errors.New("one user NAME is needed")
	}
	if *ttl <= 0 || *ttl > cfg.TokenMaxLifetime {
		return fmt.Errorf("-ttl %s: must be positive and at most BAYEUX_TOKEN_MAX_LIFETIME (%s)", *ttl, cfg.TokenMaxLifetime)
	}
	o, ok, err := tokenOptions(cfg)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("BAYEUX_TOKEN_KEYS is empty: give it an hs256:<base64 secret> key")
	}
	var key *auth.TokenKey
	for i := range o.Keys {
		if o.Keys[i].Alg == auth.AlgHS256 {
			key = &o.Keys[i]
			break
		}
	}
	if key == nil {
		return errors.New("BAYEUX_TOKEN_KEYS has no hs256 key: tokens for its public keys are minted by whoever holds the private keys")
	}
	var chs []string
	if *channels != "" {
		chs = strings.Split(*channels, ",")
	}
	tok, err := auth.MintToken(*key, auth.MintOptions{Subject: name, TTL: *ttl, Audience: cfg.TokenAudience, Issuer: cfg.TokenIssuer, Channels: chs})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
