package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// refMessage is Message without its UnmarshalJSON method, for the
// reference decoder.
type refMessage Message

// lenient lets the reference take escaped lone surrogates, as DecodeBatch
// does (invalid bytes it refuses itself: it checks the whole text).
var lenient = jsontext.AllowInvalidUTF8(true)

// refDecode decodes a batch with go-json-experiment/json's reflection (the
// semantics of encoding/json/v2: exact member names, duplicate names and
// invalid UTF-8 refused), the reference the hand-written decoder must
// agree with.
func refDecode(b []byte) ([]*Message, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var m refMessage
		if err := jsonv2.Unmarshal(b, &m, lenient); err != nil {
			return nil, err
		}
		return []*Message{(*Message)(&m)}, nil
	}
	if len(b) == 0 || b[0] != '[' {
		return nil, errors.New("not an array or object")
	}
	var ms []*refMessage
	if err := jsonv2.Unmarshal(b, &ms, lenient); err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, ErrEmptyBatch
	}
	out := make([]*Message, len(ms))
	for i, m := range ms {
		if m == nil {
			return nil, errors.New("null message")
		}
		out[i] = (*Message)(m)
	}
	return out, nil
}

var strictSeeds = []string{
	`[{"id":"1","channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling","callback-polling"],"advice":{"timeout":60000,"interval":0},"ext":{"ack":true}}]`,
	`[{"channel":"/meta/subscribe","clientId":"abc","subscription":["/a/*","/b/**"],"id":7}]`,
	`[{"channel":"/meta/subscribe","clientId":"abc","subscription":"/a"}]`,
	`[{"channel":"/chat/x","data":{"user":"u","chat":"hi \u00e9 \ud83d\ude00"},"ext":{"ack":true,"x":[1,2,{"y":null}]}}]`,
	`{"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":0,"reconnect":"retry","multiple-clients":true,"hosts":["a"],"maxInterval":5}}`,
	`[{"channel":"/a","data":null,"successful":null,"ext":null,"advice":null,"subscription":null,"supportedConnectionTypes":null}]`,
	`[{"channel":"/a","successful":true,"error":"402::session_unknown","timestamp":"t"}]`,
	`[{"chan\u006eel":"/escaped/name","data":"\u0041"}]`,
	`[{"Channel":"/a","DATA":1,"Ext":{},"ADVICE":{},"Subscription":"/x","clientID":"c","Id":"1"}]`,
	`[{"channel":"/a","advice":{"Timeout":0,"INTERVAL":1,"Reconnect":"none"}}]`,
	`[{"channel":"/a","data":1,"data":2}]`,
	`[{"channel":"/a","ext":{"k":1,"k":2}}]`,
	"[{\"channel\":\"/a\",\"data\":\"\xff\"}]",
	"[{\"channel\":\"/a\",\"ext\":{\"k\":\"\xc3\"}}]",
	"[{\"channel\":\"/\xe9\"}]",
	`[{"channel":"/a","advice":{"timeout":1.5}}]`,
	`[{"channel":"/a","advice":{"timeout":1e3}}]`,
	`[{"channel":"/a","advice":{"timeout":99999999999999999999}}]`,
	`[{"channel":"/a","subscription":[null,"/b"]}]`,
	`[{"channel":"/a","subscription":[]}]`,
	`[{"channel":"/a","subscription":5}]`,
	`[{"channel":"/a","id":{}}]`, `[{"channel":"/a","id":-1.5e3}]`, `[{"channel":"/a","id":true}]`,
	`[{"channel":5}]`, `[1]`, `[null]`, `[[]]`, `[{"channel":"/a"}`, `[{"channel":"/a"}]]`, `[] []`,
	`[{"channel":"/a","data":"\ud800"}]`,
}

func TestDecodeAgreesWithReference(t *testing.T) {
	for _, s := range strictSeeds {
		checkAgreesWithReference(t, []byte(s))
	}
}

// FuzzDecodeStrict: DecodeBatch (fast path and full decoder) agrees with
// the reference on every input, and what it accepts is valid UTF-8.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range append(strictSeeds, simpleSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(checkAgreesWithReference)
}

func checkAgreesWithReference(t *testing.T, b []byte) {
	got, err := DecodeBatch(b)
	want, werr := refDecode(b)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: DecodeBatch error %v, reference error %v", b, err, werr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("%q: DecodeBatch = %s, reference = %s", b, g, w)
	}
	for _, m := range got {
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("%q: re-encode: %v", b, err)
		}
		if !utf8.Valid(enc) || !utf8.Valid(m.Data) {
			t.Fatalf("%q: decoded message carries invalid UTF-8: %q", b, enc)
		}
	}
}

