package netpoll

import (
	"fmt"
	"testing"
)

// BenchmarkWaitFire is one round of the intended use: arm a conn, the peer
// writes 1 byte, the callback fires, the byte is read. idle is how many
// other conns are registered and quiet meanwhile.
func BenchmarkWaitFire(b *testing.B) {
	for _, idle := range []int{0, 5000} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			p := newPoller(b)
			ln := listen(b)
			for range idle {
				s, _ := pair(b, ln)
				if _, err := p.Wait(s, func() { panic("idle conn fired") }); err != nil {
					b.Fatal(err)
				}
			}
			s, c := pair(b, ln)
			fired := make(chan struct{}, 1)
			fn := func() { fired <- struct{}{} }
			one, buf := []byte{'x'}, make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Wait(s, fn); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				<-fired
				if _, err := s.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGoroutineRead is the fallback for comparison: a goroutine parked
// in conn.Read (Go's netpoller) per conn; the peer writes 1 byte, the
// reader wakes and hands it over.
func BenchmarkGoroutineRead(b *testing.B) {
	ln := listen(b)
	s, c := pair(b, ln)
	got := make(chan struct{})
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := s.Read(buf); err != nil {
				close(got)
				return
			}
			got <- struct{}{}
		}
	}()
	one := []byte{'x'}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(one); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
