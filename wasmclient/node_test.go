//go:build !js

package wasmclient

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bayeux-go/bayeux/server"
)

// TestFetchTransportInNode runs fetch_js_test.go and websocket_js_test.go,
// the wasm build of the client with FetchTransport and the browser-API
// WebSocketTransport, under Node.js against a real server. It
// needs node and compiles a wasm test binary, so it runs only when
// WASMCLIENT_NODE_TEST=1.
func TestFetchTransportInNode(t *testing.T) {
	if os.Getenv("WASMCLIENT_NODE_TEST") == "" {
		t.Skip("set WASMCLIENT_NODE_TEST=1 to run the wasm client under Node.js")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found")
	}
	// Node's fetch keeps no cookies, so the session cannot be bound to one.
	ts := newTestServer(t, server.Options{TrustClientSession: true}, nil)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "test", "-count=1", "-timeout=2m", "-v", "-run", "^(TestFetch|TestJSWebSocket)", ".")
	env := os.Environ()
	if out, err := exec.Command("node", "--experimental-websocket", "-e", "").CombinedOutput(); err == nil && len(out) == 0 {
		// Node 20 and 21 have a WebSocket only behind this flag.
		env = append(env, "NODE_OPTIONS=--experimental-websocket "+os.Getenv("NODE_OPTIONS"))
	}
	cmd.Env = append(env,
		"GOOS=js", "GOARCH=wasm",
		"PATH="+filepath.Join(runtime.GOROOT(), "lib", "wasm")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"WASMCLIENT_URL="+ts.url,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("wasm test output:\n%s", out)
	if err != nil {
		t.Fatalf("wasm tests failed: %v", err)
	}
}
