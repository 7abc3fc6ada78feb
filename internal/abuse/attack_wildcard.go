package abuse

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/bayeux-go/bayeux/protocol"
)

// wildcardLurking is the first item of finding 8 of issue 13: a logged-in
// user who is not an admin subscribes to /chat/**, /chat/* and /**. Each
// must be refused, or, if accepted, the lurker must show in the member
// list of a room it reads (shown: no lurking). An anonymous client's
// wildcard must be refused too.
func wildcardLurking(ctx context.Context, e *env) Result {
	u := e.t.user
	tried := fmt.Sprintf("%s (not an admin) subscribes to /chat/**, /chat/* and /**; an anonymous client to /chat/**; someone writes in a new room", u.name)
	fail := func(err error) Result { return errorResult("wildcard-lurking", tried, err) }
	auth := map[string]any{"auth": map[string]string{"user": u.name, "password": u.password}}
	lurker, err := e.peer().session(ctx, auth)
	if err != nil {
		return fail(fmt.Errorf("ext.auth handshake as %s: %w", u.name, err))
	}
	defer lurker.disconnect()
	var probes []probe
	accepted := false
	for _, pattern := range []string{"/chat/**", "/chat/*", "/**"} {
		r, b := lurker.subscribe(ctx, pattern)
		ok := r != nil && r.IsSuccessful()
		accepted = accepted || ok
		// Accepted is judged below, by what the lurker reads unseen.
		probes = append(probes, probe{what: u.name + " subscribes " + pattern, saw: b.describe(protocol.MetaSubscribe)})
	}
	anon, err := e.peer().session(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer anon.disconnect()
	r, b := anon.subscribe(ctx, "/chat/**")
	probes = append(probes, probe{what: "anonymous subscribes /chat/**", reached: r != nil && r.IsSuccessful(), saw: b.describe(protocol.MetaSubscribe)})

	if accepted {
		// Someone writes in a room the lurker never joined: if the lurker
		// reads it, it must be in the room's member list.
		writerAcct := e.t.user
		if e.t.admin.name != "" {
			writerAcct = e.t.admin
		}
		writer, err := e.peer().session(ctx, map[string]any{"auth": map[string]string{"user": writerAcct.name, "password": writerAcct.password}})
		if err != nil {
			return fail(fmt.Errorf("ext.auth handshake as %s: %w", writerAcct.name, err))
		}
		defer writer.disconnect()
		lurker.connect(ctx, nil)
		room := "abuse-lurk-" + strings.ToLower(rand.Text()[:8])
		if r, b := writer.publish(ctx, "/chat/"+room, json.RawMessage(`{"chat":"a secret"}`), nil); r == nil || !r.IsSuccessful() {
			return fail(fmt.Errorf("writing in %s: %s", room, b.describe("/chat/"+room)))
		}
		read := len(lurker.connect(ctx, nil).deliveries("/chat/"+room)) > 0
		members, err := roomMembers(ctx, writer, room)
		if err != nil {
			return fail(err)
		}
		shown := slices.Contains(members, u.name)
		probes = append(probes, probe{what: "a message in a room " + u.name + " did not join",
			reached: read && !shown, saw: fmt.Sprintf("read by the lurker %v, members %v", read, members)})
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	return judgeProbes("wildcard-lurking", tried, probes)
}

// roomMembers asks the presence service for a room's members.
func roomMembers(ctx context.Context, s *session, room string) ([]string, error) {
	b := s.p.send(ctx, &protocol.Message{Channel: "/service/presence", ClientID: s.id, ID: "h1",
		Data: json.RawMessage(fmt.Sprintf(`{"channel":%q}`, "/chat/"+room))})
	for _, m := range b.msgs {
		if m.Data == nil {
			continue
		}
		var d struct {
			Members []string `json:"members"`
		}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return nil, err
		}
		return d.Members, nil
	}
	return nil, fmt.Errorf("presence: no answer (%s)", b.describe("/service/presence"))
}
