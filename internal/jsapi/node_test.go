//go:build !js

package jsapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestGlueInNode runs glue_js_test.go (and the other tests that need no
// server) in the wasm build under Node.js: the syscall/js glue's
// conversions, promises and throwing callbacks. It compiles a wasm test
// binary, so, like wasmclient's wasm tests, it runs only when
// WASMCLIENT_NODE_TEST=1; the browser test e2e/TestEmbedJSAPI covers the
// glue in every run.
func TestGlueInNode(t *testing.T) {
	if os.Getenv("WASMCLIENT_NODE_TEST") == "" {
		t.Skip("set WASMCLIENT_NODE_TEST=1 to run the wasm glue under Node.js")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found")
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "test", "-count=1", "-timeout=2m", "-v", ".")
	cmd.Env = append(os.Environ(),
		"GOOS=js", "GOARCH=wasm",
		"PATH="+filepath.Join(runtime.GOROOT(), "lib", "wasm")+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("wasm test output:\n%s", out)
	if err != nil {
		t.Fatalf("wasm tests failed: %v", err)
	}
}