// TestDecodeExactNames: member names match exactly on both decoders; a
// case variant is an unknown member (ignored), so a message whose only
// channel member is misspelt has no channel.
func TestDecodeExactNames(t *testing.T) {
	type testCase struct {
		name string
		in   string
		want Message
	}
	for _, tc := range []testCase{
		{"channel variant alone", `[{"ChAnnel":"/meta/connect","clientId":"c"}]`, Message{ClientID: "c"}},
		{"channel upper", `[{"CHANNEL":"/a","id":"1"}]`, Message{ID: "1"}},
		{"clientId variant", `[{"channel":"/a","clientid":"c"}]`, Message{Channel: "/a"}},
		{"id variant", `[{"channel":"/a","ID":"1"}]`, Message{Channel: "/a"}},
		{"connectionType variant", `[{"channel":"/meta/connect","ConnectionType":"long-polling"}]`, Message{Channel: "/meta/connect"}},
		{"data variant", `[{"channel":"/a","Data":{"x":1}}]`, Message{Channel: "/a"}},
		{"ext variant", `[{"channel":"/a","EXT":{"ack":true}}]`, Message{Channel: "/a"}},
		{"advice variant", `[{"channel":"/a","Advice":{"timeout":0}}]`, Message{Channel: "/a"}},
		{"advice member variant", `[{"channel":"/a","advice":{"Timeout":0}}]`, Message{Channel: "/a", Advice: &Advice{}}},
		{"subscription variant", `[{"channel":"/meta/subscribe","Subscription":"/x"}]`, Message{Channel: "/meta/subscribe"}},
		{"version variant", `{"channel":"/meta/handshake","Version":"1.0"}`, Message{Channel: "/meta/handshake"}},
		{"variant next to the real one", `[{"channel":"/a","Channel":"/b"}]`, Message{Channel: "/a"}},
		{"Kelvin sign is not k", "[{\"channel\":\"/a\",\"clientId\":\"c\",\"\u212aey\":1}]", Message{Channel: "/a", ClientID: "c"}},
		{"escaped name is the name", `[{"chann\u0065l":"/a"}]`, Message{Channel: "/a"}},
		{"escaped lone surrogate kept in data", `[{"channel":"/a","data":"cut \ud83d"}]`, Message{Channel: "/a", Data: json.RawMessage(`"cut \ud83d"`)}},
		{"escaped lone surrogate read as U+FFFD", `[{"channel":"/a","id":"\udc00"}]`, Message{Channel: "/a", ID: "\ufffd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []struct {
				name   string
				decode func([]byte) ([]*Message, error)
			}{{"DecodeBatch", DecodeBatch}, {"full", func(b []byte) ([]*Message, error) { return decodeFull(b, 0) }}} {
				msgs, err := path.decode([]byte(tc.in))
				if err != nil {
					t.Fatalf("%s: %v", path.name, err)
				}
				if !reflect.DeepEqual(*msgs[0], tc.want) {
					t.Errorf("%s(%s) = %+v, want %+v", path.name, tc.in, *msgs[0], tc.want)
				}
			}
			// encoding/json into a Message uses the same rules.
			var m Message
			in := strings.TrimSuffix(strings.TrimPrefix(tc.in, "["), "]")
			if err := json.Unmarshal([]byte(in), &m); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("encoding/json: %+v, want %+v", m, tc.want)
			}
		})
	}
}

