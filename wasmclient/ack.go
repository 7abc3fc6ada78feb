package wasmclient

import (
	"encoding/json"
	"sync"

	"github.com/bayeux-go/bayeux/protocol"
)

// AckExtension is the Bayeux "ack" extension, wire-compatible with
// CometD's AckExtension: the handshake asks for it with ext.ack=true, every
// successful connect reply carries a batch number in ext.ack, and every
// connect sends back the last batch received. The server keeps messages
// until their batch is acknowledged, so a connect reply lost on the way is
// delivered again: nothing is lost while the session lives.
//
// Messages are never seen twice: the client has one connect outstanding at
// a time, and a reply that did not arrive was not processed, so its
// redelivery is the first delivery. Add it with Options.Extensions. It is
// safe for concurrent use.
type AckExtension struct {
	mu      sync.Mutex
	enabled bool
	batch   uint64
}

// Enabled reports whether the server agreed to the extension at the last
// handshake.
func (a *AckExtension) Enabled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.enabled
}

// Outgoing implements Extension.
func (a *AckExtension) Outgoing(m *protocol.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch m.Channel {
	case protocol.MetaHandshake:
		a.enabled, a.batch = false, 0
		setExt(m, "ack", json.RawMessage("true"))
	case protocol.MetaConnect:
		if a.enabled {
			b, _ := json.Marshal(a.batch)
			setExt(m, "ack", b)
		}
	}
}

// Incoming implements Extension.
func (a *AckExtension) Incoming(m *protocol.Message) bool {
	raw, ok := m.Ext["ack"]
	if !ok {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch m.Channel {
	case protocol.MetaHandshake:
		if m.IsSuccessful() {
			var on bool
			if json.Unmarshal(raw, &on) == nil {
				a.enabled = on
			} else {
				// The object form: {"enabled":true,"batch":N}.
				var obj struct {
					Enabled bool    `json:"enabled"`
					Batch   *uint64 `json:"batch"`
				}
				if json.Unmarshal(raw, &obj) == nil {
					a.enabled = obj.Enabled
					if obj.Batch != nil {
						a.batch = *obj.Batch
					}
				}
			}
		}
	case protocol.MetaConnect:
		var n uint64
		if a.enabled && m.IsSuccessful() && json.Unmarshal(raw, &n) == nil {
			a.batch = n
		}
	}
	return true
}

func setExt(m *protocol.Message, key string, v json.RawMessage) {
	if m.Ext == nil {
		m.Ext = make(map[string]json.RawMessage, 1)
	}
	m.Ext[key] = v
}
