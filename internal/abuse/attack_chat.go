package abuse

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// chatExt is part of finding 3 of issue 13: a chat message carrying an
// ext as big as the publish cap allows. The server builds chat messages
// itself: the ext must reach neither the room's members nor its history.
func chatExt(ctx context.Context, e *env) Result {
	u := e.t.user
	size := int(e.t.limits.MaxPublishSize) - 1024
	tried := fmt.Sprintf("%s writes a chat message with an ext of %d KB, then reads the room and its history", u.name, size>>10)
	fail := func(err error) Result { return errorResult("chat-ext", tried, err) }
	s, err := e.peer().session(ctx, map[string]any{"auth": map[string]string{"user": u.name, "password": u.password}})
	if err != nil {
		return fail(fmt.Errorf("ext.auth handshake as %s: %w", u.name, err))
	}
	defer s.disconnect()
	room := "abuse-ext-" + strings.ToLower(rand.Text()[:8])
	if r, b := s.subscribe(ctx, "/chat/"+room); r == nil || !r.IsSuccessful() {
		return fail(fmt.Errorf("subscribe: %s", b.describe(protocol.MetaSubscribe)))
	}
	s.connect(ctx, nil)
	ext := map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("x", size) + `"`)}
	r, b := s.publish(ctx, "/chat/"+room, json.RawMessage(`{"chat":"hello"}`), ext)
	var f findings
	if r == nil || !r.IsSuccessful() {
		f.note("the message was refused: %s", b.describe("/chat/"+room))
		return f.result("chat-ext", tried)
	}
	var delivered []*protocol.Message
	for range 5 {
		delivered = append(delivered, s.connect(ctx, nil).deliveries("/chat/"+room)...)
		if len(delivered) > 0 {
			break
		}
	}
	h := s.p.send(ctx, &protocol.Message{Channel: "/service/history", ClientID: s.id, ID: "h1",
		Data: json.RawMessage(fmt.Sprintf(`{"channel":%q}`, "/chat/"+room))})
	history := 0
	for _, m := range h.msgs {
		if m.Data != nil {
			history = max(history, len(m.Data))
		}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	return judgeChatExt(tried, size, delivered, history)
}

// judgeChatExt: the message was delivered, without the ext (or with a
// small one of the server's), and the room's history holds no more than
// a small message.
func judgeChatExt(tried string, size int, delivered []*protocol.Message, historyBytes int) Result {
	var f findings
	if len(delivered) == 0 {
		f.fail("the room's member did not get the message")
	}
	for _, m := range delivered {
		n := 0
		for _, v := range m.Ext {
			n += len(v)
		}
		f.note("delivered with %d bytes of data and %d of ext", len(m.Data), n)
		f.check(n > size/2 || len(m.Data) > size/2, "the ext of %d KB was forwarded", size>>10)
	}
	f.note("history answer %d bytes", historyBytes)
	f.check(historyBytes > size/2, "the room's history keeps the ext (%d bytes)", historyBytes)
	return f.result("chat-ext", tried)
}

// roomFlood is the rest of finding 3: a user creates rooms as fast as it
// can (three times the burst). Beyond the burst (and what the rate gives
// back meanwhile) the server must refuse as room_rate_limited (the chat's
// create rule: 403:room_rate_limited:channel_create_denied).
func roomFlood(ctx context.Context, e *env) Result {
	u := e.t.rooms
	burst, rate := e.t.limits.RoomBurst, e.t.limits.RoomRate
	n := 3 * burst
	tried := fmt.Sprintf("%s writes in %d new rooms as fast as it can (room burst %d, rate %g a minute)", u.name, n, burst, rate)
	s, err := e.peer().session(ctx, map[string]any{"auth": map[string]string{"user": u.name, "password": u.password}})
	if err != nil {
		return errorResult("room-flood", tried, fmt.Errorf("ext.auth handshake as %s: %w", u.name, err))
	}
	defer s.disconnect()
	prefix := "abuse-room-" + strings.ToLower(rand.Text()[:6]) + "-"
	answers := map[string]int{}
	start := time.Now()
	for i := range n {
		ch := fmt.Sprintf("/chat/%s%d", prefix, i)
		r, b := s.publish(ctx, ch, json.RawMessage(`{"chat":"hi"}`), nil)
		switch {
		case r == nil:
			answers[b.describe(ch)]++
		case r.IsSuccessful():
			answers["created"]++
		default:
			answers[r.Error]++
		}
	}
	if ctx.Err() != nil {
		return errorResult("room-flood", tried, ctx.Err())
	}
	return judgeRooms(tried, burst, rate, time.Since(start), answers)
}

// judgeRooms: at most burst + rate × elapsed rooms created (plus one for
// a token refilled at the edge), the rest refused as room_rate_limited
// (never a 5xx). With rate 0 (unlimited) any number is fine.
func judgeRooms(tried string, burst int, rate float64, took time.Duration, answers map[string]int) Result {
	var f findings
	created := answers["created"]
	f.note("%d created, %s in %v", created, answerList(answers, "created"), took.Round(time.Millisecond))
	if rate > 0 {
		allowed := burst + int(math.Ceil(rate*took.Minutes())) + 1
		f.check(created > allowed, "%d rooms created, at most %d allowed", created, allowed)
		limited := 0
		for a, n := range answers {
			if strings.Contains(a, "room_rate_limited") {
				limited += n
			}
		}
		f.check(limited == 0 && created > burst, "no room_rate_limited refusal")
	}
	for a, n := range answers {
		f.check(strings.HasPrefix(a, "5") || strings.HasPrefix(a, "HTTP 5"), "%d answered %s", n, a)
	}
	return f.result("room-flood", tried)
}

// answerList formats the counts of answers other than skip.
func answerList(answers map[string]int, skip string) string {
	var parts []string
	for _, a := range sortedKeys(answers) {
		if a != skip {
			parts = append(parts, fmt.Sprintf("%d %s", answers[a], a))
		}
	}
	if len(parts) == 0 {
		return "none refused"
	}
	return strings.Join(parts, ", ")
}
