package bench

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// client is one simulated Bayeux client: its own connection (and cookies),
// its session, its subscriptions, the streams it receives and, if it
// publishes, its queue of scheduled messages.
type client struct {
	r    *run
	idx  uint32
	conn Conn

	subs     []uint32 // channels it subscribes to
	pubChans []uint32 // channels it publishes to, in turn

	mu       sync.Mutex // guards the fields below
	id       string     // clientId
	msgID    uint64
	interval time.Duration // advice
	timeout  time.Duration // advice
	tracker  Tracker

	// publishing (pmu guards pending; the rest belongs to publishLoop)
	pmu     sync.Mutex
	pending []int64 // scheduled times of ticks not yet sent
	wake    chan struct{}
	cursor  int
	streams map[uint32]*pubStream // by channel

	connected chan struct{} // closed after the first successful connect
	connOnce  sync.Once
}

// pubStream counts what one publisher sent on one channel.
type pubStream struct {
	sent   uint32 // messages sent (seq 0..sent-1)
	failed uint32 // of them, refused by the server (not expected anywhere)
}

// errRefused is a Bayeux reply with successful:false.
type errRefused struct{ reply *protocol.Message }

func (e *errRefused) Error() string {
	if e.reply.Error != "" {
		return e.reply.Channel + ": " + e.reply.Error
	}
	return e.reply.Channel + ": unsuccessful"
}

func (c *client) nextID() string {
	c.mu.Lock()
	c.msgID++
	id := c.msgID
	c.mu.Unlock()
	return strconv.FormatUint(id, 10)
}

func (c *client) clientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// roundTrip sends batch, bounded by timeout, and handles what comes back:
// deliveries are counted, replies returned.
func (c *client) roundTrip(ctx context.Context, kind Kind, batch []byte, timeout time.Duration, buf *[]byte) ([]*protocol.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var dst []byte
	if buf != nil {
		dst = (*buf)[:0]
	}
	body, err := c.conn.RoundTrip(ctx, kind, batch, dst)
	if buf != nil && cap(body) <= 1<<20 {
		*buf = body[:0] // keep the buffer for the next request, unless huge
	}
	if err != nil {
		return nil, err
	}
	if p, ok := c.conn.(pushesAll); ok && p.PushesAll() {
		// The deliveries were counted as the frame arrived (push).
		return readReplies(body)
	}
	return c.r.handleBatch(c, body, c.r.now())
}

// handshake makes a new session.
func (c *client) handshake(ctx context.Context) error {
	id := c.nextID()
	b := make([]byte, 0, 200)
	b = append(b, `[{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":[`...)
	b = protocol.AppendJSONString(b, c.r.tr.ConnectionType())
	b = append(b, `],"id":`...)
	b = protocol.AppendJSONString(b, id)
	b = append(b, "}]"...)
	replies, err := c.roundTrip(ctx, KindHandshake, b, c.r.cfg.Timeout, nil)
	if err != nil {
		return err
	}
	rep := findReply(replies, protocol.MetaHandshake)
	if rep == nil {
		return errors.New("no handshake reply")
	}
	if !rep.IsSuccessful() || rep.ClientID == "" {
		return &errRefused{rep}
	}
	c.mu.Lock()
	c.id = rep.ClientID
	c.adviceLocked(rep.Advice)
	c.mu.Unlock()
	return nil
}

func (c *client) adviceLocked(a *protocol.Advice) {
	if a == nil {
		return
	}
	if a.Interval != nil {
		c.interval = time.Duration(*a.Interval) * time.Millisecond
	}
	if a.Timeout != nil {
		c.timeout = time.Duration(*a.Timeout) * time.Millisecond
	}
}

