//go:build !js

package wasmclient

import (
	"testing"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/server"
)

// TestFetchTransportInNode runs fetch_js_test.go and websocket_js_test.go,
// the wasm build of the client with FetchTransport and the browser-API
// WebSocketTransport, under Node.js against a real server. It
// needs node and compiles a wasm test binary, so it runs only when
// WASMCLIENT_NODE_TEST=1.
func TestFetchTransportInNode(t *testing.T) {
	testutil.WasmTestsInNode(t, "^(TestFetch|TestJSWebSocket)", func() []string {
		// Node's fetch keeps no cookies, so the session cannot be bound to one.
		ts := newTestServer(t, server.Options{TrustClientSession: true}, nil)
		return []string{"WASMCLIENT_URL=" + ts.url}
	})
}
