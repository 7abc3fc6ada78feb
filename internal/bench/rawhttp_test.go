package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRawHTTP(t *testing.T) {
	big := strings.Repeat("x", 20000) // beyond net/http's buffer: sent chunked
	var mu sync.Mutex
	var cookies []string
	gotCookie := func() string {
		mu.Lock()
		defer mu.Unlock()
		return cookies[len(cookies)-1]
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		cookies = append(cookies, r.Header.Get("Cookie"))
		mu.Unlock()
		switch string(body) {
		case "set":
			http.SetCookie(w, &http.Cookie{Name: "BAYEUX_BROWSER", Value: "abc", Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "other", Value: "1"})
			io.WriteString(w, "[1]")
		case "change":
			http.SetCookie(w, &http.Cookie{Name: "BAYEUX_BROWSER", Value: "def"})
			http.SetCookie(w, &http.Cookie{Name: "other", Value: "", MaxAge: -1})
			io.WriteString(w, "[2]")
		case "big":
			io.WriteString(w, big)
		case "close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "[3]")
		case "error":
			http.Error(w, "nope", http.StatusTooManyRequests)
		case "slow":
			time.Sleep(2 * time.Second)
		default:
			io.WriteString(w, "[]")
		}
	})
	ts := httptest.NewServer(h)
	defer ts.Close()
	tr, err := NewRawLongPolling(ts.URL + "/cometd")
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := tr.Dial(nil)
	defer conn.Close()
	ctx := context.Background()
	rt := func(body string) (string, error) {
		b, err := conn.RoundTrip(ctx, KindPublish, []byte(body), nil)
		return string(b), err
	}
	for _, tc := range []struct{ send, want, wantCookie string }{
		{"set", "[1]", ""},
		{"x", "[]", "BAYEUX_BROWSER=abc; other=1"},
		{"change", "[2]", "BAYEUX_BROWSER=abc; other=1"},
		{"big", big, "BAYEUX_BROWSER=def"},
		{"close", "[3]", "BAYEUX_BROWSER=def"},
		{"x", "[]", "BAYEUX_BROWSER=def"},
	} {
		got, err := rt(tc.send)
		if err != nil || got != tc.want {
			t.Fatalf("%s: got %.40q, %v; want %.40q", tc.send, got, err, tc.want)
		}
		if c := gotCookie(); c != tc.wantCookie {
			t.Errorf("%s: server got cookies %q, want %q", tc.send, c, tc.wantCookie)
		}
	}
	var he *HTTPError
	if _, err := rt("error"); !errors.As(err, &he) || he.Code != 429 || errorKind(err) != "http_429" {
		t.Errorf("error: %v", err)
	}
	if got, err := rt("x"); err != nil || got != "[]" {
		t.Errorf("after an error status the connection is not usable: %q %v", got, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := conn.RoundTrip(tctx, KindConnect, []byte("slow"), nil); errorKind(err) != "timeout" {
		t.Errorf("slow: %v (%s), want a timeout", err, errorKind(err))
	}
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, ccancel)
	began := time.Now()
	if _, err := conn.RoundTrip(cctx, KindConnect, []byte("slow"), nil); !errors.Is(err, context.Canceled) || time.Since(began) > time.Second {
		t.Errorf("cancel: %v after %v", err, time.Since(began))
	}
	conn.(interface{ ResetCookies() }).ResetCookies()
	if _, err := rt("x"); err != nil || gotCookie() != "" {
		t.Errorf("cookies after reset: %q %v", gotCookie(), err)
	}
}

// TestRawHTTPStaleConnection: a server that closes a keep-alive
// connection after each reply (as Node does after keepAliveTimeout) costs
// no error: the request is sent again on a new connection.
func TestRawHTTPStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var served atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				served.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
				time.Sleep(20 * time.Millisecond) // the client pools the connection; then it is closed
			}()
		}
	}()
	tr, _ := NewRawLongPolling("http://" + ln.Addr().String() + "/cometd")
	conn, _ := tr.Dial(nil)
	defer conn.Close()
	for i := range 3 {
		b, err := conn.RoundTrip(context.Background(), KindConnect, []byte("[]"), nil)
		if err != nil || string(b) != "[]" {
			t.Fatalf("request %d: %q %v", i, b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := served.Load(); n != 3 {
		t.Errorf("server served %d requests, want 3", n)
	}
}
