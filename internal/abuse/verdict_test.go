package abuse

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// The verdicts on canned observations: each attack's judge must call a
// defended server PASS and each way the attack can succeed FAIL, naming
// what happened.

// wantVerdict checks r's verdict and that its text mentions want.
func wantVerdict(t *testing.T, r Result, v Verdict, want string) {
	t.Helper()
	if r.Verdict != v {
		t.Errorf("verdict %s, want %s: %s", r.Verdict, v, r.Saw)
	}
	if !strings.Contains(r.Saw, want) {
		t.Errorf("report %q lacks %q", r.Saw, want)
	}
}

func TestJudgeGuesses(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name   string
		bursts []guessBurst
		want   Verdict
		says   string
	}
	defended := guessBurst{via: "/login", counts: map[string]int{loginWrong: 5, loginLimited: 95}, right: loginLimited, checked: 5}
	for _, tc := range []testCase{
		{"limit held, right password refused", []guessBurst{defended}, Pass, "5 checked by the answers, 5 by /metrics"},
		{"right password among the first checks", []guessBurst{{via: "/login", counts: map[string]int{loginWrong: 4, loginOK: 1, loginLimited: 95}, right: loginOK, checked: 5}}, Pass, "the right password got in as one of the 5 checks allowed"},
		{"parallel guesses beat the limit", []guessBurst{{via: "/login", counts: map[string]int{loginWrong: 31, loginLimited: 69}, right: loginLimited, checked: 31}}, Fail, "31 passwords checked, limit 5"},
		{"right password after the limit", []guessBurst{defended, {via: "ext.auth", counts: map[string]int{loginWrong: 50, loginOK: 1, loginLimited: 39}, right: loginOK, checked: -1}}, Fail, "the right password got in after 50 wrong ones"},
		{"metrics count more checks than the answers", []guessBurst{{via: "ext.auth", counts: map[string]int{loginWrong: 5, loginLimited: 85}, right: loginLimited, checked: 51}}, Fail, "/metrics counts 51 passwords checked"},
		{"metrics unknown", []guessBurst{{via: "/login", counts: map[string]int{loginWrong: 5, loginLimited: 95}, right: loginLimited, checked: -1}}, Pass, "unknown by /metrics"},
		{"a wrong password logged in", []guessBurst{{via: "/login", counts: map[string]int{loginOK: 2, loginLimited: 98}, right: loginOK, checked: 2}}, Fail, "a wrong password logged in"},
		{"server errors", []guessBurst{{via: "/login", counts: map[string]int{loginWrong: 5, "HTTP 500": 95}, right: "HTTP 500", checked: 5}}, Fail, "95 answered HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantVerdict(t, judgeGuesses("guessing", 5, tc.bursts), tc.want, tc.says)
		})
	}
}

func TestJudgeFlood(t *testing.T) {
	t.Parallel()
	lim := floodLimits{queueBytes: 4 << 20, replySize: 1 << 20, publishSize: 64 << 10}
	good := floodObs{msgSize: 63 << 10, published: 1000, accepted: 1000, sentBytes: 63 << 20, overCap: "413:65536:publish_too_large",
		connects: 5, delivered: 64, dropped: 936, firstDrop: true, maxReply: 1000 << 10,
		ack: true, ackReplies: []int{1000 << 10, 1000 << 10}, ackDropped: 936, ackResent: true,
		rssBefore: 40 << 10, rssPeak: 50 << 10}
	type testCase struct {
		name   string
		change func(o *floodObs)
		want   Verdict
		says   string
	}
	for _, tc := range []testCase{
		{"bounded", func(*floodObs) {}, Pass, "RSS 40.0 MB before, peak 50.0 MB"},
		{"RSS grows with the flood", func(o *floodObs) { o.rssPeak = 400 << 10 }, Fail, "RSS grew by 360.0 MB"},
		{"RSS unknown", func(o *floodObs) { o.rssBefore, o.rssPeak = 0, 0 }, Pass, "RSS not measured"},
		{"over the cap accepted", func(o *floodObs) { o.overCap = "successful" }, Fail, "over the publish cap (65536 bytes) was accepted"},
		{"over the cap delivered", func(o *floodObs) { o.overCapDelivered = true }, Fail, "reached the subscriber"},
		{"drops not reported", func(o *floodObs) { o.firstDrop, o.dropped = false, 0 }, Fail, "does not report drops"},
		{"lost silently", func(o *floodObs) { o.dropped = 900 }, Fail, "lost silently"},
		{"one huge reply", func(o *floodObs) { o.maxReply = 60 << 20 }, Fail, "a connect reply of 61440 KB"},
		{"huge ack reply", func(o *floodObs) { o.ackReplies = []int{60 << 20, 60 << 20} }, Fail, "an ack connect reply of 61440 KB"},
		{"ack batch not re-sent", func(o *floodObs) { o.ackResent = false }, Fail, "not sent again"},
		{"out of order", func(o *floodObs) { o.outOfOrder = true }, Fail, "out of order"},
		{"a connect failed", func(o *floodObs) { o.drainFailed = "402::session_unknown" }, Fail, "402::session_unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			o.ackReplies = append([]int(nil), good.ackReplies...)
			tc.change(&o)
			wantVerdict(t, judgeFlood("flood", o, lim), tc.want, tc.says)
		})
	}
}

