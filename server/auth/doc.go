// Package auth decides who someone is: a users file in htpasswd format
// with bcrypt hashes; an Authenticator that checks passwords with a
// constant-time path after counting the attempt against per-address,
// per-user-and-address and per-user limits (Guesses, GuessLimits), so
// that parallel guesses get no more checks than the limits allow and
// nobody can lock an owner out; and browser logins (Logins) whose cookie,
// signed and encrypted with keys that survive restarts (gorilla/sessions),
// only points at a server-side record (LoginStore), so that a login can be
// ended for good: by logout, by an admin, by a password change.
//
// FileLoginStore and MemoryGuesses keep their state in one process; the
// Redis implementations in package server/redis share it between nodes.
// Passwords are never logged or kept in memory beyond a check. All types
// are safe for concurrent use.
package auth
