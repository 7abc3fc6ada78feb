package server

import (
	"context"

	"github.com/bayeux-go/bayeux/protocol"
)

// Echo is the built-in /service/echo: it replies to the caller with the
// data it was sent, on the same channel and with the same id.
func Echo(_ context.Context, _ *Client, m *protocol.Message) ([]*protocol.Message, error) {
	return []*protocol.Message{{Data: m.Data}}, nil
}

// completeServiceReplies fills the defaults of a ServiceFunc's replies.
func completeServiceReplies(req *protocol.Message, replies []*protocol.Message) {
	for _, r := range replies {
		if r == nil {
			continue
		}
		if r.Channel == "" {
			r.Channel = req.Channel
		}
		if r.ID == "" {
			r.ID = req.ID
		}
		if r.Successful == nil {
			r.SetSuccessful(true)
		}
		r.ClientID = ""
	}
}
