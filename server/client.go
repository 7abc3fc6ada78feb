package server

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/bayeux-go/bayeux/protocol"
)

// Client is the server's view of the client that sent a message: a remote
// Bayeux session, a local (in-process) client, or an anonymous publisher.
// It is passed to Options.Authorize and to ServiceFuncs and is only valid
// during that call.
type Client struct {
	info      *SessionInfo
	transport string
	// req is the request that carried the message; for a WebSocket (ws
	// set), built from the socket's kept request when first asked for.
	req atomic.Pointer[http.Request]
	ws  *wsConn
	// handshaking is true while Authorize runs for /meta/handshake; only
	// then do SetUser and SetFlag have an effect.
	handshaking bool
}

// ID returns the client id, or "" for an anonymous publisher and for a
// client that is still handshaking.
func (c *Client) ID() string {
	if c.handshaking {
		return ""
	}
	return c.info.ID
}

// User returns the authenticated identity set at handshake, or "".
func (c *Client) User() string { return c.info.User }

// SetUser records the authenticated identity of the client. It has an
// effect only while authorizing /meta/handshake.
func (c *Client) SetUser(user string) {
	if c.handshaking {
		c.info.User = user
	}
}

// Flag returns a flag set at handshake.
func (c *Client) Flag(key string) string { return c.info.Flags[key] }

// SetFlag sets a flag on the client (the seed's $client->flags). It has an
// effect only while authorizing /meta/handshake; flags are read-only later.
func (c *Client) SetFlag(key, value string) {
	if !c.handshaking {
		return
	}
	if c.info.Flags == nil {
		c.info.Flags = make(map[string]string)
	}
	c.info.Flags[key] = value
}

// RemoteAddr returns the client's IP address at handshake: its
// connection's, or the one a trusted proxy reported
// (Options.TrustedProxies).
func (c *Client) RemoteAddr() string { return c.info.RemoteAddr }

// IsLocal reports whether the client is an in-process LocalClient.
func (c *Client) IsLocal() bool { return c.info.Local }

// Anonymous reports whether the message came without a known session
// (only possible for publishes with Options.AnonPublish).
func (c *Client) Anonymous() bool { return c.info.ID == "" && !c.handshaking }

// Transport returns the connection type of the current request:
// "long-polling", "callback-polling", or "local".
func (c *Client) Transport() string { return c.transport }

// Request returns the HTTP request that carried the message, or nil for
// local clients. Handlers must treat it as read-only. Over WebSocket it is
// the upgrade request as the socket keeps it for its lifetime: without
// body, with only the headers that identify the client (Cookie,
// Authorization, Origin, User-Agent, Forwarded and X-Forwarded-*,
// X-Real-Ip), and with a context that holds only the client's address
// (realip.FromRequest); it is made again from what the socket keeps for
// each Client that asks (the same one for every call on one Client, from
// any goroutine).
//
// Security: a request the browser may have sent on behalf of another
// site's page carries no Cookie and no Authorization header here, so
// that no Authorize hook can log such a client in by its cookies: every
// callback-polling (JSONP) request, and requests from an origin allowed
// only by "*" in Options.AllowedOrigins. Such clients authenticate with
// the handshake's ext.
func (c *Client) Request() *http.Request {
	if r := c.req.Load(); r != nil || c.ws == nil {
		return r
	}
	r := c.ws.req.request(c.ws.raw)
	if c.req.CompareAndSwap(nil, r) {
		return r
	}
	return c.req.Load()
}

// Info returns a copy of the stored session information.
func (c *Client) Info() SessionInfo { return *c.info }

// handlerTable routes /service/ channels to ServiceFuncs.
type handlerTable struct {
	byName   map[string]ServiceFunc
	fallback ServiceFunc
}

func newHandlerTable(services map[string]ServiceFunc, echo bool) (*handlerTable, error) {
	h := &handlerTable{byName: make(map[string]ServiceFunc)}
	if echo {
		h.byName["echo"] = Echo
	}
	for name, fn := range services {
		if name == "_handler" {
			h.fallback = fn
			continue
		}
		if err := protocol.ValidateChannel("/service/" + name); err != nil {
			return nil, err
		}
		h.byName[name] = fn
	}
	return h, nil
}

func (h *handlerTable) lookup(channel string) ServiceFunc {
	if name, ok := strings.CutPrefix(channel, "/service/"); ok {
		if fn, ok := h.byName[name]; ok {
			return fn
		}
	}
	return h.fallback
}
