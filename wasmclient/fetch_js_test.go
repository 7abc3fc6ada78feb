//go:build js && wasm

package wasmclient

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// These tests run under Node.js (see TestFetchTransportInNode) against the
// server at WASMCLIENT_URL, which must trust client ids without cookies.

func fetchURL(t *testing.T) string {
	u := os.Getenv("WASMCLIENT_URL")
	if u == "" {
		t.Skip("WASMCLIENT_URL not set")
	}
	return u
}

func TestFetchClient(t *testing.T) {
	url := fetchURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, ok := DefaultTransport().(*FetchTransport); !ok {
		t.Fatalf("DefaultTransport is %T", DefaultTransport())
	}
	a := New(url, Options{BackoffIncrement: 100 * time.Millisecond})
	b := New(url, Options{BackoffIncrement: 100 * time.Millisecond})
	for _, c := range []*Client{a, b} {
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer c.Disconnect(ctx)
	}
	got := make(chan *protocol.Message, 10)
	if _, err := b.Subscribe(ctx, "/wasm/**", func(m *protocol.Message) { got <- m }); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := a.Publish(ctx, "/wasm/x", map[string]any{"chat": "hé \u2603", "n": 1}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case m := <-got:
		if m.Channel != "/wasm/x" || !strings.Contains(string(m.Data), "\u2603") {
			t.Errorf("got %s %s", m.Channel, m.Data)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	reply, err := a.Call(ctx, "echo", "ping")
	if err != nil || string(reply.Data) != `"ping"` {
		t.Errorf("Call: %v %v", reply, err)
	}
	if err := a.Publish(ctx, "/meta/x", 1); !errors.Is(err, protocol.ErrPublishDenied) {
		t.Errorf("publish to /meta/x: %v", err)
	}
}

func TestFetchTransportErrors(t *testing.T) {
	url := fetchURL(t)
	tr := &FetchTransport{}
	ctx := context.Background()
	_, err := tr.Send(ctx, strings.TrimSuffix(url, "/cometd")+"/nope", []byte(`[]`))
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Errorf("404: %v", err)
	}

	// A held connect is aborted when its context ends.
	body, err := tr.Send(ctx, url, []byte(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := protocol.DecodeBatch(body)
	if err != nil || !msgs[0].IsSuccessful() {
		t.Fatalf("handshake: %s %v", body, err)
	}
	id := msgs[0].ClientID
	if _, err := tr.Send(ctx, url, []byte(`[{"channel":"/meta/connect","connectionType":"long-polling","clientId":"`+id+`","advice":{"timeout":0}}]`)); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = tr.Send(short, url, []byte(`[{"channel":"/meta/connect","connectionType":"long-polling","clientId":"`+id+`"}]`))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("aborted connect: %v after %v", err, time.Since(start))
	}
}
