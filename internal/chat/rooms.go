package chat

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/server"
	"golang.org/x/time/rate"
)

// maxKnownRooms bounds how many rooms the chat remembers as existing.
const maxKnownRooms = 4096

// rooms limits how fast each user creates rooms (Chat.RoomRate). A room
// exists while it has members or history; so that the engine is not asked
// on every message, the rooms seen to exist lately are remembered (the
// least recently seen forgotten first). Safe for concurrent use.
type rooms struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	known map[string]*list.Element // of string
	lru   list.List                // most recently seen first
	users map[string]*rate.Limiter // one bucket per user
	next  int                      // forget full buckets when users grows past this
}

func (r *rooms) init(perMinute float64, burst int) {
	r.limit = rate.Limit(perMinute / 60)
	r.burst = max(burst, 1)
	r.known = make(map[string]*list.Element)
	r.users = make(map[string]*rate.Limiter)
	r.next = 1024
}

// seen reports whether room is known to exist, and refreshes it.
func (r *rooms) seen(room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el := r.known[room]; el != nil {
		r.lru.MoveToFront(el)
		return true
	}
	return false
}

// remember records that room exists.
func (r *rooms) remember(room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el := r.known[room]; el != nil {
		r.lru.MoveToFront(el)
		return
	}
	r.known[room] = r.lru.PushFront(room)
	for r.lru.Len() > maxKnownRooms {
		delete(r.known, r.lru.Remove(r.lru.Back()).(string))
	}
}

// take takes a token of user's bucket, if there is one.
func (r *rooms) take(user string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lim := r.users[user]
	if lim == nil {
		if len(r.users) >= r.next {
			// A full bucket is what a new one would be: forget it.
			for u, l := range r.users {
				if l.TokensAt(now) >= float64(r.burst) {
					delete(r.users, u)
				}
			}
			r.next = max(1024, 2*len(r.users))
		}
		lim = rate.NewLimiter(r.limit, r.burst)
		r.users[user] = lim
	}
	return lim.AllowN(now, 1)
}

// useRoom lets user write to or subscribe to room unless that creates the
// room beyond the user's rate (ErrRoomRate). Administrators are not
// limited.
func (c *Chat) useRoom(ctx context.Context, user, room string) error {
	if c.rooms.limit <= 0 || c.isAdmin(user) || c.rooms.seen(room) {
		return nil
	}
	exists, err := c.roomExists(ctx, room)
	if err != nil {
		// The engine will fail the message itself; the limit errs on the
		// side of the user.
		c.Log.Warn("room lookup failed", "room", room, "err", err)
		return nil
	}
	if !exists && !c.rooms.take(user, time.Now()) {
		c.srv.Stats().Refused.Add(RefusedRoomCreate)
		c.Log.Info("room creation rate-limited", "user", user, "room", room)
		return ErrRoomRate
	}
	c.rooms.remember(room)
	return nil
}

// roomExists reports whether room has members or a history (as far as
// the engine can tell: see server.SubscriberLister and server.Historian).
func (c *Chat) roomExists(ctx context.Context, room string) (bool, error) {
	if l, ok := c.srv.Engine().(server.SubscriberLister); ok {
		subs, err := l.Subscribers(ctx, RoomPrefix+room)
		if err != nil || len(subs) > 0 {
			return len(subs) > 0, err
		}
	}
	pg, err := c.srv.History(ctx, RoomPrefix+room, server.HistoryQuery{Limit: 1})
	if errors.Is(err, server.ErrNoHistory) {
		return false, nil
	}
	return len(pg.Messages) > 0, err
}
