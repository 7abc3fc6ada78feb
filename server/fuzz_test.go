package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

func fuzzServer(f *testing.F) *Server {
	s, err := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollTimeout: time.Millisecond, AnonPublish: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// FuzzProcess feeds arbitrary batches (as they arrive in a POST body or a
// WebSocket frame) through the message handlers: no panic, and every reply
// is a well-formed Bayeux message.
func FuzzProcess(f *testing.F) {
	for _, s := range []string{
		`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true,"timesync":{"tc":1,"l":0,"o":0}}}]`,
		`[{"channel":"/meta/connect","clientId":"x","advice":{"timeout":0},"ext":{"ack":"nope"}}]`,
		`[{"channel":"/meta/subscribe","clientId":"x","subscription":["/a/**","/meta/*",""]},{"channel":"/a/b","data":{}}]`,
		`[{"channel":"/service/echo","data":[1,2,3],"id":"9"},{"channel":"/meta/unsubscribe","subscription":"/a"}]`,
		`{"channel":"/meta/disconnect"}`, `[{"channel":"/meta/connect"},{"channel":"/meta/connect"}]`,
	} {
		f.Add([]byte(s))
	}
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := protocol.DecodeBatch(body)
		if err != nil {
			return
		}
		x := &exchange{s: srv, ctx: context.Background(), transport: protocol.LongPolling, browser: "fuzzbrowser0000000000"}
		x.process(msgs)
		x.finish()
		out, err := x.encode(nil)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		var replies []map[string]json.RawMessage
		if err := json.Unmarshal(out, &replies); err != nil {
			t.Fatalf("response is not a JSON array: %s", out)
		}
		for _, r := range replies {
			if _, ok := r["channel"]; !ok {
				t.Fatalf("reply without channel: %s", out)
			}
		}
	})
}

// FuzzFormBody checks the form-encoded long-polling body decoder.
func FuzzFormBody(f *testing.F) {
	f.Add("message=" + url.QueryEscape(`[{"channel":"/meta/handshake","version":"1.0"}]`))
	f.Add("message=%7B%7D&message=%5B%5D")
	f.Add("message=%ZZ")
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/cometd", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		msgs, err := srv.decodePost(httptest.NewRecorder(), r)
		if err == nil && len(msgs) == 0 {
			t.Fatal("no error and no messages")
		}
	})
}

// FuzzJSONPQuery checks the callback-polling query decoder: the callback
// name it accepts is always safe to put in a script.
func FuzzJSONPQuery(f *testing.F) {
	f.Add("jsonp=cb1&message=" + url.QueryEscape(`[{"channel":"/meta/connect"}]`))
	f.Add("jsonp=alert(1)&message=%5B%5D")
	f.Add("jsonp=a&jsonp=b&message=x")
	srv := fuzzServer(f)
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/cometd", nil)
		r.URL.RawQuery = query
		cb, msgs, err := srv.decodeJSONP(r)
		if err != nil {
			return
		}
		if !jsonpName.MatchString(cb) || len(msgs) == 0 {
			t.Fatalf("accepted callback %q with %d messages", cb, len(msgs))
		}
	})
}

// finish completes the batch's connect on the calling goroutine, waiting
// as a long-polling handler does.
func (x *exchange) finish() {
	if x.hold != nil && x.hold.start(nil) {
		x.hold.Wait(nil)
	}
}
