// Package redis is a server.Engine on Redis, so that several bayeux
// processes behind a load balancer, sticky or not, share sessions,
// subscriptions, queues and history: any node can answer any request of
// any client (handshake on one node, subscribe on a second, connect held
// on a third), as with Faye's Redis engine.
//
// Every operation is one round trip to Redis: the work is done by Lua
// scripts (see scripts.go for the keys), which run atomically. A publish
// is a single EVALSHA that finds the subscribers of the channel and of
// its wildcard patterns, queues the encoded message once per session,
// bounds each queue (dropping the oldest and counting the drops) and
// sends a wake-up notice to the node where that session's connect waits.
//
// Each node keeps one pub/sub connection subscribed to its own notice
// channel; a Fetch that has to wait registers its node in the session and
// waits for a notice. go-redis reconnects by itself when Redis goes away;
// the engine logs the loss and the recovery, re-checks every waiting Fetch
// after a reconnect (notices sent meanwhile are lost) and counts both in
// Stats. While Redis is unreachable calls fail with errors, which the
// server turns into Bayeux errors with retry advice. Sessions outlive a
// Redis restart only when Redis persisted them; otherwise clients are told
// to handshake again.
//
// Expiry uses Redis's clock (TIME inside the scripts), so the nodes' clocks
// need not agree. Every node sweeps; a script removes each expired
// session atomically, so exactly one node reports it (EngineHooks.Expired),
// whichever node created it and whether or not that node still runs.
//
// Round trips: Publish, Deliver, Subscribe, Unsubscribe, Touch, Session,
// DestroySession, AppendHistory, History and a Fetch that finds messages
// are one each; a Fetch that waits is two (take-or-register, then take
// after the notice). A sweep is one per SweepInterval per node. A publish
// that takes all queues over Budgets.MaxQueuedBytes runs one more script
// that reads every session's queue size (O(sessions)) and trims the
// biggest. Stats counts them.
//
// The budgets (server.Budgets) are shared by the nodes: queue sizes and
// their total live in Redis, so every node sees the same totals; each
// queue entry is a copy, so the total counts each recipient's copy.
//
// Configure Redis with maxmemory-policy noeviction (an evicted session
// hash or subscriber set loses messages silently), and with appendonly
// yes if sessions should survive a Redis restart. The scripts build key
// names from the prefix, so the engine needs a single Redis (a primary,
// possibly with replicas or Sentinel), not Redis Cluster.
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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

var _ server.Engine = (*Engine)(nil)

// Options configures New.
type Options struct {
	// URL is the Redis to use: redis://[user:password@]host:port/db, also
	// rediss:// (TLS) and unix://, with go-redis options as query
	// parameters (see redis.ParseURL). Default redis://localhost:6379/0.
	// Unless the URL sets max_retries, commands are not retried: a retried
	// publish or take could act twice.
	URL string
	// Prefix starts every key, so that several deployments (or tests) can
	// share one Redis database. Default "bayeux:".
	Prefix string
	// Budgets bound the queues and histories (zero fields: the defaults
	// of server.Budgets). Unlike the memory engine's, MaxQueuedBytes
	// counts every copy: each queue in Redis holds its own.
	server.Budgets
	// SweepInterval is how often this node looks for expired sessions.
	// Default 997 ms.
	SweepInterval time.Duration
	// Logger receives connection losses and recoveries. Default
	// slog.Default().
	Logger *slog.Logger
	// NodeID names this node's wake-up channel; it must differ between
	// the nodes sharing a Redis. Default: random.
	NodeID string
}

