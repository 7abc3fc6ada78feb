package jsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/bayeux-go/bayeux/wasmclient"
)

// ConnectOptions is the object Bayeux.connect takes:
//
//	{url, user, password, token, getToken, ext, webSocket}
//
// URL is the server's Bayeux endpoint, an absolute http(s) URL such as
// "https://chat.example/cometd" (bayeux.js fills it in from its own URL
// and resolves a relative one). User and Password, when User is set,
// become ext.auth {user, password} of the handshake, replacing an auth
// field of Ext. Token, a JWT the host site minted for its user, logs in
// with ext.auth {token} instead; getToken, a function of the page that
// returns a fresh token (or a Promise of one), is asked for the next ones
// (before the token expires, and when a handshake is refused); it is not
// part of this JSON (bayeux.js passes it apart). Ext is the handshake's
// ext object. WebSocket (default true) makes the client try the
// WebSocket transport first, the only one that keeps a session across
// sites without cookies.
type ConnectOptions struct {
	URL       string
	User      string
	Password  string
	Token     string
	Ext       map[string]json.RawMessage
	WebSocket bool
}

// ParseConnectOptions decodes the JSON of connect's argument (what
// JSON.stringify made of it; nil or "null" when it was missing). Unknown
// fields are ignored; a known field of the wrong type is an error that
// names it.
func ParseConnectOptions(raw json.RawMessage) (ConnectOptions, error) {
	o := ConnectOptions{WebSocket: true}
	if len(raw) == 0 || string(raw) == "null" {
		return o, errNoURL
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return o, errors.New("bayeux: connect takes an object {url, user, password, token, getToken, ext, webSocket}")
	}
	for _, f := range []struct {
		name, kind string
		dst        any
	}{
		{"url", "a string", &o.URL},
		{"user", "a string", &o.User},
		{"password", "a string", &o.Password},
		{"token", "a string", &o.Token},
		{"ext", "an object", &o.Ext},
		{"webSocket", "true or false", &o.WebSocket},
	} {
		v, ok := fields[f.name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return o, fmt.Errorf("bayeux: connect: %s must be %s", f.name, f.kind)
		}
	}
	if o.URL == "" {
		return o, errNoURL
	}
	if !hasPrefixFold(o.URL, "http://") && !hasPrefixFold(o.URL, "https://") {
		return o, fmt.Errorf("bayeux: connect: url must be an absolute http(s) URL, not %q", o.URL)
	}
	if o.User == "" && o.Password != "" {
		return o, errors.New("bayeux: connect: a password needs a user")
	}
	if o.User != "" && o.Token != "" {
		return o, errors.New("bayeux: connect: give a user and password, or a token, not both")
	}
	return o, nil
}

var errNoURL = errors.New("bayeux: connect needs {url}, the server's /cometd URL")

// clientOptions maps o to the client's options.
func (o ConnectOptions) clientOptions() wasmclient.Options {
	opts := wasmclient.Options{WebSocket: o.WebSocket}
	if len(o.Ext) > 0 || o.User != "" {
		opts.Ext = make(map[string]any, len(o.Ext)+1)
		for k, v := range o.Ext {
			opts.Ext[k] = v
		}
	}
	if o.User != "" {
		opts.Ext["auth"] = map[string]string{"user": o.User, "password": o.Password}
	}
	return opts
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
