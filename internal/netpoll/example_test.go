package netpoll_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"syscall"

	"github.com/bayeux-go/bayeux/internal/netpoll"
)

// A server keeps idle connections without a goroutine each: Wait calls back
// when a connection has something to read, and only then does a goroutine
// read it. Where epoll is missing, New fails with errors.ErrUnsupported
// and the server falls back to a goroutine per connection.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	p, err := netpoll.New()
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		log.Fatal(err)
	}
	if p != nil {
		defer p.Close()
	}

	got := make(chan string)
	// readable runs on the poller's goroutine: it must not block, so it
	// starts the goroutine that reads.
	readable := func() {
		go func() {
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(buf[:n])
			// A real server handles the message, then calls Wait
			// again for the next one.
		}()
	}
	if p != nil {
		if _, err := p.Wait(conn.(syscall.Conn), readable); err != nil {
			log.Fatal(err)
		}
	} else {
		readable() // no poller: a goroutine blocks in Read
	}

	if _, err := client.Write([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: hello
}
