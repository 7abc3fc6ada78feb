package server

import (
	"context"
	"encoding/json"

	"github.com/bayeux-go/bayeux/protocol"
)

// Echo is the built-in /service/echo: it answers the caller with the data
// it was sent, on the same channel and with the same id (the call's
// result; see ServiceFunc).
func Echo(_ context.Context, _ *Client, m *protocol.Message) ([]*protocol.Message, error) {
	return []*protocol.Message{{Data: m.Data}}, nil
}

// completeAnswers fills the defaults of a ServiceFunc's answers to req: a
// missing channel is req's; the first answer on req's channel is the
// call's result and gets req's id and successful:true unless set, and
// data null when it has none (without data it would read as a second
// reply); the others are plain messages to the caller (no id, no
// successful, unless set). No answer carries a clientId.
func completeAnswers(req *protocol.Message, answers []*protocol.Message) {
	result := false
	for _, r := range answers {
		if r == nil {
			continue
		}
		if r.Channel == "" {
			r.Channel = req.Channel
		}
		if r.Channel == req.Channel && !result {
			result = true
			if r.ID == "" {
				r.ID = req.ID
			}
			if r.Successful == nil {
				r.SetSuccessful(true)
			}
			if r.Data == nil {
				r.Data = json.RawMessage("null")
			}
		}
		r.ClientID = ""
	}
}
