package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// deadlineScript: ARGV: prefix, id, deadline (RFC 3339, "" for none).
// Rewrites the deadline field of the session's info JSON in place, so
// that every node's next Session sees it. Returns 0 when the session does
// not exist.
var deadlineScript = goredis.NewScript(`
local sk = ARGV[1] .. 's:' .. ARGV[2]
local s = redis.call('HGET', sk, 'info')
if not s then return 0 end
local info = cjson.decode(s)
if ARGV[3] == '' then info['deadline'] = nil else info['deadline'] = ARGV[3] end
redis.call('HSET', sk, 'info', cjson.encode(info))
return 1
`)

var _ server.DeadlineSetter = (*Engine)(nil)

// SetDeadline implements server.DeadlineSetter.
func (e *Engine) SetDeadline(ctx context.Context, id string, deadline time.Time) error {
	d := ""
	if !deadline.IsZero() {
		d = deadline.UTC().Format(time.RFC3339Nano)
	}
	n, err := deadlineScript.Run(ctx, e.client, nil, e.p, id, d).Int()
	if err != nil {
		return e.fail("set deadline", err)
	}
	if n == 0 {
		return protocol.ErrSessionUnknown
	}
	return nil
}
