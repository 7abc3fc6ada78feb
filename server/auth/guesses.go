package auth

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Reasons a login attempt is refused before its password is checked; they
// are the reasons counted in bayeux_refused_total.
const (
	// RefusedLoginUserIP: too many failed logins for one user from one
	// address (GuessLimits.PerUserIP).
	RefusedLoginUserIP = "login_user_ip"
	// RefusedLoginIP: too many failed logins from one address, whatever
	// the users (GuessLimits.PerIP).
	RefusedLoginIP = "login_ip"
	// RefusedLoginUser: the user is under attack (GuessLimits.PerUser
	// failures from everywhere) and this address already failed for them.
	RefusedLoginUser = "login_user"
)

// LimitError is the error of an attempt refused by a limit; Reason is one
// of the Refused* constants. errors.Is(err, ErrRateLimited) holds.
type LimitError struct{ Reason string }

func (e *LimitError) Error() string { return ErrRateLimited.Error() + " (" + e.Reason + ")" }

// Is makes a LimitError match ErrRateLimited.
func (e *LimitError) Is(target error) bool { return target == ErrRateLimited }

// GuessLimits bounds password guessing. Every attempt is counted before
// its password is checked and stays counted as a failure unless the
// password was right, for Window.
//
//   - PerUserIP attempts per user from one address, and PerIP attempts
//     from one address whatever the user, are hard limits.
//   - PerUser counts the failures of a user from every address. Reaching
//     it does not lock the account: it means the account is under
//     attack, and from then on only an address that has not failed for
//     this user in the window may try, once (its attempt makes it a
//     failed address until it succeeds). The owner coming from a clean
//     address is therefore never refused, while a distributed guesser
//     gets at most one guess per address per window instead of
//     PerUserIP, on top of the PerUser guesses that set the alarm. (No
//     rule can bound a user's guesses absolutely without refusing the
//     owner from a new address: the two are indistinguishable before the
//     password is checked.)
//
// Addresses are IP addresses; IPv6 addresses count per /64, the block one
// customer usually gets, so that rotating through one's own block buys
// nothing.
type GuessLimits struct {
	Window    time.Duration // default 15m
	PerUserIP int           // default 5
	PerIP     int           // default 20
	PerUser   int           // default 20
}

// WithDefaults returns g with its zero fields set to the defaults.
func (g GuessLimits) WithDefaults() GuessLimits {
	if g.Window <= 0 {
		g.Window = 15 * time.Minute
	}
	if g.PerUserIP <= 0 {
		g.PerUserIP = 5
	}
	if g.PerIP <= 0 {
		g.PerIP = 20
	}
	if g.PerUser <= 0 {
		g.PerUser = 20
	}
	return g
}

// Guess is one counted login attempt, returned by Guesses.Reserve.
type Guess struct {
	User, Addr string // as counted: AddrKey(addr), and "" for an invalid user name
	ID         string // tells this attempt from the others of the same keys
}

// Guesses counts login attempts against GuessLimits. Reserve is atomic:
// however many attempts arrive at once, no more than the limits allow are
// let through to the password check. Implementations are safe for
// concurrent use; MemoryGuesses counts in the process, and the Redis one
// (package server/redis) counts for every node sharing a Redis.
type Guesses interface {
	// Reserve counts an attempt of user from addr before its password is
	// checked. It returns a *LimitError when a limit refuses it (the
	// attempt is then not counted).
	Reserve(ctx context.Context, user, addr string) (Guess, error)
	// Succeeded takes back the reservation of an attempt whose password
	// was right and forgets the failures of its user from its address
	// (the owner's typos); the others stay counted.
	Succeeded(ctx context.Context, g Guess) error
}

// AddrKey returns the address an attempt from ip counts against: the IP
// itself, or its /64 block for IPv6. Anything that is not an IP address
// counts as itself.
func AddrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// UserKey returns the user name an attempt counts against: the name, or
// "" for all names that cannot be a user (they cost nothing to vary, so
// they share one counter, which only PerUserIP and PerIP bound).
func UserKey(user string) string {
	if !ValidName(user) {
		return ""
	}
	return user
}

