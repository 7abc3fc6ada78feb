// Package redis is a server.Engine on Redis, so that several bayeux
// processes behind a load balancer, sticky or not, share sessions,
// subscriptions and messages: any node can answer any request of any
// client (handshake on one node, subscribe on a second, connect held on a
// third). It runs on a single Redis, behind Sentinel, and on Redis
// Cluster.
//
// # Fan-out
//
// Publishing costs Redis the same whatever the number of subscribers: one
// script adds the message once to the stream of its channel and to the
// stream of each wildcard pattern that matches it and has subscribers
// (XADD; a stream is trimmed to MaxQueue entries and MaxQueueBytes once it
// is 1/16 over either) and publishes one notice per stream, carrying the
// entry, to the nodes that read it. The publishes of one request go in
// one pipeline (PublishBatch). Each node keeps a window of the newest
// entries of the streams its sessions read and serves its sessions from
// memory; a session whose position is older than the window reads the
// stream itself (XREVRANGE). Per-session messages (Deliver) go to a short
// list per session. All streams and lists together are accounted (the
// {q} slot) and shed biggest first beyond MaxQueuedBytes.
//
// # Sessions and nodes
//
// A session's position (a cursor per subscription stream and in its
// direct list) and, with the ack extension, its outstanding batch are
// kept by one node at a time, the one that takes for it: the node where
// its last connect arrived. A connect on another node claims the session
// (one script: the claim number goes up and the previous node is told).
// Before a node sends a batch it commits the new position to Redis, on
// condition that the session's claim number is still its own; the commits
// of all the sessions a node sends to in the same moment go in one round
// trip (group commit). So a session that stays on a node costs Redis no
// work per connect but that commit, a session whose connects move between
// nodes costs one claim per move, and a node that stops (or loses its
// claim) can neither lose nor duplicate what it sent: its successor starts
// from the last commit, and with ack from the batch the client
// acknowledged.
//
// # Guarantees
//
// Messages of one channel reach every subscriber in the order they were
// published; messages of different channels are merged by the time Redis
// added them (across Redis Cluster shards, by their clocks). A session
// reached through several overlapping subscriptions (/a/b and /a/*) gets
// each message once: the copies share a message id. Without ack a batch
// whose reply is lost in transit is lost (as on one node); with ack it is
// sent again, by any node.
//
// Expiry uses Redis's clock (TIME inside the scripts). Every node sweeps;
// a script removes each expired session atomically, so exactly one node
// reports it (EngineHooks.Expired).
//
// go-redis reconnects by itself; the engine logs the loss and the
// recovery, then re-reads the streams it watches and checks the sessions
// it takes for (notices sent meanwhile are lost). While Redis is
// unreachable calls fail with errors, which the server turns into Bayeux
// errors with retry advice. Sessions outlive a Redis restart only when
// Redis persisted them; otherwise clients are told to handshake again.
//
// Configure Redis (7 or later) with maxmemory-policy noeviction (an
// evicted key loses messages silently), and with appendonly yes if
// sessions should survive a Redis restart. Redis keeps up to MaxQueue
// entries of every channel that has subscribers.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

var (
	_ server.Engine           = (*Engine)(nil)
	_ server.BatchPublisher   = (*Engine)(nil)
	_ server.SessionLister    = (*Engine)(nil)
	_ server.SubscriberLister = (*Engine)(nil)
	_ server.Historian        = (*Engine)(nil)
)

// Options configures New.
type Options struct {
	// URL is the Redis to use (default redis://localhost:6379/0):
	//   - redis://[user:password@]host:port/db, rediss:// (TLS), unix://:
	//     one Redis (see goredis.ParseURL for query parameters);
	//   - redis-cluster://host:port?addr=host2:port2&addr=...: a Redis
	//     Cluster, any of its nodes (see goredis.ParseClusterURL;
	//     rediss-cluster:// for TLS);
	//   - redis-sentinel://host:port/db?master_name=NAME&addr=...: the
	//     primary that these Sentinels name, followed across failovers
	//     (see goredis.ParseFailoverURL; rediss-sentinel:// for TLS).
	// Unless the URL sets max_retries, commands are not retried: a retried
	// publish could act twice.
	URL string
	// Prefix starts every key, so that several deployments (or tests) can
	// share one Redis. Default "bayeux:". It must not contain '{' or '}'.
	Prefix string
	// Budgets bound what a session gets and what Redis and the nodes keep
	// (zero fields: the defaults of server.Budgets). MaxQueue and
	// MaxQueueBytes bound what a session can have waiting (the newest
	// messages are kept, the dropped ones counted) and also every stream
	// and every node's window of it; MaxFetchBytes one batch;
	// MaxQueuedBytes all streams and direct queues together, in Redis
	// (each message counted once per stream it is in, not once per
	// subscriber); MaxHistoryChannels the channels with a history.
	server.Budgets
	// SweepInterval is how often this node looks for expired sessions,
	// and how long it may keep the expiry of the sessions it takes for
	// before writing it. Default 997 ms.
	SweepInterval time.Duration
	// Logger receives connection losses and recoveries. Default
	// slog.Default().
	Logger *slog.Logger
	// NodeID names this node's notice channel; it must differ between the
	// nodes sharing a Redis. Default: random.
	NodeID string
	// HandoverTimeout is how long a node that claims a session waits for
	// the node that took for it to hand it over (write the positions of
	// the batches it sent) before it claims regardless. Default 1 s.
	HandoverTimeout time.Duration
}

