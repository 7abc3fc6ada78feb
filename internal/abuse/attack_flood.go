package abuse

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/bayeux-go/bayeux/protocol"
)

// floodBytes is how much the flooder publishes: many times every budget
// involved, so that an unbounded queue shows in the RSS at once.
const floodBytes = 64 << 20

const floodChannel = "/abuse/flood"

// floodObs is what the queue flood saw.
type floodObs struct {
	msgSize   int   // bytes of one flood message's data
	published int   // flood messages sent
	accepted  int   // of them, answered successful
	sentBytes int64 // bytes of data published

	overCap          string // what publishing one message over the cap got ("successful" = accepted)
	overCapDelivered bool

	// The stalled subscriber's connects after the flood.
	connects    int
	delivered   int
	dropped     int  // sum of ext.dropped
	firstDrop   bool // the first connect reported drops
	maxReply    int  // bytes of the largest connect reply
	outOfOrder  bool
	duplicates  int
	drainFailed string // why draining stopped early ("" = drained)

	// The ack subscriber's two connects (nothing acknowledged).
	ack        bool // the server offered the ack extension
	ackReplies []int
	ackDropped int
	ackResent  bool // the second connect re-sent the first's batch

	rssBefore, rssPeak int64 // KiB; 0 = unknown
}

// floodLimits are the server limits the flood's verdict uses.
type floodLimits struct {
	queueBytes, replySize, publishSize int64
}

