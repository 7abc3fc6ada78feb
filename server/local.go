package server

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// LocalListener receives a message delivered to a LocalClient. from is the
// publisher's client id ("" when the server itself published). Listeners
// of one LocalClient run one at a time, in delivery order, on the client's
// own goroutine; a slow listener delays only that client.
type LocalListener func(m *protocol.Message, from string)

// LocalClient is an in-process Bayeux client (the seed's local POE
// sessions): it has a session like a remote client, so it receives
// publishes from every client, but it needs no handshake or connect and
// bypasses Options.Authorize and the authorizers (Options.Extensions do
// apply). Its methods are safe for concurrent use.
type LocalClient struct {
	s      *Server
	id     string
	info   *SessionInfo
	cancel context.CancelFunc
	done   chan struct{}
	// ready gets a token when the engine calls Ready for the session.
	ready chan struct{}

	mu        sync.Mutex
	listeners map[string][]*LocalListener
	closed    bool
}

// NewLocalClient creates a local client whose id starts with hint.
func (s *Server) NewLocalClient(hint string) (*LocalClient, error) {
	id := newID()
	if hint != "" {
		id = hint + "_" + id
	}
	info := &SessionInfo{ID: id, Created: time.Now(), Local: true}
	if err := s.engine.CreateSession(context.Background(), info); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	lc := &LocalClient{s: s, id: id, info: info, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{}, 1),
		listeners: make(map[string][]*LocalListener)}
	s.locals.Store(id, lc)
	s.emit(Event{Kind: EventClientConnect, ClientID: id, Local: true})
	go lc.loop(ctx)
	return lc, nil
}

// ID returns the client's id.
func (lc *LocalClient) ID() string { return lc.id }

