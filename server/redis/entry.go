package redis

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/bayeux-go/bayeux/server"
)

// An entry's data is "LEN(FROM)|LEN(CHANNEL)|" FROM CHANNEL JSON: the
// lengths make it safe for any bytes in FROM and CHANNEL; JSON is the
// delivery exactly as encoded once by the publisher. The same data is
// added to every matching stream and read by every subscriber.

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

var errBadEntry = errors.New("bayeux/redis: malformed entry")

// decodeEntry parses entry data. Payload.Msg is nil: Payload.Message
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

// entry is a message read from a stream or a session's direct queue.
type entry struct {
	seq uint64 // position in its stream (or direct queue), from 1
	id  string // stream entry id "ms-n" ("" for a direct message)
	us  int64  // when it was added, in Redis-clock microseconds
	mid string // message id, the same in every stream the message went to
	p   *server.Payload
}

// size is the length of the message's JSON, what the byte budgets count.
func (e *entry) size() int64 { return int64(len(e.p.JSON)) }

// A stream notice, published on the stream's notice channel with every
// entry added, is "SEQ|ID|MID|US|DATA".

// parseNotice parses a stream notice.
func parseNotice(s string) (*entry, error) {
	seq, rest, ok1 := cutUint(s)
	id, rest, ok2 := strings.Cut(rest, "|")
	mid, rest, ok3 := strings.Cut(rest, "|")
	us, data, ok4 := cutUint(rest)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, errBadEntry
	}
	return newStreamEntry(seq, id, mid, int64(us), data)
}

func newStreamEntry(seq uint64, id, mid string, us int64, data string) (*entry, error) {
	if _, err := parseCursorID(id); err != nil {
		return nil, err
	}
	p, err := decodeEntry(data)
	if err != nil {
		return nil, err
	}
	return &entry{seq: seq, id: id, us: us, mid: mid, p: p}, nil
}

// streamEntry converts an entry read with XRANGE/XREVRANGE (fields n, m,
// d, t).
func streamEntry(id string, values map[string]any) (*entry, error) {
	n, _ := values["n"].(string)
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return nil, errBadEntry
	}
	t, _ := values["t"].(string)
	us, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return nil, errBadEntry
	}
	mid, _ := values["m"].(string)
	data, _ := values["d"].(string)
	return newStreamEntry(seq, id, mid, us, data)
}

// A direct-queue item is "US|SIZE|DATA", US the Redis time it was queued
// in microseconds, SIZE the length of the message's JSON.

func parseDirect(seq uint64, s string) (*entry, error) {
	us, rest, ok1 := cutUint(s)
	_, data, ok2 := cutUint(rest)
	if !ok1 || !ok2 {
		return nil, errBadEntry
	}
	p, err := decodeEntry(data)
	if err != nil {
		return nil, err
	}
	return &entry{seq: seq, us: int64(us), p: p}, nil
}

// cutUint parses the decimal number before the first '|' of s.
func cutUint(s string) (uint64, string, bool) {
	a, rest, ok := strings.Cut(s, "|")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseUint(a, 10, 64)
	return n, rest, err == nil
}

// cursor is a position in a stream: the last entry consumed, by sequence
// number and entry id ("0-0" and 0 before the first entry).
type cursor struct {
	seq uint64
	id  string
}

// streamID is a parsed stream entry id.
type streamID struct {
	ms int64
	n  uint64
}

func parseCursorID(id string) (streamID, error) {
	a, b, ok := strings.Cut(id, "-")
	ms, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, errBadEntry
	}
	return streamID{ms, n}, nil
}

// before returns the cursor just before entry e: consuming from it
// starts with e.
func before(e *entry) cursor {
	c, err := parseCursorID(e.id)
	if err != nil {
		return cursor{seq: e.seq - 1, id: "0-0"}
	}
	switch {
	case c.n > 0:
		c.n--
	case c.ms > 0:
		c.ms--
		c.n = ^uint64(0)
	}
	return cursor{seq: e.seq - 1, id: strconv.FormatInt(c.ms, 10) + "-" + strconv.FormatUint(c.n, 10)}
}

func (c cursor) String() string { return strconv.FormatUint(c.seq, 10) + ":" + c.id }