// Engine is a server.Engine on Redis. Create it with New; the Server calls
// Start and Close.
type Engine struct {
	opts    Options
	client  goredis.UniversalClient
	cluster bool // keys of different sessions may not share a script
	log     *slog.Logger
	k       keys
	node    string // this node's notice channel

	hooks   server.EngineHooks
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	started atomic.Bool

	ps       *pubsub
	shedding atomic.Bool
	owned    ownedTable
	streams  streamTable
	flush    *flusher
	// handovers are this node's claims waiting for another node to hand
	// a session over.
	handovers handoverTable
	// claimHook, when set (by tests), runs when a claim's reply has come
	// and before it is used.
	claimHook atomic.Pointer[func(id string)]
	mids      atomic.Uint64 // message ids: node id and a counter

	// gone remembers, for a while, why sessions this node took for ended
	// (removed, claimed by another node), for the Take that asks next.
	goneMu sync.Mutex
	gone   map[string]goneReason

	// locals are the local-client sessions created on this node: the
	// server never touches them, so the node keeps them alive and they
	// expire when it is gone.
	localsMu sync.Mutex
	locals   map[string]struct{}

	down  atomic.Bool // the last command failed to reach Redis
	stats stats
}

type goneReason struct {
	err error
	at  time.Time
}

// localTTL is how long a local-client session outlives its node: 20
// sweep intervals (renewed at every sweep), at least a second.
func (e *Engine) localTTL() time.Duration { return max(20*e.opts.SweepInterval, time.Second) }

// initialTTL is the expiry of a session between CreateSession and its
// first Touch (the server touches it at once; this only bounds the leak
// when a node dies in between).
const initialTTL = 5 * time.Minute

// New returns an Engine for opts. It does not connect yet: Start does.
func New(opts Options) (*Engine, error) {
	if opts.URL == "" {
		opts.URL = "redis://localhost:6379/0"
	}
	if opts.Prefix == "" {
		opts.Prefix = "bayeux:"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, errors.New("bayeux/redis: the key prefix must not contain { or }")
	}
	opts.Budgets = opts.Budgets.WithDefaults()
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 997 * time.Millisecond
	}
	if opts.HandoverTimeout <= 0 {
		opts.HandoverTimeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NodeID == "" {
		opts.NodeID = randomHex(8)
	}
	client, cluster, err := newClient(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("bayeux/redis: %w", err)
	}
	e := &Engine{
		opts:    opts,
		client:  client,
		cluster: cluster,
		log:     opts.Logger.With("engine", "redis", "node", opts.NodeID),
		k:       keys{opts.Prefix},
		gone:    make(map[string]goneReason),
		locals:  make(map[string]struct{}),
	}
	e.node = e.k.nodeChan() + opts.NodeID
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.owned.init()
	e.streams.init()
	e.flush = newFlusher(e)
	e.client.AddHook(statsHook{e})
	return e, nil
}

// newClient makes the go-redis client for a URL (see Options.URL).
func newClient(raw string) (goredis.UniversalClient, bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false, err
	}
	noRetries := !u.Query().Has("max_retries")
	scheme := u.Scheme
	switch scheme {
	case "redis-cluster", "rediss-cluster":
		u.Scheme = strings.TrimSuffix(scheme, "-cluster")
		o, err := goredis.ParseClusterURL(u.String())
		if err != nil {
			return nil, false, err
		}
		if noRetries {
			o.MaxRetries = -1
		}
		return goredis.NewClusterClient(o), true, nil
	case "redis-sentinel", "rediss-sentinel":
		u.Scheme = strings.TrimSuffix(scheme, "-sentinel")
		o, err := goredis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, false, err
		}
		if o.MasterName == "" {
			return nil, false, errors.New("redis-sentinel URL without master_name")
		}
		if noRetries {
			o.MaxRetries = -1
		}
		return goredis.NewFailoverClient(o), false, nil
	}
	o, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, false, err
	}
	if noRetries {
		o.MaxRetries = -1
	}
	return goredis.NewClient(o), false, nil
}

// Client returns the engine's go-redis client (for health checks).
func (e *Engine) Client() goredis.UniversalClient { return e.client }

// NodeID returns the node's id.
func (e *Engine) NodeID() string { return e.opts.NodeID }

