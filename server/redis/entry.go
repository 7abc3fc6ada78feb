package redis

import (
	"errors"
	"strconv"
	"strings"

	"github.com/bayeux-go/bayeux/server"
)

// A queue entry is "LEN(FROM)|LEN(CHANNEL)|" FROM CHANNEL JSON: the
// lengths make it safe for any bytes in FROM and CHANNEL; JSON is the
// delivery exactly as encoded once by the publisher. The same entry is
// pushed to every recipient's queue; sequence numbers (ack extension) are
// not stored but follow from the queue position (see takeScript).

func encodeEntry(p *server.Payload) []byte {
	b := make([]byte, 0, 24+len(p.From)+len(p.Channel)+len(p.JSON))
	b = strconv.AppendInt(b, int64(len(p.From)), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(len(p.Channel)), 10)
	b = append(b, '|')
	b = append(b, p.From...)
	b = append(b, p.Channel...)
	return append(b, p.JSON...)
}

var errBadEntry = errors.New("bayeux/redis: malformed queue entry")

// decodeEntry parses a queue entry. Payload.Msg is nil: Payload.Message
// decodes JSON when asked.
func decodeEntry(s string) (*server.Payload, error) {
	field := func() (int, bool) {
		i := strings.IndexByte(s, '|')
		if i <= 0 {
			return 0, false
		}
		n, err := strconv.Atoi(s[:i])
		s = s[i+1:]
		return n, err == nil && n >= 0
	}
	nf, ok1 := field()
	nc, ok2 := field()
	if !ok1 || !ok2 || nf+nc > len(s) {
		return nil, errBadEntry
	}
	return &server.Payload{From: s[:nf], Channel: s[nf : nf+nc], JSON: []byte(s[nf+nc:])}, nil
}
