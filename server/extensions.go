package server

import (
	"encoding/json"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// setExt sets ext[key] of a reply to v encoded as JSON.
func setExt(r *protocol.Message, key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	if r.Ext == nil {
		r.Ext = make(map[string]json.RawMessage, 1)
	}
	r.Ext[key] = b
}

// timesync is the timesync extension's request data (CometD
// TimeSyncExtension): the client's time tc, its lag l and offset o, and
// when the server received the message.
type timesync struct {
	tc, l, o int64
	ts       int64
	received time.Time
	old      bool // a request without l and o gets the short reply
}

func parseTimesync(m *protocol.Message) *timesync {
	raw, ok := m.Ext["timesync"]
	if !ok || !protocol.IsMeta(m.Channel) {
		return nil
	}
	var in struct {
		TC *int64 `json:"tc"`
		L  *int64 `json:"l"`
		O  *int64 `json:"o"`
	}
	if json.Unmarshal(raw, &in) != nil || in.TC == nil {
		return nil
	}
	now := time.Now()
	t := &timesync{tc: *in.TC, ts: now.UnixMilli(), received: now, old: in.L == nil || in.O == nil}
	if !t.old {
		t.l, t.o = *in.L, *in.O
	}
	return t
}

// reply is the server's answer: tc echoed, ts the receive time, p how long
// the server held the message, and a the accuracy of the client's estimate.
func (t *timesync) reply(now time.Time) map[string]int64 {
	r := map[string]int64{"tc": t.tc, "ts": t.ts, "p": now.Sub(t.received).Milliseconds()}
	if !t.old {
		r["a"] = t.tc + t.o + t.l - t.ts
	}
	return r
}
