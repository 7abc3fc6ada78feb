package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/bayeux-go/bayeux/protocol"
)

// jsonp sends msgs as a callback-polling (JSONP) GET, as a <script> a page
// includes would, with the peer's cookies and the given Sec-Fetch-Site
// ("" = none, as older browsers send), and returns the answer with the
// messages inside the callback.
func (p *peer) jsonp(ctx context.Context, site string, msgs ...*protocol.Message) bayeux {
	body, err := json.Marshal(msgs)
	if err != nil {
		return bayeux{answer: answer{err: err}}
	}
	q := url.Values{"jsonp": {"cb"}, "message": {string(body)}}
	hdr := http.Header{}
	if site != "" {
		hdr.Set("Sec-Fetch-Site", site)
	}
	a := p.do(ctx, http.MethodGet, "/cometd?"+q.Encode(), nil, hdr)
	b := bayeux{answer: a}
	if a.err == nil && a.status == http.StatusOK {
		if i, j := bytes.IndexByte(a.body, '('), bytes.LastIndexByte(a.body, ')'); i >= 0 && j > i {
			_ = json.Unmarshal(a.body[i+1:j], &b.msgs)
		}
	}
	return b
}

// jsonpSession handshakes over callback-polling and, when the server
// lets the session in, asks who it is and tries to chat as the user.
func jsonpSession(ctx context.Context, p *peer, site, room string) []probe {
	label := "JSONP handshake with the login cookie, Sec-Fetch-Site " + site
	if site == "" {
		label = "JSONP handshake with the login cookie, no Sec-Fetch-Site"
	}
	hs := p.jsonp(ctx, site, &protocol.Message{Channel: protocol.MetaHandshake, Version: protocol.Version,
		SupportedConnectionTypes: []string{protocol.CallbackPolling}})
	r := hs.reply(protocol.MetaHandshake)
	if r == nil || !r.IsSuccessful() {
		return []probe{{what: label, saw: "refused: " + hs.describe(protocol.MetaHandshake)}}
	}
	id := r.ClientID
	defer p.jsonp(context.WithoutCancel(ctx), site, &protocol.Message{Channel: protocol.MetaDisconnect, ClientID: id})
	who := p.jsonp(ctx, site, &protocol.Message{Channel: "/service/chat/whoami", ClientID: id, Data: json.RawMessage(`{}`)})
	user := ""
	for _, m := range who.msgs {
		if m.Data != nil {
			var d struct{ User string }
			_ = json.Unmarshal(m.Data, &d)
			user = d.User
		}
	}
	probes := []probe{{what: label, reached: user != "", saw: fmt.Sprintf("session of %q", user)}}
	pub := p.jsonp(ctx, site, &protocol.Message{Channel: "/chat/" + room, ClientID: id, ID: "j1",
		Data: json.RawMessage(`{"chat":"posted through JSONP with the victim's cookie"}`)})
	pr := pub.reply("/chat/" + room)
	probes = append(probes, probe{what: "its chat message", reached: pr != nil && pr.IsSuccessful(), saw: pub.describe("/chat/" + room)})
	return probes
}

// jsonpCookie is finding 7 of issue 13: a page that includes a JSONP
// <script> sends the user's login cookie. With Sec-Fetch-Site same-site
// or cross-site it must be refused, and without the header the session
// must not be the user's nor able to post as them.
func jsonpCookie(ctx context.Context, e *env) Result {
	u := e.t.user
	tried := fmt.Sprintf("log in as %s, then callback-polling handshakes with the cookie (Sec-Fetch-Site same-site, cross-site, none), whoami and a chat message", u.name)
	p := e.peer()
	if o := p.login(ctx, u.name, u.password); o != loginOK {
		return errorResult("jsonp-cookie", tried, fmt.Errorf("login as %s: %s", u.name, o))
	}
	// The cookie does log in over long-polling (what a same-origin page
	// with CORS checks gets).
	s, err := p.session(ctx, nil)
	if err != nil {
		return errorResult("jsonp-cookie", tried, err)
	}
	who, err := s.user(ctx)
	s.disconnect()
	if err != nil || who != u.name {
		return errorResult("jsonp-cookie", tried, fmt.Errorf("the login cookie over long-polling is %q (%v), want %s", who, err, u.name))
	}
	room := "abuse-jsonp"
	var probes []probe
	for _, site := range []string{"same-site", "cross-site", ""} {
		probes = append(probes, jsonpSession(ctx, p, site, room)...)
	}
	if ctx.Err() != nil {
		return errorResult("jsonp-cookie", tried, ctx.Err())
	}
	return judgeProbes("jsonp-cookie", tried, probes)
}
