package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/protocol"
)

// TestBatchLimitRefusedEarly is the attack of a body at the size limit
// made of tiny messages, far more than MaxBatch: on every transport it is
// refused (HTTP 400, or the socket closed with 1008), counted as
// batch_messages, and refused before the messages over the limit are
// decoded (the server allocates a small part of what decoding them all
// costs). Not parallel: it counts the process's allocations.
func TestBatchLimitRefusedEarly(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.client()
	const elem = `{"channel":"/a","data":0}`
	limit := int(h.srv.Options().MaxMessageSize)
	n := (limit - 16) / (len(elem) + 1)
	array := "[" + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]"
	escaped := url.QueryEscape(elem)
	formArray := "message=%5B" + strings.TrimSuffix(strings.Repeat(escaped+"%2C", (limit-32)/(len(escaped)+3)), "%2C") + "%5D"
	params := "message=" + strings.TrimSuffix(strings.Repeat(escaped+"&message=", (limit-16)/(len(escaped)+9)), "&message=")
	type testCase struct {
		name string
		do   func() error // the attack; an error when it was not refused as it must be
	}
	status := func(r result) error {
		if r.err != nil || r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "messages in one request") {
			return fmt.Errorf("want HTTP 400 for too many messages, got %v", r)
		}
		return nil
	}
	for _, tc := range []testCase{
		{"JSON body", func() error {
			return status(c.do(http.MethodPost, c.url, "application/json", []byte(array), nil))
		}},
		{"form, one message= array", func() error {
			return status(c.do(http.MethodPost, c.url, "application/x-www-form-urlencoded", []byte(formArray), nil))
		}},
		{"form, many message= parameters", func() error {
			return status(c.do(http.MethodPost, c.url, "application/x-www-form-urlencoded", []byte(params), nil))
		}},
		{"JSONP", func() error {
			return status(c.do(http.MethodGet, c.url+"?jsonp=cb&"+params, "", nil, nil))
		}},
		{"WebSocket frame", func() error {
			ctx := context.Background()
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http"), nil)
			if err != nil {
				return err
			}
			defer ws.CloseNow()
			if err := ws.Write(ctx, websocket.MessageText, []byte(array)); err != nil {
				return err
			}
			if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				return fmt.Errorf("want close 1008, got %v", err)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused := h.srv.Stats().Refused.Load(RefusedBatch)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := tc.do()
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.srv.Stats().Refused.Load(RefusedBatch) - refused; got != 1 {
				t.Errorf("refused batch_messages counted %d times, want 1", got)
			}
			// Decoding all n messages costs several allocations each.
			if allocs := after.Mallocs - before.Mallocs; allocs > uint64(n)/2 {
				t.Errorf("refusing %d messages over a limit of %d cost %d allocations", n, h.srv.Options().MaxBatch, allocs)
			}
		})
	}
	if got := h.sessionCount(); got != 0 {
		t.Errorf("%d sessions", got)
	}
}