func TestJudgeSlow(t *testing.T) {
	t.Parallel()
	rt := 2 * time.Second
	conns := func(outs ...slowOutcome) []slowOutcome { return outs }
	cut := slowOutcome{status: 400, closed: true, elapsed: rt}
	type testCase struct {
		name string
		o    slowObs
		want Verdict
		says string
	}
	healthy := answer{status: http.StatusOK, took: 5 * time.Millisecond}
	for _, tc := range []testCase{
		{"all cut", slowObs{conns: conns(cut, cut), readTimeout: rt, loopback: true, health: healthy, handshake: "successful", held: "successful", heldTook: 4 * time.Second, poll: 4 * time.Second},
			Pass, "2 cut after at most 2s (2 HTTP 400)"},
		{"refused at once by the caps", slowObs{conns: conns(cut, slowOutcome{status: 429, closed: true}, slowOutcome{closed: true, elapsed: time.Millisecond}), readTimeout: rt, health: answer{status: 429}, handshake: "HTTP 429"},
			Pass, "2 refused at once"},
		{"still open", slowObs{conns: conns(cut, slowOutcome{elapsed: 5 * time.Second}), readTimeout: rt, loopback: true, health: healthy, handshake: "successful"},
			Fail, "1 slow bodies still open"},
		{"healthz refused to another address", slowObs{conns: conns(cut), readTimeout: rt, loopback: true, health: answer{status: 429}, handshake: "successful"},
			Fail, "/healthz meanwhile: HTTP 429"},
		{"healthz unanswered", slowObs{conns: conns(cut), readTimeout: rt, loopback: true, health: answer{err: errTest}, handshake: "successful"},
			Fail, "/healthz meanwhile: test"},
		{"held connect cut", slowObs{conns: conns(cut), readTimeout: rt, loopback: true, health: healthy, handshake: "successful", held: "HTTP 408", heldTook: 2 * time.Second, poll: 4 * time.Second},
			Fail, "a held connect was cut"},
		{"held connect answered early", slowObs{conns: conns(cut), readTimeout: rt, loopback: true, health: healthy, handshake: "successful", held: "successful", heldTook: 2 * time.Second, poll: 4 * time.Second},
			Fail, "a held connect was cut"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantVerdict(t, judgeSlow("slow", tc.o), tc.want, tc.says) })
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("test")

func TestJudgeProbes(t *testing.T) {
	t.Parallel()
	wantVerdict(t, judgeProbes("replay", "", []probe{{what: "/chat/", saw: "HTTP 303 to /login"}}), Pass, "/chat/: HTTP 303 to /login")
	r := judgeProbes("replay", "", []probe{{what: "/chat/", saw: "HTTP 303 to /login"}, {what: "handshake", reached: true, saw: `session of "boss"`}})
	wantVerdict(t, r, Fail, `ATTACK SUCCEEDED: handshake: session of "boss"`)
}

func TestLoggedOutOf(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		a       answer
		reached bool
	}
	for _, tc := range []testCase{
		{"redirect to login", answer{status: 303, header: http.Header{"Location": {"/login?next=%2Fchat%2F"}}}, false},
		{"forbidden", answer{status: 403}, false},
		{"served", answer{status: 200, header: http.Header{}}, true},
		{"chat not built", answer{status: 503, header: http.Header{}}, true},
		{"redirect elsewhere", answer{status: 303, header: http.Header{"Location": {"/chat/"}}}, true},
	} {
		if got := loggedOutOf("x", tc.a).reached; got != tc.reached {
			t.Errorf("%s: reached %v, want %v", tc.name, got, tc.reached)
		}
	}
}

func TestJudgeUTF8(t *testing.T) {
	t.Parallel()
	order := []string{"data", "ext"}
	type testCase struct {
		name string
		o    utf8Obs
		want Verdict
		says string
	}
	valid := []receivedBody{{"the subscriber", []byte(`[{"channel":"/x","data":"after"}]`)}}
	for _, tc := range []testCase{
		{"refused", utf8Obs{sent: map[string]string{"data": "refused: HTTP 400", "ext": "refused: socket closed 1007"}, bodies: valid, after: true}, Pass, "2 of 2 refused"},
		{"replaced", utf8Obs{sent: map[string]string{"data": "accepted", "ext": "accepted"}, bodies: []receivedBody{{"the subscriber", []byte(`[{"channel":"/x","data":"caf\ufffd"}]`)}},
			delivered: 2, replaced: 2, after: true}, Pass, "2 forwarded (2 with U+FFFD"},
		{"forwarded as is", utf8Obs{sent: map[string]string{"data": "accepted", "ext": "accepted"}, bodies: []receivedBody{{"the subscriber", []byte("[{\"channel\":\"/x\",\"data\":\"caf\xe9\"}]")}}, after: true},
			Fail, "the subscriber received invalid JSON"},
		{"server error", utf8Obs{sent: map[string]string{"data": "refused: HTTP 500", "ext": "accepted"}, bodies: valid, after: true}, Fail, "data: refused: HTTP 500"},
		{"broken afterwards", utf8Obs{sent: map[string]string{"data": "refused: HTTP 400", "ext": "refused: HTTP 400"}, bodies: valid}, Fail, "did not arrive"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantVerdict(t, judgeUTF8("utf8", tc.o, order), tc.want, tc.says) })
	}
}

