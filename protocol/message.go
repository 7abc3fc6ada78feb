package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Meta channel names.
const (
	MetaHandshake   = "/meta/handshake"
	MetaConnect     = "/meta/connect"
	MetaDisconnect  = "/meta/disconnect"
	MetaSubscribe   = "/meta/subscribe"
	MetaUnsubscribe = "/meta/unsubscribe"
)

// Connection types (transports) named in handshakes and connects.
const (
	LongPolling     = "long-polling"
	CallbackPolling = "callback-polling"
	WebSocket       = "websocket"
)

// Version is the protocol version this package speaks.
const Version = "1.0"

// Message is one Bayeux message. Fields follow the names and JSON keys of
// the Bayeux 1.0 specification. Data and Ext stay raw JSON so that a server
// can forward them without decoding and re-encoding.
type Message struct {
	Channel                  string                     `json:"channel"`
	ID                       ID                         `json:"id,omitempty"`
	ClientID                 string                     `json:"clientId,omitempty"`
	Data                     json.RawMessage            `json:"data,omitempty"`
	Successful               *bool                      `json:"successful,omitempty"`
	Error                    string                     `json:"error,omitempty"`
	Advice                   *Advice                    `json:"advice,omitempty"`
	Ext                      map[string]json.RawMessage `json:"ext,omitempty"`
	Subscription             Subscription               `json:"subscription,omitzero"`
	Version                  string                     `json:"version,omitempty"`
	MinimumVersion           string                     `json:"minimumVersion,omitempty"`
	SupportedConnectionTypes []string                   `json:"supportedConnectionTypes,omitempty"`
	ConnectionType           string                     `json:"connectionType,omitempty"`
	Timestamp                string                     `json:"timestamp,omitempty"`
}

// IsSuccessful reports whether the message is a reply with successful:true.
func (m *Message) IsSuccessful() bool { return m.Successful != nil && *m.Successful }

// SetSuccessful sets the successful field.
func (m *Message) SetSuccessful(ok bool) {
	v := ok
	m.Successful = &v
}

// Reply returns a reply to m: same channel and id, successful as given.
// The subscription field is echoed for subscribe and unsubscribe.
func (m *Message) Reply(successful bool) *Message {
	r := &Message{Channel: m.Channel, ID: m.ID}
	r.SetSuccessful(successful)
	if m.Channel == MetaSubscribe || m.Channel == MetaUnsubscribe {
		r.Subscription = m.Subscription
	}
	return r
}

// Fail returns an unsuccessful reply to m carrying err (formatted as a Bayeux
// error string) and advice, which may be nil.
func (m *Message) Fail(err error, advice *Advice) *Message {
	r := m.Reply(false)
	r.Error = ErrorString(err)
	r.Advice = advice
	return r
}

// ExtBool reports whether ext[key] is the JSON literal true.
func (m *Message) ExtBool(key string) bool {
	return string(bytes.TrimSpace(m.Ext[key])) == "true"
}

// ID is a message id. Clients send strings ("1", "2" ...) but some send
// numbers; both decode, and an ID always encodes as a JSON string.
type ID string

// UnmarshalJSON accepts a JSON string or number.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		// encoding/json checked the literal already: without escapes it
		// is the bytes between the quotes (ids are ASCII; Valid says so).
		if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
			*id = ID(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	if string(b) == "null" {
		*id = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("bayeux: id must be a string or a number")
	}
	*id = ID(n.String())
	return nil
}

// Valid reports whether the id is acceptable: at most 64 bytes of
// printable ASCII without quotes or backslashes. The empty id is valid.
func (id ID) Valid() bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Subscription is the subscription field of /meta/subscribe and
// /meta/unsubscribe: one channel or an array of them. It remembers which
// form it was sent in, so that a reply echoes it verbatim.
type Subscription struct {
	Channels []string
	Array    bool
}

// IsZero reports whether no subscription is set (used by omitzero).
func (s Subscription) IsZero() bool { return len(s.Channels) == 0 && !s.Array }

// MarshalJSON writes a string, or an array when the subscription was one.
func (s Subscription) MarshalJSON() ([]byte, error) {
	if !s.Array && len(s.Channels) == 1 {
		return json.Marshal(s.Channels[0])
	}
	if s.Channels == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(s.Channels)
}

// UnmarshalJSON reads a string or an array of strings.
func (s *Subscription) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		s.Array = true
		return json.Unmarshal(b, &s.Channels)
	}
	if string(b) == "null" {
		*s = Subscription{}
		return nil
	}
	var c string
	if err := json.Unmarshal(b, &c); err != nil {
		return errors.New("bayeux: subscription must be a string or an array of strings")
	}
	s.Channels = []string{c}
	s.Array = false
	return nil
}

// Advice is the advice field. Interval and Timeout are pointers because
// zero is meaningful ("timeout":0 asks for an immediate connect reply).
type Advice struct {
	Reconnect       string   `json:"reconnect,omitempty"`
	Interval        *int64   `json:"interval,omitempty"`
	Timeout         *int64   `json:"timeout,omitempty"`
	MaxInterval     int64    `json:"maxInterval,omitempty"`
	MultipleClients bool     `json:"multiple-clients,omitempty"`
	Hosts           []string `json:"hosts,omitempty"`
}

// Reconnect advice values.
const (
	ReconnectRetry     = "retry"
	ReconnectHandshake = "handshake"
	ReconnectNone      = "none"
)

// Ms returns a pointer to v, for Advice.Interval and Advice.Timeout.
func Ms(v int64) *int64 { return &v }

// ErrDataNotJSON is returned by MarshalData for bytes that are not JSON.
var ErrDataNotJSON = errors.New("bayeux: data is not valid JSON")

// MarshalData turns a publish's data into JSON: a json.RawMessage or a
// []byte is taken as JSON already (and checked by the rules DecodeBatch
// applies: valid UTF-8, no duplicate names), anything else is encoded
// with encoding/json.
func MarshalData(data any) (json.RawMessage, error) {
	var raw json.RawMessage
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		b, err := json.Marshal(data)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	if !validJSON(raw) {
		return nil, ErrDataNotJSON
	}
	return raw, nil
}

// ErrEmptyBatch is returned by DecodeBatch for an empty array.
var ErrEmptyBatch = errors.New("bayeux: empty message batch")

// AppendJSONString appends s to dst as the JSON string literal
// json.Marshal gives for it: quotes, backslashes and control characters
// escaped, <, > and & as \u003c, \u003e and \u0026, invalid UTF-8 as
// \ufffd, and U+2028 and U+2029 escaped.
func AppendJSONString(dst []byte, s string) []byte {
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

// EncodeDelivery encodes the message a subscriber receives for a publish on
// channel with the given data and ext: {"channel":...,"data":...,"ext":...}.
// clientId and id are never included (CometD strips them so that a session
// id cannot leak to other subscribers). data must be valid JSON.
func EncodeDelivery(dst []byte, channel string, data json.RawMessage, ext map[string]json.RawMessage) ([]byte, error) {
	dst = append(dst, `{"channel":`...)
	dst = AppendJSONString(dst, channel)
	dst = append(dst, `,"data":`...)
	if len(data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	if len(ext) > 0 {
		b, err := json.Marshal(ext)
		if err != nil {
			return nil, err
		}
		dst = append(dst, `,"ext":`...)
		dst = append(dst, b...)
	}
	return append(dst, '}'), nil
}