// loop takes what is queued for the client and dispatches it, and waits
// for the engine's Ready when nothing is.
func (lc *LocalClient) loop(ctx context.Context) {
	defer close(lc.done)
	for ctx.Err() == nil {
		b, err := lc.s.engine.Take(ctx, lc.id, TakeOptions{Watch: true})
		if err != nil {
			if errors.Is(err, protocol.ErrSessionUnknown) || errors.Is(err, ErrEngineClosed) || ctx.Err() != nil {
				return
			}
			lc.s.log.Error("local client take failed", "client", lc.id, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for _, p := range b.Payloads {
			lc.dispatch(p)
		}
		if len(b.Payloads) > 0 {
			continue
		}
		select {
		case <-lc.ready:
		case <-ctx.Done():
			return
		}
	}
}

// wake is the engine's Ready for the client's session.
func (lc *LocalClient) wake() {
	select {
	case lc.ready <- struct{}{}:
	default:
	}
}

func (lc *LocalClient) dispatch(p *Payload) {
	if lc.s.ext.sendTo {
		if p = lc.s.ext.deliver(&Client{info: lc.info, transport: transportLocal}, p); p == nil {
			return
		}
	}
	m, err := p.Message()
	if err != nil {
		lc.s.log.Error("local client cannot decode delivery", "err", err)
		return
	}
	lc.mu.Lock()
	var fns []*LocalListener
	for pattern, ls := range lc.listeners {
		if protocol.Match(pattern, p.Channel) {
			fns = append(fns, ls...)
		}
	}
	lc.mu.Unlock()
	for _, fn := range fns {
		(*fn)(m, p.From)
	}
}

// Subscribe subscribes the client to pattern (a channel or a wildcard
// pattern) and calls fn for each message delivered on a matching channel.
// Messages pushed to the client on a channel matching pattern also reach fn.
func (lc *LocalClient) Subscribe(pattern string, fn LocalListener) error {
	if err := protocol.ValidatePattern(pattern); err != nil {
		return err
	}
	if protocol.IsMeta(pattern) {
		return protocol.ErrSubscribeDenied
	}
	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return protocol.ErrSessionUnknown
	}
	lc.listeners[pattern] = append(lc.listeners[pattern], &fn)
	lc.mu.Unlock()
	if protocol.IsService(pattern) {
		return nil
	}
	if err := lc.s.engine.Subscribe(context.Background(), lc.id, pattern, 0); err != nil {
		return err
	}
	lc.s.emit(Event{Kind: EventSubscribe, ClientID: lc.id, Channel: pattern, Local: true})
	return nil
}

// Unsubscribe removes the subscription to pattern and its listeners.
func (lc *LocalClient) Unsubscribe(pattern string) error {
	lc.mu.Lock()
	delete(lc.listeners, pattern)
	lc.mu.Unlock()
	ok, err := lc.s.engine.Unsubscribe(context.Background(), lc.id, pattern)
	if ok {
		lc.s.emit(Event{Kind: EventUnsubscribe, ClientID: lc.id, Channel: pattern, Local: true})
	}
	return err
}

// Publish publishes data (any JSON-encodable value, or json.RawMessage) on
// channel. On a /service/ channel the service's replies are delivered to
// this client's listeners. On a channel with history it returns once the
// message is stored.
func (lc *LocalClient) Publish(ctx context.Context, channel string, data any) error {
	m, err := newDataMessage(channel, data)
	if err != nil {
		return err
	}
	return lc.send(ctx, m)
}

// PublishMessage publishes m.Data on m.Channel keeping the id and ext it
// was given, as the seed's local publish did: subscribers receive
// {"channel","data","id","ext"} (deliveries of remote clients' publishes
// carry no id), and OnEvent's publish event has m's id and ext. On a
// /service/ channel the replies carry the id. m is not modified; its
// ClientID is ignored (the message is this client's). m.Data must be
// valid JSON.
func (lc *LocalClient) PublishMessage(ctx context.Context, m *protocol.Message) error {
	if m == nil {
		return protocol.ErrChannelMissing
	}
	if !m.ID.Valid() {
		return protocol.ErrMessageIDInvalid
	}
	if len(m.Data) > 0 && !json.Valid(m.Data) {
		return protocol.ErrDataNotJSON
	}
	return lc.send(ctx, &protocol.Message{Channel: m.Channel, ID: m.ID, Data: m.Data, Ext: m.Ext})
}

// send runs m through the server as this client's message. Meta
// channels are not for publishing: they would run the meta handlers.
func (lc *LocalClient) send(ctx context.Context, m *protocol.Message) error {
	if protocol.IsMeta(m.Channel) {
		return protocol.ErrPublishDenied
	}
	m.ClientID = lc.id
	x := &exchange{s: lc.s, ctx: ctx, transport: transportLocal}
	x.handle(m, true)
	x.waitStored()
	for _, r := range x.replies {
		if !r.IsSuccessful() {
			return errorFromReply(r)
		}
	}
	return nil
}

// Push delivers data on channel to one client only (the seed's
// client_push).
func (lc *LocalClient) Push(ctx context.Context, clientID, channel string, data any) error {
	return lc.s.Push(ctx, clientID, channel, data)
}

// Close removes the client's session and stops its goroutine. Messages
// still queued for it are discarded.
func (lc *LocalClient) Close() {
	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return
	}
	lc.closed = true
	lc.mu.Unlock()
	rs, _ := lc.s.engine.DestroySession(context.Background(), lc.id)
	lc.cancel()
	<-lc.done
	lc.s.locals.Delete(lc.id)
	lc.s.removed(rs, "disconnect")
}

func errorFromReply(r *protocol.Message) error {
	if e, err := protocol.ParseError(r.Error); err == nil {
		return e
	}
	return errors.New(r.Error)
}

// addID adds id to the delivery: {"channel":...,"id":ID,"data":...}. It
// goes right after the channel, so that an ext stays last (a position is
// added to it: see WithPosition).
func (p *Payload) addID(id protocol.ID) {
	at := len(`{"channel":`) + len(protocol.AppendJSONString(nil, p.Channel))
	b := make([]byte, 0, len(p.JSON)+len(id)+8)
	b = append(b, p.JSON[:at]...)
	b = append(b, `,"id":`...)
	b = protocol.AppendJSONString(b, string(id))
	p.JSON = append(b, p.JSON[at:]...)
	if p.Msg != nil {
		p.Msg.ID = id
	}
}

// newDataMessage builds a publish message; data as for protocol.MarshalData.
func newDataMessage(channel string, data any) (*protocol.Message, error) {
	raw, err := protocol.MarshalData(data)
	if err != nil {
		return nil, err
	}
	return &protocol.Message{Channel: channel, Data: raw}, nil
}
