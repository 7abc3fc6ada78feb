// Package redistest starts real Redis deployments for tests, on free
// loopback ports with their data in temporary directories: a redis-server
// per test (Start) or one shared by a test binary (Shared, stopped by
// StopShared in TestMain), a Redis Cluster of three masters
// (StartCluster) or a primary with a replica and a Sentinel
// (StartSentinel). Without redis-server (and redis-cli for a cluster) the
// tests fail, never skip: CI must not pass because a tool is missing. It
// is imported by _test.go files only.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a redis-server process started by a test.
type Server struct {
	bin   string
	dir   string
	port  int
	extra []string
	// conf, when set, is a configuration file given first (a Sentinel's).
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited
	out  *bytes.Buffer
	// URL is redis://127.0.0.1:PORT/0.
	URL string
}

// Port is the server's port.
func (r *Server) Port() int { return r.port }

// PID is the process id (0 when it does not run).
func (r *Server) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Client returns a go-redis client of the server; the caller closes it.
func (r *Server) Client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: r.Addr(), MaxRetries: -1})
}

// Addr returns host:port.
func (r *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func binary() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found in PATH: the Redis tests need a real Redis " +
			"(Debian/Ubuntu: apt-get install -y redis-server)"
		if os.Getenv("CI") != "" {
			msg += "; CI must provide it"
		}
		return "", fmt.Errorf("%s", msg)
	}
	return bin, nil
}

// New starts redis-server with its data in dir; extra are more config
// arguments ("--appendonly", "yes", ...). Persistence is off unless extra
// turns it on. The caller must Kill it.
func New(dir string, extra ...string) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	r := &Server{bin: bin, dir: dir, extra: extra}
	var lastErr error
	for range 5 {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r.port = port
		if lastErr = r.start(); lastErr == nil {
			return r, nil
		}
	}
	return nil, lastErr
}

// FreePort returns a loopback port nobody listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on r.port and waits until it answers.
func (r *Server) start() error {
	var args []string
	if r.conf != "" {
		args = append(args, r.conf)
	}
	args = append(args, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning", "--logfile", "")
	if r.conf == "" {
		args = append(args, "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction")
	}
	args = append(args, r.extra...)
	out := new(bytes.Buffer)
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.done, r.out = cmd, exited, out
	r.mu.Unlock()
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(out.String()))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond) // polling the new process, not synchronising goroutines
	}
	r.Kill()
	return fmt.Errorf("redis-server on port %d did not answer", r.port)
}

// Kill stops the server at once (SIGKILL: no save on exit).
func (r *Server) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
}

// Restart starts the server again on the same port with the same data
// directory.
func (r *Server) Restart() error {
	var err error
	for range 50 {
		if err = r.start(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // the port may still be held
	}
	return err
}

// Start starts a private redis-server for t, killed when t ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	r, err := New(t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// The redis-server shared by the tests of one binary that need no private
// one; each test uses its own key prefix (Prefix).
var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Shared returns the test binary's shared redis-server, starting it on
// first use. Call StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "bayeux-redis-test")
		if shared.err == nil {
			shared.srv, shared.err = New(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// StopShared kills the shared redis-server, if it was started, and
// removes its directory.
func StopShared() {
	if shared.srv != nil {
		shared.srv.Kill()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

var prefixSeq struct {
	mu sync.Mutex
	n  int
}

// Prefix returns a key prefix no other test of the binary uses.
func Prefix(t testing.TB) string {
	prefixSeq.mu.Lock()
	prefixSeq.n++
	n := prefixSeq.n
	prefixSeq.mu.Unlock()
	return fmt.Sprintf("test%d:%s:", n, t.Name())
}