// TestInvalidUTF8Refused is the attack of a publish whose data (or ext)
// carries bytes that are not UTF-8: it is refused with HTTP 400 (the
// WebSocket closed with 1007) and never reaches a subscriber; the
// subscriber's next response is valid UTF-8 and holds only what came
// after.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	sub := h.client().start()
	sub.subscribe("/utf8")
	pub := h.client().start()
	bad := func(field string) string {
		return fmt.Sprintf(`[{"channel":"/utf8","clientId":%q,"data":%s}]`, pub.id, field)
	}
	type testCase struct {
		name string
		send func() error
	}
	post := func(ctype, body string) error {
		r := pub.do(http.MethodPost, pub.url, ctype, []byte(body), nil)
		if r.err != nil || r.status != http.StatusBadRequest {
			return fmt.Errorf("want HTTP 400, got %v", r)
		}
		return nil
	}
	for _, tc := range []testCase{
		{"data, JSON body", func() error { return post("application/json", bad("{\"chat\":\"caf\xe9\"}")) }},
		{"data, truncated sequence", func() error { return post("application/json", bad("\"\xf0\x9f\x98\"")) }},
		{"data, surrogate half", func() error { return post("application/json", bad("\"\xed\xa0\x80\"")) }},
		{"ext", func() error {
			return post("application/json", fmt.Sprintf("[{\"channel\":\"/utf8\",\"clientId\":%q,\"data\":1,\"ext\":{\"x\":\"\xff\"}}]", pub.id))
		}},
		{"form", func() error {
			return post("application/x-www-form-urlencoded", "message="+url.QueryEscape(bad("\"\xc3\x28\"")))
		}},
		{"JSONP", func() error {
			r := pub.do(http.MethodGet, pub.url+"?jsonp=cb&message="+url.QueryEscape(bad("\"\xff\"")), "", nil, nil)
			if r.err != nil || r.status != http.StatusBadRequest {
				return fmt.Errorf("want HTTP 400, got %v", r)
			}
			return nil
		}},
		{"WebSocket", func() error {
			ctx := context.Background()
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http"), nil)
			if err != nil {
				return err
			}
			defer ws.CloseNow()
			if err := ws.Write(ctx, websocket.MessageText, []byte(bad("\"\xff\""))); err != nil {
				return err
			}
			if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
				return fmt.Errorf("want close 1007, got %v", err)
			}
			return nil
		}},
	} {
		if err := tc.send(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// An escaped lone surrogate (what JSON.stringify writes for a string cut
	// inside an emoji) is valid JSON text: it goes through as written.
	if r := pub.do(http.MethodPost, pub.url, "application/json", []byte(bad(`"cut \ud83d"`)), nil); r.status != http.StatusOK {
		t.Fatalf("escaped lone surrogate: %v", r)
	}
	pub.publish("/utf8", "after")
	r := sub.send(connectMsg(sub.id, &protocol.Advice{Timeout: protocol.Ms(0)}))
	if !utf8.Valid(r.body) || !bytes.Contains(r.body, []byte(`"data":"cut \ud83d"`)) {
		t.Fatalf("subscriber got %q", r.body)
	}
	if got := deliveries(sub.checkOK(r)); len(got) != 2 || string(got[1].Data) != `"after"` {
		t.Fatalf("subscriber got %s", r.body)
	}
}

// TestMemberNamesExact: a message whose only channel member is spelt with
// other letter cases has no channel (400::channel_missing) and reaches
// nobody; the other members are exact too.
func TestMemberNamesExact(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	sub := h.client().start()
	sub.subscribe("/keys")
	pub := h.client().start()
	type testCase struct {
		name, body string
		check      func(m *protocol.Message) error
	}
	for _, tc := range []testCase{
		{"ChAnnel", `[{"ChAnnel":"/keys","clientId":%q,"data":"ChAnnel","id":"k1"}]`, func(m *protocol.Message) error {
			if m.Error != protocol.ErrorString(protocol.ErrChannelMissing) {
				return fmt.Errorf("error %q", m.Error)
			}
			return nil
		}},
		{"CHANNEL", `[{"CHANNEL":"/keys","clientId":%q,"data":"CHANNEL","id":"k2"}]`, func(m *protocol.Message) error {
			if m.Error != protocol.ErrorString(protocol.ErrChannelMissing) {
				return fmt.Errorf("error %q", m.Error)
			}
			return nil
		}},
		{"ClientId", `[{"channel":"/keys","ClientId":%q,"data":"ClientId","id":"k3"}]`, func(m *protocol.Message) error {
			if m.Error != protocol.ErrorString(protocol.ErrSessionUnknown) {
				return fmt.Errorf("error %q", m.Error)
			}
			return nil
		}},
		{"Data", `[{"channel":"/keys","clientId":%q,"Data":"Data","id":"k4"}]`, func(m *protocol.Message) error {
			if m.Error != protocol.ErrorString(protocol.ErrDataMissing) {
				return fmt.Errorf("error %q", m.Error)
			}
			return nil
		}},
	} {
		r := pub.do(http.MethodPost, pub.url, "application/json", fmt.Appendf(nil, tc.body, pub.id), nil)
		if r.err != nil || r.status != http.StatusOK || len(r.msgs) != 1 {
			t.Errorf("%s: %v", tc.name, r)
			continue
		}
		if m := r.msgs[0]; m.IsSuccessful() {
			t.Errorf("%s: accepted: %s", tc.name, r.body)
		} else if err := tc.check(m); err != nil {
			t.Errorf("%s: %v in %s", tc.name, err, r.body)
		}
	}
	pub.publish("/keys", "exact")
	if got := dataOf(t, sub.connectNow(), "/keys"); fmt.Sprint(got) != "[exact]" {
		t.Errorf("subscriber got %v", got)
	}
	// A duplicate member is ambiguous: refused as a whole.
	r := pub.do(http.MethodPost, pub.url, "application/json",
		fmt.Appendf(nil, `[{"channel":"/keys","channel":"/other","clientId":%q,"data":1}]`, pub.id), nil)
	if r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("duplicate")) {
		t.Errorf("duplicate channel member: %v", r)
	}
}