func TestJudgeBatch(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		o    batchObs
		want Verdict
		says string
	}
	ok := answer{status: 200}
	refused := map[string]int{"HTTP 400": 20, "socket closed 1008": 1}
	for _, tc := range []testCase{
		{"refused early", batchObs{messages: 100000, answers: refused, cpu: 20 * time.Millisecond, cpuQuiet: true, health: ok}, Pass, "20 HTTP 400, 1 socket closed 1008"},
		{"decoded in full", batchObs{messages: 100000, answers: refused, cpu: 330 * time.Millisecond, cpuQuiet: true, health: ok}, Fail, "decoded past the limit"},
		{"busy server, CPU not judged", batchObs{messages: 100000, answers: refused, cpu: 330 * time.Millisecond, health: ok}, Pass, "15.7ms each"},
		{"processed", batchObs{messages: 100000, answers: map[string]int{"HTTP 200": 21}, maxBody: 4 << 20, cpu: -1, health: ok}, Fail, "the batch was processed"},
		{"server down afterwards", batchObs{messages: 100000, answers: refused, cpu: -1, health: answer{err: errTest}}, Fail, "/healthz afterwards"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantVerdict(t, judgeBatch("batch", tc.o), tc.want, tc.says) })
	}
}

func TestJudgeHandshakes(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		o    handshakeObs
		want Verdict
		says string
	}
	base := handshakeObs{sent: 200, burst: 100, rate: 5, sessions: 20, took: 40 * time.Millisecond}
	with := func(answers map[string]int, noAdvice int) handshakeObs {
		o := base
		o.answers, o.noAdvice = answers, noAdvice
		return o
	}
	for _, tc := range []testCase{
		{"capped", with(map[string]int{"successful": 20, "429::too_many_sessions": 80, "429::too_many_handshakes": 100}, 0), Pass, "20 successful"},
		{"over the session cap", with(map[string]int{"successful": 60, "429::too_many_handshakes": 140}, 0), Fail, "60 sessions from one address, at most 20 allowed"},
		{"refused without advice", with(map[string]int{"successful": 20, "429::too_many_sessions": 180}, 180), Fail, "180 refusals without advice"},
		{"refused with a server error", with(map[string]int{"successful": 20, "500::oops": 180}, 0), Fail, "180 answered 500::oops"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantVerdict(t, judgeHandshakes("handshakes", tc.o), tc.want, tc.says) })
	}
	// Without a session cap, the rate bounds: burst + rate × time + 1.
	o := with(map[string]int{"successful": 103, "429::too_many_handshakes": 97}, 0)
	o.sessions = 0
	o.took = 200 * time.Millisecond
	wantVerdict(t, judgeHandshakes("handshakes", o), Fail, "103 sessions from one address, at most 102 allowed")
}

func TestJudgeRooms(t *testing.T) {
	t.Parallel()
	wantVerdict(t, judgeRooms("rooms", 10, 10, time.Second, map[string]int{"created": 10, "403:room_rate_limited:channel_create_denied": 20}), Pass,
		"10 created, 20 403:room_rate_limited:channel_create_denied")
	wantVerdict(t, judgeRooms("rooms", 10, 10, time.Second, map[string]int{"created": 11, "403:other:channel_create_denied": 20}), Fail,
		"no room_rate_limited refusal")
	wantVerdict(t, judgeRooms("rooms", 10, 10, time.Second, map[string]int{"created": 30}), Fail, "30 rooms created, at most 12 allowed")
	wantVerdict(t, judgeRooms("rooms", 10, 0, time.Second, map[string]int{"created": 30}), Pass, "30 created")
}

func TestJudgeChatExt(t *testing.T) {
	t.Parallel()
	stamped := &protocol.Message{Channel: "/chat/x", Data: []byte(`{"user":"mallory","chat":"hello"}`)}
	wantVerdict(t, judgeChatExt("ext", 60<<10, []*protocol.Message{stamped}, 200), Pass, "0 of ext")
	forwarded := &protocol.Message{Channel: "/chat/x", Data: stamped.Data, Ext: map[string]json.RawMessage{"pad": json.RawMessage(`"` + strings.Repeat("x", 60<<10) + `"`)}}
	wantVerdict(t, judgeChatExt("ext", 60<<10, []*protocol.Message{forwarded}, 200), Fail, "the ext of 60 KB was forwarded")
	wantVerdict(t, judgeChatExt("ext", 60<<10, []*protocol.Message{stamped}, 70<<10), Fail, "history keeps the ext")
	wantVerdict(t, judgeChatExt("ext", 60<<10, nil, 0), Fail, "did not get the message")
}
