package chat

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rooms limits how fast each user creates rooms (Chat.RoomRate): a token
// bucket per user. Whether a room exists (and so whether writing to it
// creates it) is the server's to say: the rooms rule is asked about
// create only for a room that does not exist. Safe for concurrent use.
type rooms struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	users map[string]*rate.Limiter // one bucket per user
	next  int                      // forget full buckets when users grows past this
}

func (r *rooms) init(perMinute float64, burst int) {
	r.limit = rate.Limit(perMinute / 60)
	r.burst = max(burst, 1)
	r.users = make(map[string]*rate.Limiter)
	r.next = 1024
}

// allow reports whether user may create a room now, and takes a token of
// its bucket if so. Administrators, and everybody when the rate is 0, are
// not limited.
func (r *rooms) allow(user string, admin bool, now time.Time) bool {
	if r.limit <= 0 || admin {
		return true
	}
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
