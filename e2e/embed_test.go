package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// embedSite serves pages on another site than the bayeux server: the
// server is http://127.0.0.1:<port>, the pages http://localhost:<port2>
// (another host, so another site: its frames and fetches are cross-site).
type embedSite struct {
	Origin string
	ln     net.Listener
	pages  map[string]string
	// handlers answer their paths instead of a page (a host backend).
	handlers map[string]http.HandlerFunc
}

// listenSite reserves a port for a site; serve starts it.
func listenSite(t *testing.T) *embedSite {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &embedSite{Origin: "http://localhost:" + port, ln: ln, pages: map[string]string{}, handlers: map[string]http.HandlerFunc{}}
}

func (s *embedSite) serve(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := s.handlers[r.URL.Path]; ok {
			h(w, r)
			return
		}
		page, ok := s.pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, page)
	})}
	go srv.Serve(s.ln)
	t.Cleanup(func() { srv.Close() })
}

func framePage(b *bayeux, room string) string {
	return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>blog</title></head><body>
<h1>A blog with a chat</h1>
<iframe id="chat" src="` + b.URL + `/chat/?room=` + room + `" width="700" height="500"></iframe>
</body></html>`
}

// apiPage loads the JavaScript API; the test drives it with run().
func apiPage(b *bayeux) string {
	return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>api</title>
<script src="` + b.URL + `/embed/bayeux.js"></script></head><body>
<script>
window.got = [];
window.result = "";
window.run = function (user, password, room, text) {
  Bayeux.connect({user: user, password: password})
    .then(() => Bayeux.subscribe("/chat/" + room, (data, message) => window.got.push(message.channel + " " + data.user + ": " + data.chat)))
    .then((id) => { window.subID = id; return Bayeux.publish("/chat/" + room, {chat: text}); })
    .then(() => Bayeux.call("echo", {n: [1, 2], s: "x"}))
    .then((reply) => { window.echo = JSON.stringify(reply); return Bayeux.clientId(); })
    .then((id) => { window.clientID = id; return Bayeux.subscribe(42, () => {}).then(() => "resolved", (e) => e.message); })
    .then((bad) => { window.badArg = bad; window.result = "ok"; })
    .catch((e) => { window.result = "error: " + e.message; });
};
</script></body></html>`
}

// frameContext attaches to the cross-site iframe whose URL starts with
// prefix (Chrome runs it as its own target), waiting up to d for it.
func frameContext(t *testing.T, ctx context.Context, prefix string, d time.Duration) (context.Context, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatalf("targets: %v", err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && strings.HasPrefix(info.URL, prefix) {
				fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID))
				t.Cleanup(cancel)
				// Attach on a context without a timeout (see newBrowser).
				if err := chromedp.Do(fctx); err != nil {
					t.Fatalf("attach to the iframe: %v", err)
				}
				return fctx, true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, false
}

// TestEmbedIframe: a page on another site frames the chat; the frame has
// no login cookie, logs in with its own form over WebSocket, and chats
// with a user of the normal /chat/ page.
func TestEmbedIframe(t *testing.T) {
	site := listenSite(t)
	const room = "embedded"
	b := startBayeux(t, users, "BAYEUX_EMBED_ORIGINS="+site.Origin, "BAYEUX_ALLOWED_ORIGINS="+site.Origin)
	site.pages["/"] = framePage(b, room)
	site.serve(t)

	browser := newBrowser(t)
	blog, bob := browser(), browser()
	login(t, bob, b, "bob", users["bob"], room)

	do(t, blog, 20*time.Second, chromedp.Navigate(site.Origin+"/"))
	frame, ok := frameContext(t, blog, b.URL+"/chat/", 15*time.Second)
	if !ok {
		t.Fatalf("no iframe target for %s/chat/", b.URL)
	}
	if !poll(frame, `document.querySelector('.chat-app.compact') !== null`, 20*time.Second) {
		t.Fatalf("the framed chat is not compact")
	}
	if n := get(t, frame, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('.chat-rooms').length`)); n != 0 {
		t.Errorf("the framed chat shows the room list")
	}
	if !poll(frame, `document.querySelector('[data-testid="login-user"]') !== null`, 20*time.Second) {
		t.Fatalf("the framed chat shows no login form (chat-status %q)", text(t, frame, "chat-status"))
	}

	waitText(t, frame, "chat-status", "not logged in", 10*time.Second)

	// A wrong password first.
	do(t, frame, 10*time.Second,
		chromedp.SendKeys(sel("login-user"), "alice"),
		chromedp.SendKeys(sel("login-password"), "wrong-password"),
		chromedp.Click(sel("login-submit")),
	)
	waitText(t, frame, "login-error", "failed", 15*time.Second)

	do(t, frame, 10*time.Second,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="login-user"]').value = ""`),
		chromedp.SendKeys(sel("login-user"), "alice"),
		chromedp.SendKeys(sel("login-password"), users["alice"]),
		chromedp.Click(sel("login-submit")),
	)
	waitConnected(t, frame, 30*time.Second)
	waitText(t, frame, "chat-room", room, 5*time.Second)
	waitText(t, frame, "chat-members", "bob", 10*time.Second)
	waitText(t, bob, "chat-members", "alice", 10*time.Second)

	send(t, frame, "hello from the blog")
	waitText(t, bob, "chat-message", "hello from the blog", 5*time.Second)
	send(t, bob, "hello back, framed alice")
	waitText(t, frame, "chat-message", "hello back, framed alice", 5*time.Second)
}

