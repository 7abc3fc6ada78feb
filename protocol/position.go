package protocol

import (
	"errors"
	"strconv"
	"strings"
)

// Position is a message's place in the stream of a channel with history:
// the stream's epoch and the message's offset in it. It is the id of a
// message on such a channel, delivered in ext.pos as "EPOCH:OFFSET" (see
// ExtPosition). Offsets grow with every message of the stream (not always
// by one); the epoch names one life of the stream: when a server loses a
// stream (its store was reset, its history forgotten), the stream starts
// again under a new epoch, so that a position of the old one is never
// taken for one of the new.
//
// The zero Offset with an epoch is the position before the stream's first
// message.
type Position struct {
	Epoch  string
	Offset uint64
}

// ExtPosition is the ext key of a delivery's position.
const ExtPosition = "pos"

// MaxEpochLen bounds an epoch's length.
const MaxEpochLen = 32

// ErrPositionInvalid is returned by ParsePosition.
var ErrPositionInvalid = errors.New("bayeux: invalid position")

// IsZero reports whether p is the zero value (no position at all).
func (p Position) IsZero() bool { return p.Epoch == "" && p.Offset == 0 }

// String returns "EPOCH:OFFSET".
func (p Position) String() string { return string(p.Append(nil)) }

// Append appends "EPOCH:OFFSET" to dst.
func (p Position) Append(dst []byte) []byte {
	dst = append(dst, p.Epoch...)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, p.Offset, 10)
}

// After reports whether p comes after q in the same epoch.
func (p Position) After(q Position) bool { return p.Epoch == q.Epoch && p.Offset > q.Offset }

// ParsePosition parses "EPOCH:OFFSET": an epoch of 1 to MaxEpochLen
// letters, digits, '-' or '_', and a decimal offset.
func ParsePosition(s string) (Position, error) {
	epoch, off, ok := strings.Cut(s, ":")
	if !ok || !validEpoch(epoch) || off == "" || (len(off) > 1 && off[0] == '0') {
		return Position{}, ErrPositionInvalid
	}
	n, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return Position{}, ErrPositionInvalid
	}
	return Position{Epoch: epoch, Offset: n}, nil
}

func validEpoch(e string) bool {
	if e == "" || len(e) > MaxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		switch c := e[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// PositionOf returns the position a delivery carries in ext.pos, if any.
func PositionOf(m *Message) (Position, bool) {
	raw := m.Ext[ExtPosition]
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return Position{}, false
	}
	p, err := ParsePosition(string(raw[1 : len(raw)-1]))
	return p, err == nil
}
