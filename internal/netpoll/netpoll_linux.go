package netpoll

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// batch is how many events one epoll_wait call can return.
const batch = 128

// armEvents is what a Wait asks for: readable, or the peer shut down its
// writing side; EPOLLERR and EPOLLHUP are always reported. The registration
// is level-triggered (data already buffered fires at once) and one-shot
// (after firing it stays in the set, disabled, until EPOLL_CTL_MOD re-arms
// it).
const armEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// wakeToken is the event data of the wake-up pipe; Wait tokens start at 1.
const wakeToken = 0

// The 64-bit epoll_data union of struct epoll_event is what syscall calls
// Fd and Pad on every Linux port: two adjacent int32 fields that end the
// struct (at offset 4 on 386 and amd64, where the kernel struct is packed,
// and at offset 8 elsewhere). These two declarations fail to compile on a
// port where that is not so, instead of silently truncating tokens.
var (
	_ [0]struct{} = [unsafe.Offsetof(syscall.EpollEvent{}.Pad) - unsafe.Offsetof(syscall.EpollEvent{}.Fd) - 4]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(syscall.EpollEvent{}) - unsafe.Offsetof(syscall.EpollEvent{}.Fd) - 8]struct{}{}
)

func setToken(ev *syscall.EpollEvent, token uint64) {
	ev.Fd = int32(uint32(token))
	ev.Pad = int32(uint32(token >> 32))
}

