package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Login is a browser's login as the server keeps it. The browser's cookie
// holds a random secret; ID is derived from it (SHA-256), so the records,
// which admins see and the store keeps on disk or in Redis, never hold
// anything that logs in.
type Login struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"seen"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"ua,omitempty"`
}

// LoginID returns the ID of the login whose cookie holds secret.
func LoginID(secret string) string {
	sum := sha256.Sum256([]byte("bayeux login\x00" + secret))
	return hex.EncodeToString(sum[:16])
}

// MaxUserAgent is how many bytes of a User-Agent a login keeps.
const MaxUserAgent = 256

// CleanUserAgent returns ua as a login keeps it: at most MaxUserAgent
// bytes of valid UTF-8 without control characters.
func CleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	ua = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, ua)
	if len(ua) > MaxUserAgent {
		ua = ua[:MaxUserAgent]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}

// SortLogins sorts logins newest first.
func SortLogins(ls []Login) {
	slices.SortFunc(ls, func(a, b Login) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// LoginLimits bound the logins a store keeps.
type LoginLimits struct {
	// MaxAge is how long a login lasts at most. Default 30 days.
	MaxAge time.Duration
	// Idle ends a login not seen for this long. Default 7 days.
	Idle time.Duration
	// PerUser is how many logins one user keeps; a new one beyond ends
	// the one seen least recently. Default 10.
	PerUser int
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l LoginLimits) WithDefaults() LoginLimits {
	if l.MaxAge <= 0 {
		l.MaxAge = 30 * 24 * time.Hour
	}
	if l.Idle <= 0 {
		l.Idle = 7 * 24 * time.Hour
	}
	if l.PerUser <= 0 {
		l.PerUser = 10
	}
	return l
}

// Expired reports whether l has ended by age or idleness at now.
func (lim LoginLimits) Expired(l Login, now time.Time) bool {
	return !now.Before(l.Created.Add(lim.MaxAge)) || !now.Before(l.LastSeen.Add(lim.Idle))
}

// LoginStore keeps the server side of browser logins: a login whose
// record is gone is no login, whatever its cookie says. FileLoginStore
// keeps them in a process (and a file); the Redis one (package
// server/redis) shares them between the nodes of a cluster.
// Implementations are safe for concurrent use and enforce LoginLimits:
// Get never returns an expired login, and Add keeps at most PerUser
// logins per user. Every method names the login's user, so that a store
// can keep a user's logins together (Redis Cluster: one hash slot).
type LoginStore interface {
	// Add stores a new login.
	Add(ctx context.Context, l Login) error
	// Get returns login id of user, if it exists and has not expired.
	Get(ctx context.Context, user, id string) (Login, bool, error)
	// Seen records that login id of user was used at at (its LastSeen).
	Seen(ctx context.Context, user, id string, at time.Time) error
	// Remove ends login id of user and returns it, if it existed.
	Remove(ctx context.Context, user, id string) (Login, bool, error)
	// RemoveUser ends every login of user except the one with ID except
	// ("" for none) and returns the ones it ended.
	RemoveUser(ctx context.Context, user, except string) ([]Login, error)
	// List returns the logins of user, newest first.
	List(ctx context.Context, user string) ([]Login, error)
}