// queueFlood is finding 2 of issue 13: an anonymous subscriber that stops
// reading (and one with the ack extension) while an anonymous publisher
// sends messages up to the publish size cap (64 MB of them), then one
// above it. The server's RSS must stay bounded, the subscriber's next
// connect must report what it lost in ext.dropped, and no connect reply
// may be bigger than the reply cap (plus one message).
func queueFlood(ctx context.Context, e *env) Result {
	lim := floodLimits{e.t.limits.MaxQueueBytes, e.t.limits.MaxReplySize, e.t.limits.MaxPublishSize}
	o := floodObs{msgSize: int(lim.publishSize) - 256}
	tried := fmt.Sprintf("an anonymous subscriber that stops reading and one with ack, while an anonymous publisher sends %d MB in messages of %d KB (the publish cap), then one over the cap",
		floodBytes>>20, o.msgSize>>10)
	fail := func(err error) Result { return errorResult("queue-flood", tried, err) }

	stalled, err := e.peer().session(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer stalled.disconnect()
	acker, err := e.peer().session(ctx, map[string]any{"ack": true})
	if err != nil {
		return fail(err)
	}
	defer acker.disconnect()
	pub, err := e.peer().session(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer pub.disconnect()
	for _, s := range []*session{stalled, acker} {
		if r, b := s.subscribe(ctx, floodChannel); r == nil || !r.IsSuccessful() {
			return fail(fmt.Errorf("subscribe: %s", b.describe(protocol.MetaSubscribe)))
		}
	}
	stalled.connect(ctx, nil)
	acker.connect(ctx, ackExt(0))

	o.rssBefore = e.rss.mark()
	pad := strings.Repeat("x", o.msgSize-32)
	perRequest := max(1, min(e.t.limits.MaxBatch, int(e.t.limits.MaxMessageSize-4096)/(o.msgSize+200)))
	total := floodBytes / o.msgSize
	for o.published < total && ctx.Err() == nil {
		var b []byte
		b = append(b, '[')
		n := min(perRequest, total-o.published)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"channel":%q,"clientId":%q,"id":"%d","data":{"n":%d,"pad":%q}}`,
				floodChannel, pub.id, o.published+i, o.published+i, pad)
		}
		b = append(b, ']')
		r := pub.p.postBayeux(ctx, "application/json", b)
		if r.err != nil || r.status != 200 {
			return fail(fmt.Errorf("publishing: %v after %d messages", r.answer, o.published))
		}
		for _, m := range r.msgs {
			if m.Channel == floodChannel && m.IsSuccessful() {
				o.accepted++
			}
		}
		o.published += n
		o.sentBytes += int64(n * o.msgSize)
	}
	if ctx.Err() != nil {
		return fail(fmt.Errorf("%w after %d of %d messages", ctx.Err(), o.published, total))
	}
	// One over the cap.
	over := fmt.Sprintf(`{"n":-1,"pad":%q}`, strings.Repeat("y", int(lim.publishSize)+1024))
	r, b := pub.publish(ctx, floodChannel, json.RawMessage(over), nil)
	switch {
	case r == nil:
		o.overCap = b.answer.String()
	case r.IsSuccessful():
		o.overCap = "successful"
	default:
		o.overCap = r.Error
	}

	// The stalled subscriber comes back.
	last := -1
	for o.connects < o.accepted+2 {
		c := stalled.connect(ctx, nil)
		if c.err != nil || c.status != 200 {
			o.drainFailed = c.answer.String()
			break
		}
		o.connects++
		o.maxReply = max(o.maxReply, len(c.body))
		rep := c.reply(protocol.MetaConnect)
		if rep == nil || !rep.IsSuccessful() {
			o.drainFailed = c.describe(protocol.MetaConnect)
			break
		}
		d := extInt(rep, "dropped")
		o.dropped += d
		if o.connects == 1 {
			o.firstDrop = d > 0
		}
		got := c.deliveries(floodChannel)
		for _, m := range got {
			n := dataN(m)
			switch {
			case n == -1:
				o.overCapDelivered = true
			case n == last:
				o.duplicates++
			case n < last:
				o.outOfOrder = true
			}
			last = max(last, n)
		}
		o.delivered += len(got)
		if len(got) == 0 {
			break
		}
	}

	// The ack subscriber asks twice without acknowledging.
	var first []int
	for i := range 2 {
		c := acker.connect(ctx, ackExt(0))
		rep := c.reply(protocol.MetaConnect)
		if c.err != nil || rep == nil {
			break
		}
		if i == 0 {
			o.ack = rep.Ext["ack"] != nil
		}
		o.ackReplies = append(o.ackReplies, len(c.body))
		o.ackDropped += extInt(rep, "dropped")
		var ns []int
		for _, m := range c.deliveries(floodChannel) {
			ns = append(ns, dataN(m))
		}
		if i == 0 {
			first = ns
		} else {
			o.ackResent = len(ns) > 0 && len(first) > 0 && ns[0] == first[0]
		}
	}
	o.rssPeak = e.rss.sinceMark()
	return judgeFlood(tried, o, lim)
}

// floodRSSBound is the RSS growth the flood may cause: the two stalled
// queues at their byte budget, each message kept twice (its encoded
// delivery and a request's decoded copy), plus room for the runtime
// (request buffers, garbage not yet collected). Unbounded queues grow by
// twice floodBytes.
func floodRSSBound(lim floodLimits) int64 {
	return (2*2*lim.queueBytes + 48<<20) >> 10
}

// judgeFlood: RSS growth within floodRSSBound; the message over the cap
// refused and never delivered; the stalled subscriber told what it lost
// (delivered + dropped = accepted, nothing lost silently), in order; no
// connect reply over the reply cap plus one message, with ack too.
func judgeFlood(tried string, o floodObs, lim floodLimits) Result {
	var f findings
	f.note("%d of %d messages accepted (%d MB)", o.accepted, o.published, o.sentBytes>>20)
	f.note("over the cap: %s", o.overCap)
	f.check(o.overCap == "successful", "a message over the publish cap (%d bytes) was accepted", lim.publishSize)
	f.check(o.overCapDelivered, "the message over the publish cap reached the subscriber")
	f.note("the stalled subscriber's %d connects: %d delivered, ext.dropped %d, largest reply %d KB (cap %d KB)",
		o.connects, o.delivered, o.dropped, o.maxReply>>10, lim.replySize>>10)
	if o.drainFailed != "" {
		f.fail("a connect of the stalled subscriber failed: %s", o.drainFailed)
	}
	replyBound := int(lim.replySize + lim.publishSize + 4096)
	f.check(o.maxReply > replyBound, "a connect reply of %d KB, over the cap of %d KB plus one message", o.maxReply>>10, lim.replySize>>10)
	f.check(int64(o.accepted)*int64(o.msgSize) > lim.queueBytes && !o.firstDrop, "the first connect after the flood does not report drops in ext.dropped")
	f.check(o.delivered+o.dropped != o.accepted, "delivered %d + dropped %d != accepted %d: messages lost silently or duplicated", o.delivered, o.dropped, o.accepted)
	f.check(o.outOfOrder || o.duplicates > 0, "deliveries out of order (%d duplicates)", o.duplicates)
	if o.ack {
		f.note("ack subscriber: replies of %s KB, ext.dropped %d, unacknowledged batch re-sent %v", kbList(o.ackReplies), o.ackDropped, o.ackResent)
		for _, n := range o.ackReplies {
			f.check(n > replyBound, "an ack connect reply of %d KB, over the cap of %d KB plus one message", n>>10, lim.replySize>>10)
		}
		f.check(len(o.ackReplies) == 2 && !o.ackResent, "the ack subscriber's unacknowledged batch was not sent again")
		f.check(o.ackDropped == 0, "the ack subscriber was not told about drops")
	} else {
		f.note("the server did not offer the ack extension")
	}
	if o.rssBefore > 0 {
		growth := o.rssPeak - o.rssBefore
		f.note("RSS %s before, peak %s (+%s, bound +%s)", mb(o.rssBefore), mb(o.rssPeak), mb(growth), mb(floodRSSBound(lim)))
		f.check(growth > floodRSSBound(lim), "the server's RSS grew by %s while %d MB was published to stalled subscribers", mb(growth), o.sentBytes>>20)
	} else {
		f.note("RSS not measured")
	}
	return f.result("queue-flood", tried)
}

func ackExt(n int) map[string]json.RawMessage {
	return map[string]json.RawMessage{"ack": json.RawMessage(strconv.Itoa(n))}
}

// extInt returns m.Ext[key] as an int (0 when absent or not a number).
func extInt(m *protocol.Message, key string) int {
	var n int
	if raw, ok := m.Ext[key]; ok {
		_ = json.Unmarshal(raw, &n)
	}
	return n
}

// dataN returns data.n of a flood message (-2 when it has none).
func dataN(m *protocol.Message) int {
	d := struct{ N *int }{}
	if json.Unmarshal(m.Data, &d) != nil || d.N == nil {
		return -2
	}
	return *d.N
}

func kbList(ns []int) string {
	var s []string
	for _, n := range ns {
		s = append(s, strconv.Itoa(n>>10))
	}
	return strings.Join(s, ", ")
}
