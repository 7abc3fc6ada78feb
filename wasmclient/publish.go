package wasmclient

import (
	"context"
	"errors"
	"strings"

	"github.com/bayeux-go/bayeux/protocol"
)

// Publish publishes data on channel and waits for the server's reply. data
// may be a json.RawMessage or a []byte holding JSON (sent as is) or any
// value encoding/json accepts. A refusal is returned as a *protocol.Error
// (for example 403:denied_by_security_policy:publish_denied for /meta/x).
// If the client has no session yet (before Connect, while reconnecting),
// the message waits for one, bounded by ctx.
func (c *Client) Publish(ctx context.Context, channel string, data any) error {
	m, err := publishMessage(channel, data)
	if err != nil {
		return err
	}
	reqs, err := c.send(ctx, false, m)
	if err != nil {
		return err
	}
	return reqs[0].err
}

// Call is a request/reply exchange with a server-side service: it
// publishes data on service (a /service/... channel, or a name such as
// "echo" that stands for /service/echo) and returns the reply the service
// sends back with the same message id. It fails with the publish's error,
// with ErrNoReply when the service acknowledged the message but sent
// nothing within Options.MaxNetworkDelay, or with ctx's error.
func (c *Client) Call(ctx context.Context, service string, data any) (*protocol.Message, error) {
	channel := service
	if !strings.HasPrefix(channel, "/") {
		channel = "/service/" + channel
	}
	if !protocol.IsService(channel) {
		return nil, errors.New("wasmclient: Call needs a /service/ channel, not " + channel)
	}
	m, err := publishMessage(channel, data)
	if err != nil {
		return nil, err
	}
	reqs, err := c.send(ctx, true, m)
	if err != nil {
		return nil, err
	}
	return reqs[0].reply, reqs[0].err
}

// Batch collects publishes to send them together; see Client.Batch. It is
// used by one goroutine, inside the Batch callback only.
type Batch struct {
	msgs []*protocol.Message
	err  error
}

// Publish adds a publish of data on channel to the batch (data as for
// Client.Publish). An invalid channel or data makes Client.Batch fail
// without sending anything.
func (b *Batch) Publish(channel string, data any) {
	m, err := publishMessage(channel, data)
	if err != nil {
		b.err = errors.Join(b.err, err)
		return
	}
	b.msgs = append(b.msgs, m)
}

// Len returns the number of messages in the batch.
func (b *Batch) Len() int { return len(b.msgs) }

// Batch calls fn to collect messages, then sends them all in one HTTP
// request, in order, and waits for their replies. It returns the errors of
// the messages that failed, joined (each a *protocol.Error or a transport
// error), or ctx's error.
func (c *Client) Batch(ctx context.Context, fn func(b *Batch)) error {
	var b Batch
	fn(&b)
	if b.err != nil {
		return b.err
	}
	if len(b.msgs) == 0 {
		return nil
	}
	reqs, err := c.send(ctx, false, b.msgs...)
	if err != nil {
		return err
	}
	var errs []error
	for _, q := range reqs {
		if q.err != nil {
			errs = append(errs, q.err)
		}
	}
	return errors.Join(errs...)
}

// publishMessage builds a publish; data as for Client.Publish.
func publishMessage(channel string, data any) (*protocol.Message, error) {
	if err := protocol.ValidateChannel(channel); err != nil {
		return nil, err
	}
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return nil, err
	}
	return &protocol.Message{Channel: channel, Data: raw}, nil
}
