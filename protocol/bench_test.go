package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The protocol's hot paths, each run by every request or every publish.
// Run with: go test -run '^$' -bench . -benchmem ./protocol

// BenchmarkDecodeBatch decodes what a server reads most: a lone connect
// (the fast path), one with the ack extension, and a batch of ten
// publishes with small chat payloads (both encoding/json).
func BenchmarkDecodeBatch(b *testing.B) {
	connect := []byte(`[{"channel":"/meta/connect","clientId":"2p4ldhuyv4bkxbmjyq4rswuz7u","connectionType":"long-polling","id":"42"}]`)
	connectAck := []byte(`[{"channel":"/meta/connect","clientId":"2p4ldhuyv4bkxbmjyq4rswuz7u","connectionType":"long-polling","id":"42","ext":{"ack":17}}]`)
	var pubs strings.Builder
	pubs.WriteByte('[')
	for i := range 10 {
		if i > 0 {
			pubs.WriteByte(',')
		}
		fmt.Fprintf(&pubs, `{"channel":"/chat/room%d","clientId":"2p4ldhuyv4bkxbmjyq4rswuz7u","id":"%d","data":{"chat":"hello there, message %d"}}`, i, 100+i, i)
	}
	pubs.WriteByte(']')
	for _, bc := range []struct {
		name string
		body []byte
	}{{"connect", connect}, {"connect-ack", connectAck}, {"publish10", []byte(pubs.String())}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeBatch(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChannelMatch: a publish looks up the subscribers of its channel
// and of every wildcard pattern that matches it (Wilds), and a wildcard
// subscription is checked with Match.
func BenchmarkChannelMatch(b *testing.B) {
	b.Run("Wilds", func(b *testing.B) {
		b.ReportAllocs()
		var dst []string
		for b.Loop() {
			dst = Wilds(dst[:0], "/chat/rooms/lobby/messages")
		}
	})
	for _, bc := range []struct{ pattern, name string }{
		{"/chat/*", "/chat/lobby"},
		{"/chat/**", "/chat/rooms/lobby/messages"},
		{"/chat/*", "/chat/rooms/lobby"},
	} {
		b.Run(bc.pattern+" "+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(bc.pattern, bc.name)
			}
		})
	}
}

// BenchmarkEncodeDelivery encodes a publish once for all its recipients.
func BenchmarkEncodeDelivery(b *testing.B) {
	data := json.RawMessage(`{"user":"alice","chat":"hello there, how is everyone doing today?","time":1764070000000}`)
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		var err error
		if buf, err = EncodeDelivery(buf[:0], "/chat/lobby", data, nil); err != nil {
			b.Fatal(err)
		}
	}
}
