package protocol

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeBatch(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name     string
		in       string
		wantErr  bool
		channels []string
		check    func(t *testing.T, msgs []*Message)
	}
	tests := []testCase{
		{name: "array", in: `[{"channel":"/a","data":1},{"channel":"/b","data":2}]`, channels: []string{"/a", "/b"}},
		{name: "single object", in: `{"channel":"/meta/handshake","version":"1.0"}`, channels: []string{"/meta/handshake"}},
		{name: "surrounding whitespace", in: " \n\t[{\"channel\":\"/a\"}]\r\n ", channels: []string{"/a"}},
		{name: "empty array", in: `[]`, wantErr: true},
		{name: "null element", in: `[null]`, wantErr: true},
		{name: "null after a message", in: `[{"channel":"/a"},null]`, wantErr: true},
		{name: "invalid JSON", in: `[{"channel":"/a"`, wantErr: true},
		{name: "trailing garbage", in: `[{"channel":"/a"}] x`, wantErr: true},
		{name: "empty body", in: ``, wantErr: true},
		{name: "whitespace body", in: "  \n", wantErr: true},
		{name: "string", in: `"hello"`, wantErr: true},
		{name: "number", in: `42`, wantErr: true},
		{name: "null", in: `null`, wantErr: true},
		{name: "array of numbers", in: `[1,2]`, wantErr: true},
		{name: "channel of wrong type", in: `[{"channel":5}]`, wantErr: true},
		{name: "id as object", in: `[{"channel":"/a","id":{}}]`, wantErr: true},
		{name: "subscription of wrong type", in: `[{"channel":"/meta/subscribe","subscription":5}]`, wantErr: true},
		{
			name: "escaped and plain string ids", in: `[{"channel":"/a","id":"4\u0032"},{"channel":"/b","id":"x\"y"},{"channel":"/c","id":" 9 "}]`,
			channels: []string{"/a", "/b", "/c"},
			check: func(t *testing.T, msgs []*Message) {
				want := []ID{"42", `x"y`, " 9 "}
				for i, m := range msgs {
					if m.ID != want[i] {
						t.Errorf("message %d id = %q, want %q", i, m.ID, want[i])
					}
				}
			},
		},
		{
			name: "number ids decode to strings", in: `[{"channel":"/a","id":7},{"channel":"/b","id":"8"},{"channel":"/c","id":1.5},{"channel":"/d","id":null}]`,
			channels: []string{"/a", "/b", "/c", "/d"},
			check: func(t *testing.T, msgs []*Message) {
				want := []ID{"7", "8", "1.5", ""}
				for i, m := range msgs {
					if m.ID != want[i] {
						t.Errorf("message %d id = %q, want %q", i, m.ID, want[i])
					}
				}
				b, err := json.Marshal(msgs[0])
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), `"id":"7"`) {
					t.Errorf("numeric id does not re-encode as a string: %s", b)
				}
			},
		},
		{
			name: "all fields", in: `{"channel":"/meta/connect","id":"2","clientId":"abc","connectionType":"long-polling",
				"advice":{"reconnect":"retry","timeout":0,"interval":500,"multiple-clients":true,"hosts":["h1"]},
				"ext":{"ack":true},"successful":false,"error":"402::session_unknown","data":{"x":[1,2]},
				"version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling"],"timestamp":"t"}`,
			channels: []string{"/meta/connect"},
			check: func(t *testing.T, msgs []*Message) {
				m := msgs[0]
				if m.ID != "2" || m.ClientID != "abc" || m.ConnectionType != LongPolling || m.Version != "1.0" ||
					m.MinimumVersion != "1.0" || m.Timestamp != "t" || m.Error != "402::session_unknown" {
					t.Errorf("scalar fields wrong: %+v", m)
				}
				if m.Successful == nil || *m.Successful || m.IsSuccessful() {
					t.Errorf("successful = %v", m.Successful)
				}
				if m.Advice == nil || m.Advice.Reconnect != ReconnectRetry || m.Advice.Timeout == nil || *m.Advice.Timeout != 0 ||
					m.Advice.Interval == nil || *m.Advice.Interval != 500 || !m.Advice.MultipleClients || len(m.Advice.Hosts) != 1 {
					t.Errorf("advice = %+v", m.Advice)
				}
				if !m.ExtBool("ack") || m.ExtBool("other") {
					t.Errorf("ext = %s", m.Ext)
				}
				if string(m.Data) != `{"x":[1,2]}` {
					t.Errorf("data = %s", m.Data)
				}
				if len(m.SupportedConnectionTypes) != 1 || m.SupportedConnectionTypes[0] != LongPolling {
					t.Errorf("supportedConnectionTypes = %q", m.SupportedConnectionTypes)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := DecodeBatch([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("DecodeBatch(%q) = %d messages, want an error", tc.in, len(msgs))
				}
				if msgs != nil {
					t.Errorf("DecodeBatch returned messages with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBatch(%q): %v", tc.in, err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, m.Channel)
			}
			if !reflect.DeepEqual(got, tc.channels) {
				t.Fatalf("channels = %q, want %q", got, tc.channels)
			}
			if tc.check != nil {
				tc.check(t, msgs)
			}
		})
	}
	if _, err := DecodeBatch([]byte(`[]`)); !errors.Is(err, ErrEmptyBatch) {
		t.Errorf("empty array error = %v, want ErrEmptyBatch", err)
	}
}

