// Package e2e drives the real bin/bayeux with the chat in headless
// Chromium (chromedp). Build first: `make build` (the Makefile's test
// target does). The tests fail, never skip, when the binary or Chromium is
// missing.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// binary returns the server binary to test: $BAYEUX_BIN or ../bin/bayeux.
func binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BAYEUX_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../bin/bayeux")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("server binary %s missing: run `make build` first (%v)", bin, err)
	}
	return bin
}

// chromium returns the Chromium executable.
func chromium(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	t.Fatal("Chromium not found: install Debian's chromium (make test does when run as root) or set CHROMIUM")
	return ""
}

// bayeux is a running server process.
type bayeux struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string
	URL     string
	env     []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs strings.Builder
}

// startBayeux starts bin/bayeux on a free loopback port with a fresh data
// directory holding the given users (name -> password).
func startBayeux(t *testing.T, users map[string]string, env ...string) *bayeux {
	t.Helper()
	b := &bayeux{t: t, bin: binary(t), dataDir: t.TempDir(), env: env}
	for name, pw := range users {
		cmd := exec.Command(b.bin, "passwd", filepath.Join(b.dataDir, "users"), name)
		cmd.Stdin = strings.NewReader(pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("passwd %s: %v %s", name, err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	ln.Close()
	b.URL = "http://" + b.addr
	b.start()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", b.log())
		}
	})
	return b
}

func (b *bayeux) start() {
	b.t.Helper()
	cmd := exec.Command(b.bin)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + b.dataDir,
		"BAYEUX_ADDR=" + b.addr,
		"BAYEUX_DATA_DIR=" + b.dataDir,
		"BAYEUX_LOG_LEVEL=info",
		// Every test client comes from 127.0.0.1: no per-address limits.
		"BAYEUX_CLIENT_MAX_CONNECTIONS=0",
		"BAYEUX_MAX_SESSIONS_PER_IP=0",
		"BAYEUX_HANDSHAKE_RATE=0",
	}, b.env...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.mu.Lock()
			b.logs.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
		}
	}()
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(b.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("server did not become healthy; log:\n%s", b.log())
}

func (b *bayeux) stop() {
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// kill ends the server at once with SIGKILL (no graceful shutdown).
func (b *bayeux) kill() {
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// restart stops the server and starts it again on the same address and
// data directory (users and login keys survive, Bayeux sessions do not).
func (b *bayeux) restart() {
	b.t.Helper()
	b.stop()
	b.start()
}

func (b *bayeux) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs.String()
}

// newBrowser starts headless Chromium; each browser() of the returned
// function is a separate browser context (own cookies and storage).
func newBrowser(t *testing.T) func() context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return func() context.Context {
		ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// Open the tab now, on a context without a timeout: the context of
		// the first Run owns the tab, so a timeout there would close it.
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("open tab: %v", err)
		}
		return ctx
	}
}

// do runs chromedp steps with a timeout, failing the test on error.
func do(t *testing.T, ctx context.Context, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// get runs one chromedp action with a timeout and returns its value.
func get[T any](t *testing.T, ctx context.Context, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// sel selects elements by data-testid.
func sel(testid string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, testid)) }
