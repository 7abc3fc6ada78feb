package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
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
	dst = AppendJSONString(dst, m.Channel)
	if m.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendJSONString(dst, string(m.ID))
	}
	if m.ClientID != "" {
		dst = append(dst, `,"clientId":`...)
		dst = AppendJSONString(dst, m.ClientID)
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
		dst = AppendJSONString(dst, m.Error)
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
			dst = AppendJSONString(dst, s.Channels[0])
		} else {
			dst = appendStrings(dst, s.Channels)
		}
	}
	if m.Version != "" {
		dst = append(dst, `,"version":`...)
		dst = AppendJSONString(dst, m.Version)
	}
	if m.MinimumVersion != "" {
		dst = append(dst, `,"minimumVersion":`...)
		dst = AppendJSONString(dst, m.MinimumVersion)
	}
	if len(m.SupportedConnectionTypes) > 0 {
		dst = append(dst, `,"supportedConnectionTypes":`...)
		dst = appendStrings(dst, m.SupportedConnectionTypes)
	}
	if m.ConnectionType != "" {
		dst = append(dst, `,"connectionType":`...)
		dst = AppendJSONString(dst, m.ConnectionType)
	}
	if m.Timestamp != "" {
		dst = append(dst, `,"timestamp":`...)
		dst = AppendJSONString(dst, m.Timestamp)
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
		dst = AppendJSONString(dst, a.Reconnect)
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
		dst = AppendJSONString(dst, k)
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
		dst = AppendJSONString(dst, s)
	}
	return append(dst, ']')
}
