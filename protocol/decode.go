package protocol

import (
	"bytes"
	"errors"
)

// ErrTooManyMessages is returned by DecodeBatchLimit for a batch with more
// messages than its limit. Decoding stops at the first message over it.
var ErrTooManyMessages = errors.New("bayeux: too many messages in one batch")

// DecodeBatch decodes a request body: a JSON array of messages or a single
// message object. Leading and trailing whitespace is ignored. An empty
// array, an element that is not an object, or any other JSON value is an
// error. See DecodeBatchLimit for the rules a message must follow.
func DecodeBatch(b []byte) ([]*Message, error) { return DecodeBatchLimit(b, 0) }

// DecodeBatchLimit is DecodeBatch with a bound: a batch of more than max
// messages (max > 0) is refused with an error wrapping ErrTooManyMessages
// as soon as the decoder reaches message max+1, before anything after it
// is decoded or allocated.
//
// The text must be valid JSON (RFC 8259) in valid UTF-8: an invalid byte
// anywhere, data and ext included, is an error, so that nothing decoded
// here forwards invalid JSON text to anyone. (An escaped lone surrogate,
// "\ud800", is valid JSON text: JavaScript's JSON.stringify writes one for
// a string cut in the middle of an emoji. It is kept as written in data and
// ext, and read as U+FFFD in the other fields.) Member names
// are matched exactly, as in JSON itself ("Channel" is not "channel": it
// is an unknown member, ignored like every other unknown member), and a
// name that occurs twice in one object is an error (parsers that keep the
// first and parsers that keep the last would disagree about the message).
func DecodeBatchLimit(b []byte, max int) ([]*Message, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("bayeux: empty body")
	}
	switch b[0] {
	case '[':
		msgs, ok, err := decodeSimple(b, max)
		if err != nil {
			return nil, err
		}
		if ok {
			return msgs, nil
		}
	case '{':
	default:
		return nil, errors.New("bayeux: body must be a JSON array or object")
	}
	return decodeFull(b, max)
}
