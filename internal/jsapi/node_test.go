//go:build !js

package jsapi

import (
	"testing"

	"github.com/bayeux-go/bayeux/internal/testutil"
)

// TestGlueInNode runs glue_js_test.go (and the other tests that need no
// server) in the wasm build under Node.js: the syscall/js glue's
// conversions, promises and throwing callbacks. It compiles a wasm test
// binary, so, like wasmclient's wasm tests, it runs only when
// WASMCLIENT_NODE_TEST=1; the browser test e2e/TestEmbedJSAPI covers the
// glue in every run.
func TestGlueInNode(t *testing.T) {
	testutil.WasmTestsInNode(t, "", nil)
}