func parseCursor(s string) (cursor, error) {
	a, id, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(a, 10, 64)
	if !ok || err != nil {
		return cursor{}, errBadEntry
	}
	if _, err := parseCursorID(id); err != nil {
		return cursor{}, err
	}
	return cursor{seq: seq, id: id}, nil
}

// position is where a session is in everything it reads: a cursor per
// subscription stream, and the sequence number of the last direct message
// consumed.
type position struct {
	direct  uint64
	streams map[string]cursor
}

func (p position) clone() position {
	q := position{direct: p.direct, streams: make(map[string]cursor, len(p.streams))}
	for k, v := range p.streams {
		q.streams[k] = v
	}
	return q
}

// state is what a session's owner commits to Redis before it sends a
// batch: where the session is, and (ack mode) which batch is outstanding.
type state struct {
	// batch numbers the newest batch sent; acked the newest one the client
	// acknowledged (batch == acked when none is outstanding).
	batch, acked uint64
	// sent is the position after the newest batch sent; base after the
	// newest one acknowledged (the same without ack mode).
	sent, base position
}

// The committed state is "v1 BATCH ACKED" then the sent position, then
// "|" and the base position when it differs. A position is "DIRECT" then,
// per stream, " SEQ ID LEN:PATTERN".

func encodeState(st *state, ack bool) string {
	b := make([]byte, 0, 64)
	b = append(b, "v1 "...)
	b = strconv.AppendUint(b, st.batch, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, st.acked, 10)
	b = append(b, ' ')
	b = appendPosition(b, st.sent)
	if ack {
		b = append(b, '|')
		b = appendPosition(b, st.base)
	}
	return string(b)
}

func appendPosition(b []byte, p position) []byte {
	b = strconv.AppendUint(b, p.direct, 10)
	keys := make([]string, 0, len(p.streams))
	for k := range p.streams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := p.streams[k]
		b = append(b, ' ')
		b = strconv.AppendUint(b, c.seq, 10)
		b = append(b, ' ')
		b = append(b, c.id...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(k)), 10)
		b = append(b, ':')
		b = append(b, k...)
	}
	return b
}

// decodeState parses a committed state ("" is the initial state).
func decodeState(s string) (state, error) {
	var st state
	if s == "" {
		st.sent = position{streams: map[string]cursor{}}
		st.base = st.sent.clone()
		return st, nil
	}
	rest, ok := strings.CutPrefix(s, "v1 ")
	if !ok {
		return st, errBadEntry
	}
	var err error
	if st.batch, rest, err = word(rest); err != nil {
		return st, err
	}
	if st.acked, rest, err = word(rest); err != nil {
		return st, err
	}
	if st.sent, rest, err = parsePosition(rest); err != nil {
		return st, err
	}
	if rest == "" {
		st.base = st.sent.clone()
		return st, nil
	}
	if rest[0] != '|' {
		return st, errBadEntry
	}
	st.base, rest, err = parsePosition(rest[1:])
	if err != nil || rest != "" {
		return st, errBadEntry
	}
	return st, nil
}

// word parses a decimal number ending at a space (consumed) or at the end.
func word(s string) (uint64, string, error) {
	i := strings.IndexAny(s, " |")
	if i < 0 {
		i = len(s)
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, s, errBadEntry
	}
	if i < len(s) && s[i] == ' ' {
		i++
	}
	return n, s[i:], nil
}

// parsePosition parses a position, up to a '|' (left in the rest) or the
// end.
func parsePosition(s string) (position, string, error) {
	p := position{streams: map[string]cursor{}}
	var err error
	if p.direct, s, err = word(s); err != nil {
		return p, s, err
	}
	for s != "" && s[0] != '|' {
		var c cursor
		if c.seq, s, err = word(s); err != nil {
			return p, s, err
		}
		id, rest, ok := strings.Cut(s, " ")
		if !ok {
			return p, s, errBadEntry
		}
		if _, err := parseCursorID(id); err != nil {
			return p, s, err
		}
		c.id = id
		ln, rest, ok := strings.Cut(rest, ":")
		n, err := strconv.Atoi(ln)
		if !ok || err != nil || n < 0 || n > len(rest) {
			return p, s, errBadEntry
		}
		p.streams[rest[:n]] = c
		s = rest[n:]
		if s != "" && s[0] == ' ' {
			s = s[1:]
		}
	}
	return p, s, nil
}
