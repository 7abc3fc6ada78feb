package e2e

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bayeux-go/bayeux/server/auth"
)

var tokenSecret = []byte("the e2e host site's secret: 32 b")

// TestEmbedTokenPostMessage: a page on an allowed site frames the chat
// and hands it a login token by postMessage, minted by the site's backend
// for its own user; the frame logs in with it, asks again before the
// token expires and keeps its session. A page of another site, framed
// next to the chat, keeps posting a valid token for "mallory": the frame
// ignores it (wrong origin, not its parent).
func TestEmbedTokenPostMessage(t *testing.T) {
	site, other := listenSite(t), listenSite(t)
	const room = "tokens"
	b := startBayeux(t, users, "BAYEUX_EMBED_ORIGINS="+site.Origin,
		"BAYEUX_TOKEN_KEYS=hs256:"+base64.StdEncoding.EncodeToString(tokenSecret), "BAYEUX_TOKEN_PREFIX=blog:",
		"BAYEUX_TOKEN_LEEWAY=0s")
	keys, err := auth.ParseTokenKeys("hs256:" + base64.StdEncoding.EncodeToString(tokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(sub string, ttl time.Duration) string {
		tok, err := auth.MintToken(keys[0], auth.MintOptions{Subject: sub, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// The host's backend: a token for its logged-in user (alice here),
	// valid for 5 s, so that the frame must refresh it during the test.
	var minted atomic.Int32
	site.handlers["/chat-token"] = func(w http.ResponseWriter, r *http.Request) {
		minted.Add(1)
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, mint("alice", 5*time.Second))
	}
	site.pages["/"] = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>blog</title></head><body>
<iframe id="evil" src="` + other.Origin + `/evil" width="10" height="10"></iframe>
<iframe name="chat" src="` + b.URL + `/chat/?room=` + room + `" width="700" height="500"></iframe>
<script>
window.requests = 0;
window.addEventListener("message", function (e) {
  if (e.origin !== ` + jsString(b.URL) + ` || !e.data || e.data.bayeux !== "token-request") return;
  window.requests++;
  // Late on purpose: a token that another origin posts meanwhile would
  // win if the frame took it.
  setTimeout(function () {
    fetch("/chat-token").then(function (r) { return r.text(); }).then(function (token) {
      e.source.postMessage({bayeux: "token", id: e.data.id, token: token}, e.origin);
    });
  }, 500);
});
</script></body></html>`
	other.pages["/evil"] = `<!DOCTYPE html><html><body><script>
setInterval(function () {
  try { parent.frames["chat"].postMessage({bayeux: "token", token: ` + jsString(mint("mallory", time.Minute)) + `}, "*"); } catch (e) {}
}, 50);
</script></body></html>`
	site.serve(t)
	other.serve(t)

	browser := newBrowser(t)
	blog, bob := browser(), browser()
	login(t, bob, b, "bob", users["bob"], room)

	do(t, blog, 20*time.Second, chromedp.Navigate(site.Origin+"/"))
	frame, ok := frameContext(t, blog, b.URL+"/chat/", 15*time.Second)
	if !ok {
		t.Fatalf("no iframe target for %s/chat/", b.URL)
	}
	waitConnected(t, frame, 30*time.Second)
	waitText(t, bob, "chat-members", "blog:alice", 15*time.Second)
	if m := text(t, bob, "chat-members"); strings.Contains(m, "mallory") {
		t.Fatalf("the frame took the other origin's token: members %q", m)
	}
	if n := get(t, frame, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="login-user"]').length`)); n != 0 {
		t.Errorf("the frame shows its login form though it got a token")
	}
	send(t, frame, "hello with a token")
	waitText(t, bob, "chat-message", "blog:alice", 5*time.Second)
	waitText(t, bob, "chat-message", "hello with a token", 5*time.Second)

	// Past the first token's expiry (5 s): the frame asked for fresh
	// tokens and its session went on (none ended at its deadline).
	// The third request comes after the first token expired.
	if !poll(blog, `window.requests >= 3`, 30*time.Second) {
		t.Fatalf("the frame did not ask for fresh tokens (requests: %d, minted %d)",
			get(t, blog, 5*time.Second, chromedp.Evaluate[int](`window.requests`)), minted.Load())
	}
	send(t, frame, "still here after a refresh")
	waitText(t, bob, "chat-message", "still here after a refresh", 10*time.Second)
	waitConnected(t, frame, 5*time.Second)
	metrics := httpGet(t, b.URL+"/metrics")
	if !strings.Contains(metrics, `bayeux_refused_total{reason="session_deadline"} 0`) {
		t.Errorf("a token session ended at its deadline:\n%s", grepLines(metrics, "refused"))
	}
	if strings.Contains(text(t, bob, "chat-members"), "mallory") {
		t.Errorf("mallory joined")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestEmbedJSAPIToken: a page on another site logs in through bayeux.js
// with Bayeux.connect({token, getToken}): the first token logs in, and
// getToken (a Promise from the site's backend) gives the fresh ones that
// keep the session past the first token's expiry.
func TestEmbedJSAPIToken(t *testing.T) {
	site := listenSite(t)
	secret := "hs256:" + base64.StdEncoding.EncodeToString(tokenSecret)
	b := startBayeux(t, users, "BAYEUX_ALLOWED_ORIGINS="+site.Origin, "BAYEUX_TOKEN_KEYS="+secret,
		"BAYEUX_TOKEN_PREFIX=blog:", "BAYEUX_TOKEN_LEEWAY=0s")
	keys, err := auth.ParseTokenKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	site.handlers["/chat-token"] = func(w http.ResponseWriter, r *http.Request) {
		tok, err := auth.MintToken(keys[0], auth.MintOptions{Subject: "alice", TTL: 5 * time.Second})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, tok)
	}
	site.pages["/"] = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>api</title>
<script src="` + b.URL + `/embed/bayeux.js"></script></head><body><script>
window.calls = 0;
window.result = "";
function getToken() {
  window.calls++;
  return fetch("/chat-token").then(function (r) { return r.text(); });
}
getToken()
  .then(function (token) { return Bayeux.connect({token: token, getToken: getToken}); })
  .then(function () { return Bayeux.call("chat/whoami", {}); })
  .then(function (who) { window.result = who.user; })
  .catch(function (e) { window.result = "error: " + e.message; });
</script></body></html>`
	site.serve(t)

	page := newBrowser(t)()
	do(t, page, 20*time.Second, chromedp.Navigate(site.Origin+"/"))
	if !poll(page, `window.result !== ""`, 30*time.Second) {
		t.Fatal("connect did not finish")
	}
	if r := get(t, page, 5*time.Second, chromedp.Evaluate[string](`window.result`)); r != "blog:alice" {
		t.Fatalf("whoami after a token connect: %q", r)
	}
	id := get(t, page, 5*time.Second, chromedp.Evaluate[string](`Bayeux.clientId()`, chromedp.EvalAwaitPromise))
	// Three tokens: the first expired, the session went on.
	if !poll(page, `window.calls >= 3`, 30*time.Second) {
		t.Fatalf("getToken called %d times", get(t, page, 5*time.Second, chromedp.Evaluate[int](`window.calls`)))
	}
	who := get(t, page, 10*time.Second, chromedp.Evaluate[string](`Bayeux.call("chat/whoami", {}).then((w) => w.user)`, chromedp.EvalAwaitPromise))
	again := get(t, page, 5*time.Second, chromedp.Evaluate[string](`Bayeux.clientId()`, chromedp.EvalAwaitPromise))
	if who != "blog:alice" || again != id {
		t.Errorf("after the first token expired: whoami %q, clientId %q (was %q)", who, again, id)
	}
}
