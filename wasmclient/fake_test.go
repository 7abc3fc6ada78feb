package wasmclient

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// fakeServer answers requests with the replies its handle function builds;
// it needs no network, so these tests run on every platform.
func fakeServer(handle func(m *protocol.Message) *protocol.Message) Transport {
	return TransportFunc(func(ctx context.Context, _ string, body []byte) ([]byte, error) {
		msgs, err := protocol.DecodeBatch(body)
		if err != nil {
			return nil, err
		}
		var out []*protocol.Message
		for _, m := range msgs {
			if r := handle(m); r != nil {
				out = append(out, r)
			}
		}
		return json.Marshal(out)
	})
}

func okReply(m *protocol.Message) *protocol.Message {
	r := m.Reply(true)
	if m.Channel == protocol.MetaHandshake {
		r.ClientID = "fakeclient"
		r.Version = protocol.Version
		r.SupportedConnectionTypes = []string{protocol.LongPolling}
	}
	return r
}

// A CometD server sends advice only when it changes: the interval of the
// handshake reply must keep applying to connects whose replies have none.
func TestAdviceRemembered(t *testing.T) {
	var mu sync.Mutex
	var connects []time.Time
	tr := fakeServer(func(m *protocol.Message) *protocol.Message {
		r := okReply(m)
		switch m.Channel {
		case protocol.MetaHandshake:
			r.Advice = &protocol.Advice{Reconnect: protocol.ReconnectRetry, Interval: protocol.Ms(150), Timeout: protocol.Ms(1000)}
		case protocol.MetaConnect:
			mu.Lock()
			connects = append(connects, time.Now())
			mu.Unlock()
		}
		return r
	})
	c := New("fake", Options{Transport: tr, Logger: quietLogger()})
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	for {
		mu.Lock()
		n := len(connects)
		mu.Unlock()
		if n >= 4 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(connects); i++ {
		if gap := connects[i].Sub(connects[i-1]); gap < 140*time.Millisecond {
			t.Errorf("connect %d came %v after the previous one, want ≥ 150ms", i, gap)
		}
	}
}

func TestHandshakeWithoutLongPolling(t *testing.T) {
	tr := fakeServer(func(m *protocol.Message) *protocol.Message {
		r := okReply(m)
		r.SupportedConnectionTypes = []string{protocol.WebSocket}
		return r
	})
	c := New("fake", Options{Transport: tr, Logger: quietLogger()})
	err := c.Connect(context.Background())
	if !errors.Is(err, protocol.ErrNoTransport) {
		t.Errorf("Connect = %v, want no_transport", err)
	}
	if c.State().State != Disconnected {
		t.Errorf("state %v", c.State().State)
	}
}

// A successful connect with reconnect:"handshake" (which the CometD JS
// client chokes on) makes this client re-handshake.
func TestHandshakeAdviceOnSuccessfulConnect(t *testing.T) {
	var mu sync.Mutex
	handshakes, connects := 0, 0
	tr := fakeServer(func(m *protocol.Message) *protocol.Message {
		mu.Lock()
		defer mu.Unlock()
		r := okReply(m)
		switch m.Channel {
		case protocol.MetaHandshake:
			handshakes++
		case protocol.MetaConnect:
			connects++
			if connects == 2 {
				r.Advice = &protocol.Advice{Reconnect: protocol.ReconnectHandshake}
			} else {
				r.Advice = &protocol.Advice{Interval: protocol.Ms(20), Timeout: protocol.Ms(1000)}
			}
		}
		return r
	})
	c := New("fake", Options{Transport: tr, Logger: quietLogger()})
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		h := handshakes
		mu.Unlock()
		if h == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no second handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
