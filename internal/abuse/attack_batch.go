package abuse

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/bench"
)

// batchMessages is the size of the big batch: finding 8's 100,000 tiny
// messages ({} each: 300 KB, under the default body limit).
const (
	batchMessages = 100_000
	batchRepeats  = 20
	// batchCPUEach is the server CPU time one refusal may cost. Decoding
	// 100,000 messages costs about 20 ms; refusing at the limit, well
	// under 1 ms.
	batchCPUEach = 5 * time.Millisecond
)

// batchObs is what the big batch saw.
type batchObs struct {
	messages int
	answers  map[string]int // "HTTP 400", "socket closed 1008", ...
	slowest  time.Duration
	// cpu is the server's CPU time for all the batches (-1: unknown);
	// judged only on a server the suite started (quiet: a deployment's own
	// traffic would count too).
	cpu      time.Duration
	cpuQuiet bool
	health   answer
	maxBody  int // bytes of the largest answer (a processed batch answers every message)
}

// bigBatch is the rest of finding 8 of issue 13: requests (and a
// WebSocket frame) each holding 100,000 tiny messages, far over the batch
// limit. Each must be refused (4xx, or the socket closed) without being
// processed, and early, before the messages over the limit are decoded:
// on a server the suite started, the server's CPU time per refusal must
// stay under batchCPUEach.
func bigBatch(ctx context.Context, e *env) Result {
	n := min(batchMessages, int(e.t.limits.MaxMessageSize-2)/3)
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("{}")
	}
	b.WriteByte(']')
	body := b.Bytes()
	tried := fmt.Sprintf("%d requests and a WebSocket frame, each a batch of %d messages (%d KB; batch limit %d)",
		batchRepeats, n, len(body)>>10, e.t.limits.MaxBatch)
	o := batchObs{messages: n, answers: map[string]int{}, cpu: -1, cpuQuiet: e.t.logTail != nil}
	p := e.peer()
	cpu0, cpuErr := procCPU(e.t.pid)
	for range batchRepeats {
		a := p.do(ctx, http.MethodPost, "/cometd", body, http.Header{"Content-Type": {"application/json"}})
		o.slowest = max(o.slowest, a.took)
		o.maxBody = max(o.maxBody, len(a.body))
		o.answers[a.String()]++
	}
	o.answers[wsBatch(ctx, p, body)]++
	if cpu1, err := procCPU(e.t.pid); err == nil && cpuErr == nil {
		o.cpu = cpu1 - cpu0
	}
	o.health = p.do(ctx, http.MethodGet, "/healthz", nil, nil)
	if ctx.Err() != nil {
		return errorResult("big-batch", tried, ctx.Err())
	}
	return judgeBatch(tried, o)
}

// procCPU is the CPU time of pid (an error without one).
func procCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no pid")
	}
	return bench.ProcCPU(pid)
}

// wsBatch sends body as one WebSocket frame and says how the server
// answered: "socket closed N", or the bytes of its answer.
func wsBatch(ctx context.Context, p *peer, body []byte) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hc := *p.hc
	hc.Timeout = 0
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.origin(), "http")+"/cometd", &websocket.DialOptions{HTTPClient: &hc})
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.CloseNow()
	c.SetReadLimit(maxBody)
	if err := c.Write(ctx, websocket.MessageText, body); err != nil {
		return "socket closed while writing"
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		if st := websocket.CloseStatus(err); st != -1 {
			return fmt.Sprintf("socket closed %d", st)
		}
		return "error: " + err.Error()
	}
	return fmt.Sprintf("a frame of %d bytes", len(b))
}

// judgeBatch: every request refused with a 4xx (or the socket closed),
// never answered message by message (an answer as big as the batch), and
// the server still answers.
func judgeBatch(tried string, o batchObs) Result {
	var f findings
	var parts []string
	for _, a := range sortedKeys(o.answers) {
		parts = append(parts, fmt.Sprintf("%d %s", o.answers[a], a))
		refused := strings.HasPrefix(a, "HTTP 4") || strings.HasPrefix(a, "socket closed")
		f.check(!refused, "%d answered %s", o.answers[a], a)
	}
	f.note("%s; slowest answer %v", strings.Join(parts, ", "), o.slowest.Round(time.Millisecond))
	f.check(o.maxBody > o.messages, "an answer of %d bytes: the batch was processed", o.maxBody)
	if o.cpu >= 0 {
		each := o.cpu / (batchRepeats + 1)
		f.note("server CPU %v for the %d batches (%v each, bound %v)", o.cpu, batchRepeats+1, each.Round(time.Millisecond/10), batchCPUEach)
		f.check(o.cpuQuiet && each > batchCPUEach, "refusing a batch cost the server %v of CPU: it was decoded past the limit", each.Round(time.Millisecond/10))
	}
	f.check(o.health.err != nil || o.health.status != http.StatusOK, "/healthz afterwards: %v", o.health)
	return f.result("big-batch", tried)
}