// MemoryGuesses counts attempts in this process. Use NewMemoryGuesses.
type MemoryGuesses struct {
	lim GuessLimits
	now func() time.Time
	// maxKeys bounds the counters kept; beyond it expired ones are
	// dropped, then the oldest.
	maxKeys int

	mu   sync.Mutex
	seq  uint64
	keys map[string][]attempt
}

type attempt struct {
	at time.Time
	id string
}

// NewMemoryGuesses returns Guesses kept in memory, for one node.
func NewMemoryGuesses(lim GuessLimits) *MemoryGuesses {
	return &MemoryGuesses{lim: lim.WithDefaults(), now: time.Now, maxKeys: 200000, keys: map[string][]attempt{}}
}

// Limits returns the limits in force.
func (m *MemoryGuesses) Limits() GuessLimits { return m.lim }

// The keys of the three counters of an attempt.
func keyUserIP(user, addr string) string { return "ua\x00" + user + "\x00" + addr }
func keyIP(addr string) string           { return "a\x00" + addr }
func keyUser(user string) string         { return "u\x00" + user }

// Reserve implements Guesses.
func (m *MemoryGuesses) Reserve(_ context.Context, user, addr string) (Guess, error) {
	g := Guess{User: UserKey(user), Addr: AddrKey(addr)}
	ku, ka, kua := keyUser(g.User), keyIP(g.Addr), keyUserIP(g.User, g.Addr)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	nua, na, nu := len(m.live(kua, now)), len(m.live(ka, now)), len(m.live(ku, now))
	switch {
	case nua >= m.lim.PerUserIP:
		return Guess{}, &LimitError{Reason: RefusedLoginUserIP}
	case nu >= m.lim.PerUser && nua > 0:
		return Guess{}, &LimitError{Reason: RefusedLoginUser}
	case na >= m.lim.PerIP:
		return Guess{}, &LimitError{Reason: RefusedLoginIP}
	}
	m.seq++
	g.ID = strconv.FormatUint(m.seq, 10)
	at := attempt{at: now, id: g.ID}
	for _, k := range [...]string{kua, ka, ku} {
		m.keys[k] = append(m.keys[k], at)
	}
	if len(m.keys) > m.maxKeys {
		m.shrink(now)
	}
	return g, nil
}

// Succeeded implements Guesses.
func (m *MemoryGuesses) Succeeded(_ context.Context, g Guess) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, keyUserIP(g.User, g.Addr))
	for _, k := range [...]string{keyIP(g.Addr), keyUser(g.User)} {
		as := m.keys[k]
		for i, a := range as {
			if a.id == g.ID {
				as = append(as[:i], as[i+1:]...)
				break
			}
		}
		if len(as) == 0 {
			delete(m.keys, k)
		} else {
			m.keys[k] = as
		}
	}
	return nil
}

// live returns the attempts of key within the window, dropping older ones.
func (m *MemoryGuesses) live(key string, now time.Time) []attempt {
	as := m.keys[key]
	cut := now.Add(-m.lim.Window)
	i := 0
	for i < len(as) && !as[i].at.After(cut) {
		i++
	}
	if i == len(as) {
		delete(m.keys, key)
		return nil
	}
	if i > 0 {
		as = as[i:]
		m.keys[key] = as
	}
	return as
}

// shrink bounds memory under a flood of distinct users and addresses:
// expired counters go first, then the ones whose last attempt is oldest,
// down to three quarters of maxKeys.
func (m *MemoryGuesses) shrink(now time.Time) {
	for k := range m.keys {
		m.live(k, now)
	}
	target := m.maxKeys * 3 / 4
	if len(m.keys) <= target {
		return
	}
	// Forget the counters idle longest: an attacker who floods keys
	// loses their own oldest counters first.
	cut := now.Add(-m.lim.Window)
	for len(m.keys) > target {
		cut = cut.Add(m.lim.Window / 8)
		for k, as := range m.keys {
			if !as[len(as)-1].at.After(cut) {
				delete(m.keys, k)
			}
		}
		if !cut.Before(now) {
			for k := range m.keys {
				if len(m.keys) <= target {
					break
				}
				delete(m.keys, k)
			}
		}
	}
}

var _ Guesses = (*MemoryGuesses)(nil)
