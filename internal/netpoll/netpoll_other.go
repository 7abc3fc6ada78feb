//go:build !linux

package netpoll

import (
	"errors"
	"fmt"
	"syscall"
)

// Poller delivers one-shot read-readiness notifications for many
// connections with one epoll instance and one goroutine. It exists only on
// Linux; elsewhere New fails and the methods of a nil Poller return errors.
type Poller struct{}

// New returns an error wrapping [errors.ErrUnsupported]: there is no epoll
// on this system. Callers fall back to a goroutine per connection.
func New() (*Poller, error) {
	return nil, fmt.Errorf("netpoll: epoll not available: %w", errors.ErrUnsupported)
}

// Wait returns an error wrapping [errors.ErrUnsupported].
func (p *Poller) Wait(conn syscall.Conn, fn func()) (cancel func() bool, err error) {
	return nil, fmt.Errorf("netpoll: epoll not available: %w", errors.ErrUnsupported)
}

// Close returns [ErrClosed].
func (p *Poller) Close() error { return ErrClosed }
