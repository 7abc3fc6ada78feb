package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/bayeux-go/bayeux/protocol"
)

// Channel histories as the protocol shows them (see the README's
// "History and recovery"):
//
//   - A delivery on a channel with history carries its position in
//     ext.pos ("EPOCH:OFFSET").
//   - The reply to a /meta/subscribe of such a channel carries, in
//     ext.recover[CHANNEL], the position of the channel's newest message
//     when the subscription took effect ("pos"; absent when the channel
//     has no message yet): every message after it is delivered, none
//     before.
//   - A /meta/subscribe whose ext.recover maps a channel to the last
//     position the client saw ("" when it saw none and the channel had
//     no message) asks for what was published since. The reply says
//     "recovered": true with the missed messages in "messages" (oldest
//     first, deliveries as published, positions up to "pos"), or
//     "recovered": false when they are no longer all kept (or are more
//     than Options.MaxRecover). Deliveries that follow are the messages
//     after "pos".

// Errors of the history features.
var (
	// ErrRecoverInvalid: a subscribe's ext.recover is not an object of
	// channel positions.
	ErrRecoverInvalid = &protocol.Error{Code: 400, Message: "recover_invalid"}
	// ErrHistoryInvalid: a /service/history or /service/presence request
	// is malformed.
	ErrHistoryInvalid = &protocol.Error{Code: 400, Message: "history_invalid"}
	// ErrNoHistory: the channel keeps no history (Options.Channels).
	ErrNoHistory = &protocol.Error{Code: 404, Message: "no_history"}
	// ErrNoPresence: the channel's presence is not published.
	ErrNoPresence = &protocol.Error{Code: 404, Message: "no_presence"}
)

// ExtRecover is the ext key of recovery, in a subscribe and its reply.
const ExtRecover = "recover"

// Defaults of the history options.
const (
	DefaultHistoryChannelBytes = 8 << 20
	DefaultMaxHistoryPage      = 100
	DefaultMaxRecover          = 1000
)

// recoverRequest decodes a subscribe's ext.recover: channel -> the
// position it recovers from. A position "" is the zero Position.
func recoverRequest(m *protocol.Message) (map[string]protocol.Position, error) {
	raw, ok := m.Ext[ExtRecover]
	if !ok {
		return nil, nil
	}
	var in map[string]string
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, ErrRecoverInvalid
	}
	out := make(map[string]protocol.Position, len(in))
	for ch, s := range in {
		if s == "" {
			out[ch] = protocol.Position{}
			continue
		}
		p, err := protocol.ParsePosition(s)
		if err != nil {
			return nil, ErrRecoverInvalid
		}
		out[ch] = p
	}
	return out, nil
}

