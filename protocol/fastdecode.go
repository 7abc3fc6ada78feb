package protocol

// decodeSimple decodes the batches servers read most, connects above all:
// an array of flat objects whose members are only channel, clientId,
// connectionType and id, each a plain string (printable ASCII, no escapes)
// or, for id, a small non-negative integer. Anything else makes it report
// false, and DecodeBatch falls back to encoding/json. Where it reports true,
// the result is exactly what encoding/json gives (FuzzDecodeSimple checks
// that): it only skips reflection, which was a tenth of a busy server's CPU.
func decodeSimple(b []byte) ([]*Message, bool) {
	// A first pass only checks the shape, so that a batch the fast path
	// cannot take costs no allocation before encoding/json gets it.
	n, ok := scanSimple(b, nil)
	if !ok {
		return nil, false
	}
	msgs := make([]*Message, n)
	for k := range msgs {
		msgs[k] = new(Message)
	}
	scanSimple(b, msgs)
	return msgs, true
}

// scanSimple walks a simple batch and returns its length; with msgs (of
// that length) it also fills them in.
func scanSimple(b []byte, msgs []*Message) (int, bool) {
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
		switch string(key) {
		case "channel", "clientId", "connectionType", "id":
		default:
			return 0, false
		}
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
