// Package faultproxy is a loopback TCP proxy for tests that kills
// connections at random: in the middle of a request (client to server) or
// in the middle of a response (server to client). It is deterministic for
// a given seed, so a failing run can be repeated.
package faultproxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
)

// Options configures a Proxy.
type Options struct {
	// Target is the address to forward to (host:port).
	Target string
	// KillRequest and KillResponse are the probabilities (0..1) that a
	// connection is cut while forwarding requests or responses. The cut
	// happens after a random number of bytes of that direction, up to
	// MaxRequestBytes or MaxResponseBytes, so keep-alive connections that
	// carry many requests are cut in the middle of one of them.
	KillRequest, KillResponse float64
	// MaxRequestBytes and MaxResponseBytes bound where a cut falls
	// (defaults 2000 and 20000).
	MaxRequestBytes, MaxResponseBytes int64
	// Seed makes the sequence of faults repeatable.
	Seed uint64
}

// Proxy forwards connections to Options.Target and injects faults.
// Its methods are safe for concurrent use.
type Proxy struct {
	opts Options
	ln   net.Listener

	mu  sync.Mutex
	rnd *rand.Rand

	conns          atomic.Int64
	killedRequest  atomic.Int64
	killedResponse atomic.Int64
	wg             sync.WaitGroup
	faults         atomic.Bool

	// cutMu guards cut and open: while cut, every connection is closed
	// at once (a network cut).
	cutMu sync.Mutex
	cut   bool
	open  map[net.Conn]struct{}
}

// Start listens on a free loopback port and starts forwarding.
func Start(opts Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 2000
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 20000
	}
	p := &Proxy{opts: opts, ln: ln, rnd: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	p.faults.Store(true)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetFaults turns fault injection on or off (on at start).
func (p *Proxy) SetFaults(on bool) { p.faults.Store(on) }

// Cut cuts the network (on) or restores it: while cut, the connections
// open are closed and new ones are closed as soon as they are accepted.
func (p *Proxy) Cut(on bool) {
	p.cutMu.Lock()
	p.cut = on
	var closing []net.Conn
	if on {
		for c := range p.open {
			closing = append(closing, c)
		}
	}
	p.cutMu.Unlock()
	for _, c := range closing {
		c.Close()
	}
}

// track records an accepted connection; it reports false (and the
// connection is to be closed) while the network is cut.
func (p *Proxy) track(c net.Conn) bool {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	if p.cut {
		return false
	}
	if p.open == nil {
		p.open = make(map[net.Conn]struct{})
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.cutMu.Lock()
	delete(p.open, c)
	p.cutMu.Unlock()
}

// Stats reports connections seen and connections killed in each direction.
func (p *Proxy) Stats() (conns, killedRequest, killedResponse int64) {
	return p.conns.Load(), p.killedRequest.Load(), p.killedResponse.Load()
}

// Close stops accepting and waits for the accept loop.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// plan decides the faults of one connection: -1 means no cut, otherwise
// the number of bytes after which that direction is cut.
func (p *Proxy) plan() (reqCut, respCut int64) {
	reqCut, respCut = -1, -1
	if !p.faults.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rnd.Float64() < p.opts.KillRequest {
		reqCut = p.rnd.Int64N(max(p.opts.MaxRequestBytes, 1))
	} else if p.rnd.Float64() < p.opts.KillResponse {
		respCut = p.rnd.Int64N(max(p.opts.MaxResponseBytes, 1))
	}
	return
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.opts.Target)
	if err != nil {
		client.Close()
		return
	}
	reqCut, respCut := p.plan()
	kill := func() {
		client.Close()
		server.Close()
	}
	done := make(chan struct{}, 2)
	go func() {
		if copyCut(server, client, reqCut) {
			p.killedRequest.Add(1)
		}
		kill()
		done <- struct{}{}
	}()
	go func() {
		if copyCut(client, server, respCut) {
			p.killedResponse.Add(1)
		}
		kill()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// copyCut copies src to dst, cutting after cut bytes (cut >= 0). It
// reports whether it cut the connection.
func copyCut(dst io.Writer, src io.Reader, cut int64) bool {
	if cut < 0 {
		_, _ = io.Copy(dst, src)
		return false
	}
	n, err := io.CopyN(dst, src, cut+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false // the connection ended on its own first
	}
	return n == cut+1
}