// subscribe subscribes to every channel of c.subs in one batch.
func (c *client) subscribe(ctx context.Context) error {
	if len(c.subs) == 0 {
		return nil
	}
	cid := c.clientID()
	b := make([]byte, 0, 100*len(c.subs))
	b = append(b, '[')
	for i, ch := range c.subs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"channel":"/meta/subscribe","clientId":`...)
		b = protocol.AppendJSONString(b, cid)
		b = append(b, `,"subscription":`...)
		b = protocol.AppendJSONString(b, c.r.channels[ch])
		b = append(b, `,"id":`...)
		b = protocol.AppendJSONString(b, c.nextID())
		b = append(b, '}')
	}
	b = append(b, ']')
	replies, err := c.roundTrip(ctx, KindSubscribe, b, c.r.cfg.Timeout, nil)
	if err != nil {
		return err
	}
	n := 0
	for _, rep := range replies {
		if rep.Channel != protocol.MetaSubscribe {
			continue
		}
		if !rep.IsSuccessful() {
			return &errRefused{rep}
		}
		n++
	}
	if n < len(c.subs) {
		return errors.New("missing subscribe replies")
	}
	return nil
}

// setup handshakes and subscribes.
func (c *client) setup(ctx context.Context) error {
	if err := c.handshake(ctx); err != nil {
		return err
	}
	return c.subscribe(ctx)
}

// rehandshake sets the session up again after the server forgot it,
// retrying until it works or ctx ends.
func (c *client) rehandshake(ctx context.Context) bool {
	for attempt := 1; ; attempt++ {
		err := c.setup(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.r.countErr(err)
		if !sleep(ctx, backoff(attempt)) {
			return false
		}
	}
}

func backoff(failures int) time.Duration {
	return min(time.Duration(failures)*500*time.Millisecond, 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connectLoop keeps one /meta/connect in flight, honouring the advice,
// until ctx ends.
func (c *client) connectLoop(ctx context.Context) {
	r := c.r
	first := true
	failures := 0
	var buf []byte
	fail := func() bool {
		failures++
		first = true
		return sleep(ctx, backoff(failures))
	}
	for ctx.Err() == nil {
		cid := c.clientID()
		b := make([]byte, 0, 160)
		b = append(b, `[{"channel":"/meta/connect","clientId":`...)
		b = protocol.AppendJSONString(b, cid)
		b = append(b, `,"connectionType":`...)
		b = protocol.AppendJSONString(b, r.tr.ConnectionType())
		b = append(b, `,"id":`...)
		b = protocol.AppendJSONString(b, c.nextID())
		wait := r.cfg.Timeout
		if first {
			b = append(b, `,"advice":{"timeout":0}`...)
		} else {
			c.mu.Lock()
			wait += c.timeout
			c.mu.Unlock()
		}
		b = append(b, "}]"...)
		replies, err := c.roundTrip(ctx, KindConnect, b, wait, &buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.countErr(err)
			if !fail() {
				return
			}
			continue
		}
		rep := findReply(replies, protocol.MetaConnect)
		if rep == nil {
			r.countKind("no_connect_reply", "")
			if !fail() {
				return
			}
			continue
		}
		r.connects.Add(1)
		if raw, ok := rep.Ext["dropped"]; ok {
			// The server says it dropped messages from this session's
			// queue (bayeux's overflow notice): count it with the cause.
			if n, ok := parseInt(raw); ok && n > 0 {
				r.countN("server_dropped", "the server dropped queued messages (queue overflow) and said so in ext.dropped", n)
			}
		}
		c.mu.Lock()
		c.adviceLocked(rep.Advice)
		interval := c.interval
		c.mu.Unlock()
		reconnect := protocol.ReconnectRetry
		if rep.Advice != nil && rep.Advice.Reconnect != "" {
			reconnect = rep.Advice.Reconnect
		}
		if !rep.IsSuccessful() {
			r.countErr(&errRefused{rep})
		}
		switch {
		case reconnect == protocol.ReconnectHandshake:
			r.countKind("rehandshake", "")
			r.rehandshakes.Add(1)
			if !c.rehandshake(ctx) {
				return
			}
			first = true
			continue
		case reconnect == protocol.ReconnectNone:
			if ctx.Err() == nil {
				r.countKind("reconnect_none", "connect reply advised reconnect:none; client stopped")
			}
			return
		case !rep.IsSuccessful():
			if !fail() {
				return
			}
			continue
		}
		c.connOnce.Do(func() { close(c.connected) })
		first = false
		failures = 0
		if interval > 0 && !sleep(ctx, interval) {
			return
		}
	}
}

// enqueue schedules one tick (Batch messages) with scheduled time ts.
func (c *client) enqueue(ts int64) {
	c.pmu.Lock()
	c.pending = append(c.pending, ts)
	c.pmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// maxPerRequest bounds the messages of one publish request when the
// publisher is behind (servers bound a batch: CometD and bayeux at 256).
const maxPerRequest = 200

// publishLoop sends the scheduled ticks: one request at a time (so a
// publisher's messages reach the server in order), all that is due in it.
func (c *client) publishLoop(ctx context.Context) {
	batch := c.r.cfg.Batch
	var buf []byte
	for {
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
		for {
			c.pmu.Lock()
			n := min(len(c.pending), max(1, maxPerRequest/batch))
			ticks := append([]int64(nil), c.pending[:n]...)
			c.pending = c.pending[n:]
			c.pmu.Unlock()
			if n == 0 {
				break
			}
			c.publish(ctx, ticks, &buf)
		}
	}
}

type sentMsg struct {
	ch    uint32
	inWin bool
}

func (c *client) publish(ctx context.Context, ticks []int64, buf *[]byte) {
	r := c.r
	cfg := &r.cfg
	cid := c.clientID()
	n := len(ticks) * cfg.Batch
	msgs := make([]sentMsg, 0, n)
	c.mu.Lock()
	firstID := c.msgID + 1
	c.msgID += uint64(n)
	c.mu.Unlock()
	b := make([]byte, 0, n*(120+cfg.Size))
	win := r.window()
	b = append(b, '[')
	for _, ts := range ticks {
		inWin := win.in(ts)
		for range cfg.Batch {
			ch := c.pubChans[c.cursor%len(c.pubChans)]
			c.cursor++
			ps := c.streams[ch]
			if ps == nil {
				ps = &pubStream{}
				c.streams[ch] = ps
			}
			seq := ps.sent
			ps.sent++
			if len(msgs) > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"channel":`...)
			b = protocol.AppendJSONString(b, r.channels[ch])
			b = append(b, `,"clientId":`...)
			b = protocol.AppendJSONString(b, cid)
			b = append(b, `,"id":"`...)
			b = strconv.AppendUint(b, firstID+uint64(len(msgs)), 10)
			b = append(b, `","data":{"seq":`...)
			b = strconv.AppendUint(b, uint64(seq), 10)
			b = append(b, `,"pub":`...)
			b = strconv.AppendUint(b, uint64(c.idx), 10)
			b = append(b, `,"ts":`...)
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, `,"pad":"`...)
			b = append(b, r.pad...)
			b = append(b, `"}}`...)
			msgs = append(msgs, sentMsg{ch: ch, inWin: inWin})
		}
	}
	b = append(b, ']')
	r.sent.Add(int64(n))
	for _, m := range msgs {
		if m.inWin {
			r.sentWin.Add(1)
		}
	}
	r.pubRequests.Add(1)
	began := r.now()
	for _, ts := range ticks {
		if win.in(ts) {
			r.sendLag.Record(time.Duration(began - ts))
		}
	}
	replies, err := c.roundTrip(ctx, KindPublish, b, cfg.Timeout, buf)
	if win.in(ticks[0]) {
		r.pubRTT.Record(time.Duration(r.now() - began))
	}
	failed := make([]bool, n)
	if err != nil {
		if ctx.Err() == nil {
			r.countErr(err) // not the run ending under it
		}
		var he *HTTPError
		if errors.As(err, &he) {
			// The server refused the whole request: nothing of it is expected.
			for i := range failed {
				failed[i] = true
			}
		}
	} else {
		for _, rep := range replies {
			if rep.IsSuccessful() || protocol.IsMeta(rep.Channel) {
				continue
			}
			id, perr := strconv.ParseUint(string(rep.ID), 10, 64)
			if perr != nil || id < firstID || id >= firstID+uint64(n) {
				continue
			}
			failed[id-firstID] = true
			r.countErr(&errRefused{rep})
		}
	}
	var exp int64
	for i, m := range msgs {
		if failed[i] {
			c.streams[m.ch].failed++
			r.pubFailed.Add(1)
		} else {
			exp += r.members[m.ch]
		}
	}
	r.expected.Add(exp)
	r.inflight.Add(-int64(len(ticks)))
}

