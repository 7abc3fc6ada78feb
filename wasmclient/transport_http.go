//go:build !js

package wasmclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
)

// maxResponse bounds a response body read by HTTPTransport.
const maxResponse = 64 << 20

// HTTPTransport is the native Transport, on net/http. The zero value uses
// http.DefaultClient, which keeps no cookies: use NewHTTPTransport (or set
// Client to a client with a Jar), because the server binds a session to
// the BAYEUX_BROWSER cookie it sets at handshake and answers every later
// request without it with 402::session_unknown. Clients that share a
// cookie jar look like tabs of one browser to the server, which then holds
// only one of their connects at a time (multiple-clients advice).
//
// An HTTPTransport is safe for concurrent use; do not change its fields
// after first use.
type HTTPTransport struct {
	// Client sends the requests. nil means http.DefaultClient.
	Client *http.Client
	// Header holds extra request headers (for example Authorization).
	Header http.Header
}

// NewHTTPTransport returns an HTTPTransport with its own cookie jar.
func NewHTTPTransport() *HTTPTransport {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &HTTPTransport{Client: &http.Client{Jar: jar}}
}

// DefaultTransport returns the platform's Transport: natively a new
// HTTPTransport with its own cookie jar, in the browser a FetchTransport.
func DefaultTransport() Transport { return NewHTTPTransport() }

// Send implements Transport.
func (t *HTTPTransport) Send(ctx context.Context, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range t.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	hc := t.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, Body: string(b)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("wasmclient: response larger than %d bytes", maxResponse)
	}
	return b, nil
}
