package auth

import (
	"errors"
	"sync/atomic"
	"time"
)

// Errors returned by Authenticator.Authenticate. Both mean "no"; the
// distinction is for messages and metrics.
var (
	ErrInvalidCredentials = errors.New("invalid user name or password")
	ErrRateLimited        = errors.New("too many failed logins, try again later")
)

// Authenticator is the one authority that decides who someone is. It
// checks a user name and password against Users and rate-limits failures
// per user and per IP address.
type Authenticator struct {
	Users  *Users
	byUser *FailureLimiter
	byIP   *FailureLimiter
	// Failed counts failed logins (for metrics).
	Failed atomic.Int64
}

// NewAuthenticator returns an Authenticator that blocks a user name after
// 5 failures and an IP address after 20 failures within 5 minutes.
func NewAuthenticator(users *Users) *Authenticator {
	return &Authenticator{
		Users:  users,
		byUser: NewFailureLimiter(5, 5*time.Minute),
		byIP:   NewFailureLimiter(20, 5*time.Minute),
	}
}

// Authenticate checks the credentials of user coming from ip. It returns
// nil when they are right.
func (a *Authenticator) Authenticate(user, password, ip string) error {
	if blocked, _ := a.byUser.Blocked("u:" + user); blocked {
		a.Failed.Add(1)
		return ErrRateLimited
	}
	if blocked, _ := a.byIP.Blocked("ip:" + ip); blocked {
		a.Failed.Add(1)
		return ErrRateLimited
	}
	if !ValidName(user) || !a.Users.Check(user, password) {
		a.byUser.Fail("u:" + user)
		a.byIP.Fail("ip:" + ip)
		a.Failed.Add(1)
		return ErrInvalidCredentials
	}
	a.byUser.Reset("u:" + user)
	return nil
}