// Start implements server.Engine: it subscribes to this node's notice
// channel, loads the scripts and starts sweeping. Redis being unreachable
// is logged, not fatal: the engine connects as soon as Redis answers.
func (e *Engine) Start(hooks server.EngineHooks) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	if e.started.Swap(true) {
		return errors.New("bayeux/redis: engine started twice")
	}
	e.hooks = hooks
	ready := make(chan struct{})
	e.ps = newPubsub(e, ready)
	e.wg.Add(3)
	go e.ps.run()
	go e.sweeper()
	go e.flush.run()
	select {
	case <-ready:
		e.loadScripts(e.ctx)
	case <-time.After(3 * time.Second):
		e.log.Error("redis not reachable at start; the engine keeps trying", "url", redactURL(e.opts.URL))
	}
	return nil
}

// loadScripts loads every script (on every shard of a cluster), so that
// pipelines find them.
func (e *Engine) loadScripts(ctx context.Context) {
	if err := e.loadScriptsErr(ctx); err != nil {
		e.log.Debug("loading a script failed", "err", err)
	}
}

func (e *Engine) loadScriptsErr(ctx context.Context) error {
	for _, s := range scripts {
		if err := s.Load(ctx, e.client).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Close implements server.Engine. Waiting sessions get their Ready call
// and their next Take fails with server.ErrEngineClosed; sessions stay in
// Redis for the other nodes.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.cancel()
	if e.ps != nil {
		e.ps.close()
	}
	e.wg.Wait()
	e.owned.each(func(s *osession) { e.wake(s) })
	return e.client.Close()
}

// ready calls the Ready hook.
func (e *Engine) ready(id string) {
	if e.hooks.Ready != nil {
		e.hooks.Ready(id)
	}
}

// fail maps an error of a Redis call: after Close it is ErrEngineClosed.
func (e *Engine) fail(op string, err error) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	return fmt.Errorf("bayeux/redis: %s: %w", op, err)
}

// sessionKeys are the keys of a session's scripts.
func (e *Engine) sessionKeys(id string) []string {
	return []string{e.k.sess(id), e.k.subs(id), e.k.queue(id)}
}

// streamKeys are the keys of a stream's scripts.
func (e *Engine) streamKeys(name string) []string {
	return []string{e.k.members(name), e.k.seq(name), e.k.stream(name)}
}

// CreateSession implements server.Engine.
func (e *Engine) CreateSession(ctx context.Context, info *server.SessionInfo) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	ttl := initialTTL
	if info.Local {
		ttl = e.localTTL()
	}
	ms := ttl.Milliseconds()
	create := newCall(createScript, []string{e.k.sess(info.ID)}, b, ms)
	if err := e.run(ctx, create, newCall(indexScript, []string{e.k.index()}, "add", ms, info.ID)); err != nil {
		return e.fail("create session", err)
	}
	if n, _ := create.cmd.Int(); n == 0 {
		return fmt.Errorf("bayeux/redis: session id %q exists", info.ID)
	}
	if info.Local {
		e.localsMu.Lock()
		e.locals[info.ID] = struct{}{}
		e.localsMu.Unlock()
	}
	return nil
}

// call is a script to run in a pipeline (see run).
type call struct {
	s    *goredis.Script
	keys []string
	args []any
	cmd  *goredis.Cmd
}

func newCall(s *goredis.Script, keys []string, args ...any) *call {
	return &call{s: s, keys: keys, args: args}
}

// run runs calls in one pipeline (on Redis Cluster, one per shard, in
// parallel) with EVALSHA; calls that met a Redis without the script
// (restarted, failed over) run again with EVAL. Each call's cmd holds its
// result. run returns the first error.
func (e *Engine) run(ctx context.Context, calls ...*call) error {
	pipe := e.client.Pipeline()
	for _, c := range calls {
		c.cmd = c.s.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	var redo []*call
	for _, c := range calls {
		if goredis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
			redo = append(redo, c)
		}
	}
	if len(redo) == 0 {
		return err
	}
	pipe = e.client.Pipeline()
	for _, c := range redo {
		c.cmd = c.s.Eval(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	go e.loadScripts(e.ctx)
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
	}
	return nil
}

// Session implements server.Engine. The sessions this node takes for are
// answered from memory.
func (e *Engine) Session(ctx context.Context, id string) (*server.SessionInfo, bool, error) {
	if e.closed.Load() {
		return nil, false, server.ErrEngineClosed
	}
	if s := e.owned.get(id); s != nil && s.live() {
		return s.deadline.Apply(s.info), true, nil
	}
	s, err := e.client.HGet(ctx, e.k.sess(id), "info").Result()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, e.fail("session", err)
	}
	info, err := decodeInfo(s)
	if err != nil {
		return nil, false, fmt.Errorf("bayeux/redis: session %s: %w", id, err)
	}
	return info, true, nil
}

func decodeInfo(v any) (*server.SessionInfo, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("unexpected session info %T", v)
	}
	info := new(server.SessionInfo)
	if err := json.Unmarshal([]byte(s), info); err != nil {
		return nil, err
	}
	return info, nil
}

