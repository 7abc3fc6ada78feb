package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkEncodeAgrees fails unless m.AppendJSON gives what json.Marshal
// gives: the same bytes, or an error for both.
func checkEncodeAgrees(t *testing.T, m *Message) {
	t.Helper()
	want, werr := json.Marshal(m)
	prefix := []byte("[")
	got, gerr := m.AppendJSON(prefix)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("AppendJSON error %v, json.Marshal error %v, for %#v", gerr, werr, m)
	}
	if werr != nil {
		if !bytes.Equal(got, prefix) {
			t.Fatalf("AppendJSON failed but changed dst: %q", got)
		}
		return
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendJSON = %s\njson.Marshal = %s\nfor %#v", got[min(len(got), len(prefix)):], want, m)
	}
}

func bptr(v bool) *bool { return &v }

func TestAppendJSONAgrees(t *testing.T) {
	type testCase struct {
		name string
		m    *Message
	}
	for _, tc := range []testCase{
		{"empty", &Message{}},
		{"connect reply", &Message{Channel: MetaConnect, ID: "42", Successful: bptr(true),
			Advice: &Advice{Reconnect: ReconnectRetry, Interval: Ms(0), Timeout: Ms(30000), MaxInterval: 10000}}},
		{"handshake reply", &Message{Channel: MetaHandshake, ID: "1", ClientID: "2p4ldhuyv4bkxbmjyq4rswuz7u", Successful: bptr(true),
			Version: "1.0", MinimumVersion: "1.0", SupportedConnectionTypes: []string{"long-polling", "callback-polling", "websocket"},
			Advice: &Advice{Reconnect: ReconnectRetry, Interval: Ms(0), Timeout: Ms(30000)},
			Ext:    map[string]json.RawMessage{"ack": json.RawMessage("true"), "timesync": json.RawMessage(`{"tc":1,"l":0,"o":0}`)}}},
		{"failure", &Message{Channel: "/meta/subscribe", ID: "7", Successful: bptr(false), Error: "403:/a/<b>&c:subscribe_denied",
			Subscription: Subscription{Channels: []string{"/a/*", "/b"}, Array: true}, Advice: &Advice{MultipleClients: true, Hosts: []string{"h"}}}},
		{"subscription string", &Message{Channel: MetaSubscribe, Subscription: Subscription{Channels: []string{"/a"}}}},
		{"subscription one-element array", &Message{Channel: MetaSubscribe, Subscription: Subscription{Channels: []string{"/a"}, Array: true}}},
		{"subscription empty array", &Message{Channel: MetaSubscribe, Subscription: Subscription{Array: true}}},
		{"subscription two, not array", &Message{Channel: MetaSubscribe, Subscription: Subscription{Channels: []string{"/a", "/b"}}}},
		{"empty advice", &Message{Channel: "/x", Advice: &Advice{}}},
		{"empty ext", &Message{Channel: "/x", Ext: map[string]json.RawMessage{}}},
		{"nil ext value", &Message{Channel: "/x", Ext: map[string]json.RawMessage{"b": nil, "a": json.RawMessage("1")}}},
		{"empty ext value", &Message{Channel: "/x", Ext: map[string]json.RawMessage{"a": {}}}},
		{"ext keys escaped", &Message{Channel: "/x", Ext: map[string]json.RawMessage{"<k>": json.RawMessage("1"), "\u2028": json.RawMessage("2"), "é": json.RawMessage("3")}}},
		{"ext with white space", &Message{Channel: "/x", Ext: map[string]json.RawMessage{"a": json.RawMessage(`{ "b" : 1 }`)}}},
		{"ext with html", &Message{Channel: "/x", Ext: map[string]json.RawMessage{"a": json.RawMessage(`"<&>"`)}}},
		{"ext invalid", &Message{Channel: "/x", Ext: map[string]json.RawMessage{"a": json.RawMessage(`{`)}}},
		{"data", &Message{Channel: "/chat/a", Data: json.RawMessage(`{"user":"u","chat":"hi"}`)}},
		{"data with white space", &Message{Channel: "/chat/a", Data: json.RawMessage("{\n \"a\": [1, 2]\n}")}},
		{"data non-ASCII", &Message{Channel: "/chat/a", Data: json.RawMessage(`"é\u2028"`)}},
		{"data invalid", &Message{Channel: "/chat/a", Data: json.RawMessage(`{"a"}`)}},
		{"strings escaped", &Message{Channel: "/a\"b\\c\n\r\t\b\f\x00\x1f\x7f", ID: "<>&", ClientID: "\xff\xfe", Error: "a\u2028b\u2029c",
			Version: "é😀", ConnectionType: "\xe2\x80", Timestamp: "\xed\xa0\x80"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkEncodeAgrees(t, tc.m) })
	}
}

// FuzzAppendJSON: AppendJSON agrees with json.Marshal on the messages
// DecodeBatch makes of any body, and on messages made of arbitrary
// strings and raw values (which the decoder would refuse).
func FuzzAppendJSON(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add([]byte(s), "/meta/connect", "1", []byte(`{"a":1}`))
	}
	f.Add([]byte(`[{"channel":"/a"}]`), "<\xff\u2028>", "\x00&", []byte("{ }"))
	f.Add([]byte(`[]`), "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, body []byte, s1, s2 string, raw []byte) {
		if msgs, err := DecodeBatch(body); err == nil {
			for _, m := range msgs {
				checkEncodeAgrees(t, m)
			}
		}
		var iv *int64
		if len(s2) > 0 {
			iv = Ms(int64(len(s1)) - int64(s2[0]))
		}
		m := &Message{
			Channel: s1, ID: ID(s2), ClientID: s2 + s1, Data: raw, Error: s1,
			Advice:                   &Advice{Reconnect: s2, Interval: iv, Timeout: iv, MaxInterval: int64(len(s1)), MultipleClients: len(s2)%2 == 1, Hosts: []string{s1}},
			Ext:                      map[string]json.RawMessage{s1: raw, s2: json.RawMessage("true"), s1 + "x": nil},
			Subscription:             Subscription{Channels: []string{s1, s2}[:len(s1)%3%2+len(s2)%2], Array: len(s1)%2 == 0},
			SupportedConnectionTypes: []string{s2}, Version: s1, MinimumVersion: s2, ConnectionType: s1, Timestamp: s2,
		}
		checkEncodeAgrees(t, m)
		m.Data, m.Ext, m.Advice = nil, nil, nil
		checkEncodeAgrees(t, m)
	})
}

// BenchmarkAppendJSON: a long-polling connect reply (the reply a server
// sends most), by AppendJSON and by json.Marshal.
func BenchmarkAppendJSON(b *testing.B) {
	m := &Message{Channel: MetaConnect, ID: "42", Successful: bptr(true),
		Advice: &Advice{Reconnect: ReconnectRetry, Interval: Ms(0), Timeout: Ms(30000), MaxInterval: 10000}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var dst []byte
		for b.Loop() {
			dst, _ = m.AppendJSON(dst[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(m)
		}
	})
}