func getToken(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// state of an entry; guarded by Poller.mu.
type state uint8

const (
	pending   state = iota // registered, fn not called yet
	fired                  // taken by the poller goroutine: fn runs or has run
	cancelled              // cancel prevented the call
	dropped                // the conn was closed and its fd number reused by a later Wait: fn will never run
)

// entry is one Wait.
type entry struct {
	p     *Poller
	rc    syscall.RawConn
	fn    func()
	token uint64
	fd    int // the descriptor number at registration (meaningful only while the conn is open)
	state state
	err   error // result of arming, set inside Control
}

// Poller delivers one-shot read-readiness notifications for many
// connections with one epoll instance and one goroutine.
//
// All methods are safe for concurrent use. Functions passed to Wait run one
// at a time on the poller's goroutine: they must not block (typically they
// start a goroutine that reads the connection) and must not call Close,
// which waits for that goroutine; they may call Wait and cancel functions.
type Poller struct {
	epfd  int
	epf   *os.File // epfd, non-blocking, in Go's own netpoller
	wakeR int      // read end of the wake-up pipe, in the epoll set
	wakeW int
	done  chan struct{} // closed when the goroutine has exited

	mu      sync.Mutex
	closed  bool
	loopErr error             // why the goroutine stopped, if not Close
	next    uint64            // last token handed out
	byToken map[uint64]*entry // pending entries, by the token in their event data
	byFD    map[int]*entry    // the same pending entries, by descriptor number
}

// New starts a poller: it creates an epoll instance (epoll_create1) and one
// goroutine that waits on it (epoll_wait). On systems without epoll it
// returns an error wrapping [errors.ErrUnsupported] (on Linux, a kernel
// without epoll fails with ENOSYS, which errors.Is also matches with
// ErrUnsupported). Call Close to stop it.
func New() (*Poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("pipe2", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	setToken(&ev, wakeToken)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// The goroutine does not block in epoll_wait: a thread blocked in a
	// system call keeps its P until sysmon takes it back, which with
	// GOMAXPROCS=1 stalls every other goroutine for up to milliseconds.
	// Instead epfd is non-blocking and registered in Go's netpoller (an
	// epoll set is readable when it has events), the goroutine parks
	// there and calls epoll_wait with a zero timeout.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return nil, os.NewSyscallError("fcntl", err)
	}
	p := &Poller{
		epf:     os.NewFile(uintptr(epfd), "epoll"),
		epfd:    epfd,
		wakeR:   pipe[0],
		wakeW:   pipe[1],
		done:    make(chan struct{}),
		byToken: make(map[uint64]*entry),
		byFD:    make(map[int]*entry),
	}
	go p.loop()
	return p, nil
}

// Wait arranges for fn to be called once, on the poller's goroutine, when
// conn is readable, has been shut down by the peer (EOF) or has an error.
// fn must not block: typically it starts a goroutine that calls conn.Read.
// A conn whose data is already buffered in the kernel fires at once.
//
// conn's SyscallConn must give a descriptor that epoll accepts, as those of
// *net.TCPConn, *net.UnixConn and *net.UDPConn do. Otherwise (SyscallConn
// fails, or epoll_ctl refuses the descriptor: EPERM for a regular file), or
// when conn is already closed, Wait returns an error: for a closed conn,
// the error from its RawConn.Control, which wraps net.ErrClosed. A conn
// has at most one pending Wait (a second one returns ErrPending); calling
// Wait again after fn has run re-arms it.
//
// The returned cancel reports whether it prevented the call: true means fn
// will never run, false that fn has run, is running, or the Wait was already
// cancelled. Closing conn does not call fn, but fn may still run if conn
// became readable just before or while it was closed (the reader then gets
// net.ErrClosed from Read). Call cancel when abandoning a Wait (before or
// after closing conn), or the poller keeps the entry until the descriptor
// number is reused by a later Wait or the poller is closed.
// Wait and cancel may be called from any goroutine, including from fn.
func (p *Poller) Wait(conn syscall.Conn, fn func()) (cancel func() bool, err error) {
	if conn == nil || fn == nil {
		return nil, errors.New("netpoll: Wait needs a conn and a func")
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	e := &entry{p: p, rc: rc, fn: fn}
	// Control holds a reference on the descriptor: a concurrent Close
	// cannot release the number (and let another connection reuse it)
	// while epoll_ctl runs.
	if err := rc.Control(func(fd uintptr) { e.err = p.arm(e, int(fd)) }); err != nil {
		return nil, err
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.cancel, nil
}

// arm registers e for descriptor fd; it runs inside RawConn.Control.
func (p *Poller) arm(e *entry, fd int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		if p.loopErr != nil {
			return p.loopErr
		}
		return ErrClosed
	}
	if old := p.byFD[fd]; old != nil {
		// Either this very socket still has a pending Wait, or old's
		// conn was closed (which took its descriptor out of the epoll
		// set) and the number now belongs to conn. Re-arming with old's
		// own token tells which without changing anything that matters.
		var ev syscall.EpollEvent
		ev.Events = armEvents
		setToken(&ev, old.token)
		switch err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev); err {
		case nil:
			return ErrPending
		case syscall.ENOENT:
			old.state = dropped
			p.forget(old)
		default:
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	p.next++
	e.token = p.next
	e.fd = fd
	var ev syscall.EpollEvent
	ev.Events = armEvents
	setToken(&ev, e.token)
	// After a one-shot fired the descriptor stays in the set, disabled:
	// MOD re-arms it. A descriptor never registered (or closed since,
	// which removed it) is not in the set: ADD.
	err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	if err == syscall.ENOENT {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
		if err == syscall.EEXIST {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
		}
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	p.byToken[e.token] = e
	p.byFD[fd] = e
	return nil
}

// forget removes a pending entry from the maps; p.mu is held.
func (p *Poller) forget(e *entry) {
	delete(p.byToken, e.token)
	if p.byFD[e.fd] == e {
		delete(p.byFD, e.fd)
	}
}

// cancel is the func returned by Wait.
func (e *entry) cancel() bool {
	p := e.p
	var ok bool
	err := e.rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		wasPending := e.state == pending
		ok = p.stop(e)
		if wasPending && !p.closed {
			// The conn is open (Control succeeded), so fd is still
			// e.fd and its registration carries e.token. The error
			// is of no interest: the descriptor leaves the set when
			// it is closed anyway.
			syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		}
	})
	if err != nil {
		// The conn is closed, which removed its descriptor from the set.
		p.mu.Lock()
		ok = p.stop(e)
		p.mu.Unlock()
	}
	return ok
}

// stop marks e cancelled unless fn has been taken; p.mu is held.
func (p *Poller) stop(e *entry) bool {
	switch e.state {
	case pending:
		p.forget(e)
	case dropped:
	default:
		return false
	}
	e.state = cancelled
	return true
}

// loop is the poller's goroutine.
func (p *Poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, batch)
	rc, err := p.epf.SyscallConn()
	if err != nil {
		p.mu.Lock()
		p.loopErr = err
		p.closed = true
		p.mu.Unlock()
		return
	}
	for {
		var n int
		var werr error
		// Read calls the func, and while it returns false parks until Go's
		// netpoller sees epfd readable.
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, werr = syscall.EpollWait(int(fd), events, 0)
				// A signal: epoll_wait is never restarted, whatever
				// SA_RESTART says.
				if werr != syscall.EINTR {
					return n > 0 || werr != nil
				}
			}
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			p.mu.Lock()
			p.loopErr = os.NewSyscallError("epoll_wait", err)
			p.closed = true
			p.mu.Unlock()
			return
		}
		for i := range events[:n] {
			token := getToken(&events[i])
			if token == wakeToken {
				return // only Close writes to the pipe
			}
			// One lock per event, so that Close stops the calls
			// between two events and cancel's answer is exact.
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				return
			}
			e := p.byToken[token]
			if e != nil { // else cancelled, or stale
				e.state = fired
				p.forget(e)
			}
			p.mu.Unlock()
			if e != nil {
				fn := e.fn
				e.fn = nil // written only here, after the entry left the maps
				fn()
			}
		}
	}
}

// Close stops the poller's goroutine, waiting for a running fn to return,
// and closes the epoll instance. Functions of pending Waits are never
// called (their cancel still returns true), and later Waits return
// ErrClosed. Close must not be called from a function passed to Wait. A
// second Close returns ErrClosed.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed && p.byToken == nil {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	p.byToken, p.byFD = nil, nil // entries keep their state for cancel
	p.mu.Unlock()

	var err error
	for {
		_, err = syscall.Write(p.wakeW, []byte{1})
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil && err != syscall.EAGAIN {
		// The goroutine may be parked in epoll_wait forever; do not
		// close the descriptors under it.
		return os.NewSyscallError("write", err)
	}
	<-p.done
	if cerr := p.epf.Close(); cerr != nil && err == nil {
		err = cerr
	}
	for _, fd := range []int{p.wakeR, p.wakeW} {
		if cerr := syscall.Close(fd); cerr != nil && err == nil {
			err = os.NewSyscallError("close", cerr)
		}
	}
	return err
}
