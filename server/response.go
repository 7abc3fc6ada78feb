package server

import (
	"github.com/bayeux-go/bayeux/protocol"
)

// response is what a request (or a held connect) answers: the handshake
// reply, the events delivered, then the replies, encoded once into a
// pooled buffer, and what must run after it was written. It is used by
// one goroutine at a time.
type response struct {
	hsReply *protocol.Message
	events  [][]byte
	replies []*protocol.Message
	// after runs once the response was written (or failed).
	after []func()
	// pooledEvents holds events' backing array; bufs are pooled buffers
	// of the response. done gives them back.
	pooledEvents *[][]byte
	bufs         []*[]byte
}

func (r *response) reply(m *protocol.Message) { r.replies = append(r.replies, m) }

// empty reports whether there is nothing to send.
func (r *response) empty() bool { return r.hsReply == nil && len(r.events) == 0 && len(r.replies) == 0 }

// addEvents appends deliveries, in a pooled slice.
func (r *response) addEvents(ps []*Payload) {
	if len(ps) > 0 && r.events == nil {
		r.pooledEvents = getEvents(len(ps))
		r.events = *r.pooledEvents
	}
	for _, p := range ps {
		r.events = append(r.events, p.JSON)
	}
}

// sizeHint estimates the encoded response's size, so that encode
// allocates once.
func (x *response) sizeHint() int {
	n := 64 + 160*len(x.replies)
	if x.hsReply != nil {
		n += 320
	}
	for _, e := range x.events {
		n += len(e) + 1
	}
	return n
}

// encode writes the response: [handshake reply, events..., replies...].
func (x *response) encode(dst []byte) ([]byte, error) {
	dst = append(dst, '[')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	var err error
	if x.hsReply != nil {
		sep()
		if dst, err = x.hsReply.AppendJSON(dst); err != nil {
			return nil, err
		}
	}
	for _, e := range x.events {
		sep()
		dst = append(dst, e...)
	}
	for _, r := range x.replies {
		sep()
		if dst, err = r.AppendJSON(dst); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// done runs once the response was written (or failed): the after funcs,
// then the pooled buffers go back.
func (x *response) done() {
	for _, f := range x.after {
		f()
	}
	if x.pooledEvents != nil {
		*x.pooledEvents = x.events
		putEvents(x.pooledEvents)
		x.pooledEvents, x.events = nil, nil
	}
	for _, b := range x.bufs {
		putBuf(b)
	}
	x.bufs = nil
}

// buf returns a pooled buffer that done gives back.
func (x *response) buf(n int) []byte {
	b := getBuf(n)
	x.bufs = append(x.bufs, b)
	return *b
}