// disconnect ends the session (best effort).
func (c *client) disconnect(ctx context.Context) error {
	cid := c.clientID()
	if cid == "" {
		return nil
	}
	b := make([]byte, 0, 120)
	b = append(b, `[{"channel":"/meta/disconnect","clientId":`...)
	b = protocol.AppendJSONString(b, cid)
	b = append(b, `,"id":`...)
	b = protocol.AppendJSONString(b, c.nextID())
	b = append(b, "}]"...)
	_, err := c.roundTrip(ctx, KindDisconnect, b, c.r.cfg.Timeout, nil)
	return err
}

func findReply(replies []*protocol.Message, channel string) *protocol.Message {
	for _, m := range replies {
		if m.Channel == channel {
			return m
		}
	}
	return nil
}

// pushesAll is a Conn that gives every batch it receives, replies
// included, to the push function of Dial as it arrives (WebSocket): the
// deliveries are counted there, and what RoundTrip returns is only read
// for its replies.
type pushesAll interface{ PushesAll() bool }

// readReplies decodes the replies (and meta messages) of body.
func readReplies(body []byte) ([]*protocol.Message, error) {
	var replies []*protocol.Message
	err := eachMessage(body, func(d delivery, elem []byte) error {
		if d.reply || d.meta {
			m, err := decodeReply(elem)
			if err != nil {
				return errSyntax
			}
			replies = append(replies, m)
		}
		return nil
	})
	return replies, err
}

// decodeReply decodes one reply message.
func decodeReply(elem []byte) (*protocol.Message, error) {
	m := new(protocol.Message)
	if err := json.Unmarshal(elem, m); err != nil {
		return nil, err
	}
	return m, nil
}