func TestSubscriptionRoundTrip(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name  string
		in    string // the subscription field as sent
		chans []string
		array bool
	}
	tests := []testCase{
		{"string", `"/a/b"`, []string{"/a/b"}, false},
		{"array of one", `["/a/b"]`, []string{"/a/b"}, true},
		{"array of two", `["/a","/b/**"]`, []string{"/a", "/b/**"}, true},
		{"empty array", `[]`, []string{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := DecodeBatch([]byte(`[{"channel":"/meta/subscribe","id":"1","subscription":` + tc.in + `}]`))
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			if m.Subscription.Array != tc.array || !reflect.DeepEqual(m.Subscription.Channels, tc.chans) {
				t.Fatalf("decoded %+v, want %q array=%v", m.Subscription, tc.chans, tc.array)
			}
			// A reply echoes the subscription in the form it was sent.
			b, err := json.Marshal(m.Reply(true))
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			if got := compactJSON(t, raw["subscription"]); got != compactJSON(t, []byte(tc.in)) {
				t.Errorf("reply subscription = %s, want %s (reply %s)", raw["subscription"], tc.in, b)
			}
		})
	}
	// A zero subscription is omitted, and null decodes to zero.
	b, err := json.Marshal(&Message{Channel: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "subscription") {
		t.Errorf("zero subscription was encoded: %s", b)
	}
	msgs, err := DecodeBatch([]byte(`{"channel":"/meta/subscribe","subscription":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !msgs[0].Subscription.IsZero() {
		t.Errorf("null subscription = %+v", msgs[0].Subscription)
	}
	// Replies to other channels do not carry the subscription.
	m := &Message{Channel: "/meta/connect", Subscription: Subscription{Channels: []string{"/a"}}}
	if r := m.Reply(true); !r.Subscription.IsZero() {
		t.Errorf("connect reply got subscription %+v", r.Subscription)
	}
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestAdviceMarshal(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name   string
		advice Advice
		want   map[string]any
	}
	tests := []testCase{
		{"timeout zero kept", Advice{Timeout: Ms(0)}, map[string]any{"timeout": 0.0}},
		{"interval zero kept", Advice{Reconnect: ReconnectHandshake, Interval: Ms(0)}, map[string]any{"reconnect": "handshake", "interval": 0.0}},
		{"none", Advice{Reconnect: ReconnectNone}, map[string]any{"reconnect": "none"}},
		{"full", Advice{Reconnect: ReconnectRetry, Interval: Ms(2000), Timeout: Ms(30000), MaxInterval: 10000, MultipleClients: true},
			map[string]any{"reconnect": "retry", "interval": 2000.0, "timeout": 30000.0, "maxInterval": 10000.0, "multiple-clients": true}},
		{"empty", Advice{}, map[string]any{}},
	}
	for _, tc := range tests {
		b, err := json.Marshal(&Message{Channel: MetaConnect, Advice: &tc.advice})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Advice map[string]any `json:"advice"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Advice, tc.want) {
			t.Errorf("%s: advice encoded as %v, want %v (%s)", tc.name, got.Advice, tc.want, b)
		}
	}
}

func TestMessageReplyAndFail(t *testing.T) {
	t.Parallel()
	m := &Message{Channel: "/chat/a", ID: "9", ClientID: "c1", Data: json.RawMessage(`1`)}
	r := m.Reply(true)
	if r.Channel != "/chat/a" || r.ID != "9" || !r.IsSuccessful() || r.ClientID != "" || r.Data != nil {
		t.Errorf("Reply = %+v", r)
	}
	f := m.Fail(ErrSessionUnknown, &Advice{Reconnect: ReconnectHandshake, Interval: Ms(0)})
	if f.IsSuccessful() || f.Successful == nil || f.Error != "402::session_unknown" || f.Advice.Reconnect != ReconnectHandshake {
		t.Errorf("Fail = %+v", f)
	}
	b, _ := json.Marshal(f)
	want := `{"channel":"/chat/a","id":"9","successful":false,"error":"402::session_unknown","advice":{"reconnect":"handshake","interval":0}}`
	if string(b) != want {
		t.Errorf("Fail encodes as\n%s\nwant\n%s", b, want)
	}
	var zero Message
	if zero.IsSuccessful() {
		t.Error("zero message is successful")
	}
}

