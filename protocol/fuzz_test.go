package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeBatch checks that any body either fails cleanly or decodes to
// messages that survive an encode/decode round trip.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`[{"id":"1","channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`,
		`{"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":0}}`,
		`[{"channel":"/meta/subscribe","subscription":["/a/*","/b/**"],"id":7}]`,
		`[{"channel":"/chat/x","data":{"user":"u","chat":"hi \u00e9"},"ext":{"ack":true}}]`,
		`[]`, `[null]`, `{}`, `"x"`, `[{"id":{}}]`, `[{"subscription":5}]`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := DecodeBatch(body)
		if err != nil {
			return
		}
		if len(msgs) == 0 {
			t.Fatal("no error and no messages")
		}
		for _, m := range msgs {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("re-encode %#v: %v", m, err)
			}
			again, err := DecodeBatch(b)
			if err != nil {
				t.Fatalf("decode of re-encoded %s: %v", b, err)
			}
			if again[0].Channel != m.Channel || again[0].ID != m.ID || len(again[0].Subscription.Channels) != len(m.Subscription.Channels) {
				t.Fatalf("round trip changed %s", b)
			}
		}
	})
}

// FuzzChannel checks the channel parser against the matching rules.
func FuzzChannel(f *testing.F) {
	for _, s := range []string{"/a", "/a/b", "/a/*", "/a/**", "/**", "/a/*/b", "//", "/", "", "/meta/connect", "/a b", "/é", "/a/b/c/d/e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		perr := ValidatePattern(name)
		cerr := ValidateChannel(name)
		if cerr == nil && perr != nil {
			t.Fatalf("%q is a valid channel but not a valid pattern", name)
		}
		if perr != nil {
			return
		}
		if strings.Contains(name, "//") || strings.HasSuffix(name, "/") || !strings.HasPrefix(name, "/") {
			t.Fatalf("%q accepted with an empty segment", name)
		}
		if i := strings.IndexByte(name, '*'); i >= 0 && !IsWild(name) {
			t.Fatalf("%q accepted with a wildcard that is not the last segment", name)
		}
		if cerr != nil {
			if !IsWild(name) {
				t.Fatalf("%q rejected as channel without being wild: %v", name, cerr)
			}
			return
		}
		if !Match(name, name) {
			t.Fatalf("%q does not match itself", name)
		}
		for _, w := range Wilds(nil, name) {
			if ValidatePattern(w) != nil {
				t.Fatalf("Wilds(%q) produced invalid pattern %q", name, w)
			}
			if !Match(w, name) {
				t.Fatalf("Wilds(%q) produced %q which does not match it", name, w)
			}
		}
	})
}
