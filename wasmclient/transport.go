package wasmclient

import (
	"context"
	"strconv"
)

// Transport sends one batch of Bayeux messages and returns the response.
//
// Send POSTs body (a JSON array of messages) to url and returns the
// response body. A response with a status other than 200 must be reported
// as an error, preferably an *HTTPError. Send must give up when ctx ends
// and then return an error (ctx.Err() or one wrapping it). The Client calls
// Send from at most two goroutines at once (the held /meta/connect and one
// other request), so implementations must be safe for concurrent use.
type Transport interface {
	Send(ctx context.Context, url string, body []byte) ([]byte, error)
}

// TransportFunc adapts a function to the Transport interface, for example
// to wrap another Transport in tests.
type TransportFunc func(ctx context.Context, url string, body []byte) ([]byte, error)

// Send calls f.
func (f TransportFunc) Send(ctx context.Context, url string, body []byte) ([]byte, error) {
	return f(ctx, url, body)
}

// HTTPError reports a response with a status other than 200. Body holds
// the start of the response body, for diagnostics.
type HTTPError struct {
	StatusCode int
	Status     string
	Body       string
}

// Error returns "wasmclient: HTTP <status>".
func (e *HTTPError) Error() string {
	s := e.Status
	if s == "" {
		s = strconv.Itoa(e.StatusCode)
	}
	return "wasmclient: HTTP " + s
}

// maxErrorBody bounds HTTPError.Body.
const maxErrorBody = 512