// TestDecodeRefuses: duplicate names, invalid UTF-8 anywhere, and values
// of the wrong type are errors.
func TestDecodeRefuses(t *testing.T) {
	type testCase struct {
		name string
		in   string
	}
	for _, tc := range []testCase{
		{"duplicate channel (fast shape)", `[{"channel":"/a","channel":"/b"}]`},
		{"duplicate id", `[{"channel":"/a","id":"1","id":1}]`},
		{"duplicate data", `[{"channel":"/a","data":1,"data":2}]`},
		{"duplicate ext member", `[{"channel":"/a","data":1,"ext":{"a":1,"a":2}}]`},
		{"duplicate in data", `[{"channel":"/a","data":{"a":1,"a":2}}]`},
		{"invalid UTF-8 in data", "[{\"channel\":\"/a\",\"data\":{\"chat\":\"\xff\xfe\"}}]"},
		{"truncated UTF-8 in data", "[{\"channel\":\"/a\",\"data\":\"caf\xc3\"}]"},
		{"invalid UTF-8 in ext", "[{\"channel\":\"/a\",\"data\":1,\"ext\":{\"x\":\"\xed\xa0\x80\"}}]"},
		{"invalid UTF-8 in a name", "[{\"channel\":\"/a\",\"\xff\":1}]"},
		{"invalid UTF-8 in channel", "[{\"channel\":\"/\xc0\xaf\"}]"},
		{"channel not a string", `[{"channel":1}]`},
		{"id an object", `[{"channel":"/a","id":{}}]`},
		{"advice a string", `[{"channel":"/a","advice":"x"}]`},
		{"timeout fraction", `[{"channel":"/a","advice":{"timeout":1.5}}]`},
		{"element not an object", `[{"channel":"/a"},2]`},
		{"null element", `[null]`},
		{"empty", `[]`},
		{"trailing data", `[{"channel":"/a"}] {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msgs, err := DecodeBatch([]byte(tc.in)); err == nil {
				b, _ := json.Marshal(msgs)
				t.Fatalf("DecodeBatch(%q) = %s, want an error", tc.in, b)
			} else if !strings.HasPrefix(err.Error(), "bayeux: ") {
				t.Errorf("error %q does not start with bayeux:", err)
			}
		})
	}
}

// TestDecodeBatchLimit: a batch over the limit is refused on both paths,
// at the limit it is decoded.
func TestDecodeBatchLimit(t *testing.T) {
	batch := func(n int, elem string) []byte {
		return []byte("[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]")
	}
	const fast = `{"channel":"/meta/connect","clientId":"c","id":"1"}`
	const full = `{"channel":"/a","clientId":"c","data":{"x":[1,2]}}`
	type testCase struct {
		name    string
		body    []byte
		max     int
		wantErr bool
	}
	for _, tc := range []testCase{
		{"fast at limit", batch(4, fast), 4, false},
		{"fast over limit", batch(5, fast), 4, true},
		{"full at limit", batch(4, full), 4, false},
		{"full over limit", batch(5, full), 4, true},
		{"no limit", batch(300, full), 0, false},
		{"fast then garbage after the limit", append(batch(3, fast)[:len(batch(3, fast))-1], []byte(`,{"channel":"/a"},{nonsense`)...), 3, true},
		{"full then garbage after the limit", append(batch(3, full)[:len(batch(3, full))-1], []byte(`,{"channel":"/a"},{nonsense`)...), 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := DecodeBatchLimit(tc.body, tc.max)
			if tc.wantErr {
				if !errors.Is(err, ErrTooManyMessages) {
					t.Fatalf("err = %v, want ErrTooManyMessages", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.max > 0 && len(msgs) != tc.max {
				t.Fatalf("%d messages", len(msgs))
			}
		})
	}
}

// TestDecodeBatchLimitStopsEarly: refusing a large batch over the limit
// costs what decoding the limit's worth of messages costs, not the body's.
func TestDecodeBatchLimitStopsEarly(t *testing.T) {
	for _, elem := range []string{`{"channel":"/meta/connect","clientId":"c"}`, `{"channel":"/a","data":{}}`} {
		body := []byte("[" + strings.TrimSuffix(strings.Repeat(elem+",", 20000), ",") + "]")
		allocs := testing.AllocsPerRun(5, func() {
			if _, err := DecodeBatchLimit(body, 10); !errors.Is(err, ErrTooManyMessages) {
				t.Fatal(err)
			}
		})
		if allocs > 60 {
			t.Errorf("%s: refusing 20000 messages over a limit of 10 made %.0f allocations", elem, allocs)
		}
	}
}

func ExampleDecodeBatchLimit() {
	body := []byte(`[{"channel":"/chat/a","data":"one"},{"channel":"/chat/a","data":"two"},{"channel":"/chat/a","data":"three"}]`)
	if _, err := DecodeBatchLimit(body, 2); errors.Is(err, ErrTooManyMessages) {
		fmt.Println(err)
	}
	msgs, _ := DecodeBatchLimit([]byte(`[{"Channel":"/chat/a","data":"case matters"}]`), 2)
	fmt.Printf("channel %q\n", msgs[0].Channel)
	// Output:
	// bayeux: too many messages in one batch: more than 2
	// channel ""
}

// TestMarshalDataChecksText: data given as JSON text is held to the
// decoder's rules, so a server-side publish cannot forward what a client
// could not send.
func TestMarshalDataChecksText(t *testing.T) {
	type testCase struct {
		name string
		data any
		ok   bool
	}
	for _, tc := range []testCase{
		{"raw object", json.RawMessage(`{"a":"é"}`), true},
		{"bytes", []byte(`[1,2]`), true},
		{"value", map[string]string{"a": "\xff"}, true}, // encoding/json replaces the byte
		{"raw invalid UTF-8", json.RawMessage("\"\xff\""), false},
		{"raw escaped lone surrogate", json.RawMessage(`"\ud83d"`), true},
		{"raw duplicate name", json.RawMessage(`{"a":1,"a":2}`), false},
		{"raw not JSON", []byte(`{`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := MarshalData(tc.data)
			if tc.ok != (err == nil) {
				t.Fatalf("MarshalData = %q, %v; want ok %v", raw, err, tc.ok)
			}
			if err == nil && !utf8.Valid(raw) {
				t.Fatalf("MarshalData = %q: invalid UTF-8", raw)
			}
		})
	}
}
