package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/bayeux-go/bayeux/protocol"
)

// TestServiceOneReply: whatever a service answers, the publish gets
// exactly one reply (successful, no data) after the answers; the first
// answer on the service's channel is the call's result (the request's id,
// successful, data), any other answer a plain message without id; an
// error is the one reply and nothing else. Over long-polling, WebSocket and
// for a local client.
func TestServiceOneReply(t *testing.T) {
	t.Parallel()
	fail := false
	type testCase struct {
		name    string
		answers []*protocol.Message
		err     error
		// want lists the messages the caller gets, in order, as
		// "channel id successful data" (id "=" is the request's).
		want []string
	}
	cases := []testCase{
		{"nothing", nil, nil, []string{"/service/t = true -"}},
		{"one answer", []*protocol.Message{{Data: json.RawMessage(`"a"`)}}, nil,
			[]string{`/service/t = true "a"`, "/service/t = true -"}},
		{"answer without data", []*protocol.Message{{}}, nil,
			[]string{"/service/t = true null", "/service/t = true -"}},
		{"two answers", []*protocol.Message{{Data: json.RawMessage(`1`)}, {Data: json.RawMessage(`2`)}}, nil,
			[]string{"/service/t = true 1", "/service/t - - 2", "/service/t = true -"}},
		{"another channel first", []*protocol.Message{{Channel: "/note", Data: json.RawMessage(`"n"`)}, {Data: json.RawMessage(`"r"`)}}, nil,
			[]string{`/note - - "n"`, `/service/t = true "r"`, "/service/t = true -"}},
		{"failed result", []*protocol.Message{{Successful: &fail, Data: json.RawMessage(`{"why":"x"}`)}}, nil,
			[]string{`/service/t = false {"why":"x"}`, "/service/t = true -"}},
		{"error", []*protocol.Message{{Data: json.RawMessage(`1`)}}, errors.New("no"), []string{"/service/t = false -"}},
	}
	show := func(req protocol.ID, m *protocol.Message) string {
		id, ok, data := "-", "-", "-"
		if m.ID == req && req != "" {
			id = "="
		} else if m.ID != "" {
			id = string(m.ID)
		}
		if m.Successful != nil {
			ok = fmt.Sprint(*m.Successful)
		}
		if m.Data != nil {
			data = string(m.Data)
		}
		return fmt.Sprintf("%s %s %s %s", m.Channel, id, ok, data)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{Services: map[string]ServiceFunc{"t": func(context.Context, *Client, *protocol.Message) ([]*protocol.Message, error) {
				out := make([]*protocol.Message, len(tc.answers))
				for i, a := range tc.answers {
					c := *a
					out[i] = &c
				}
				return out, tc.err
			}}})

			// Long-polling.
			a := h.client().start()
			req := publishMsg(a.id, "/service/t", 1)
			var got []string
			for _, m := range a.must(req) {
				got = append(got, show(req.ID, m))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("long-polling: %q, want %q", got, tc.want)
			}

			// WebSocket: the answers and the reply share one frame.
			ws := h.dialWS(nil)
			hs := handshakeMsg()
			hs.SupportedConnectionTypes = []string{protocol.WebSocket}
			ws.send(hs)
			ws.id = only(t, ws.read(hWait), protocol.MetaHandshake).ClientID
			req = publishMsg(ws.id, "/service/t", 1)
			req.ID = "w1"
			ws.send(req)
			got = got[:0]
			for _, m := range ws.read(hWait) {
				got = append(got, show(req.ID, m))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("WebSocket: %q, want %q", got, tc.want)
			}

			// A local client: the error, or the answers on its listeners.
			lc := newLocal(t, h, "")
			fn, ch := listen()
			if err := lc.Subscribe("/**", fn); err != nil {
				t.Fatal(err)
			}
			err := lc.Publish(context.Background(), "/service/t", 1)
			if (err != nil) != (tc.err != nil) {
				t.Fatalf("local Publish: %v, want error %v", err, tc.err)
			}
			var answers []string
			for _, w := range tc.want {
				if w != "/service/t = true -" && w != "/service/t = false -" {
					answers = append(answers, w)
				}
			}
			got = got[:0]
			for range answers {
				got = append(got, show("", recvLocal(t, ch).m))
			}
			for i := range got { // a local call has no id to echo
				answers[i] = replaceID(answers[i])
			}
			if fmt.Sprint(got) != fmt.Sprint(answers) {
				t.Errorf("local: %q, want %q", got, answers)
			}
		})
	}
}

// replaceID turns the "=" of a wanted message into "-": a local call has
// no id.
func replaceID(s string) string {
	var ch, id, ok, data string
	fmt.Sscan(s, &ch, &id, &ok, &data)
	if id == "=" {
		id = "-"
	}
	return fmt.Sprintf("%s %s %s %s", ch, id, ok, data)
}
