package protocol

import "fmt"

// decodeSimple decodes the batches servers read most, connects above all:
// an array of flat objects whose members are only channel, clientId,
// connectionType and id, each a plain string (printable ASCII, no escapes)
// or, for id, a small non-negative integer, each at most once. Anything
// else makes it report false, and DecodeBatchLimit falls back to the full
// decoder. Where it reports true, the result is exactly what the full
// decoder gives (FuzzDecodeSimple checks that): it only skips the
// tokenizer, which was a tenth of a busy server's CPU. A batch of more than
// max messages (max > 0) is an ErrTooManyMessages error, found before
// anything is allocated.
func decodeSimple(b []byte, max int) ([]*Message, bool, error) {
	// A first pass only checks the shape, so that a batch the fast path
	// cannot take costs no allocation before the full decoder gets it.
	n, ok := scanSimple(b, nil, max)
	if !ok {
		return nil, false, nil
	}
	if max > 0 && n > max {
		return nil, false, fmt.Errorf("%w: more than %d", ErrTooManyMessages, max)
	}
	msgs := make([]*Message, n)
	for k := range msgs {
		msgs[k] = new(Message)
	}
	scanSimple(b, msgs, 0)
	return msgs, true, nil
}

// scanSimple walks a simple batch and returns its length; with msgs (of
// that length) it also fills them in. With max > 0 it stops, reporting
// max+1 and true, when it finds that a message follows the max-th.
func scanSimple(b []byte, msgs []*Message, max int) (int, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	n := 0
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) || b[i] != '{' {
			return 0, false
		}
		if max > 0 && n == max {
			return n + 1, true
		}
		var m *Message
		if msgs != nil {
			m = msgs[n]
		}
		var ok bool
		if i, ok = decodeSimpleObject(b, i+1, m); !ok {
			return 0, false
		}
		n++
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == ']' {
			break
		}
		if b[i] != ',' {
			return 0, false
		}
		i++
	}
	if skipWS(b, i+1) != len(b) {
		return 0, false
	}
	return n, true
}

// decodeSimpleObject checks the members after '{' (and sets them in m when
// m is not nil) and returns the index after the closing '}'.
func decodeSimpleObject(b []byte, i int, m *Message) (int, bool) {
	i = skipWS(b, i)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	var seen uint8 // one bit per member: a name twice is not simple
	for {
		ks, ke, ok := simpleString(b, skipWS(b, i))
		if !ok {
			return 0, false
		}
		key := b[ks:ke]
		j := skipWS(b, ke+1)
		if j >= len(b) || b[j] != ':' {
			return 0, false
		}
		j = skipWS(b, j+1)
		var vs, ve int
		if string(key) == "id" && j < len(b) && b[j] >= '0' && b[j] <= '9' {
			vs, ve, ok = simpleInt(b, j)
			j = ve
		} else {
			vs, ve, ok = simpleString(b, j)
			j = ve + 1
		}
		if !ok {
			return 0, false
		}
		var bit uint8
		switch string(key) {
		case "channel":
			bit = 1
		case "clientId":
			bit = 2
		case "connectionType":
			bit = 4
		case "id":
			bit = 8
		default:
			return 0, false
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		if m != nil {
			v := string(b[vs:ve])
			switch string(key) {
			case "channel":
				m.Channel = v
			case "clientId":
				m.ClientID = v
			case "connectionType":
				m.ConnectionType = v
			case "id":
				m.ID = ID(v)
			}
		}
		j = skipWS(b, j)
		if j >= len(b) {
			return 0, false
		}
		if b[j] == '}' {
			return j + 1, true
		}
		if b[j] != ',' {
			return 0, false
		}
		i = j + 1
	}
}

// simpleString finds a string literal of printable ASCII without escapes
// at b[i]: its contents are b[start:end] and b[end] is the closing quote.
func simpleString(b []byte, i int) (start, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return i + 1, j, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// simpleInt finds a JSON integer without sign, fraction or exponent (at
// most 18 digits, no leading zero) at b[i]: b[start:end].
func simpleInt(b []byte, i int) (start, end int, ok bool) {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == i || j-i > 18 || (b[i] == '0' && j-i > 1) {
		return 0, 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	return i, j, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
