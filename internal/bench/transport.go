package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"time"
)

// Kind says what a batch is for, so that a transport can treat the held
// /meta/connect differently (long-polling sends it on its own request).
type Kind uint8

// Kinds of batches.
const (
	KindHandshake Kind = iota
	KindConnect
	KindSubscribe
	KindPublish
	KindDisconnect
)

// Transport makes the connections of simulated clients: long-polling
// (LongPolling, RawLongPolling) or WebSocket, where Dial opens the socket,
// RoundTrip writes a frame and waits for the replies to its message ids,
// and every frame also goes to the handler given to Dial as it arrives.
type Transport interface {
	// ConnectionType is the Bayeux connectionType sent in handshakes and
	// connects ("long-polling", "websocket").
	ConnectionType() string
	// Dial returns a new connection for one simulated client, with its own
	// cookies (one browser each). push, if not nil, is given the batches
	// the server sends as they arrive (never called by long-polling; a
	// Conn that calls it for every batch says so with PushesAll, see
	// pushesAll).
	Dial(push Push) (Conn, error)
	// Close releases what the transport holds (idle connections).
	Close()
}

// Push handles a batch received at `at` as it arrives: it counts its
// deliveries and returns its replies (the rest of the batch) as a JSON
// array, for the RoundTrip they answer.
type Push func(batch []byte, at time.Time) (replies []byte)

// Conn is one simulated client's connection.
type Conn interface {
	// RoundTrip sends batch (a JSON array of messages) and returns what the
	// server answered: a JSON array of replies and deliveries, appended
	// to dst. The context bounds the whole exchange.
	RoundTrip(ctx context.Context, kind Kind, batch, dst []byte) ([]byte, error)
	// Close ends the connection.
	Close() error
}

// HTTPError is a reply with a status other than 200.
type HTTPError struct{ Code int }

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP status %d", e.Code) }

// errorKind names an error for the errors map of the result: http_NNN,
// timeout, canceled, or net.
func errorKind(err error) string {
	var he *HTTPError
	var ne net.Error
	switch {
	case errors.As(err, &he):
		return fmt.Sprintf("http_%d", he.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errSyntax):
		return "bad_reply"
	default:
		return "net"
	}
}

// LongPolling is the long-polling transport: every batch is one HTTP POST
// of a JSON array to URL; the reply body is the answer. All connections
// share one http.Transport (HTTP/1.1 only, a large idle pool); each has
// its own cookie jar.
type LongPolling struct {
	URL string
	tr  *http.Transport
}

// NewLongPolling returns a long-polling transport for url, sized for
// about clients simultaneous clients.
func NewLongPolling(url string, clients int) *LongPolling {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: 2*clients + 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      16 << 10,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true) // no HTTP/2: one held connect per connection, as browsers over HTTP/1.1
	return &LongPolling{URL: url, tr: tr}
}

// ConnectionType implements Transport.
func (t *LongPolling) ConnectionType() string { return "long-polling" }

// Dial implements Transport.
func (t *LongPolling) Dial(Push) (Conn, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &lpConn{t: t, client: &http.Client{Transport: t.tr, Jar: jar}}, nil
}

// Close implements Transport.
func (t *LongPolling) Close() { t.tr.CloseIdleConnections() }

type lpConn struct {
	t      *LongPolling
	client *http.Client
}

func (c *lpConn) RoundTrip(ctx context.Context, kind Kind, batch, dst []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.t.URL, bytes.NewReader(batch))
	if err != nil {
		return dst, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	resp, err := c.client.Do(req)
	if err != nil {
		return dst, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return dst, &HTTPError{Code: resp.StatusCode}
	}
	return readAll(dst, resp.Body)
}

func (c *lpConn) Close() error { return nil }

// readAll appends everything r yields to dst.
func readAll(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
