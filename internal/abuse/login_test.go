package abuse

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/config"
	"github.com/bayeux-go/bayeux/protocol"
)

func TestLoginOutcome(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		a    answer
		want string
	}
	for _, tc := range []testCase{
		{"logged in", answer{status: 303, header: http.Header{"Location": {"/chat/"}}}, loginOK},
		{"back to the form", answer{status: 303, header: http.Header{"Location": {"/login?next=/chat/"}}}, "HTTP 303"},
		{"wrong", answer{status: 401, body: []byte(`<p data-testid="login-error">Wrong user name or password.</p>`)}, loginWrong},
		{"limited", answer{status: 401, body: []byte(`<p>Too many failed logins. Try again in a few minutes.</p>`)}, loginLimited},
		{"capped", answer{status: 429, body: []byte("too many requests")}, "HTTP 429"},
		{"no answer", answer{err: errTest}, "error: test"},
	} {
		if got := loginOutcome(tc.a); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestHandshakeOutcome(t *testing.T) {
	t.Parallel()
	reply := func(ok bool, err string) bayeux {
		m := &protocol.Message{Channel: protocol.MetaHandshake, Error: err}
		m.SetSuccessful(ok)
		return bayeux{answer: answer{status: 200}, msgs: []*protocol.Message{m}}
	}
	type testCase struct {
		b    bayeux
		want string
	}
	for _, tc := range []testCase{
		{reply(true, ""), loginOK},
		{reply(false, "403::invalid_credentials"), loginWrong},
		{reply(false, "403::rate_limited"), loginLimited},
		{reply(false, "429::too_many_handshakes"), "429::too_many_handshakes"},
		{bayeux{answer: answer{status: 429}}, "HTTP 429"},
	} {
		if got := handshakeOutcome(tc.b); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.b.msgs, got, tc.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	text := func(failed int, userIP int) []byte {
		return []byte(strings.Join([]string{
			"# HELP bayeux_failed_logins_total Failed logins.",
			"# TYPE bayeux_failed_logins_total counter",
			"bayeux_failed_logins_total " + strconv.Itoa(failed),
			"# HELP bayeux_refused_total Refused, by reason.",
			"# TYPE bayeux_refused_total counter",
			`bayeux_refused_total{reason="handshake_rate"} 0`,
			`bayeux_refused_total{reason="login_ip"} 0`,
			`bayeux_refused_total{reason="login_user_ip"} ` + strconv.Itoa(userIP),
			"",
		}, "\n"))
	}
	before, err := parseMetrics(text(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseMetrics(text(103, 95))
	if err != nil {
		t.Fatal(err)
	}
	d := after.since(before)
	if d.failedLogins != 100 || d.sum("login_") != 95 || len(d.refused) != 1 {
		t.Errorf("delta %+v", d)
	}
	if got := d.String(); got != "refused login_user_ip +95" {
		t.Errorf("String() = %q", got)
	}
	if _, err := parseMetrics([]byte("go_goroutines 12\n")); err == nil {
		t.Error("metrics without bayeux_failed_logins_total parsed")
	}
	if (*metrics)(nil).since(before) != nil || after.since(nil) != nil {
		t.Error("a delta with unknown metrics")
	}
}

// TestBurstSendsTheRightPasswordLast: the right password goes while the
// wrong ones are still in flight (here held by the server until it
// arrives) but only after every one of them was written.
func TestBurstSendsTheRightPasswordLast(t *testing.T) {
	t.Parallel()
	const n = 20
	var wrong atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("password") != "right" {
			wrong.Add(1)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			io.WriteString(w, "Wrong user name or password.")
			return
		}
		once.Do(func() { close(release) })
		http.Redirect(w, r, "/chat/", http.StatusSeeOther)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	p := newPeer(u, "")
	t.Cleanup(p.close)
	start := time.Now()
	counts, right := burst(t.Context(), n, func(ctx context.Context, pw string) string { return p.login(ctx, "victim", pw) }, "right")
	if time.Since(start) > 5*time.Second {
		t.Error("the right password waited for the wrong ones to be answered")
	}
	if right != loginOK || counts[loginWrong] != n-1 || counts[loginOK] != 1 {
		t.Errorf("counts %v, right %s", counts, right)
	}
	if got := wrong.Load(); got != n-1 {
		t.Errorf("%d wrong guesses reached the server, want %d", got, n-1)
	}
	// Without HTTP (no write to wait for), it goes once the others
	// returned.
	var returned atomic.Int32
	counts, right = burst(t.Context(), n, func(_ context.Context, pw string) string {
		if pw == "right" {
			return strconv.Itoa(int(returned.Load()))
		}
		returned.Add(1)
		return loginWrong
	}, "right")
	if right != strconv.Itoa(n-1) {
		t.Errorf("the right password went after %s of %d wrong ones", right, n-1)
	}
}

// fakeLogin is a /login and /cometd that checks passwords for victim
// (password "right"): vulnerable, it checks every guess; defended, it
// refuses unchecked once limit guesses from the burst were counted.
func fakeLogin(t *testing.T, limit int) *httptest.Server {
	var mu sync.Mutex
	counted := 0
	check := func(pw string) string {
		mu.Lock()
		counted++
		over := limit > 0 && counted > limit
		mu.Unlock()
		switch {
		case over:
			return "limited"
		case pw == "right":
			return "ok"
		}
		return "wrong"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		switch check(r.PostForm.Get("password")) {
		case "ok":
			http.Redirect(w, r, "/chat/", http.StatusSeeOther)
		case "limited":
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "Too many failed logins. Try again in a few minutes.")
		default:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "Wrong user name or password.")
		}
	})
	mux.HandleFunc("POST /cometd", func(w http.ResponseWriter, r *http.Request) {
		var msgs []*protocol.Message
		_ = json.NewDecoder(r.Body).Decode(&msgs)
		var cred struct{ Password string }
		_ = json.Unmarshal(msgs[0].Ext["auth"], &cred)
		rep := msgs[0].Reply(false)
		switch check(cred.Password) {
		case "ok":
			rep.SetSuccessful(true)
			rep.ClientID = "c1"
		case "limited":
			rep.Error = "403::rate_limited"
		default:
			rep.Error = "403::invalid_credentials"
		}
		json.NewEncoder(w).Encode([]*protocol.Message{rep})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestLoginGuessingAgainstFakes runs the attack against a server that
// checks every parallel guess (FAIL: the right password gets in) and one
// that refuses unchecked beyond the limit (PASS). The fakes serve no
// /metrics: the verdict rests on the answers.
func TestLoginGuessingAgainstFakes(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name  string
		limit int // 0: vulnerable
		want  Verdict
		says  string
	}
	for _, tc := range []testCase{
		{"vulnerable", 0, Fail, "the right password got in after 99 wrong ones"},
		{"defended", 5, Pass, "wrong 5; the right password refused unchecked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeLogin(t, tc.limit)
			limits, err := config.LoadFrom(nil)
			if err != nil {
				t.Fatal(err)
			}
			tg := &target{url: srv.URL, limits: limits, victim: account{"victim", "right"}, stop: func() error { return nil }}
			e, err := newEnv(tg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.closePeers)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			wantVerdict(t, loginGuessing(ctx, e), tc.want, tc.says)
		})
	}
}

// TestTallyGuesses: passwords checked are failed logins not refused by a
// login limit, plus a success; unknown on a server that does not count
// the login limits' refusals (their series are declared at start).
func TestTallyGuesses(t *testing.T) {
	t.Parallel()
	m := func(failed float64, refused map[string]float64) *metrics {
		return &metrics{failedLogins: failed, refused: refused}
	}
	counts := map[string]int{loginWrong: 4, loginLimited: 95, loginOK: 1}
	g := tallyGuesses("/login", "x", counts, loginOK,
		m(10, map[string]float64{"login_user_ip": 0, "login_ip": 0, "handshake_rate": 3}),
		m(109, map[string]float64{"login_user_ip": 95, "login_ip": 0, "handshake_rate": 60}))
	if g.checked != 5 {
		t.Errorf("checked %d, want 4 failures + 1 success", g.checked)
	}
	old := tallyGuesses("/login", "x", counts, loginOK, m(0, map[string]float64{}), m(99, map[string]float64{}))
	if old.checked != -1 || old.refused == nil {
		t.Errorf("without login refusal series: checked %d, refused %v; want unknown and the delta", old.checked, old.refused)
	}
	if none := tallyGuesses("/login", "x", counts, loginOK, nil, nil); none.checked != -1 || none.refused != nil {
		t.Errorf("without /metrics: %+v", none)
	}
}
