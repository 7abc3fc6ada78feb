//go:build !js

package wasmclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeWS is a WebSocket endpoint whose behaviour a test scripts: serve
// runs for every socket, with the frames the client sends.
type fakeWS struct {
	url     string
	dials   atomic.Int32
	cookies chan string // the BAYEUX_BROWSER cookie of every upgrade ("" if none)
}

func newFakeWS(t *testing.T, serve func(ctx context.Context, c *websocket.Conn, frames <-chan string)) *fakeWS {
	t.Helper()
	f := &fakeWS{cookies: make(chan string, 10)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.dials.Add(1)
		ck, _ := r.Cookie("BAYEUX_BROWSER")
		v := ""
		if ck != nil {
			v = ck.Value
		}
		f.cookies <- v
		http.SetCookie(w, &http.Cookie{Name: "BAYEUX_BROWSER", Value: "b1", Path: "/"})
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		frames := make(chan string, 10)
		go func() {
			defer close(frames)
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					cancel()
					return
				}
				frames <- string(b)
			}
		}()
		serve(ctx, c, frames)
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL + "/cometd"
	return f
}

func writeText(ctx context.Context, c *websocket.Conn, s string) {
	_ = c.Write(ctx, websocket.MessageText, []byte(s))
}

// Replies are matched by id: the second request is answered first, and a
// frame that answers no request goes to the push hook.
func TestWebSocketTransportMatchesByID(t *testing.T) {
	t.Parallel()
	f := newFakeWS(t, func(ctx context.Context, c *websocket.Conn, frames <-chan string) {
		<-frames
		<-frames
		writeText(ctx, c, `[{"channel":"/x","data":"pushed"}]`)
		writeText(ctx, c, `[{"channel":"/y","data":2},{"id":"2","channel":"/y","successful":true}]`)
		writeText(ctx, c, `[{"id":"1","channel":"/meta/connect","successful":true}]`)
		<-ctx.Done()
	})
	tr := &WebSocketTransport{}
	pushed := make(chan string, 1)
	tr.core.attach(t, func(b []byte) { pushed <- string(b) })
	defer tr.Close()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	got := make([]string, 2)
	errs := make([]error, 2)
	for i, body := range []string{`[{"id":"1","channel":"/meta/connect"}]`, `[{"id":"2","channel":"/y","data":1}]`} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := tr.Send(ctx, f.url, []byte(body))
			got[i], errs[i] = string(b), err
		}()
		time.Sleep(20 * time.Millisecond) // in this order
	}
	wg.Wait()
	if errs[0] != nil || !strings.Contains(got[0], "/meta/connect") {
		t.Errorf("connect: %s %v", got[0], errs[0])
	}
	if errs[1] != nil || !strings.Contains(got[1], `"data":2`) {
		t.Errorf("publish: %s %v", got[1], errs[1])
	}
	select {
	case p := <-pushed:
		if !strings.Contains(p, "pushed") {
			t.Errorf("pushed %s", p)
		}
	case <-time.After(tWait):
		t.Error("nothing pushed")
	}
	if f.dials.Load() != 1 {
		t.Errorf("%d dials", f.dials.Load())
	}
	if _, err := tr.Send(ctx, f.url, []byte(`[{"channel":"/x","data":1}]`)); !errors.Is(err, errWSNoID) {
		t.Errorf("message without id: %v", err)
	}
}

// A socket that breaks fails every Send waiting on it; the next Send dials
// again, with the cookie the first upgrade set.
func TestWebSocketTransportBrokenSocket(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	f := newFakeWS(t, func(ctx context.Context, c *websocket.Conn, frames <-chan string) {
		if n.Add(1) == 1 {
			<-frames
			<-frames
			c.CloseNow() // two requests in flight
			return
		}
		for fr := range frames {
			ids, _ := frameIDs([]byte(fr))
			writeText(ctx, c, `[{"id":"`+string(ids[0])+`","channel":"/meta/connect","successful":true}]`)
		}
	})
	tr := &WebSocketTransport{}
	defer tr.Close()
	ctx := ctxT(t)
	errs := make(chan error, 2)
	for _, id := range []string{"1", "2"} {
		go func() {
			_, err := tr.Send(ctx, f.url, []byte(`[{"id":"`+id+`","channel":"/meta/connect"}]`))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err == nil || ctx.Err() != nil {
			t.Errorf("Send on a broken socket: %v", err)
		}
	}
	wsURL := "ws" + strings.TrimPrefix(f.url, "http") // a ws:// URL works too
	b, err := tr.Send(ctx, wsURL, []byte(`[{"id":"3","channel":"/meta/connect"}]`))
	if err != nil || !strings.Contains(string(b), `"id":"3"`) {
		t.Fatalf("Send after the break: %s %v", b, err)
	}
	if first, second := <-f.cookies, <-f.cookies; first != "" || second != "b1" {
		t.Errorf("cookies %q then %q", first, second)
	}
}

// A Send that gets no answer in time closes the socket (the server sees
// it close), and the next Send dials again. An upgrade the server refuses
// is a *WebSocketDialError with the HTTP status.
func TestWebSocketTransportTimeout(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 1)
	var n atomic.Int32
	f := newFakeWS(t, func(ctx context.Context, c *websocket.Conn, frames <-chan string) {
		first := n.Add(1) == 1
		for fr := range frames {
			if !first {
				writeText(ctx, c, strings.Replace(fr, `"channel"`, `"successful":true,"channel"`, 1))
			}
		}
		if first {
			closed <- struct{}{}
		}
	})
	tr := &WebSocketTransport{}
	defer tr.Close()
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := tr.Send(short, f.url, []byte(`[{"id":"1","channel":"/meta/connect"}]`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered Send: %v", err)
	}
	select {
	case <-closed:
	case <-time.After(tWait):
		t.Fatal("the socket stayed open")
	}
	if _, err := tr.Send(ctxT(t), f.url, []byte(`[{"id":"2","channel":"/meta/connect"}]`)); err != nil || f.dials.Load() != 2 {
		t.Errorf("Send after the timeout: %v, %d dials", err, f.dials.Load())
	}

	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer refuse.Close()
	_, err := tr.Send(ctxT(t), refuse.URL, []byte(`[{"id":"3","channel":"/meta/handshake"}]`))
	var de *WebSocketDialError
	var he *HTTPError
	if !errors.As(err, &de) || !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Errorf("refused upgrade: %v", err)
	}
}