// TestEmbedJSAPI: a page on another site uses bayeux.js (the Go client
// in wasm) to log in, subscribe and publish, talking with a /chat/ user.
func TestEmbedJSAPI(t *testing.T) {
	site := listenSite(t)
	const room = "api"
	b := startBayeux(t, users, "BAYEUX_EMBED_ORIGINS="+site.Origin, "BAYEUX_ALLOWED_ORIGINS="+site.Origin)
	site.pages["/"] = apiPage(b)
	site.serve(t)

	browser := newBrowser(t)
	page, bob := browser(), browser()
	login(t, bob, b, "bob", users["bob"], room)

	do(t, page, 20*time.Second, chromedp.Navigate(site.Origin+"/"))
	if !poll(page, `typeof window.run === "function" && typeof window.Bayeux === "object"`, 10*time.Second) {
		t.Fatal("bayeux.js did not load")
	}
	do(t, page, 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.run("alice", `+jsString(users["alice"])+`, "`+room+`", "hi from the api")`))
	if !poll(page, `window.result !== ""`, 30*time.Second) {
		t.Fatal("the API did not finish")
	}
	if r := get(t, page, 5*time.Second, chromedp.Evaluate[string](`window.result`)); r != "ok" {
		t.Fatalf("API: %s", r)
	}
	// The glue's conversions both ways: a reply object, a string, a
	// rejected promise for an argument of the wrong type.
	if echo := get(t, page, 5*time.Second, chromedp.Evaluate[string](`window.echo`)); echo != `{"n":[1,2],"s":"x"}` {
		t.Errorf("Bayeux.call(\"echo\") = %s", echo)
	}
	if id := get(t, page, 5*time.Second, chromedp.Evaluate[string](`window.clientID`)); len(id) < 16 {
		t.Errorf("Bayeux.clientId() = %q", id)
	}
	if bad := get(t, page, 5*time.Second, chromedp.Evaluate[string](`window.badArg`)); !strings.Contains(bad, "channel name") {
		t.Errorf("Bayeux.subscribe(42, ...) settled with %q, want a rejection naming the channel", bad)
	}
	waitText(t, bob, "chat-message", "hi from the api", 5*time.Second)
	waitText(t, bob, "chat-members", "alice", 10*time.Second)
	send(t, bob, "bob answers the api")
	if !poll(page, `window.got.includes("/chat/`+room+` bob: bob answers the api")`, 5*time.Second) {
		got := get(t, page, 5*time.Second, chromedp.Evaluate[[]string](`window.got`))
		t.Fatalf("the API page did not receive bob's message; got %q", got)
	}
	states := get(t, page, 10*time.Second, chromedp.Evaluate[string](`new Promise((resolve) => {
  Bayeux.onState((s) => { if (s.state === "disconnected") resolve(s.state); }).then(() => Bayeux.disconnect());
})`, chromedp.EvalAwaitPromise))
	if states != "disconnected" {
		t.Errorf("state after disconnect: %q", states)
	}
}

// TestEmbedRefusedOrigin: a site that is not allowed can neither frame
// the chat (frame-ancestors) nor use the JavaScript API (CORS, origin
// check of /cometd).
func TestEmbedRefusedOrigin(t *testing.T) {
	allowed, other := listenSite(t), listenSite(t)
	b := startBayeux(t, users, "BAYEUX_EMBED_ORIGINS="+allowed.Origin, "BAYEUX_ALLOWED_ORIGINS="+allowed.Origin)
	other.pages["/frame"] = framePage(b, "demo")
	other.pages["/api"] = apiPage(b)
	other.serve(t)

	browser := newBrowser(t)
	page := browser()
	do(t, page, 20*time.Second, chromedp.Navigate(other.Origin+"/frame"))
	time.Sleep(3 * time.Second) // an allowed frame shows chat-status at once (prerendered)
	if frame, ok := frameContext(t, page, b.URL+"/chat/", time.Second); ok {
		if poll(frame, `document.querySelector('[data-testid="chat-status"]') !== null`, 2*time.Second) {
			t.Errorf("a site not in BAYEUX_EMBED_ORIGINS framed the chat")
		}
	} else {
		t.Logf("no frame of %s/chat/ (blocked by frame-ancestors)", b.URL)
	}

	// What the browser enforces, asked directly: /cometd refuses the
	// origin (a WebSocket upgrade goes through the same check), and
	// /embed/ gives it no Access-Control-Allow-Origin.
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{allowed.Origin, true}, {other.Origin, false}} {
		req, _ := http.NewRequest(http.MethodPost, b.URL+"/cometd", strings.NewReader(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", tc.origin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.StatusCode == http.StatusOK; got != tc.ok {
			t.Errorf("/cometd from %s: %s", tc.origin, res.Status)
		}
		req, _ = http.NewRequest(http.MethodGet, b.URL+"/embed/bayeux.wasm", nil)
		req.Header.Set("Origin", tc.origin)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin") == tc.origin; got != tc.ok || res.StatusCode != http.StatusOK {
			t.Errorf("/embed/bayeux.wasm from %s: %s, Access-Control-Allow-Origin %q", tc.origin, res.Status, res.Header.Get("Access-Control-Allow-Origin"))
		}
	}

	do(t, page, 20*time.Second, chromedp.Navigate(other.Origin+"/api"))
	if !poll(page, `typeof window.run === "function" && typeof window.Bayeux === "object"`, 10*time.Second) {
		t.Fatal("bayeux.js did not load")
	}
	do(t, page, 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.run("alice", `+jsString(users["alice"])+`, "demo", "must not arrive")`))
	if !poll(page, `window.result !== ""`, 30*time.Second) {
		t.Fatal("the API neither connected nor failed")
	}
	if r := get(t, page, 5*time.Second, chromedp.Evaluate[string](`window.result`)); !strings.HasPrefix(r, "error") {
		t.Errorf("API from a refused origin: %q, want an error", r)
	} else {
		t.Logf("refused: %s", r)
	}
}
