package server

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The behaviour the memory engine shares with every Engine is tested by
// the conformance suite (server/enginetest), run in
// engine_conformance_test.go. What stays here are the helpers that the
// other tests of this package use to drive an engine directly.

// mkSession creates session id on e.
func mkSession(t *testing.T, e Engine, id string) {
	t.Helper()
	if err := e.CreateSession(context.Background(), &SessionInfo{ID: id, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// mkSub subscribes session id to patterns, without a limit.
func mkSub(t *testing.T, e Engine, id string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if err := e.Subscribe(context.Background(), id, p, 0); err != nil {
			t.Fatalf("Subscribe(%s, %s): %v", id, p, err)
		}
	}
}

// testPayload is a payload on channel whose data is n.
func testPayload(channel string, n int) *Payload {
	return &Payload{Channel: channel, JSON: []byte(fmt.Sprintf(`{"channel":%q,"data":%d}`, channel, n))}
}
