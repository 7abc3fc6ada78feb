//go:build !js

package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The strict decoder (this file) is what servers use; the browser build
// (decode_js.go) trusts its server and decodes with encoding/json, so that
// the WebAssembly clients do not carry a second JSON tokenizer.

// decodeFull decodes b, which starts with '[' or '{', by the rules of
// DecodeBatchLimit.
func decodeFull(b []byte, max int) ([]*Message, error) {
	if !utf8.Valid(b) {
		return nil, errInvalidUTF8
	}
	st := decoders.Get().(*decodeState)
	defer st.release()
	st.reset(b)
	return st.batch(max)
}

// validJSON reports whether raw is one JSON value in valid UTF-8 (escaped
// lone surrogates allowed, see DecodeBatchLimit) without duplicate names.
func validJSON(raw []byte) bool {
	return utf8.Valid(raw) && jsontext.Value(raw).IsValid(jsontext.AllowInvalidUTF8(true))
}

// UnmarshalJSON decodes one message by the rules of DecodeBatchLimit
// (exact member names, no duplicates, valid UTF-8), so that a Message is
// decoded the same way whichever JSON package is used.
func (m *Message) UnmarshalJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errInvalidUTF8
	}
	st := decoders.Get().(*decodeState)
	defer st.release()
	st.reset(b)
	var n Message
	if err := st.message(&n, 0); err != nil {
		return decodeError(err)
	}
	if err := st.end(); err != nil {
		return decodeError(err)
	}
	*m = n
	return nil
}

// decodeState is a pooled jsontext decoder reading a byte slice in place.
type decodeState struct {
	src bytes.Buffer
	dec jsontext.Decoder
	// name and str are scratch space for unescaping.
	name, str []byte
	// channel and clientID are the batch's last values: the messages of a
	// batch mostly share them, and then share one string.
	channel, clientID string
}

var decoders = sync.Pool{New: func() any { return new(decodeState) }}

var errInvalidUTF8 = errors.New("bayeux: invalid UTF-8 in the request")

// reset makes st read b, which is valid UTF-8: the tokenizer lets escaped
// lone surrogates through (see DecodeBatchLimit).
func (st *decodeState) reset(b []byte) {
	st.src = *bytes.NewBuffer(b)
	st.dec.Reset(&st.src, jsontext.AllowInvalidUTF8(true))
}

// release forgets the input (it may be a pooled request body) and puts st
// back in the pool.
func (st *decodeState) release() {
	st.channel, st.clientID = "", ""
	st.src = bytes.Buffer{}
	st.dec.Reset(&st.src)
	decoders.Put(st)
}

// end checks that nothing but whitespace follows the value read.
func (st *decodeState) end() error {
	if _, err := st.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return errors.New("bayeux: data after the JSON value")
		}
		return err
	}
	return nil
}

func (st *decodeState) batch(max int) ([]*Message, error) {
	d := &st.dec
	if d.PeekKind() == '{' {
		m := new(Message)
		if err := st.message(m, 0); err != nil {
			return nil, decodeError(err)
		}
		if err := st.end(); err != nil {
			return nil, decodeError(err)
		}
		return []*Message{m}, nil
	}
	if _, err := d.ReadToken(); err != nil { // '['
		return nil, decodeError(err)
	}
	var msgs []*Message
	for i := 0; ; i++ {
		k := d.PeekKind()
		if k == ']' {
			break
		}
		if k == 0 {
			_, err := d.ReadToken()
			return nil, decodeError(err)
		}
		if max > 0 && i == max {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyMessages, max)
		}
		m := new(Message)
		if err := st.message(m, i); err != nil {
			return nil, decodeError(err)
		}
		msgs = append(msgs, m)
	}
	if _, err := d.ReadToken(); err != nil { // ']'
		return nil, decodeError(err)
	}
	if err := st.end(); err != nil {
		return nil, decodeError(err)
	}
	if len(msgs) == 0 {
		return nil, ErrEmptyBatch
	}
	return msgs, nil
}