func TestIDValid(t *testing.T) {
	t.Parallel()
	type testCase struct {
		id   ID
		want bool
	}
	tests := []testCase{
		{"", true},
		{"1", true},
		{"abc-DEF_123", true},
		{"550e8400-e29b-41d4-a716-446655440000", true},
		{ID(strings.Repeat("a", 64)), true},
		{ID(strings.Repeat("a", 65)), false},
		{"a b", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a\nb", false},
		{"\x7f", false},
		{"caf\u00e9", false},
	}
	for _, tc := range tests {
		if got := tc.id.Valid(); got != tc.want {
			t.Errorf("ID(%q).Valid() = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	type testCase struct {
		in   string
		want string
	}
	tests := []testCase{
		{"", `""`},
		{"/chat/room", `"/chat/room"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb\rc\td", `"a\nb\rc\td"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"<script>&", `"\u003cscript\u003e\u0026"`},
		{"caf\u00e9 \u65e5", "\"caf\u00e9 \u65e5\""},
		{"\x7f", "\"\x7f\""},
		{"a\xffb", `"a\ufffdb"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"\b\f", `"\b\f"`},
	}
	for _, tc := range tests {
		got := string(AppendJSONString([]byte("prefix:"), tc.in))
		if got != "prefix:"+tc.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestAppendJSONStringRandom: whatever the input, the output is a JSON
// string that encoding/json decodes to what it decodes json.Marshal's
// encoding to, and it holds no raw control characters or <, >, &.
func TestAppendJSONStringRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", "0", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f",
		"\x00", "\x1f", "\x7f", "\u00e9", "\u2028", "\u2029", "\U0001F600", "\xff", "\xc3", "'", " "}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		n := r.IntN(12)
		for range n {
			if r.IntN(4) == 0 {
				b.WriteByte(byte(r.IntN(256)))
			} else {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
		}
		s := b.String()
		out := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("AppendJSONString(%q) = %q is not a JSON string: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("AppendJSONString(%q) decodes to %q, json.Marshal's to %q", s, got, want)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("valid UTF-8 %q did not round-trip: %q", s, got)
		}
		for _, c := range out {
			if c < 0x20 || c == '<' || c == '>' || c == '&' {
				t.Fatalf("AppendJSONString(%q) = %q contains raw byte %#x", s, out, c)
			}
		}
	}
}

func TestEncodeDelivery(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		channel string
		data    json.RawMessage
		ext     map[string]json.RawMessage
		want    map[string]any
	}
	tests := []testCase{
		{"object", "/chat/a", json.RawMessage(`{"text":"hi","n":1}`), nil,
			map[string]any{"channel": "/chat/a", "data": map[string]any{"text": "hi", "n": 1.0}}},
		{"string data", "/a", json.RawMessage(`"x\"<>&"`), nil,
			map[string]any{"channel": "/a", "data": "x\"<>&"}},
		{"array", "/a", json.RawMessage(`[1,null,true]`), nil,
			map[string]any{"channel": "/a", "data": []any{1.0, nil, true}}},
		{"no data is null", "/a", nil, nil,
			map[string]any{"channel": "/a", "data": nil}},
		{"with ext", "/a/b", json.RawMessage(`1`), map[string]json.RawMessage{"ack": json.RawMessage(`true`), "x": json.RawMessage(`{"y":2}`)},
			map[string]any{"channel": "/a/b", "data": 1.0, "ext": map[string]any{"ack": true, "x": map[string]any{"y": 2.0}}}},
		{"empty ext omitted", "/a", json.RawMessage(`0`), map[string]json.RawMessage{},
			map[string]any{"channel": "/a", "data": 0.0}},
		{"channel needing escapes", "/a\"b<", json.RawMessage(`0`), nil,
			map[string]any{"channel": "/a\"b<", "data": 0.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := EncodeDelivery([]byte("["), tc.channel, tc.data, tc.ext)
			if err != nil {
				t.Fatal(err)
			}
			if out[0] != '[' {
				t.Fatalf("dst prefix lost: %s", out)
			}
			out = out[1:]
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("EncodeDelivery = %s, want %v", out, tc.want)
			}
			for _, k := range []string{"clientId", "id", "successful"} {
				if _, ok := got[k]; ok {
					t.Errorf("delivery carries %q: %s", k, out)
				}
			}
			// It decodes as a Bayeux message.
			msgs, err := DecodeBatch(out)
			if err != nil || msgs[0].Channel != tc.channel {
				t.Errorf("DecodeBatch(delivery) = %v, %v", msgs, err)
			}
		})
	}
	if _, err := EncodeDelivery(nil, "/a", json.RawMessage(`1`), map[string]json.RawMessage{"bad": json.RawMessage(`{`)}); err == nil {
		t.Error("invalid ext JSON was accepted")
	}
}

func TestMessageMarshalOmitsEmpty(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(&Message{Channel: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"channel":"/a"}` {
		t.Errorf("minimal message encodes as %s", b)
	}
}
