package abuse

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bayeux-go/bayeux/internal/config"
)

// account is a user of the target with its password.
type account struct{ name, password string }

// target is the server under attack: its URL, its process (PID 0 when
// unknown: no RSS), the limits the verdicts expect (the server's
// configuration, or what the environment says it is), and the accounts
// the attacks log in with.
type target struct {
	url    string
	pid    int
	limits *config.Config
	// settings lists what the suite set for a server it started (NAME=value).
	settings []string

	user   account // a user who is not an admin (the logged-in attacks)
	admin  account // an admin ("" name when unknown)
	victim account // the login-guessing target
	rooms  account // the room flooder

	stop    func() error // stops a server the suite started
	logTail *tail        // its last log lines, for ERROR reports
}

// quickSettings are the settings of a started server that differ from
// the defaults: limits whose default would take long to reach or to wait
// out, and one that would hide the limit under test. Everything else
// keeps its default, as deployed.
var quickSettings = map[string]string{
	// The 90 guessing handshakes from one address all reach the password
	// check (the default burst, 30, would refuse 60 of them first): the
	// login limit is tested, not the handshake rate. Handshake flooding
	// then sends 200.
	"BAYEUX_HANDSHAKE_BURST": "100",
	// Slow bodies are cut after 2 s instead of 20 s.
	"BAYEUX_READ_TIMEOUT": "2s",
	// A held connect must outlive the read timeout: held 4 s, not 30 s.
	"BAYEUX_POLL_TIMEOUT": "4s",
	// The sessions-per-address cap is reached by 40 handshakes within
	// the handshake burst (30) instead of 100 handshakes over 14 s.
	"BAYEUX_MAX_SESSIONS_PER_IP": "20",
}

// startTarget starts bin (bin/bayeux) on a free loopback port with a
// temporary data directory holding a users file made with `bin passwd`
// (an admin, a user, the guessing victim and the room flooder, random
// passwords) and quickSettings. The server's log goes to a temporary
// file; its tail is kept for reports.
func startTarget(ctx context.Context, bin string) (*target, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (run make build first)", err)
	}
	dir, err := os.MkdirTemp("", "bayeux-abuse-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	t := &target{
		admin:  account{"boss", randomPassword()},
		user:   account{"mallory", randomPassword()},
		victim: account{"victim", randomPassword()},
		rooms:  account{"flooder", randomPassword()},
	}
	users := filepath.Join(dir, "users")
	for _, a := range []account{t.admin, t.user, t.victim, t.rooms} {
		cmd := exec.CommandContext(ctx, bin, "passwd", users, a.name)
		cmd.Stdin = strings.NewReader(a.password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			cleanup()
			return nil, fmt.Errorf("%s passwd: %v: %s", bin, err, out)
		}
	}
	vars := maps.Clone(quickSettings)
	vars["BAYEUX_ADDR"] = "127.0.0.1:0"
	vars["BAYEUX_DATA_DIR"] = dir
	vars["BAYEUX_ADMINS"] = t.admin.name
	vars["BAYEUX_LOG_LEVEL"] = "info"
	if t.limits, err = config.LoadFrom(vars); err != nil {
		cleanup()
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(quickSettings)) {
		t.settings = append(t.settings, k+"="+quickSettings[k])
	}

	cmd := exec.Command(bin)
	cmd.Env = childEnv(os.Environ(), vars)
	// The server dies with the suite, whatever happens to the suite.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cleanup()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, err
	}
	t.pid = cmd.Process.Pid
	t.logTail = newTail(40)
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		t.logTail.scan(stderr, addr)
	}()
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		<-logDone
		exited <- err
	}()
	var once sync.Once
	var stopErr error
	t.stop = func() error {
		once.Do(func() {
			defer cleanup()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				stopErr = errors.New("the server did not stop within 15 s of SIGTERM: killed")
			}
		})
		return stopErr
	}
	select {
	case a := <-addr:
		t.url = "http://" + a
		return t, nil
	case err := <-exited:
		cleanup()
		return nil, fmt.Errorf("%s exited before listening (%v):\n%s", bin, err, t.logTail)
	case <-time.After(20 * time.Second):
		t.stop()
		return nil, fmt.Errorf("%s did not listen within 20 s:\n%s", bin, t.logTail)
	case <-ctx.Done():
		t.stop()
		return nil, ctx.Err()
	}
}

// childEnv is env without any BAYEUX_ variable (the operator's own must
// not change the suite's server), plus vars.
func childEnv(env []string, vars map[string]string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, config.Prefix) {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

func randomPassword() string { return rand.Text()[:20] }

// attachTarget describes a running server: its URL, its PID (0: no RSS),
// and a user's account. Its limits are read from the BAYEUX_* environment
// as the server reads them, so an operator who exports the server's
// settings gets verdicts against those (unset: the defaults).
func attachTarget(rawURL string, pid int, user account) (*target, error) {
	limits, err := config.Load()
	if err != nil {
		return nil, err
	}
	return &target{url: strings.TrimSuffix(rawURL, "/"), pid: pid, limits: limits,
		user: user, victim: user, rooms: user, stop: func() error { return nil }}, nil
}

// listening matches the server's "bayeux listening" log line.
var listening = regexp.MustCompile(`msg="bayeux listening" addr=(\S+)`)

// tail keeps the last lines of a log. Safe for concurrent use.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newTail(max int) *tail { return &tail{max: max} }

// scan reads r to its end, keeping the last lines, and sends the address
// of the first "bayeux listening" line to addr.
func (t *tail) scan(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if !sent {
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
				sent = true
			}
		}
		t.mu.Lock()
		t.lines = append(t.lines, line)
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
		t.mu.Unlock()
	}
	// A scanner stopped by an over-long line must not block the server
	// on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (t *tail) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
