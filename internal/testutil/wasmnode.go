package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// WasmTestsInNode compiles the tests of the package in the current
// directory for GOOS=js GOARCH=wasm and runs those matching run (all when
// "") under Node.js with Go's wasm exec helper, with what env returns
// (when not nil: it may start a server for them) added to their
// environment. It runs only when WASMCLIENT_NODE_TEST=1 (it compiles a
// wasm test binary: too slow for every run); node missing then fails the
// test under CI=true and skips it elsewhere. The output is logged, and a
// failure fails t.
func WasmTestsInNode(t *testing.T, run string, env func() []string) {
	t.Helper()
	if os.Getenv("WASMCLIENT_NODE_TEST") == "" {
		t.Skip("set WASMCLIENT_NODE_TEST=1 to run the wasm build of these tests under Node.js")
	}
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node not found (WASMCLIENT_NODE_TEST=1 under CI)")
		}
		t.Skip("node not found")
	}
	args := []string{"test", "-count=1", "-timeout=2m", "-v"}
	if run != "" {
		args = append(args, "-run", run)
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, ".")...)
	cmd.Env = os.Environ()
	if out, err := exec.Command("node", "--experimental-websocket", "-e", "").CombinedOutput(); err == nil && len(out) == 0 {
		// Node 20 and 21 have a WebSocket only behind this flag.
		cmd.Env = append(cmd.Env, "NODE_OPTIONS=--experimental-websocket "+os.Getenv("NODE_OPTIONS"))
	}
	cmd.Env = append(cmd.Env, "GOOS=js", "GOARCH=wasm",
		"PATH="+filepath.Join(runtime.GOROOT(), "lib", "wasm")+string(os.PathListSeparator)+os.Getenv("PATH"))
	if env != nil {
		cmd.Env = append(cmd.Env, env()...)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("wasm test output:\n%s", out)
	if err != nil {
		t.Fatalf("wasm tests failed: %v", err)
	}
}