// subscribeHistory subscribes session id to channel, which keeps a
// history, and returns its entry of the reply's ext.recover: the
// channel's position and, when since is given, the messages published
// after it.
func (s *Server) subscribeHistory(ctx context.Context, h Historian, c *Client, channel string, pol *HistoryPolicy, since *protocol.Position) (json.RawMessage, error) {
	top, err := h.SubscribeHistory(ctx, c.info.ID, channel, s.opts.MaxSubscriptions)
	if err != nil {
		return nil, err
	}
	out := []byte{'{'}
	if top.Epoch != "" {
		out = append(out, `"pos":"`...)
		out = append(top.Append(out), '"')
	}
	if since == nil {
		return append(out, '}'), nil
	}
	msgs, ok := s.recover(ctx, h, channel, pol, *since, top)
	if top.Epoch != "" {
		out = append(out, ',')
	}
	out = append(out, `"recovered":`...)
	out = strconv.AppendBool(out, ok)
	if msgs = s.ext.deliverAll(c, msgs); len(msgs) > 0 {
		out = append(out, `,"messages":[`...)
		for i, p := range msgs {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, p.JSON...)
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

// recover returns the messages of channel after since up to top, and
// whether they are all of them.
func (s *Server) recover(ctx context.Context, h Historian, channel string, pol *HistoryPolicy, since, top protocol.Position) ([]*Payload, bool) {
	if top.Epoch == "" {
		// No stream: nothing was published since, unless the reader
		// knew one (that is gone).
		return nil, since.Epoch == ""
	}
	if since.Epoch != "" && since.Epoch != top.Epoch {
		return nil, false
	}
	if since.Epoch == top.Epoch && since.Offset >= top.Offset {
		return nil, true
	}
	pg, err := h.History(ctx, channel, HistoryQuery{Since: &since, Limit: s.opts.MaxRecover, MaxBytes: s.historyBytes(), MaxAge: pol.MaxAge})
	if err != nil {
		s.log.Error("recovering a subscription failed", "channel", channel, "err", err)
		return nil, false
	}
	if pg.Lost || pg.Top.Epoch != top.Epoch {
		return nil, false
	}
	msgs := pg.Messages
	for len(msgs) > 0 && msgs[len(msgs)-1].Pos.Offset > top.Offset {
		msgs = msgs[:len(msgs)-1] // published after the subscription: delivered
	}
	if pg.More && len(msgs) == len(pg.Messages) {
		s.stats.Refused.Add(RefusedRecover) // more than MaxRecover (or its bytes)
		return nil, false
	}
	return msgs, true
}

// historyBytes bounds the messages of one history page or recovery.
func (s *Server) historyBytes() int64 {
	if s.opts.MaxReplySize > 0 {
		return s.opts.MaxReplySize
	}
	return DefaultMaxFetchBytes
}

// History reads a channel's history (see HistoryQuery), applying the
// channel's policy (Options.Channels) and Options.MaxHistoryPage. It
// fails with ErrNoHistory for a channel that keeps none.
func (s *Server) History(ctx context.Context, channel string, q HistoryQuery) (HistoryPage, error) {
	pol := s.rules.policy(channel)
	h, ok := s.engine.(Historian)
	if pol == nil || !ok {
		return HistoryPage{}, ErrNoHistory
	}
	q.MaxAge = pol.MaxAge
	if q.Limit <= 0 || q.Limit > s.opts.MaxHistoryPage {
		q.Limit = s.opts.MaxHistoryPage
	}
	if q.MaxBytes <= 0 || q.MaxBytes > s.historyBytes() {
		q.MaxBytes = s.historyBytes()
	}
	return h.History(ctx, channel, q)
}

// historyService is /service/history: {"channel", "before"|"since",
// "limit"} answers {"channel", "messages": [...], "pos", "more"[,
// "lost"]} (see HistoryQuery and HistoryPage). The caller must be
// allowed to subscribe to the channel.
func (s *Server) historyService(ctx context.Context, c *Client, m *protocol.Message) ([]*protocol.Message, error) {
	var in struct {
		Channel string  `json:"channel"`
		Before  string  `json:"before"`
		Since   *string `json:"since"`
		Limit   int     `json:"limit"`
	}
	if err := json.Unmarshal(m.Data, &in); err != nil || protocol.ValidateChannel(in.Channel) != nil || in.Limit < 0 {
		return nil, ErrHistoryInvalid
	}
	var q HistoryQuery
	q.Limit = in.Limit
	if in.Before != "" {
		p, err := protocol.ParsePosition(in.Before)
		if err != nil {
			return nil, ErrHistoryInvalid
		}
		q.Before = &p
	}
	if in.Since != nil {
		if q.Before != nil {
			return nil, ErrHistoryInvalid
		}
		p := protocol.Position{}
		if *in.Since != "" {
			var err error
			if p, err = protocol.ParsePosition(*in.Since); err != nil {
				return nil, ErrHistoryInvalid
			}
		}
		q.Since = &p
	}
	if err := s.authorizeRead(ctx, c, in.Channel); err != nil {
		return nil, err
	}
	pg, err := s.History(ctx, in.Channel, q)
	if err != nil {
		if !errors.Is(err, ErrNoHistory) {
			s.log.Error("history read failed", "channel", in.Channel, "err", err)
			err = protocol.ErrServerError
		}
		return nil, err
	}
	out := make([]byte, 0, 64+len(in.Channel))
	out = append(out, `{"channel":`...)
	out = protocol.AppendJSONString(out, in.Channel)
	out = append(out, `,"messages":[`...)
	for i, p := range s.ext.deliverAll(c, pg.Messages) {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, p.JSON...)
	}
	out = append(out, ']')
	if pg.Top.Epoch != "" {
		out = append(out, `,"pos":"`...)
		out = append(pg.Top.Append(out), '"')
	}
	out = append(out, `,"more":`...)
	out = strconv.AppendBool(out, pg.More)
	if pg.Lost {
		out = append(out, `,"lost":true`...)
	}
	out = append(out, '}')
	return []*protocol.Message{{Data: out}}, nil
}

// authorizeRead asks Options.Authorize and the authorizers whether c may
// read channel's history or presence: as whether it may subscribe to
// channel.
// The authorizers of channel are asked about a subscribe (not a create:
// reading does not make the channel).
func (s *Server) authorizeRead(ctx context.Context, c *Client, channel string) error {
	if c.transport == transportLocal || (s.opts.Authorize == nil && !s.authz.table.Load().applies(channel)) {
		return nil
	}
	sub := &protocol.Message{Channel: protocol.MetaSubscribe, ClientID: c.info.ID,
		Subscription: protocol.Subscription{Channels: []string{channel}}}
	if s.opts.Authorize != nil {
		if err := s.opts.Authorize(ctx, c, sub); err != nil {
			return err
		}
	}
	return s.authorizeChannel(ctx, c, sub, OpSubscribe, channel, false)
}
