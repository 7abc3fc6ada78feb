package auth

import (
	"context"
	"errors"
	"sync/atomic"
)

// Errors returned by Authenticator.Authenticate. Both mean "no"; the
// distinction is for messages and metrics. A refusal by a limit is a
// *LimitError, which matches ErrRateLimited.
var (
	ErrInvalidCredentials = errors.New("invalid user name or password")
	ErrRateLimited        = errors.New("too many failed logins, try again later")
)

// Authenticator is the one authority that decides who someone is. It
// checks a user name and password against Users, and counts every attempt
// with Guesses before the password is checked, so that parallel attempts
// cannot get more guesses than the limits allow (see GuessLimits).
type Authenticator struct {
	Users   *Users
	Guesses Guesses
	// Failed counts failed logins, refused ones included (for metrics).
	Failed atomic.Int64
	// Checked counts passwords checked (bcrypt evaluations).
	Checked atomic.Int64
}

// NewAuthenticator returns an Authenticator counting attempts in memory
// with the default GuessLimits.
func NewAuthenticator(users *Users) *Authenticator {
	return &Authenticator{Users: users, Guesses: NewMemoryGuesses(GuessLimits{})}
}

// Authenticate checks the credentials of user coming from ip. It returns
// nil when they are right, ErrInvalidCredentials when they are wrong, a
// *LimitError when a limit refused the attempt before its password was
// checked, or the error of Guesses (then nothing was checked).
func (a *Authenticator) Authenticate(ctx context.Context, user, password, ip string) error {
	g, err := a.Guesses.Reserve(ctx, user, ip)
	if err != nil {
		a.Failed.Add(1)
		return err
	}
	ok := false
	if ValidName(user) {
		a.Checked.Add(1)
		ok = a.Users.Check(user, password)
	}
	if !ok {
		a.Failed.Add(1)
		return ErrInvalidCredentials // the reservation stays, as a failure
	}
	// An error here only leaves the attempt counted as a failure, which
	// expires: the password was right all the same.
	_ = a.Guesses.Succeeded(ctx, g)
	return nil
}
