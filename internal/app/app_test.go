package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/config"
	"github.com/bayeux-go/bayeux/protocol"
)

type running struct {
	app    *App
	url    string
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned; err holds its result
	err    error
	logs   *bytes.Buffer
}

func start(t *testing.T, vars map[string]string) *running {
	t.Helper()
	if vars == nil {
		vars = map[string]string{}
	}
	if vars["BAYEUX_DATA_DIR"] == "" {
		vars["BAYEUX_DATA_DIR"] = filepath.Join(t.TempDir(), "data")
	}
	cfg, err := config.LoadFrom(vars)
	if err != nil {
		t.Fatal(err)
	}
	logs := new(bytes.Buffer)
	a, err := New(cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	scheme := "http://"
	if vars["BAYEUX_TLS_CERT"] != "" {
		scheme = "https://"
	}
	r := &running{app: a, url: scheme + ln.Addr().String(), cancel: cancel, done: make(chan struct{}), logs: logs}
	go func() { r.err = a.Serve(ctx, ln); close(r.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	return r
}

// stop shuts the server down and closes the App, as the binary does on
// SIGTERM.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
	r.app.Close()
}

func post(t *testing.T, c *http.Client, url, body string) []protocol.Message {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	var msgs []protocol.Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestServesHealthDocumentRootAndBayeux(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "nested", "data")
	r := start(t, map[string]string{"BAYEUX_DATA_DIR": dataDir})
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		t.Fatalf("data dir not created: %v", err)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/": "<title>bayeux</title>", "/favicon.svg": "<svg"} {
		resp, err := http.Get(r.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, b)
		}
	}
	resp, _ := http.Get(r.url + "/missing.html")
	if resp.StatusCode != 404 {
		t.Errorf("missing file: %d", resp.StatusCode)
	}
	resp.Body.Close()
	hs := post(t, http.DefaultClient, r.url+"/cometd/handshake", `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`)
	if !hs[0].IsSuccessful() || hs[0].ClientID == "" {
		t.Fatalf("handshake: %+v", hs[0])
	}
}

func TestDocumentRootDirectory(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "home.htm"), []byte("custom home"), 0o644)
	os.WriteFile(filepath.Join(root, ".env"), []byte("SECRET"), 0o644)
	r := start(t, map[string]string{"BAYEUX_DOCUMENT_ROOT": root, "BAYEUX_DIRECTORY_INDEX": "index.html,home.htm"})
	resp, err := http.Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "custom home" {
		t.Errorf("index = %q", b)
	}
	resp, _ = http.Get(r.url + "/.env")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("dotfile served: %d", resp.StatusCode)
	}
}

// TestShutdownAnswersHeldConnects: on shutdown a held connect returns at
// once with retry advice, and a message published just before is in it.
func TestShutdownAnswersHeldConnects(t *testing.T) {
	r := start(t, map[string]string{"BAYEUX_POLL_TIMEOUT": "20s"})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	hs := post(t, c, r.url+"/cometd", `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`)
	id := hs[0].ClientID
	post(t, c, r.url+"/cometd", `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}}]`)
	type result struct {
		msgs []protocol.Message
		took time.Duration
	}
	res := make(chan result, 1)
	go func() {
		t0 := time.Now()
		msgs := post(t, c, r.url+"/cometd", `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling"}]`)
		res <- result{msgs, time.Since(t0)}
	}()
	time.Sleep(200 * time.Millisecond) // let the connect be held
	r.cancel()
	select {
	case got := <-res:
		last := got.msgs[len(got.msgs)-1]
		if last.Channel != protocol.MetaConnect || !last.IsSuccessful() || last.Advice == nil || last.Advice.Reconnect != "retry" {
			t.Fatalf("held connect answered with %+v", got.msgs)
		}
		if got.took > 5*time.Second {
			t.Errorf("held connect took %v to be answered on shutdown", got.took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held connect not answered on shutdown")
	}
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestBadRedisURLRefusedClearly(t *testing.T) {
	cfg, err := config.LoadFrom(map[string]string{"BAYEUX_ENGINE": "redis://127.0.0.1:notaport/x", "BAYEUX_DATA_DIR": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "BAYEUX_ENGINE") {
		t.Fatalf("err = %v", err)
	}
}