// DestroySession implements server.Engine.
func (e *Engine) DestroySession(ctx context.Context, id string) (*server.RemovedSession, error) {
	v, err := destroyScript.Run(ctx, e.client, e.sessionKeys(id), e.k.nodeChan(), id).Slice()
	e.forgetLocal(id)
	if err != nil {
		return nil, e.fail("destroy session", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	rs, err := removed(id, v)
	if err != nil {
		return nil, err
	}
	e.dropOwned(id, server.ErrSessionRemoved)
	e.cleanup(ctx, id, rs.Subscriptions)
	return rs, nil
}

// removed decodes {info, direct queue bytes, subscriptions...}.
func removed(id string, a []any) (*server.RemovedSession, error) {
	if len(a) < 2 {
		return nil, errShortReply
	}
	info, err := decodeInfo(a[0])
	if err != nil {
		return nil, err
	}
	if info.ID == "" {
		info.ID = id
	}
	rs := &server.RemovedSession{Info: info, Subscriptions: make([]string, 0, len(a)-2)}
	for _, s := range a[2:] {
		if s, ok := s.(string); ok {
			rs.Subscriptions = append(rs.Subscriptions, s)
		}
	}
	return rs, nil
}

// cleanup removes a removed session from its streams' members (the last
// one out deletes a stream), from the expiry index and from the
// accounting of all queues.
func (e *Engine) cleanup(ctx context.Context, id string, subs []string) {
	ctx = context.WithoutCancel(ctx)
	calls := make([]*call, 0, len(subs)+1)
	for _, p := range subs {
		calls = append(calls, newCall(leaveScript, e.streamKeys(p), id))
	}
	calls = append(calls, newCall(indexScript, []string{e.k.index()}, "set", "del", id))
	if err := e.run(ctx, calls...); err != nil && !e.closed.Load() {
		e.log.Warn("cleaning up a removed session failed", "err", err)
	}
	sizes := []any{e.k.queue(id), 0}
	for i, p := range subs {
		if n, _ := calls[i].cmd.Int(); n == 1 {
			sizes = append(sizes, e.k.stream(p), 0)
		}
	}
	e.account(ctx, -1, sizes...)
}

// Touch implements server.Engine. The expiry is kept as a delay from now
// on Redis's clock. For a session this node takes for it is written by
// the next commit, or within SweepInterval.
func (e *Engine) Touch(ctx context.Context, id string, expires time.Time) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	if s := e.owned.get(id); s != nil && s.live() {
		s.touch(expires)
		return nil
	}
	delay := expiryDelay(expires)
	n, err := touchScript.Run(ctx, e.client, []string{e.k.sess(id)}, e.opts.NodeID, delay).Int()
	if err != nil {
		return e.fail("touch", err)
	}
	if n < 0 {
		return protocol.ErrSessionUnknown
	}
	// The index after the session: a session removed meanwhile may leave
	// an entry, which the sweepers remove when it is due.
	if err := indexScript.Run(ctx, e.client, []string{e.k.index()}, "set", delay, id).Err(); err != nil {
		return e.fail("touch", err)
	}
	return nil
}

// expiryDelay is a script's expiry argument for expires: "inf" for the
// zero time, else milliseconds from now.
func expiryDelay(expires time.Time) string {
	if expires.IsZero() {
		return "inf"
	}
	return strconv.FormatInt(max(time.Until(expires).Milliseconds(), 0), 10)
}

// Subscribe implements server.Engine: the session joins the stream's
// members, then its subscription is recorded with the stream's end as its
// start, and the node that takes for it is told.
func (e *Engine) Subscribe(ctx context.Context, id, pattern string, limit int) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	cur, err := joinScript.Run(ctx, e.client, e.streamKeys(pattern), id).Text()
	if err != nil {
		return e.fail("subscribe", err)
	}
	return e.subscribeAt(ctx, id, pattern, cur, limit)
}

// subscribeAt records session id's subscription to pattern, whose stream
// it joined at cursor cur, and tells the node that takes for it.
func (e *Engine) subscribeAt(ctx context.Context, id, pattern, cur string, limit int) error {
	n, err := subscribeScript.Run(ctx, e.client, []string{e.k.sess(id), e.k.subs(id)},
		pattern, cur, limit, e.opts.NodeID, e.k.nodeChan(), id).Int()
	if err != nil || n < 0 {
		// Leave the stream again: the subscription was not recorded.
		if lerr := leaveScript.Run(context.WithoutCancel(ctx), e.client, e.streamKeys(pattern), id).Err(); lerr != nil && !e.closed.Load() {
			e.log.Warn("undoing a refused subscription failed", "err", lerr)
		}
	}
	switch {
	case err != nil:
		return e.fail("subscribe", err)
	case n == -1:
		return protocol.ErrSessionUnknown
	case n == -2:
		return protocol.ErrSubscriptionLimit
	case n == 1:
		if s := e.owned.get(id); s != nil {
			c, _ := parseCursor(cur)
			s.subscribed(pattern, c)
		}
	}
	return nil
}