// Engine is a server.Engine on Redis. Create it with New; the Server calls
// Start and Close.
type Engine struct {
	opts   Options
	client *goredis.Client
	log    *slog.Logger
	p      string // key prefix
	notice string // this node's notice channel

	hooks   server.EngineHooks
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	started atomic.Bool

	psMu sync.Mutex
	ps   *goredis.PubSub // the notice connection

	waiters [64]waiterShard

	// locals are the local-client sessions created on this node: they are
	// never touched by the server, so the node keeps them alive and they
	// expire when it is gone.
	localsMu sync.Mutex
	locals   map[string]struct{}

	down     atomic.Bool // the last command failed to reach Redis
	shedding atomic.Bool // a shed script runs from this node
	stats    stats
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
	opts.Budgets = opts.Budgets.WithDefaults()
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 997 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NodeID == "" {
		opts.NodeID = randomHex(8)
	}
	ro, err := goredis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("bayeux/redis: %w", err)
	}
	if u, err := url.Parse(opts.URL); err == nil && !u.Query().Has("max_retries") {
		ro.MaxRetries = -1
	}
	e := &Engine{
		opts:   opts,
		client: goredis.NewClient(ro),
		log:    opts.Logger.With("engine", "redis", "node", opts.NodeID),
		p:      opts.Prefix,
		notice: opts.Prefix + "n:" + opts.NodeID,
		locals: make(map[string]struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for i := range e.waiters {
		e.waiters[i].m = make(map[string][]*waiter)
	}
	e.client.AddHook(statsHook{e})
	return e, nil
}

// Client returns the engine's go-redis client (for health checks).
func (e *Engine) Client() *goredis.Client { return e.client }

// NodeID returns the node's id.
func (e *Engine) NodeID() string { return e.opts.NodeID }

// Start implements server.Engine: it subscribes to this node's wake-up
// channel and starts sweeping. Redis being unreachable is logged, not
// fatal: the engine connects as soon as Redis answers.
func (e *Engine) Start(hooks server.EngineHooks) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	if e.started.Swap(true) {
		return errors.New("bayeux/redis: engine started twice")
	}
	e.hooks = hooks
	ready := make(chan struct{})
	e.wg.Add(2)
	go e.receive(ready)
	go e.sweeper()
	select {
	case <-ready:
	case <-time.After(3 * time.Second):
		e.log.Error("redis not reachable at start; the engine keeps trying", "url", redactURL(e.opts.URL))
	}
	return nil
}

// Close implements server.Engine. Waiting Fetches return
// server.ErrEngineClosed; sessions stay in Redis for the other nodes.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.cancel()
	e.psMu.Lock()
	if e.ps != nil {
		_ = e.ps.Close()
	}
	e.psMu.Unlock()
	e.wg.Wait()
	e.wakeAll()
	// Give woken Fetches a moment to leave before the client goes.
	for i := 0; i < 100 && e.waiting() > 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	return e.client.Close()
}

func (e *Engine) sweeper() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			e.keepLocals()
			e.sweep()
		}
	}
}

const sweepBatch = 100

func (e *Engine) sweep() {
	for e.ctx.Err() == nil {
		res, err := sweepScript.Run(e.ctx, e.client, nil, e.p, sweepBatch).Slice()
		if err != nil {
			if e.ctx.Err() == nil {
				e.log.Debug("sweep failed", "err", err)
			}
			return
		}
		for _, r := range res {
			rs, err := removed(r)
			if err != nil {
				e.log.Error("sweep: bad session record", "err", err)
				continue
			}
			e.forgetLocal(rs.Info.ID)
			e.stats.expired.Add(1)
			if e.hooks.Expired != nil {
				e.hooks.Expired(rs)
			}
		}
		if len(res) < sweepBatch {
			return
		}
	}
}

// keepLocals pushes back the expiry of this node's local-client sessions.
func (e *Engine) keepLocals() {
	e.localsMu.Lock()
	if len(e.locals) == 0 {
		e.localsMu.Unlock()
		return
	}
	args := []any{e.p, e.localTTL().Milliseconds()}
	for id := range e.locals {
		args = append(args, id)
	}
	e.localsMu.Unlock()
	if err := touchScript.Run(e.ctx, e.client, nil, args...).Err(); err != nil && e.ctx.Err() == nil {
		e.log.Debug("keeping local sessions alive failed", "err", err)
	}
}

func (e *Engine) forgetLocal(id string) {
	e.localsMu.Lock()
	delete(e.locals, id)
	e.localsMu.Unlock()
}

