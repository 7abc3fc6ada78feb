package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AppendJSON appends m encoded as JSON to dst and returns the result: the
// very bytes json.Marshal(m) gives (fields in declaration order, empty
// ones omitted, ext keys sorted, strings escaped as encoding/json does,
// HTML characters included), or its error. Servers encode every reply
// with it: it does not allocate beyond dst's growth and costs a fraction
// of json.Marshal's reflection.
//
// Raw JSON values (data, ext) are copied as they are when they are
// compact, ASCII and free of the characters encoding/json escapes (<, >,
// &), as server-made values are; any other message is handed to
// json.Marshal, so that the result is the same for every message.
//
// AppendJSON only reads m: concurrent calls on one message are safe as
// long as nobody changes it.
func (m *Message) AppendJSON(dst []byte) ([]byte, error) {
	if !m.plainRaws() {
		b, err := json.Marshal(m)
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
	dst = append(dst, `{"channel":`...)
	dst = appendString(dst, m.Channel)
	if m.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, string(m.ID))
	}
	if m.ClientID != "" {
		dst = append(dst, `,"clientId":`...)
		dst = appendString(dst, m.ClientID)
	}
	if len(m.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, m.Data...)
	}
	if m.Successful != nil {
		dst = append(dst, `,"successful":`...)
		dst = strconv.AppendBool(dst, *m.Successful)
	}
	if m.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, m.Error)
	}
	if a := m.Advice; a != nil {
		dst = append(dst, `,"advice":`...)
		dst = a.appendJSON(dst)
	}
	if len(m.Ext) > 0 {
		dst = append(dst, `,"ext":`...)
		dst = appendExt(dst, m.Ext)
	}
	if !m.Subscription.IsZero() {
		dst = append(dst, `,"subscription":`...)
		if s := m.Subscription; !s.Array && len(s.Channels) == 1 {
			dst = appendString(dst, s.Channels[0])
		} else {
			dst = appendStrings(dst, s.Channels)
		}
	}
	if m.Version != "" {
		dst = append(dst, `,"version":`...)
		dst = appendString(dst, m.Version)
	}
	if m.MinimumVersion != "" {
		dst = append(dst, `,"minimumVersion":`...)
		dst = appendString(dst, m.MinimumVersion)
	}
	if len(m.SupportedConnectionTypes) > 0 {
		dst = append(dst, `,"supportedConnectionTypes":`...)
		dst = appendStrings(dst, m.SupportedConnectionTypes)
	}
	if m.ConnectionType != "" {
		dst = append(dst, `,"connectionType":`...)
		dst = appendString(dst, m.ConnectionType)
	}
	if m.Timestamp != "" {
		dst = append(dst, `,"timestamp":`...)
		dst = appendString(dst, m.Timestamp)
	}
	return append(dst, '}'), nil
}

// plainRaws reports whether every raw value of m (data and ext) can be
// copied as it is: json.Marshal would write it unchanged.
func (m *Message) plainRaws() bool {
	if len(m.Data) > 0 && !plainRaw(m.Data) {
		return false
	}
	for _, v := range m.Ext {
		if v != nil && !plainRaw(v) {
			return false
		}
	}
	return true
}

// plainRaw reports whether raw is valid JSON that json.Marshal copies as
// it is: printable ASCII without white space (compacting removes none)
// and without <, > and & (escaped for HTML).
func plainRaw(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	for _, c := range raw {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return json.Valid(raw)
}

func (a *Advice) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	n := len(dst)
	field := func(name string) {
		if len(dst) > n {
			dst = append(dst, ',')
		}
		dst = append(dst, name...)
	}
	if a.Reconnect != "" {
		field(`"reconnect":`)
		dst = appendString(dst, a.Reconnect)
	}
	if a.Interval != nil {
		field(`"interval":`)
		dst = strconv.AppendInt(dst, *a.Interval, 10)
	}
	if a.Timeout != nil {
		field(`"timeout":`)
		dst = strconv.AppendInt(dst, *a.Timeout, 10)
	}
	if a.MaxInterval != 0 {
		field(`"maxInterval":`)
		dst = strconv.AppendInt(dst, a.MaxInterval, 10)
	}
	if a.MultipleClients {
		field(`"multiple-clients":true`)
	}
	if len(a.Hosts) > 0 {
		field(`"hosts":`)
		dst = appendStrings(dst, a.Hosts)
	}
	return append(dst, '}')
}

// appendExt writes an ext object as encoding/json writes a map: keys
// sorted, nil values as null. Its values are plain (plainRaw).
func appendExt(dst []byte, ext map[string]json.RawMessage) []byte {
	var buf [8]string
	keys := buf[:0]
	for k := range ext {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if v := ext[k]; v == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, v...)
		}
	}
	return append(dst, '}')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendString appends s as encoding/json encodes a string: quotes,
// backslashes and control characters escaped, <, > and & as \u003c,
// \u003e and \u0026, invalid UTF-8 as \ufffd, and U+2028 and U+2029
// escaped.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
