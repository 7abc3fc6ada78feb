//go:build js

package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The browser build decodes what its server sends with encoding/json (which
// the WebAssembly clients link anyway) instead of the strict decoder of
// decode_strict.go: a client trusts its server, and a second JSON tokenizer
// would cost the chat's app.wasm about 40 KB.

// decodeFull decodes b, which starts with '[' or '{'.
func decodeFull(b []byte, max int) ([]*Message, error) {
	if b[0] == '{' {
		m := new(Message)
		if err := json.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("bayeux: %v", err)
		}
		return []*Message{m}, nil
	}
	var msgs []*Message
	if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, fmt.Errorf("bayeux: %v", err)
	}
	if len(msgs) == 0 {
		return nil, ErrEmptyBatch
	}
	if max > 0 && len(msgs) > max {
		return nil, fmt.Errorf("%w (more than %d)", ErrTooManyMessages, max)
	}
	for i, m := range msgs {
		if m == nil {
			return nil, errors.New("bayeux: batch element " + fmt.Sprint(i) + " is not an object")
		}
	}
	return msgs, nil
}

// validJSON reports whether raw is one JSON value.
func validJSON(raw []byte) bool { return json.Valid(raw) }
