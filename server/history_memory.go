package server

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
)

// MemoryHistory is the HistoryStore a MemoryEngine uses by default: the
// histories live in the process and end with it. It is safe for
// concurrent use.
type MemoryHistory struct {
	maxChannels int
	report      func(string, int)
	now         func() time.Time

	mu  sync.Mutex
	m   map[string]*list.Element // of *memStream
	lru list.List                // most recently used first
}

var _ HistoryStore = (*MemoryHistory)(nil)

// memStream is one channel's history.
type memStream struct {
	channel string
	epoch   string
	last    uint64 // the newest message's offset
	dropped uint64 // the newest offset the retention removed (0: none)
	msgs    []histEntry
	bytes   int64
}

// histEntry is a stored message: its offset, when it was stored (unix
// nanoseconds) and its delivery.
type histEntry struct {
	off  uint64
	at   int64
	json []byte
}

// NewMemoryHistory returns an in-memory HistoryStore that keeps the
// history of at most maxChannels channels (0: DefaultMaxHistoryChannels,
// negative: no limit), forgetting the least recently used.
func NewMemoryHistory(maxChannels int) *MemoryHistory {
	if maxChannels == 0 {
		maxChannels = DefaultMaxHistoryChannels
	}
	return &MemoryHistory{maxChannels: max(maxChannels, 0), now: time.Now, m: make(map[string]*list.Element)}
}

// Start implements HistoryStore.
func (h *MemoryHistory) Start(report func(string, int)) error {
	h.report = report
	return nil
}

// Close implements HistoryStore.
func (h *MemoryHistory) Close() error { return nil }

// Append implements HistoryStore.
func (h *MemoryHistory) Append(channel string, pol HistoryPolicy, encode func(protocol.Position) []byte) (protocol.Position, *Stored, error) {
	now := h.now().UnixNano()
	h.mu.Lock()
	el := h.m[channel]
	if el == nil {
		el = h.lru.PushFront(&memStream{channel: channel, epoch: NewEpoch()})
		h.m[channel] = el
	} else {
		h.lru.MoveToFront(el)
	}
	st := el.Value.(*memStream)
	st.last++
	pos := protocol.Position{Epoch: st.epoch, Offset: st.last}
	b := encode(pos)
	st.msgs = append(st.msgs, histEntry{off: pos.Offset, at: now, json: b})
	st.bytes += int64(len(b))
	st.trim(pol.MaxLen, pol.MaxBytes, cutoff(now, int64(pol.MaxAge)))
	forgot := 0
	for h.maxChannels > 0 && h.lru.Len() > h.maxChannels {
		old := h.lru.Remove(h.lru.Back()).(*memStream)
		delete(h.m, old.channel)
		forgot++
	}
	h.mu.Unlock()
	if forgot > 0 && h.report != nil {
		h.report(DropHistory, forgot)
	}
	return pos, nil, nil
}

// cutoff is the oldest time kept under maxAge (nanoseconds; 0: no limit).
func cutoff(now, maxAge int64) int64 {
	if maxAge <= 0 {
		return 0
	}
	return now - maxAge
}

// trim removes the oldest messages beyond maxLen, beyond maxBytes (the
// newest stays) and older than cut (0: none).
func (st *memStream) trim(maxLen int, maxBytes, cut int64) {
	n := 0
	for n < len(st.msgs) {
		e := st.msgs[n]
		over := maxLen > 0 && len(st.msgs)-n > maxLen
		over = over || (maxBytes > 0 && st.bytes > maxBytes && n < len(st.msgs)-1)
		over = over || (cut > 0 && e.at < cut)
		if !over {
			break
		}
		st.bytes -= int64(len(e.json))
		st.dropped = e.off
		n++
	}
	if n > 0 {
		// Copy rather than reslice so that the removed ones can be freed.
		st.msgs = append([]histEntry(nil), st.msgs[n:]...)
	}
}

// Top implements HistoryStore.
func (h *MemoryHistory) Top(channel string) protocol.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el := h.m[channel]; el != nil {
		st := el.Value.(*memStream)
		return protocol.Position{Epoch: st.epoch, Offset: st.last}
	}
	return protocol.Position{}
}

// Read implements HistoryStore.
func (h *MemoryHistory) Read(_ context.Context, channel string, q HistoryQuery) (HistoryPage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	el := h.m[channel]
	if el == nil {
		return HistoryPage{Lost: q.Since != nil && q.Since.Epoch != ""}, nil
	}
	h.lru.MoveToFront(el)
	st := el.Value.(*memStream)
	if cut := cutoff(h.now().UnixNano(), int64(q.MaxAge)); cut > 0 {
		st.trim(0, 0, cut)
	}
	s := stream{epoch: st.epoch, last: st.last, dropped: st.dropped}
	return s.page(channel, q, len(st.msgs), func(i int) histEntry { return st.msgs[i] }), nil
}

// stream is what a page is cut from: a stream's state and its kept
// messages, oldest first (at(i) for i < n).
type stream struct {
	epoch         string
	last, dropped uint64
}

// page answers q from the n kept messages of a stream.
func (s stream) page(channel string, q HistoryQuery, n int, at func(int) histEntry) HistoryPage {
	pg := HistoryPage{Top: protocol.Position{Epoch: s.epoch, Offset: s.last}}
	limit := max(q.Limit, 1)
	var from, to int // the messages [from, to) are candidates
	switch {
	case q.Since != nil:
		since := *q.Since
		if since.Epoch == "" {
			// The stream did not exist when the reader's position was
			// taken: every message since is new to it.
			since.Epoch = s.epoch
		}
		if since.Epoch != s.epoch || since.Offset < s.dropped {
			pg.Lost = true
			return pg
		}
		from = search(n, func(i int) bool { return at(i).off > since.Offset })
		to = n
		// Oldest first, within the bounds.
		size := int64(0)
		end := from
		for end < to && end-from < limit {
			sz := int64(len(at(end).json))
			if end > from && q.MaxBytes > 0 && size+sz > q.MaxBytes {
				break
			}
			size += sz
			end++
		}
		pg.More = end < to
		to = end
	default:
		to = n
		if q.Before != nil {
			if q.Before.Epoch != s.epoch {
				return pg
			}
			to = search(n, func(i int) bool { return at(i).off >= q.Before.Offset })
		}
		// Newest first, within the bounds.
		size := int64(0)
		from = to
		for from > 0 && to-from < limit {
			sz := int64(len(at(from - 1).json))
			if from < to && q.MaxBytes > 0 && size+sz > q.MaxBytes {
				break
			}
			size += sz
			from--
		}
		pg.More = from > 0
	}
	pg.Messages = make([]*Payload, 0, to-from)
	for i := from; i < to; i++ {
		e := at(i)
		pg.Messages = append(pg.Messages, &Payload{Channel: channel, JSON: e.json, Pos: protocol.Position{Epoch: s.epoch, Offset: e.off}})
	}
	return pg
}

// search is sort.Search: the first i in [0, n) for which f is true (n:
// none), f false then true.
func search(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !f(m) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
