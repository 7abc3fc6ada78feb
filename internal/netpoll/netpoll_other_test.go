//go:build !linux

package netpoll

import (
	"errors"
	"testing"
)

func TestUnsupported(t *testing.T) {
	p, err := New()
	if p != nil || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("New() = %v, %v; want an error wrapping errors.ErrUnsupported", p, err)
	}
}