// removed decodes a destroy script result {id, info, subs...}.
func removed(v any) (*server.RemovedSession, error) {
	a, ok := v.([]any)
	if !ok || len(a) < 2 {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	info, err := decodeInfo(a[1])
	if err != nil {
		return nil, err
	}
	if id, _ := a[0].(string); info.ID == "" {
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

// fail maps an error of a Redis call: after Close it is ErrEngineClosed.
func (e *Engine) fail(op string, err error) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	return fmt.Errorf("bayeux/redis: %s: %w", op, err)
}

func (e *Engine) sk(id string) string { return e.p + "s:" + id }

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
	n, err := createScript.Run(ctx, e.client, nil, e.p, info.ID, b, ttl.Milliseconds()).Int()
	if err != nil {
		return e.fail("create session", err)
	}
	if n == 0 {
		return fmt.Errorf("bayeux/redis: session id %q exists", info.ID)
	}
	if info.Local {
		e.localsMu.Lock()
		e.locals[info.ID] = struct{}{}
		e.localsMu.Unlock()
	}
	return nil
}

// Session implements server.Engine.
func (e *Engine) Session(ctx context.Context, id string) (*server.SessionInfo, bool, error) {
	s, err := e.client.HGet(ctx, e.sk(id), "info").Result()
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

// DestroySession implements server.Engine.
func (e *Engine) DestroySession(ctx context.Context, id string) (*server.RemovedSession, error) {
	v, err := destroyScript.Run(ctx, e.client, nil, e.p, id).Result()
	if errors.Is(err, goredis.Nil) {
		e.forgetLocal(id)
		return nil, nil
	}
	if err != nil {
		return nil, e.fail("destroy session", err)
	}
	e.forgetLocal(id)
	return removed(v)
}

// Touch implements server.Engine. The expiry is kept as a delay from now
// on Redis's clock.
func (e *Engine) Touch(ctx context.Context, id string, expires time.Time) error {
	delay := "never"
	if !expires.IsZero() {
		delay = strconv.FormatInt(max(time.Until(expires).Milliseconds(), 0), 10)
	}
	n, err := touchScript.Run(ctx, e.client, nil, e.p, delay, id).Int()
	if err != nil {
		return e.fail("touch", err)
	}
	if n == 0 {
		return protocol.ErrSessionUnknown
	}
	return nil
}

// SessionCount implements server.Engine.
func (e *Engine) SessionCount(ctx context.Context) (int, error) {
	n, err := e.client.ZCard(ctx, e.p+"sessions").Result()
	if err != nil {
		return 0, e.fail("session count", err)
	}
	return int(n), nil
}

// ListSessions implements server.Engine. It reads the sessions in batches;
// sessions created or removed meanwhile may be missed or listed.
func (e *Engine) ListSessions(ctx context.Context) ([]*server.SessionInfo, error) {
	const batch = 500
	var out []*server.SessionInfo
	for start := 0; ; start += batch {
		v, err := listScript.Run(ctx, e.client, nil, e.p, start, batch).Slice()
		if err != nil {
			return nil, e.fail("list sessions", err)
		}
		if len(v) != 2 {
			return nil, fmt.Errorf("bayeux/redis: list sessions: unexpected reply")
		}
		n, _ := v[0].(int64)
		infos, _ := v[1].([]any)
		for _, s := range infos {
			info, err := decodeInfo(s)
			if err != nil {
				return nil, fmt.Errorf("bayeux/redis: list sessions: %w", err)
			}
			out = append(out, info)
		}
		if n < batch {
			return out, nil
		}
	}
}

// Subscribe implements server.Engine.
func (e *Engine) Subscribe(ctx context.Context, id, pattern string, limit int) error {
	n, err := subscribeScript.Run(ctx, e.client, nil, e.p, id, pattern, limit).Int()
	switch {
	case err != nil:
		return e.fail("subscribe", err)
	case n == -1:
		return protocol.ErrSessionUnknown
	case n == -2:
		return protocol.ErrSubscriptionLimit
	}
	return nil
}

// Unsubscribe implements server.Engine.
func (e *Engine) Unsubscribe(ctx context.Context, id, pattern string) (bool, error) {
	n, err := unsubscribeScript.Run(ctx, e.client, nil, e.p, id, pattern).Int()
	switch {
	case err != nil:
		return false, e.fail("unsubscribe", err)
	case n == -1:
		return false, protocol.ErrSessionUnknown
	}
	return n == 1, nil
}

// Subscriptions implements server.Engine.
func (e *Engine) Subscriptions(ctx context.Context, id string) ([]string, error) {
	v, err := subscriptionsScript.Run(ctx, e.client, nil, e.p, id).Slice()
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

// Subscribers implements server.Engine.
func (e *Engine) Subscribers(ctx context.Context, channel string) ([]*server.SessionInfo, error) {
	v, err := infosScript.Run(ctx, e.client, []string{e.p + "c:" + channel}, e.p).Slice()
	if err != nil {
		return nil, e.fail("subscribers", err)
	}
	out := make([]*server.SessionInfo, 0, len(v))
	for _, s := range v {
		info, err := decodeInfo(s)
		if err != nil {
			return nil, fmt.Errorf("bayeux/redis: subscribers: %w", err)
		}
		out = append(out, info)
	}
	return out, nil
}

// Publish implements server.Engine: one round trip whatever the number of
// subscribers (two when the queues went over Budgets.MaxQueuedBytes).
func (e *Engine) Publish(ctx context.Context, p *server.Payload) (int, error) {
	if e.closed.Load() {
		return 0, server.ErrEngineClosed
	}
	var buf [16]string
	keys := append(buf[:0], e.p+"c:"+p.Channel)
	keys = protocol.Wilds(keys, p.Channel)
	for i := 1; i < len(keys); i++ {
		keys[i] = e.p + "c:" + keys[i]
	}
	v, err := publishScript.Run(ctx, e.client, keys, e.p, e.opts.MaxQueue, encodeEntry(p), e.opts.MaxQueueBytes, len(p.JSON)).Int64Slice()
	if err != nil {
		return 0, e.fail("publish", err)
	}
	if len(v) != 4 {
		return 0, e.fail("publish", errors.New("unexpected reply"))
	}
	e.afterEnqueue(ctx, v)
	return int(v[0]), nil
}

// Deliver implements server.Engine.
func (e *Engine) Deliver(ctx context.Context, id string, p *server.Payload) error {
	if e.closed.Load() {
		return server.ErrEngineClosed
	}
	v, err := deliverScript.Run(ctx, e.client, nil, e.p, e.opts.MaxQueue, encodeEntry(p), id, e.opts.MaxQueueBytes, len(p.JSON)).Int64Slice()
	if err != nil {
		return e.fail("deliver", err)
	}
	if len(v) != 4 {
		return e.fail("deliver", errors.New("unexpected reply"))
	}
	e.afterEnqueue(ctx, v)
	if v[0] == 0 {
		return protocol.ErrSessionUnknown
	}
	return nil
}

// afterEnqueue reports an enqueue's drops, {_, total bytes queued, drops
// by length, drops by bytes}, and sheds when the total is over budget.
func (e *Engine) afterEnqueue(ctx context.Context, v []int64) {
	e.report(server.DropQueueLength, int(v[2]))
	e.report(server.DropQueueBytes, int(v[3]))
	if max := e.opts.MaxQueuedBytes; max > 0 && v[1] > max {
		e.shed(ctx)
	}
}

func (e *Engine) report(reason string, n int) {
	if n > 0 && e.hooks.Dropped != nil {
		e.hooks.Dropped(reason, n)
	}
}

// shed brings the queues back under 7/8 of Budgets.MaxQueuedBytes,
// dropping from the biggest first (see shedScript). One shed at a time
// runs from this node; the script itself re-checks the total.
func (e *Engine) shed(ctx context.Context) {
	if !e.shedding.CompareAndSwap(false, true) {
		return
	}
	defer e.shedding.Store(false)
	max := e.opts.MaxQueuedBytes
	n, err := shedScript.Run(context.WithoutCancel(ctx), e.client, nil, e.p, max, max-max/8).Int()
	if err != nil {
		e.log.Warn("shedding queued messages failed", "err", err)
		return
	}
	e.report(server.DropQueuedBytes, n)
}

// AppendHistory implements server.Engine: one round trip that appends,
// trims, and forgets the least recently used channels' histories beyond
// Budgets.MaxHistoryChannels.
func (e *Engine) AppendHistory(ctx context.Context, channel string, msg []byte, maxLen int) error {
	if maxLen <= 0 {
		return nil
	}
	n, err := appendHistoryScript.Run(ctx, e.client, nil, e.p, channel, msg, maxLen, e.opts.MaxHistoryChannels).Int()
	if err != nil {
		return e.fail("append history", err)
	}
	e.report(server.DropHistory, n)
	return nil
}

// History implements server.Engine.
func (e *Engine) History(ctx context.Context, channel string, n int) ([][]byte, error) {
	start := int64(0)
	if n > 0 {
		start = int64(-n)
	}
	v, err := historyScript.Run(ctx, e.client, nil, e.p, channel, start).StringSlice()
	if err != nil {
		return nil, e.fail("history", err)
	}
	out := make([][]byte, len(v))
	for i, s := range v {
		out[i] = []byte(s)
	}
	return out, nil
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
