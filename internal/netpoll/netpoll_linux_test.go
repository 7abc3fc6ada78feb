package netpoll

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// fireTimeout bounds every wait for a callback that must come.
const fireTimeout = 2 * time.Second

// quiet is how long a test watches for a callback that must not come (on
// top of the sentinel round trip in settle).
const quiet = 30 * time.Millisecond

func newPoller(t testing.TB) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func listen(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// pair returns both ends of a loopback TCP connection, closed at cleanup.
func pair(t testing.TB, ln *net.TCPListener) (server, client *net.TCPConn) {
	t.Helper()
	server, client, err := dial(ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// dialMu makes dial's Accept return the conn its Dial opened even when
// several goroutines dial the same listener.
var dialMu sync.Mutex

func dial(ln *net.TCPListener) (server, client *net.TCPConn, err error) {
	dialMu.Lock()
	defer dialMu.Unlock()
	client, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return nil, nil, err
	}
	server, err = ln.AcceptTCP()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return server, client, nil
}

func fdOf(t testing.TB, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// buffered reports whether c has bytes in its receive queue (peeking, so
// nothing is consumed and Go's runtime is not involved).
func buffered(t testing.TB, c syscall.Conn) bool {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		n, _, rerr = syscall.Recvfrom(int(fd), make([]byte, 1), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	if rerr != nil && rerr != syscall.EAGAIN {
		t.Fatal(rerr)
	}
	return n > 0
}

func write(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// counter is a callback that counts its calls and signals each one.
type counter struct {
	n  atomic.Int32
	ch chan struct{}
}

func newCounter() *counter { return &counter{ch: make(chan struct{}, 100)} }

func (c *counter) fn() { c.n.Add(1); c.ch <- struct{}{} }

func (c *counter) await(t testing.TB) {
	t.Helper()
	select {
	case <-c.ch:
	case <-time.After(fireTimeout):
		t.Fatal("callback not called")
	}
}

// settle returns once the poller has handled every event that was ready
// before the call: it waits a little, then fires a sentinel connection and
// waits for its callback (epoll's ready list is FIFO, and callbacks run in
// order on one goroutine).
func settle(t testing.TB, p *Poller, ln *net.TCPListener) {
	t.Helper()
	time.Sleep(quiet)
	s, c := pair(t, ln)
	done := make(chan struct{})
	if _, err := p.Wait(s, func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	write(t, c, "s")
	select {
	case <-done:
	case <-time.After(fireTimeout):
		t.Fatal("sentinel not called")
	}
}

func TestEpollEventLayout(t *testing.T) {
	var ev syscall.EpollEvent
	if d := unsafe.Offsetof(ev.Pad) - unsafe.Offsetof(ev.Fd); d != 4 {
		t.Fatalf("Pad is %d bytes after Fd", d)
	}
	if tail := unsafe.Sizeof(ev) - unsafe.Offsetof(ev.Fd); tail != 8 {
		t.Fatalf("Fd starts %d bytes before the end", tail)
	}
	for _, tok := range []uint64{0, 1, 1<<31 + 5, 1<<32 - 1, 1 << 32, 1<<63 | 12345, ^uint64(0)} {
		setToken(&ev, tok)
		if got := getToken(&ev); got != tok {
			t.Errorf("token %#x came back as %#x", tok, got)
		}
	}
}

// TestFires: each way a connection becomes readable fires the callback
// exactly once, and the ordinary Read then sees what fired it.
func TestFires(t *testing.T) {
	tests := []struct {
		name     string
		before   func(t *testing.T, server, client *net.TCPConn) // before Wait
		trigger  func(t *testing.T, server, client *net.TCPConn) // after Wait
		wantData string
		wantErr  func(error) bool
	}{
		{
			name:     "data",
			trigger:  func(t *testing.T, _, c *net.TCPConn) { write(t, c, "hello") },
			wantData: "hello",
		},
		{
			name:     "data before Wait",
			before:   func(t *testing.T, _, c *net.TCPConn) { write(t, c, "early") },
			wantData: "early",
		},
		{
			name:    "peer close",
			trigger: func(t *testing.T, _, c *net.TCPConn) { c.Close() },
			wantErr: func(err error) bool { return err == io.EOF },
		},
		{
			name: "peer half close",
			trigger: func(t *testing.T, _, c *net.TCPConn) {
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: func(err error) bool { return err == io.EOF },
		},
		{
			name: "peer reset",
			trigger: func(t *testing.T, _, c *net.TCPConn) {
				c.SetLinger(0)
				c.Close()
			},
			wantErr: func(err error) bool { return errors.Is(err, syscall.ECONNRESET) },
		},
	}
	p := newPoller(t)
	ln := listen(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := pair(t, ln)
			if tt.before != nil {
				tt.before(t, s, c)
				for deadline := time.Now().Add(fireTimeout); !buffered(t, s); {
					if time.Now().After(deadline) {
						t.Fatal("data not delivered")
					}
					time.Sleep(time.Millisecond)
				}
			}
			cnt := newCounter()
			cancel, err := p.Wait(s, cnt.fn)
			if err != nil {
				t.Fatal(err)
			}
			if tt.trigger != nil {
				tt.trigger(t, s, c)
			}
			cnt.await(t)
			settle(t, p, ln)
			if n := cnt.n.Load(); n != 1 {
				t.Fatalf("callback ran %d times", n)
			}
			if cancel() {
				t.Error("cancel after the callback ran returned true")
			}
			s.SetReadDeadline(time.Now().Add(fireTimeout))
			buf := make([]byte, 64)
			n, err := s.Read(buf)
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("Read = %d, %v", n, err)
				}
				return
			}
			if err != nil || string(buf[:n]) != tt.wantData {
				t.Fatalf("Read = %q, %v; want %q", buf[:n], err, tt.wantData)
			}
		})
	}
}

// TestOnceUntilRearmed: unread data does not fire again (one-shot) until
// Wait re-arms, and then fires at once (level-triggered).
func TestOnceUntilRearmed(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, c := pair(t, ln)
	cnt := newCounter()
	if _, err := p.Wait(s, cnt.fn); err != nil {
		t.Fatal(err)
	}
	write(t, c, "a")
	cnt.await(t)
	write(t, c, "b") // more data, nothing read: still disabled
	settle(t, p, ln)
	if n := cnt.n.Load(); n != 1 {
		t.Fatalf("callback ran %d times before re-arming", n)
	}
	if _, err := p.Wait(s, cnt.fn); err != nil { // EPOLL_CTL_MOD
		t.Fatal(err)
	}
	cnt.await(t)
	if n := cnt.n.Load(); n != 2 {
		t.Fatalf("callback ran %d times after re-arming", n)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ab" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// Armed with nothing to read: quiet.
	cancel, err := p.Wait(s, cnt.fn)
	if err != nil {
		t.Fatal(err)
	}
	settle(t, p, ln)
	if n := cnt.n.Load(); n != 2 {
		t.Fatalf("callback ran %d times with nothing to read", n)
	}
	if !cancel() {
		t.Fatal("cancel of a pending Wait returned false")
	}
}

func TestCancelBeforeData(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, c := pair(t, ln)
	var called atomic.Bool
	cancel, err := p.Wait(s, func() { called.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	if !cancel() {
		t.Fatal("cancel returned false")
	}
	if cancel() {
		t.Fatal("second cancel returned true")
	}
	write(t, c, "x")
	settle(t, p, ln)
	if called.Load() {
		t.Fatal("cancelled callback ran")
	}
	// cancel took the descriptor out of the set (EPOLL_CTL_DEL): a new
	// Wait adds it back and fires for the buffered byte.
	cnt := newCounter()
	if _, err := p.Wait(s, cnt.fn); err != nil {
		t.Fatal(err)
	}
	cnt.await(t)
	if called.Load() {
		t.Fatal("cancelled callback ran")
	}
}

func TestCancelAfterFire(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, c := pair(t, ln)
	cnt := newCounter()
	cancel, err := p.Wait(s, cnt.fn)
	if err != nil {
		t.Fatal(err)
	}
	write(t, c, "x")
	cnt.await(t)
	if cancel() {
		t.Fatal("cancel after the callback ran returned true")
	}
}

// TestCancelClosedConn: cancel of a Wait whose conn was closed still
// reports that it prevented the call.
func TestCancelClosedConn(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, _ := pair(t, ln)
	cancel, err := p.Wait(s, func() { t.Error("callback of a closed conn ran") })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !cancel() {
		t.Fatal("cancel returned false")
	}
}

func TestRearmLoop(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, c := pair(t, ln)
	cnt := newCounter()
	buf := make([]byte, 1)
	for i := range 1000 {
		if _, err := p.Wait(s, cnt.fn); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		write(t, c, "x")
		cnt.await(t)
		if _, err := s.Read(buf); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if n := cnt.n.Load(); n != 1000 {
		t.Fatalf("callback ran %d times", n)
	}
}

// TestWaitTwice: a second Wait while one is pending fails, also from
// inside a callback, where re-arming works.
func TestWaitTwice(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, _ := pair(t, ln)
	if _, err := p.Wait(s, func() {}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(s, func() {}); !errors.Is(err, ErrPending) {
		t.Fatalf("second Wait: %v", err)
	}

	// A callback that re-arms its own conn (the data is still unread, so
	// the new Wait fires at once) and stops after three rounds.
	s2, c2 := pair(t, ln)
	var rounds atomic.Int32
	done := make(chan error, 1)
	var fn func()
	fn = func() {
		if rounds.Add(1) == 3 {
			done <- nil
			return
		}
		if _, err := p.Wait(s2, fn); err != nil {
			done <- err
		}
	}
	if _, err := p.Wait(s2, fn); err != nil {
		t.Fatal(err)
	}
	write(t, c2, "x")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(fireTimeout):
		t.Fatalf("callback ran %d times", rounds.Load())
	}
}

func TestManyConns(t *testing.T) {
	const total, fire = 2000, 300
	p := newPoller(t)
	ln := listen(t)
	servers := make([]*net.TCPConn, total)
	clients := make([]*net.TCPConn, total)
	cancels := make([]func() bool, total)
	got := make(chan int, total)
	for i := range total {
		servers[i], clients[i] = pair(t, ln)
		var err error
		cancels[i], err = p.Wait(servers[i], func() { got <- i })
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	want := map[int]bool{}
	for _, i := range rand.New(rand.NewPCG(seed, 0)).Perm(total)[:fire] {
		want[i] = true
		write(t, clients[i], "x")
	}
	fired := map[int]bool{}
	deadline := time.After(fireTimeout)
	for len(fired) < fire {
		select {
		case i := <-got:
			if fired[i] {
				t.Fatalf("conn %d fired twice", i)
			}
			fired[i] = true
		case <-deadline:
			t.Fatalf("%d of %d callbacks ran", len(fired), fire)
		}
	}
	settle(t, p, ln)
	close(got)
	for i := range got {
		t.Errorf("conn %d fired again or without data", i)
	}
	for i := range total {
		if fired[i] != want[i] {
			t.Errorf("conn %d: fired %v, had data %v", i, fired[i], want[i])
		}
		if cancels[i]() != !want[i] {
			t.Errorf("conn %d: cancel reported the wrong thing", i)
		}
	}
}

type noConn struct{}

func (noConn) SyscallConn() (syscall.RawConn, error) { return nil, errors.New("no descriptor") }

func TestWaitErrors(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	closed, _ := pair(t, ln)
	closed.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	open, _ := pair(t, ln)

	tests := []struct {
		name string
		conn syscall.Conn
		fn   func()
		is   error // nil: any error
	}{
		{"closed conn", closed, func() {}, net.ErrClosed},
		{"nil conn", nil, func() {}, nil},
		{"nil func", open, nil, nil},
		{"no descriptor", noConn{}, func() {}, nil},
		{"regular file", file, func() {}, syscall.EPERM}, // epoll refuses it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cancel, err := p.Wait(tt.conn, tt.fn)
			if err == nil || cancel != nil {
				t.Fatalf("Wait = %v, %v; want an error", cancel != nil, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Wait: %v; want %v", err, tt.is)
			}
		})
	}
}

// TestFDReuse: a conn closed with its Wait pending, and its descriptor
// number reused by a new conn that gets data: the old callback never runs,
// neither before nor after the new conn is registered.
func TestFDReuse(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	old, _ := pair(t, ln)
	oldFD := fdOf(t, old)
	var oldCalled atomic.Bool
	oldCancel, err := p.Wait(old, func() { oldCalled.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	old.Close() // no cancel

	// New conns take the lowest free numbers; keep them open until one
	// end has oldFD.
	var target, peer *net.TCPConn
	for range 1000 {
		s, c := pair(t, ln)
		if fdOf(t, s) == oldFD {
			target, peer = s, c
			break
		}
		if fdOf(t, c) == oldFD {
			target, peer = c, s
			break
		}
	}
	if target == nil {
		t.Skipf("descriptor %d not reused", oldFD)
	}
	write(t, peer, "new")
	settle(t, p, ln)
	if oldCalled.Load() {
		t.Fatal("old callback ran for the new conn's data (not registered)")
	}
	cnt := newCounter()
	if _, err := p.Wait(target, cnt.fn); err != nil {
		t.Fatal(err)
	}
	cnt.await(t)
	settle(t, p, ln)
	if oldCalled.Load() {
		t.Fatal("old callback ran for the new conn's data")
	}
	if !oldCancel() {
		t.Fatal("cancel of the closed conn's Wait returned false")
	}
}

// TestClosePending: Close returns with Waits pending; their callbacks never
// run; Wait and Close afterwards fail.
func TestClosePending(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	var called atomic.Int32
	var clients []*net.TCPConn
	var cancels []func() bool
	for range 20 {
		s, c := pair(t, ln)
		cancel, err := p.Wait(s, func() { called.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		cancels = append(cancels, cancel)
	}
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(fireTimeout):
		t.Fatal("Close did not return")
	}
	for _, c := range clients {
		write(t, c, "x")
	}
	time.Sleep(quiet)
	if n := called.Load(); n != 0 {
		t.Fatalf("%d callbacks ran after Close", n)
	}
	s, _ := pair(t, ln)
	if _, err := p.Wait(s, func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	for i, cancel := range cancels {
		if !cancel() {
			t.Fatalf("cancel %d after Close returned false", i)
		}
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCloseWhileFiring: no callback runs once Close has returned, even
// with events arriving during Close.
func TestCloseWhileFiring(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	var closeReturned, late atomic.Bool
	fn := func() {
		if closeReturned.Load() {
			late.Store(true)
		}
	}
	const n = 200
	clients := make([]*net.TCPConn, n)
	for i := range n {
		var s *net.TCPConn
		s, clients[i] = pair(t, ln)
		if _, err := p.Wait(s, fn); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for _, c := range clients {
			c.Write([]byte("x"))
		}
	}()
	time.Sleep(time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	closeReturned.Store(true)
	time.Sleep(quiet)
	if late.Load() {
		t.Fatal("a callback ran after Close returned")
	}
}

// TestGoNetpollerStillWorks: the intended use. The callback starts a
// goroutine that reads with conn.Read; that goroutine can also block in
// Read (parked in Go's own netpoller), honour a deadline, and re-arm.
func TestGoNetpollerStillWorks(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	s, c := pair(t, ln)
	type result struct {
		data string
		err  error
	}
	results := make(chan result, 4)
	reader := func() {
		go func() {
			buf := make([]byte, 64)
			n, err := s.Read(buf) // data is there
			results <- result{string(buf[:n]), err}
			n, err = s.Read(buf) // nothing yet: parks in Go's netpoller
			results <- result{string(buf[:n]), err}
			s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err = s.Read(buf) // nothing comes: deadline
			results <- result{"", err}
			s.SetReadDeadline(time.Time{})
			_, err = p.Wait(s, func() { results <- result{"rearmed", nil} })
			if err != nil {
				results <- result{"", err}
			}
		}()
	}
	if _, err := p.Wait(s, reader); err != nil {
		t.Fatal(err)
	}
	next := func() result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(fireTimeout):
			t.Fatal("reader stuck")
			return result{}
		}
	}
	write(t, c, "one")
	if r := next(); r.data != "one" || r.err != nil {
		t.Fatalf("first Read: %+v", r)
	}
	time.Sleep(20 * time.Millisecond) // let the reader park
	write(t, c, "two")
	if r := next(); r.data != "two" || r.err != nil {
		t.Fatalf("blocking Read: %+v", r)
	}
	if r := next(); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with deadline: %+v", r)
	}
	write(t, c, "three")
	if r := next(); r.data != "rearmed" || r.err != nil {
		t.Fatalf("re-armed Wait: %+v", r)
	}
	buf := make([]byte, 64)
	if n, err := s.Read(buf); string(buf[:n]) != "three" || err != nil {
		t.Fatalf("last Read: %q, %v", buf[:n], err)
	}
}

// TestConcurrent: many goroutines arm, cancel, write and close at once
// (so descriptor numbers are reused all the time); a callback runs only for
// a conn that got data and was neither cancelled nor closed.
func TestConcurrent(t *testing.T) {
	p := newPoller(t)
	ln := listen(t)
	const workers, rounds = 8, 100
	var unexpected atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				if err := concurrentRound(p, ln, r.IntN(4), &unexpected); err != nil {
					t.Errorf("worker %d round %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	settle(t, p, ln)
	if n := unexpected.Load(); n != 0 {
		t.Fatalf("%d callbacks ran for cancelled or closed conns", n)
	}
}

func concurrentRound(p *Poller, ln *net.TCPListener, kind int, unexpected *atomic.Int32) error {
	s, c, err := dial(ln)
	if err != nil {
		return err
	}
	defer c.Close()
	defer s.Close()
	ch := make(chan struct{})
	cancel, err := p.Wait(s, func() {
		if kind != 0 {
			unexpected.Add(1)
		}
		close(ch)
	})
	if err != nil {
		return err
	}
	switch kind {
	case 0: // data: fires, cancel is too late
		c.Write([]byte("x"))
		select {
		case <-ch:
		case <-time.After(fireTimeout):
			return errors.New("no callback")
		}
		if cancel() {
			return errors.New("cancel after the callback returned true")
		}
	case 1: // cancel, then data
		if !cancel() {
			return errors.New("cancel returned false")
		}
		c.Write([]byte("x"))
	case 2: // close, then cancel
		s.Close()
		if !cancel() {
			return errors.New("cancel after close returned false")
		}
	case 3: // close without cancel, then data from the peer
		s.Close()
		c.Write([]byte("x"))
	}
	return nil
}

func TestUnixConn(t *testing.T) {
	p := newPoller(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cnt := newCounter()
	if _, err := p.Wait(s, cnt.fn); err != nil {
		t.Fatal(err)
	}
	write(t, c, "x")
	cnt.await(t)
}

// TestTenThousand registers 10 000 UDP sockets (one descriptor each, so the
// test stays within the usual descriptor limit), sends a datagram to a
// random 500 of them, and checks that exactly those fire.
func TestTenThousand(t *testing.T) {
	const total, fire = 10000, 500
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < total+500 {
		t.Skipf("descriptor limit %d", lim.Cur)
	}
	p := newPoller(t)
	conns := make([]*net.UDPConn, total)
	got := make(chan int, total)
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		defer c.Close()
		if _, err := p.Wait(c, func() { got <- i }); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	sender, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	want := map[int]bool{}
	for _, i := range rand.New(rand.NewPCG(seed, 0)).Perm(total)[:fire] {
		want[i] = true
		if _, err := sender.WriteToUDP([]byte("x"), conns[i].LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	fired := map[int]bool{}
	deadline := time.After(fireTimeout)
	for len(fired) < fire {
		select {
		case i := <-got:
			if !want[i] || fired[i] {
				t.Fatalf("conn %d fired (had data %v, fired before %v)", i, want[i], fired[i])
			}
			fired[i] = true
		case <-deadline:
			t.Fatalf("%d of %d callbacks ran", len(fired), fire)
		}
	}
	time.Sleep(quiet)
	if len(got) != 0 {
		t.Fatalf("%d more callbacks", len(got))
	}
}