// Unsubscribe implements server.Engine.
func (e *Engine) Unsubscribe(ctx context.Context, id, pattern string) (bool, error) {
	if e.closed.Load() {
		return false, server.ErrEngineClosed
	}
	n, err := unsubscribeScript.Run(ctx, e.client, []string{e.k.sess(id), e.k.subs(id)},
		pattern, e.opts.NodeID, e.k.nodeChan(), id).Int()
	switch {
	case err != nil:
		return false, e.fail("unsubscribe", err)
	case n == -1:
		return false, protocol.ErrSessionUnknown
	case n == 0:
		return false, nil
	}
	if s := e.owned.get(id); s != nil {
		s.unsubscribed(pattern)
	}
	gone, err := leaveScript.Run(context.WithoutCancel(ctx), e.client, e.streamKeys(pattern), id).Int()
	if err != nil {
		return true, e.fail("unsubscribe", err)
	}
	if gone == 1 {
		e.account(ctx, -1, e.k.stream(pattern), 0)
	}
	return true, nil
}

// Publish implements server.Engine: one round trip (one per matching
// stream's shard on Redis Cluster) whatever the number of subscribers.
func (e *Engine) Publish(ctx context.Context, p *server.Payload) (int, error) {
	ns, errs := e.PublishBatch(ctx, []*server.Payload{p})
	return ns[0], errs[0]
}

// PublishBatch implements server.BatchPublisher: the messages go to Redis
// in one pipeline, in order. On Redis Cluster a message kept in a history
// goes on its own: the script on its channel's shard gives it its
// position, then the other shards get it with that position (two round
// trips), so a batch holding one is published message by message.
func (e *Engine) PublishBatch(ctx context.Context, ps []*server.Payload) ([]int, []error) {
	ns, errs := make([]int, len(ps)), make([]error, len(ps))
	if e.closed.Load() {
		for i := range errs {
			errs[i] = server.ErrEngineClosed
		}
		return ns, errs
	}
	if e.cluster && len(ps) > 1 && slices.ContainsFunc(ps, func(p *server.Payload) bool { return p.History != nil }) {
		for i, p := range ps {
			n, err := e.PublishBatch(ctx, []*server.Payload{p})
			ns[i], errs[i] = n[0], err[0]
		}
		return ns, errs
	}
	pubs := make([]*publication, len(ps))
	var calls []*call
	for i, p := range ps {
		pub, err := e.publication(p)
		if err != nil {
			errs[i] = err
			continue
		}
		pubs[i] = pub
		calls = append(calls, pub.calls...)
		if pub.use != nil {
			calls = append(calls, pub.use)
		}
	}
	_ = e.run(ctx, calls...) // each call's own error is its publication's
	queued := int64(-1)
	var sizes []any
	for i, pub := range pubs {
		if pub == nil {
			continue
		}
		ns[i], errs[i] = pub.done(ctx, e, &queued, &sizes)
	}
	e.account(ctx, queued, sizes...)
	return ns, errs
}

// publication is one message's publish scripts.
type publication struct {
	p     *server.Payload
	names []string // the channel and its wildcard patterns
	mid   string
	calls []*call
	// later are the patterns a message kept in a history goes to once it
	// has its position (Redis Cluster); use marks its history used.
	later []string
	use   *call
}

func (e *Engine) publication(p *server.Payload) (*publication, error) {
	names := protocol.Wilds([]string{p.Channel}, p.Channel)
	pub := &publication{p: p, names: names, mid: e.mid()}
	data := encodeEntry(p)
	b := e.opts.Budgets
	head := []any{pub.mid, data, len(p.JSON), b.MaxQueue, b.MaxQueueBytes, slack(int64(b.MaxQueue)), slack(b.MaxQueueBytes)}
	var hist []any // the history arguments of a kept message
	if p.History != nil {
		m, err := p.Message()
		if err != nil {
			return nil, err
		}
		cut, pre := 1, `,"ext":{"pos":"`
		if len(m.Ext) > 0 {
			cut, pre = 2, `,"pos":"`
		}
		hist = []any{cut, pre, len(data) - len(p.JSON), server.NewEpoch(), p.History.MaxLen, p.History.MaxBytes, p.History.MaxAge.Milliseconds()}
		pub.use = newCall(historyUseScript, []string{e.k.histIndex(), e.k.histSeq()}, p.Channel, e.opts.MaxHistoryChannels, "add")
	}
	if !e.cluster {
		keys := make([]string, 0, 3*len(names)+4)
		args := append(make([]any, 0, 8+len(names)+len(hist)), len(names))
		args = append(args, head...)
		for _, n := range names {
			keys = append(keys, e.streamKeys(n)...)
			args = append(args, e.k.notice(n))
		}
		if hist != nil {
			keys = append(keys, e.k.hist(p.Channel), e.k.histMeta(p.Channel))
			args = append(args, hist...)
		}
		if b.MaxQueuedBytes > 0 {
			keys = append(keys, e.k.total(), e.k.sizes())
		}
		pub.calls = []*call{newCall(publishScript, keys, args...)}
		return pub, nil
	}
	if hist != nil {
		// The channel's shard first; the patterns' once it is done.
		args := append([]any{1}, head...)
		args = append(append(args, e.k.notice(p.Channel)), hist...)
		keys := append(e.streamKeys(p.Channel), e.k.hist(p.Channel), e.k.histMeta(p.Channel))
		pub.calls = []*call{newCall(publishScript, keys, args...)}
		pub.later = names[1:]
		pub.names = names[:1]
		return pub, nil
	}
	pub.calls = e.streamCalls(names, head)
	return pub, nil
}