// message decodes the object at the decoder into m; i is its index in the
// batch, for errors.
func (st *decodeState) message(m *Message, i int) error {
	d := &st.dec
	if d.PeekKind() != '{' {
		if d.PeekKind() == 0 {
			_, err := d.ReadToken()
			return err
		}
		return fmt.Errorf("bayeux: message %d is not an object", i)
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	for d.PeekKind() != '}' {
		name, err := st.readName()
		if err != nil {
			return err
		}
		switch string(name) {
		case "channel":
			m.Channel, err = st.readShared(&st.channel, "channel")
		case "clientId":
			m.ClientID, err = st.readShared(&st.clientID, "clientId")
		case "connectionType":
			m.ConnectionType, err = st.readString("connectionType")
		case "id":
			m.ID, err = st.readID()
		case "data":
			m.Data, err = st.readRaw()
		case "ext":
			m.Ext, err = st.readExt()
		case "advice":
			m.Advice, err = st.readAdvice()
		case "successful":
			m.Successful, err = st.readBool("successful")
		case "subscription":
			m.Subscription, err = st.readSubscription()
		case "version":
			m.Version, err = st.readString("version")
		case "minimumVersion":
			m.MinimumVersion, err = st.readString("minimumVersion")
		case "supportedConnectionTypes":
			m.SupportedConnectionTypes, err = st.readStrings("supportedConnectionTypes")
		case "error":
			m.Error, err = st.readString("error")
		case "timestamp":
			m.Timestamp, err = st.readString("timestamp")
		default:
			err = d.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := d.ReadToken() // '}'
	return err
}

// readName reads a member name, unescaped (valid until the next read).
// PeekKind has reported that a name follows, or an error that reading
// reports.
func (st *decodeState) readName() ([]byte, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	st.name, err = unquote(st.name[:0], v)
	return st.name, err
}

// unquote appends the contents of the string literal v, read by the
// tokenizer, to dst. Its only possible error, an escaped lone surrogate,
// is not one here: it reads as U+FFFD.
func unquote(dst []byte, v jsontext.Value) ([]byte, error) {
	if len(v) >= 2 && bytes.IndexByte(v, '\\') < 0 {
		return append(dst, v[1:len(v)-1]...), nil
	}
	dst, _ = jsontext.AppendUnquote(dst, v)
	return dst, nil
}

func typeError(field, want string) error {
	return fmt.Errorf("bayeux: %s must be %s", field, want)
}

// readString reads a string, or null (""), for field.
func (st *decodeState) readString(field string) (string, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return "", err
	}
	switch v.Kind() {
	case '"':
		st.str, err = unquote(st.str[:0], v)
		return string(st.str), err
	case 'n':
		return "", nil
	}
	return "", typeError(field, "a string")
}

// readShared is readString that returns *last when the string equals it,
// and remembers the string in *last otherwise.
func (st *decodeState) readShared(last *string, field string) (string, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return "", err
	}
	switch v.Kind() {
	case '"':
		if st.str, err = unquote(st.str[:0], v); err != nil {
			return "", err
		}
		if string(st.str) != *last {
			*last = string(st.str)
		}
		return *last, nil
	case 'n':
		return "", nil
	}
	return "", typeError(field, "a string")
}

// readStrings reads an array of strings (a null element is ""), or null.
func (st *decodeState) readStrings(field string) ([]string, error) {
	d := &st.dec
	switch d.PeekKind() {
	case 'n':
		return nil, d.SkipValue()
	case '[':
	default:
		if _, err := d.ReadValue(); err != nil {
			return nil, err
		}
		return nil, typeError(field, "an array of strings")
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	out := []string{}
	for d.PeekKind() != ']' {
		s, err := st.readString(field)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	_, err := d.ReadToken()
	return out, err
}

// readID reads a message id: a string, a number (kept as written) or null.
func (st *decodeState) readID() (ID, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return "", err
	}
	switch v.Kind() {
	case '"':
		st.str, err = unquote(st.str[:0], v)
		return ID(st.str), err
	case '0':
		return ID(v), nil
	case 'n':
		return "", nil
	}
	return "", errors.New("bayeux: id must be a string or a number")
}

// readRaw reads any value and returns a copy of its text.
func (st *decodeState) readRaw() (json.RawMessage, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

// readBool reads true, false or null (nil).
func (st *decodeState) readBool(field string) (*bool, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	switch v.Kind() {
	case 't', 'f':
		b := v.Kind() == 't'
		return &b, nil
	case 'n':
		return nil, nil
	}
	return nil, typeError(field, "true or false")
}

// readInt reads an integer (no fraction or exponent) that fits an int64.
func (st *decodeState) readInt(field string) (int64, bool, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return 0, false, err
	}
	switch v.Kind() {
	case '0':
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, false, typeError(field, "an integer")
		}
		return n, true, nil
	case 'n':
		return 0, false, nil
	}
	return 0, false, typeError(field, "an integer")
}

// openObject reads the '{' of field's value and reports true, or reads
// a null (false, no error) or any other value (false, a type error).
func (st *decodeState) openObject(field string) (bool, error) {
	d := &st.dec
	switch d.PeekKind() {
	case 'n':
		return false, d.SkipValue()
	case '{':
		_, err := d.ReadToken()
		return err == nil, err
	}
	if _, err := d.ReadValue(); err != nil {
		return false, err
	}
	return false, typeError(field, "an object")
}

// readExt reads the ext object: each member's value is kept as text.
func (st *decodeState) readExt() (map[string]json.RawMessage, error) {
	d := &st.dec
	if ok, err := st.openObject("ext"); !ok {
		return nil, err
	}
	ext := make(map[string]json.RawMessage, 1)
	for d.PeekKind() != '}' {
		name, err := st.readName()
		if err != nil {
			return nil, err
		}
		key := string(name)
		if ext[key], err = st.readRaw(); err != nil {
			return nil, err
		}
	}
	_, err := d.ReadToken()
	return ext, err
}

// readAdvice reads the advice object; unknown members are skipped.
func (st *decodeState) readAdvice() (*Advice, error) {
	d := &st.dec
	if ok, err := st.openObject("advice"); !ok {
		return nil, err
	}
	a := new(Advice)
	for d.PeekKind() != '}' {
		name, err := st.readName()
		if err != nil {
			return nil, err
		}
		switch string(name) {
		case "reconnect":
			a.Reconnect, err = st.readString("advice.reconnect")
		case "interval":
			a.Interval, err = st.readMs("advice.interval")
		case "timeout":
			a.Timeout, err = st.readMs("advice.timeout")
		case "maxInterval":
			a.MaxInterval, _, err = st.readInt("advice.maxInterval")
		case "multiple-clients":
			var b *bool
			b, err = st.readBool("advice.multiple-clients")
			a.MultipleClients = b != nil && *b
		case "hosts":
			a.Hosts, err = st.readStrings("advice.hosts")
		default:
			err = d.SkipValue()
		}
		if err != nil {
			return nil, err
		}
	}
	_, err := d.ReadToken()
	return a, err
}

// readMs reads an optional number of milliseconds (null: nil).
func (st *decodeState) readMs(field string) (*int64, error) {
	n, ok, err := st.readInt(field)
	if err != nil || !ok {
		return nil, err
	}
	return &n, nil
}

// readSubscription reads a channel, an array of channels, or null.
func (st *decodeState) readSubscription() (Subscription, error) {
	d := &st.dec
	switch d.PeekKind() {
	case '[':
		chs, err := st.readStrings("subscription")
		return Subscription{Channels: chs, Array: true}, err
	case '"':
		c, err := st.readString("subscription")
		return Subscription{Channels: []string{c}}, err
	case 'n':
		return Subscription{}, d.SkipValue()
	}
	if _, err := d.ReadValue(); err != nil {
		return Subscription{}, err
	}
	return Subscription{}, errors.New("bayeux: subscription must be a string or an array of strings")
}

func decodeError(err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return fmt.Errorf("bayeux: invalid JSON at offset %d: %v", se.ByteOffset, se.Err)
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return errors.New("bayeux: invalid JSON: unexpected end of input")
	}
	if strings.HasPrefix(err.Error(), "bayeux: ") {
		return err
	}
	return fmt.Errorf("bayeux: %v", err)
}
