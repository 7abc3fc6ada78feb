package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// A small JSON scanner for the hot path: a reply batch may hold thousands
// of deliveries, and decoding each into a map would make the generator,
// not the server, the bottleneck. It only splits values and reads the few
// fields the bench needs; replies (which carry "successful") are decoded
// with encoding/json.

var errSyntax = errors.New("bench: malformed JSON in reply")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just after the JSON value starting at b[i]
// (no leading space).
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				j, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errSyntax
	default: // number, true, false, null
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				break
			}
			j++
		}
		if j == i {
			return 0, errSyntax
		}
		return j, nil
	}
}

// skipString returns the index after the string starting at b[i] == '"'.
// It jumps from quote to quote (bytes.IndexByte is vectorised): padding
// and text are most of the bytes of a delivery.
func skipString(b []byte, i int) (int, error) {
	start := i + 1
	i = start
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errSyntax
		}
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; k >= start && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i + 1, nil
		}
		i++
	}
}

// unquote returns the content of a JSON string value; escapes are decoded
// only when present.
func unquote(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// parseInt reads a JSON integer (a number, or a string holding one: some
// servers turn large numbers into strings or floats).
func parseInt(v []byte) (int64, bool) {
	if len(v) >= 2 && v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	n := int64(0)
	neg := false
	i := 0
	if len(v) > 0 && v[0] == '-' {
		neg = true
		i = 1
	}
	if i >= len(v) {
		return 0, false
	}
	for ; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			// a float such as 1.7e18 (JavaScript servers may re-encode)
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return 0, false
			}
			return int64(f), true
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// delivery is what the bench reads from one message a server sent.
type delivery struct {
	channel []byte // raw, quoted
	reply   bool   // has "successful": a reply, not a delivery
	meta    bool   // channel starts with /meta/
	id      []byte // raw (quoted) message id, if any
	hasSeq  bool
	seq     int64
	pub     int64
	ts      int64
}

var (
	keyChannel    = []byte(`"channel"`)
	keyData       = []byte(`"data"`)
	keySuccessful = []byte(`"successful"`)
	keyID         = []byte(`"id"`)
	keySeq        = []byte(`"seq"`)
	keyPub        = []byte(`"pub"`)
	keyTS         = []byte(`"ts"`)
	metaPrefix    = []byte(`"/meta/`)
)

// scanObject walks the object starting at b[i] == '{': for every member
// it calls member with the raw key (quoted) and the index of the value,
// and member returns the index just after the value (it may parse the
// value itself, or return skipValue). scanObject returns the index just
// after the object.
func scanObject(b []byte, i int, member func(key []byte, v int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return 0, errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errSyntax
		}
		k, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i:k]
		i = skipSpace(b, k)
		if i >= len(b) || b[i] != ':' {
			return 0, errSyntax
		}
		i = skipSpace(b, i+1)
		if i, err = member(key, i); err != nil {
			return 0, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// scanMessage reads one message object in a single pass: the data object
// is parsed where it stands rather than skipped and parsed again.
func scanMessage(elem []byte) (delivery, error) {
	d, _, err := scanMessageAt(elem, skipSpace(elem, 0))
	return d, err
}

// scanMessageAt reads the message object starting at elem[start] and
// returns the index just after it.
func scanMessageAt(elem []byte, start int) (delivery, int, error) {
	var d delivery
	got := 0
	data := func(key []byte, v int) (int, error) {
		var p *int64
		switch {
		case bytes.Equal(key, keySeq):
			p = &d.seq
		case bytes.Equal(key, keyPub):
			p = &d.pub
		case bytes.Equal(key, keyTS):
			p = &d.ts
		}
		end, err := skipValue(elem, v)
		if err == nil && p != nil {
			if n, ok := parseInt(elem[v:end]); ok {
				*p = n
				got++
			}
		}
		return end, err
	}
	end, err := scanObject(elem, start, func(key []byte, v int) (int, error) {
		switch {
		case bytes.Equal(key, keyData):
			if elem[v] == '{' {
				got = 0
				return scanObject(elem, v, data)
			}
		case bytes.Equal(key, keyChannel):
			end, err := skipValue(elem, v)
			d.channel = elem[v:end]
			d.meta = bytes.HasPrefix(d.channel, metaPrefix)
			return end, err
		case bytes.Equal(key, keySuccessful):
			d.reply = true
		case bytes.Equal(key, keyID):
			end, err := skipValue(elem, v)
			d.id = elem[v:end]
			return end, err
		}
		return skipValue(elem, v)
	})
	d.hasSeq = got == 3 && !d.reply && !d.meta
	return d, end, err
}

// eachMessage scans a reply body (a JSON array of messages, or one
// message) and calls fn with each message read and its raw bytes.
func eachMessage(b []byte, fn func(d delivery, elem []byte) error) error {
	i := skipSpace(b, 0)
	if i < len(b) && b[i] == '{' {
		d, end, err := scanMessageAt(b, i)
		if err != nil {
			return err
		}
		return fn(d, b[i:end])
	}
	if i >= len(b) || b[i] != '[' {
		return errSyntax
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for i < len(b) {
		d, end, err := scanMessageAt(b, i)
		if err != nil {
			return err
		}
		if err := fn(d, b[i:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			break
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return nil
		default:
			return errSyntax
		}
	}
	return errSyntax
}
