package redis

import (
	"context"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// deadlineScript: KEYS: session; ARGV: deadline (RFC 3339, "" for none),
// node channel prefix, id. Rewrites the deadline field of the session's
// info JSON in place, so that every node's next Session sees it, and
// tells the node that takes for the session, which answers Session from
// memory. Returns 0 when the session does not exist.
var deadlineScript = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'info', 'own')
if not h[1] then return 0 end
local info = cjson.decode(h[1])
if ARGV[1] == '' then info['deadline'] = nil else info['deadline'] = ARGV[1] end
redis.call('HSET', KEYS[1], 'info', cjson.encode(info))
if h[2] then redis.call('PUBLISH', ARGV[2] .. h[2], 'i' .. ARGV[3] .. '|' .. ARGV[1]) end
return 1
`)

var _ server.DeadlineSetter = (*Engine)(nil)

// SetDeadline implements server.DeadlineSetter. Session answers with the
// new deadline at once on this node and on the nodes that read the
// session from Redis; the node that takes for the session (another one)
// answers from memory and has it when its notice arrives, a moment later.
func (e *Engine) SetDeadline(ctx context.Context, id string, deadline time.Time) error {
	d := ""
	if !deadline.IsZero() {
		d = deadline.UTC().Format(time.RFC3339Nano)
	}
	n, err := deadlineScript.Run(ctx, e.client, []string{e.k.sess(id)}, d, e.k.nodeChan(), id).Int()
	if err != nil {
		return e.fail("set deadline", err)
	}
	if n == 0 {
		return protocol.ErrSessionUnknown
	}
	if s := e.owned.get(id); s != nil {
		s.deadline.Set(deadline)
	}
	return nil
}

// deadlineNotice handles "ID|DEADLINE" from SetDeadline on any node.
func (e *Engine) deadlineNotice(n string) {
	id, d, ok := strings.Cut(n, "|")
	if !ok {
		return
	}
	s := e.owned.get(id)
	if s == nil {
		return
	}
	var t time.Time
	if d != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, d); err != nil {
			e.log.Error("bad deadline notice", "err", err)
			return
		}
	}
	s.deadline.Set(t)
}