// streamCalls are the publish scripts of a message (head: its arguments)
// to the streams of names, one each (Redis Cluster).
func (e *Engine) streamCalls(names []string, head []any) []*call {
	calls := make([]*call, len(names))
	for i, n := range names {
		args := append([]any{1}, head...)
		calls[i] = newCall(publishScript, e.streamKeys(n), append(args, e.k.notice(n))...)
	}
	return calls
}

// done reads the publication's results: the subscribers reached; the
// position of a kept message, which goes into its delivery (and to the
// patterns' shards, on Redis Cluster); the entries go into this node's
// windows at once (a take here right after the publish sees them, not
// only when the notices come back); the streams' sizes are collected for
// the accounting of all queues.
func (pub *publication) done(ctx context.Context, e *Engine, queued *int64, sizes *[]any) (int, error) {
	if pub.p.History != nil {
		v, err := pub.calls[0].cmd.Slice()
		if err != nil || len(v) < 3 {
			if err == nil {
				err = errShortReply
			}
			return 0, e.fail("publish", err)
		}
		s, _ := v[2].(string)
		pos, err := protocol.ParsePosition(s)
		if err != nil {
			return 0, e.fail("publish", fmt.Errorf("history position %q: %w", s, err))
		}
		if err := pub.p.SetPosition(pos); err != nil {
			return 0, err
		}
		if pub.use != nil {
			e.forgetHistories(ctx, pub.use)
		}
		if len(pub.later) > 0 {
			b := e.opts.Budgets
			head := []any{pub.mid, encodeEntry(pub.p), len(pub.p.JSON), b.MaxQueue, b.MaxQueueBytes, slack(int64(b.MaxQueue)), slack(b.MaxQueueBytes)}
			later := e.streamCalls(pub.later, head)
			_ = e.run(ctx, later...)
			pub.calls = append(pub.calls, later...)
			pub.names = append(pub.names, pub.later...)
			pub.later = nil
		}
	}
	total := 0
	var firstErr error
	for i, c := range pub.calls {
		v, err := c.cmd.Slice()
		if err != nil || len(v) < 3 {
			if err != nil && firstErr == nil {
				firstErr = e.fail("publish", err)
			}
			continue
		}
		n, _ := v[0].(int64)
		total += int(n)
		t, _ := v[1].(int64)
		if t >= 0 {
			*queued = t
		}
		for j := 3; j+4 < len(v); j += 5 {
			k, _ := v[j].(int64)
			seq, _ := v[j+1].(int64)
			id, _ := v[j+2].(string)
			us, _ := v[j+3].(string)
			bytes, _ := v[j+4].(int64)
			name := pub.names[i]
			if !e.cluster {
				name = pub.names[k]
			}
			if t == -1 { // the script does not account (Redis Cluster)
				*sizes = append(*sizes, e.k.stream(name), bytes)
			}
			if st := e.streams.get(name); st != nil {
				t, _ := strconv.ParseInt(us, 10, 64)
				st.notice(&entry{seq: uint64(seq), id: id, us: t, mid: pub.mid, p: pub.p})
			}
		}
	}
	return total, firstErr
}

// slack is how far a stream may go over a bound before it is trimmed (to
// the bound): trimming is then needed about once per slack messages. The
// publish script checks the length every half slack.
func slack(bound int64) int64 {
	if bound <= 0 {
		return 0
	}
	return max(bound/16, 1)
}

// account records the sizes of queues (pairs of key and bytes) in the
// accounting of all queues, unless a script did already (total >= 0),
// and sheds when all queues hold more than Budgets.MaxQueuedBytes.
func (e *Engine) account(ctx context.Context, total int64, sizes ...any) {
	max := e.opts.MaxQueuedBytes
	if max <= 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if total < 0 && len(sizes) > 0 {
		t, err := accountScript.Run(ctx, e.client, []string{e.k.total(), e.k.sizes()}, sizes...).Int64()
		if err != nil {
			e.log.Debug("accounting queues failed", "err", err)
			return
		}
		total = t
	}
	if total > max {
		e.shed(ctx)
	}
}

