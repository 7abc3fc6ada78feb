package bench

// A stream is what one receiver gets from one publisher on one channel:
// messages with seq 0, 1, 2 ... in the order the publisher sent them.
// streamState counts, for one receiver, which of them arrived, which came
// twice and which came after a later one. What never arrived is lost; that
// is only known at the end, against the number the publisher sent
// (Tracker.Lost).
type streamState struct {
	next    uint32              // every seq below next has arrived
	top     uint32              // highest seq seen + 1 (0: none yet)
	got     uint32              // distinct seqs that arrived
	pending map[uint32]struct{} // seqs above next that arrived (gaps before them)
}

// outcome of one arrival.
type outcome uint8

const (
	inOrder   outcome = iota // first arrival, nothing later seen before it
	reordered                // first arrival, but a later seq came first
	duplicate                // seen before
)

func (s *streamState) add(seq uint32) outcome {
	if seq < s.next {
		return duplicate
	}
	if _, ok := s.pending[seq]; ok {
		return duplicate
	}
	o := inOrder
	if seq+1 < s.top {
		o = reordered
	}
	if seq+1 > s.top {
		s.top = seq + 1
	}
	s.got++
	if seq == s.next {
		s.next++
		for len(s.pending) > 0 {
			if _, ok := s.pending[s.next]; !ok {
				break
			}
			delete(s.pending, s.next)
			s.next++
		}
		return o
	}
	if s.pending == nil {
		s.pending = make(map[uint32]struct{})
	}
	s.pending[seq] = struct{}{}
	return o
}

// streamKey identifies a stream within one receiver: publisher and channel
// index.
func streamKey(pub, ch uint32) uint64 { return uint64(pub)<<32 | uint64(ch) }

// Tracker holds the streams of one receiver. It is not safe for concurrent
// use; a simulated client guards its Tracker with its mutex.
type Tracker struct {
	streams map[uint64]*streamState
}

// Add records the arrival of message seq of publisher pub on channel ch.
func (t *Tracker) Add(pub, ch, seq uint32) outcome {
	if t.streams == nil {
		t.streams = make(map[uint64]*streamState)
	}
	k := streamKey(pub, ch)
	s := t.streams[k]
	if s == nil {
		s = &streamState{}
		t.streams[k] = s
	}
	return s.add(seq)
}

// Got returns how many distinct messages of the stream arrived.
func (t *Tracker) Got(pub, ch uint32) uint32 {
	if s := t.streams[streamKey(pub, ch)]; s != nil {
		return s.got
	}
	return 0
}

// Lost returns how many of the sent messages of the stream never arrived,
// given that the publisher sent `sent` messages of which `failed` were
// refused by the server (and so are not expected).
func (t *Tracker) Lost(pub, ch uint32, sent, failed uint32) uint32 {
	exp := int64(sent) - int64(failed)
	got := int64(t.Got(pub, ch))
	if got >= exp {
		return 0
	}
	return uint32(exp - got)
}
