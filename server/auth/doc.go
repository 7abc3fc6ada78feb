// Package auth decides who someone is: a users file in htpasswd format
// with bcrypt hashes, an Authenticator that checks passwords with a
// constant-time path and rate-limits failures per user and per IP, and
// browser login sessions kept in signed, encrypted cookies
// (gorilla/sessions) whose keys survive restarts.
//
// Passwords are never logged or kept in memory beyond a check. All types
// are safe for concurrent use.
package auth