// shed brings all streams and direct queues back under 7/8 of
// Budgets.MaxQueuedBytes, dropping the oldest messages of the biggest.
// One shed at a time on this node.
func (e *Engine) shed(ctx context.Context) {
	if !e.shedding.CompareAndSwap(false, true) {
		return
	}
	defer e.shedding.Store(false)
	max := e.opts.MaxQueuedBytes
	v, err := shedScript.Run(ctx, e.client, []string{e.k.total(), e.k.sizes()}, max, max-max/8).Slice()
	if err != nil || len(v) == 0 {
		return
	}
	var calls []*call
	var keys []string
	for i := 0; i+1 < len(v); i += 2 {
		key, _ := v[i].(string)
		want, _ := v[i+1].(int64)
		switch {
		case strings.HasSuffix(key, "}:x"):
			name := strings.TrimSuffix(strings.TrimPrefix(key, e.k.p+"{c:"), "}:x")
			calls = append(calls, newCall(trimStreamScript, e.streamKeys(name), want))
		case strings.HasSuffix(key, "}:q"):
			id := strings.TrimSuffix(strings.TrimPrefix(key, e.k.p+"{s:"), "}:q")
			calls = append(calls, newCall(trimDirectScript, []string{e.k.sess(id), key}, want))
		default:
			continue
		}
		keys = append(keys, key)
	}
	if err := e.run(ctx, calls...); err != nil {
		e.log.Debug("shedding queues failed", "err", err)
	}
	var sizes []any
	for i, c := range calls {
		if n, err := c.cmd.Int64(); err == nil {
			sizes = append(sizes, keys[i], n)
		}
	}
	if len(sizes) > 0 {
		if err := accountScript.Run(ctx, e.client, []string{e.k.total(), e.k.sizes()}, sizes...).Err(); err != nil {
			e.log.Debug("accounting queues failed", "err", err)
		}
	}
}

// mid returns a message id unique in the cluster.
func (e *Engine) mid() string {
	return e.opts.NodeID + "." + strconv.FormatUint(e.mids.Add(1), 36)
}

// Deliver implements server.Engine.
func (e *Engine) Deliver(ctx context.Context, id string, p *server.Payload) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	keys := []string{e.k.sess(id), e.k.queue(id)}
	if !e.cluster && e.opts.MaxQueuedBytes > 0 {
		keys = append(keys, e.k.total(), e.k.sizes())
	}
	v, err := deliverScript.Run(ctx, e.client, keys, encodeEntry(p), len(p.JSON), e.opts.MaxQueue,
		e.opts.MaxQueueBytes, e.k.nodeChan(), id).Int64Slice()
	if err != nil {
		return e.fail("deliver", err)
	}
	if len(v) < 3 || v[0] == 0 {
		return protocol.ErrSessionUnknown
	}
	e.account(ctx, v[2], e.k.queue(id), v[1])
	if s := e.owned.get(id); s != nil {
		// Taken for on this node: no notice comes back to it.
		s.directChanged()
	}
	return nil
}

// SessionCount implements server.SessionLister.
func (e *Engine) SessionCount(ctx context.Context) (int, error) {
	n, err := e.client.ZCard(ctx, e.k.index()).Result()
	if err != nil {
		return 0, e.fail("session count", err)
	}
	return int(n), nil
}

// ListSessions implements server.SessionLister. It reads the sessions in
// batches; sessions created or removed meanwhile may be missed or listed.
func (e *Engine) ListSessions(ctx context.Context) ([]*server.SessionInfo, error) {
	const batch = 500
	var out []*server.SessionInfo
	for start := int64(0); ; start += batch {
		ids, err := e.client.ZRange(ctx, e.k.index(), start, start+batch-1).Result()
		if err != nil {
			return nil, e.fail("list sessions", err)
		}
		infos, err := e.infos(ctx, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, infos...)
		if len(ids) < batch {
			return out, nil
		}
	}
}

// infos reads the infos of sessions (missing ones are left out).
func (e *Engine) infos(ctx context.Context, ids []string) ([]*server.SessionInfo, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := e.client.Pipeline()
	cmds := make([]*goredis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, e.k.sess(id), "info")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, e.fail("read sessions", err)
	}
	out := make([]*server.SessionInfo, 0, len(ids))
	for _, c := range cmds {
		s, err := c.Result()
		if err != nil {
			continue
		}
		info, err := decodeInfo(s)
		if err != nil {
			return nil, fmt.Errorf("bayeux/redis: %w", err)
		}
		out = append(out, info)
	}
	return out, nil
}

// Subscriptions implements server.SessionLister.
func (e *Engine) Subscriptions(ctx context.Context, id string) ([]string, error) {
	v, err := subscriptionsScript.Run(ctx, e.client, []string{e.k.sess(id), e.k.subs(id)}, "keys").Slice()
	if err != nil {
		return nil, e.fail("subscriptions", err)
	}
	if len(v) < 2 {
		return nil, protocol.ErrSessionUnknown
	}
	subs, _ := v[1].([]any)
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		if s, ok := s.(string); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// Subscribers implements server.SubscriberLister.
func (e *Engine) Subscribers(ctx context.Context, channel string) ([]*server.SessionInfo, error) {
	ids, err := e.client.SMembers(ctx, e.k.members(channel)).Result()
	if err != nil {
		return nil, e.fail("subscribers", err)
	}
	return e.infos(ctx, ids)
}

// SubscriberCount implements server.SubscriberCounter: the size of the
// channel's member set, without reading the sessions.
func (e *Engine) SubscriberCount(ctx context.Context, channel string) (int, error) {
	n, err := e.client.SCard(ctx, e.k.members(channel)).Result()
	if err != nil {
		return 0, e.fail("subscriber count", err)
	}
	return int(n), nil
}

// forgetHistories reads the result of a history use (historyUseScript):
// the histories beyond Budgets.MaxHistoryChannels are deleted and
// reported.
func (e *Engine) forgetHistories(ctx context.Context, use *call) {
	old, err := use.cmd.StringSlice()
	if err != nil || len(old) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	pipe := e.client.Pipeline()
	for _, ch := range old {
		pipe.Del(ctx, e.k.hist(ch), e.k.histMeta(ch))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		e.log.Warn("forgetting histories failed", "err", err)
	}
	if e.hooks.Dropped != nil {
		e.hooks.Dropped(server.DropHistory, len(old))
	}
}

// SubscribeHistory implements server.Historian: the session joins the
// stream and learns the history's newest position in one script (the
// channel's slot holds both), then its subscription is recorded.
func (e *Engine) SubscribeHistory(ctx context.Context, id, channel string, limit int) (protocol.Position, error) {
	if e.closed.Load() {
		return protocol.Position{}, server.ErrEngineClosed
	}
	v, err := joinHistoryScript.Run(ctx, e.client, append(e.streamKeys(channel), e.k.histMeta(channel)), id).StringSlice()
	if err != nil || len(v) != 2 {
		if err == nil {
			err = errShortReply
		}
		return protocol.Position{}, e.fail("subscribe", err)
	}
	var top protocol.Position
	if v[1] != "" {
		if top, err = protocol.ParsePosition(v[1]); err != nil {
			return protocol.Position{}, e.fail("subscribe", err)
		}
	}
	return top, e.subscribeAt(ctx, id, channel, v[0], limit)
}

// History implements server.Historian.
func (e *Engine) History(ctx context.Context, channel string, q server.HistoryQuery) (server.HistoryPage, error) {
	if e.closed.Load() {
		return server.HistoryPage{}, server.ErrEngineClosed
	}
	limit := max(q.Limit, 1)
	mode, off := "newest", uint64(0)
	switch {
	case q.Since != nil:
		mode, off = "since", q.Since.Offset
	case q.Before != nil:
		mode, off = "before", q.Before.Offset
	}
	use := newCall(historyUseScript, []string{e.k.histIndex(), e.k.histSeq()}, channel, e.opts.MaxHistoryChannels, "read")
	read := newCall(historyReadScript, []string{e.k.hist(channel), e.k.histMeta(channel)}, mode, off, limit+1, q.MaxAge.Milliseconds())
	if err := e.run(ctx, read, use); err != nil && !errors.Is(err, goredis.Nil) {
		return server.HistoryPage{}, e.fail("history", err)
	}
	e.forgetHistories(ctx, use)
	v, err := read.cmd.StringSlice()
	if err != nil {
		return server.HistoryPage{}, e.fail("history", err)
	}
	var pg server.HistoryPage
	if len(v) < 3 {
		pg.Lost = q.Since != nil && q.Since.Epoch != ""
		return pg, nil
	}
	epoch := v[0]
	last, err1 := strconv.ParseUint(v[1], 10, 64)
	dropped, err2 := strconv.ParseUint(v[2], 10, 64)
	if err1 != nil || err2 != nil {
		return pg, errBadEntry
	}
	pg.Top = protocol.Position{Epoch: epoch, Offset: last}
	if q.Since != nil {
		if (q.Since.Epoch != "" && q.Since.Epoch != epoch) || q.Since.Offset < dropped {
			pg.Lost = true
			return pg, nil
		}
	} else if q.Before != nil && q.Before.Epoch != epoch {
		return pg, nil
	}
	size := int64(0)
	for i := 3; i+1 < len(v); i += 2 {
		sz := int64(len(v[i+1]))
		if len(pg.Messages) >= limit || (len(pg.Messages) > 0 && q.MaxBytes > 0 && size+sz > q.MaxBytes) {
			pg.More = true
			break
		}
		off, err := strconv.ParseUint(v[i], 10, 64)
		if err != nil {
			return pg, errBadEntry
		}
		size += sz
		pg.Messages = append(pg.Messages, &server.Payload{Channel: channel, JSON: []byte(v[i+1]),
			Pos: protocol.Position{Epoch: epoch, Offset: off}})
	}
	if q.Since == nil {
		slices.Reverse(pg.Messages) // read newest first
	}
	return pg, nil
}

func (e *Engine) forgetLocal(id string) {
	e.localsMu.Lock()
	delete(e.locals, id)
	e.localsMu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
