// Package bolthistory is a server.HistoryStore in one bbolt file, so that
// the channel histories of a single node survive restarts, crashes and
// upgrades.
//
// # Durability
//
// Appending gives a message its position and queues it; the fan-out to
// subscribers does not wait. One writer goroutine commits everything
// queued meanwhile in one bbolt transaction (one fsync for all: group
// commit) and then marks those messages stored (server.Stored), which is
// when the server replies to their publishers: a message whose publish
// was acknowledged is on disk. Reads wait for the commit of what was
// queued before them, so they see every message whose publish returned.
//
// # Positions after a crash
//
// A stream's epoch is made when the stream is and kept in the file; its
// offsets continue across restarts. A message fanned out but not yet
// committed when the process was killed is lost (its publisher got no
// acknowledgement); so that its offset is never given to another
// message, a store that was not closed cleanly continues every stream
// crashGap offsets further on.
//
// # Layout
//
// Bucket "store" holds the format version and, while the store is open,
// the key "open". Bucket "meta" holds a JSON record per channel (epoch,
// last offset, the last offset removed, count, bytes, policy, last use).
// Bucket "msgs" holds a bucket per channel: key the offset (8 bytes, big
// endian), value the storage time (8 bytes of unix nanoseconds, big
// endian) and the delivery's JSON.
package bolthistory

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Options configures Open.
type Options struct {
	// MaxChannels bounds the channels with a history; beyond it the
	// least recently used channel's history is forgotten (reported as
	// server.DropHistory). 0: server.DefaultMaxHistoryChannels;
	// negative: no limit.
	MaxChannels int
	// MaxPending bounds the messages waiting for their commit: Append
	// waits beyond it (the disk sets the pace). Default 4096, at most
	// crashGap/2.
	MaxPending int
	// SweepInterval is how often messages older than their channel's
	// MaxAge are removed. Default one minute.
	SweepInterval time.Duration
	// Logger receives write failures. Default slog.Default().
	Logger *slog.Logger
}

// crashGap is how far streams continue after a crash: more than the
// messages that can be queued or being committed (2 × MaxPending).
const crashGap = 1 << 20

const formatVersion = "1"

var (
	bucketStore = []byte("store")
	bucketMeta  = []byte("meta")
	bucketMsgs  = []byte("msgs")
	keyVersion  = []byte("version")
	keyOpen     = []byte("open")
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("bolthistory: store closed")

// Store is a server.HistoryStore in a bbolt file. Create it with Open;
// the MemoryEngine it is given to closes it. It is safe for concurrent
// use.
type Store struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger
	now  func() time.Time

	report func(string, int)

	mu       sync.Mutex
	cond     *sync.Cond // signalled when pending changes or a commit ends
	channels map[string]*chanState
	pending  []op
	cur      *server.Stored // the Stored of what pending holds
	inflight *server.Stored // the Stored of the commit under way
	failed   map[string]uint64
	closed   bool

	stop chan struct{}
	done sync.WaitGroup
}

// chanState is what Append needs of a channel, in memory.
type chanState struct {
	epoch string
	last  uint64 // the newest offset given
	used  int64  // last append or read, unix nanoseconds
	fresh bool   // made by Append, not on disk yet
}

// op is a write for the writer: a message, or the forgetting of a
// channel's history.
type op struct {
	channel string
	forget  bool
	epoch   string
	off     uint64
	at      int64
	json    []byte
	pol     server.HistoryPolicy
	used    int64
}

// meta is a channel's record in bucket "meta".
type meta struct {
	Epoch    string `json:"e"`
	Last     uint64 `json:"l"`
	Dropped  uint64 `json:"d,omitempty"`
	Count    int    `json:"n"`
	Bytes    int64  `json:"b"`
	MaxLen   int    `json:"ml,omitempty"`
	MaxBytes int64  `json:"mb,omitempty"`
	MaxAge   int64  `json:"ma,omitempty"`
	Used     int64  `json:"u,omitempty"`
}

// Open opens (or creates) the store in the file path.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxChannels == 0 {
		opts.MaxChannels = server.DefaultMaxHistoryChannels
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 4096
	}
	opts.MaxPending = min(opts.MaxPending, crashGap/2)
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("bolthistory: %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, log: opts.Logger, now: time.Now, channels: make(map[string]*chanState),
		failed: make(map[string]uint64), stop: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolthistory: %s: %w", path, err)
	}
	return s, nil
}

// load reads the channels' records, marks the store open and, when it
// was not closed cleanly, moves every stream on by crashGap.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		st, err := tx.CreateBucketIfNotExists(bucketStore)
		if err != nil {
			return err
		}
		if v := st.Get(keyVersion); v != nil && string(v) != formatVersion {
			return fmt.Errorf("format version %q, this build reads %q", v, formatVersion)
		}
		crashed := st.Get(keyOpen) != nil
		if err := st.Put(keyVersion, []byte(formatVersion)); err != nil {
			return err
		}
		if err := st.Put(keyOpen, []byte{1}); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketMsgs); err != nil {
			return err
		}
		mb, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		type moved struct {
			k []byte
			m meta
		}
		var jumped []moved
		err = mb.ForEach(func(k, v []byte) error {
			var m meta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("channel %q: %w", k, err)
			}
			if crashed {
				m.Last += crashGap
				jumped = append(jumped, moved{append([]byte(nil), k...), m})
			}
			s.channels[string(k)] = &chanState{epoch: m.Epoch, last: m.Last, used: m.Used}
			return nil
		})
		if err != nil {
			return err
		}
		for _, j := range jumped {
			if err := putMeta(mb, j.k, &j.m); err != nil {
				return err
			}
		}
		if crashed && len(jumped) > 0 {
			s.log.Warn("history store was not closed cleanly; streams continue further on", "channels", len(jumped))
		}
		return nil
	})
}

func putMeta(mb *bolt.Bucket, k []byte, m *meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return mb.Put(k, b)
}

// Start implements server.HistoryStore: the writer and the sweeper
// start.
func (s *Store) Start(report func(string, int)) error {
	s.report = report
	s.done.Add(2)
	go s.writer()
	go s.sweeper()
	return nil
}

// Close implements server.HistoryStore: it commits what is queued, marks
// the store closed cleanly and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	err := s.db.Update(func(tx *bolt.Tx) error {
		s.mu.Lock()
		used := make(map[string]int64, len(s.channels))
		for ch, c := range s.channels {
			used[ch] = c.used
		}
		s.mu.Unlock()
		mb := tx.Bucket(bucketMeta)
		for ch, u := range used {
			k := []byte(ch)
			v := mb.Get(k)
			if v == nil {
				continue
			}
			var m meta
			if json.Unmarshal(v, &m) != nil || m.Used == u {
				continue
			}
			m.Used = u
			if err := putMeta(mb, k, &m); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketStore).Delete(keyOpen)
	})
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Append implements server.HistoryStore.
func (s *Store) Append(channel string, pol server.HistoryPolicy, encode func(protocol.Position) []byte) (protocol.Position, *server.Stored, error) {
	now := s.now().UnixNano()
	forgot := 0
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		if forgot > 0 && s.report != nil {
			s.report(server.DropHistory, forgot)
		}
	}()
	for !s.closed && len(s.pending) >= s.opts.MaxPending {
		s.cond.Wait()
	}
	if s.closed {
		return protocol.Position{}, nil, ErrClosed
	}
	c := s.channels[channel]
	if c == nil {
		c = &chanState{epoch: server.NewEpoch(), fresh: true}
		s.channels[channel] = c
		forgot = s.forgetBeyond(channel)
	}
	c.last++
	c.used = now
	pos := protocol.Position{Epoch: c.epoch, Offset: c.last}
	b := encode(pos)
	o := op{channel: channel, off: pos.Offset, at: now, json: b, pol: pol, used: now}
	if c.fresh {
		o.epoch, c.fresh = c.epoch, false
	}
	s.queue(o)
	return pos, s.cur, nil
}

// queue adds o for the writer. s.mu is held.
func (s *Store) queue(o op) {
	if s.cur == nil {
		s.cur = server.NewStored()
	}
	s.pending = append(s.pending, o)
	if len(s.pending) == 1 {
		s.cond.Broadcast()
	}
}

// forgetBeyond forgets the least recently used channels (other than
// keep) while there are more than MaxChannels, and returns how many.
// s.mu is held.
func (s *Store) forgetBeyond(keep string) int {
	limit := s.opts.MaxChannels
	n := 0
	for limit > 0 && len(s.channels) > limit {
		victim, oldest := "", int64(0)
		for ch, c := range s.channels {
			if ch != keep && (victim == "" || c.used < oldest) {
				victim, oldest = ch, c.used
			}
		}
		if victim == "" {
			break
		}
		delete(s.channels, victim)
		s.queue(op{channel: victim, forget: true})
		n++
	}
	return n
}

// Top implements server.HistoryStore.
func (s *Store) Top(channel string) protocol.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channels[channel]; c != nil {
		return protocol.Position{Epoch: c.epoch, Offset: c.last}
	}
	return protocol.Position{}
}

// writer commits what is queued, all of it in one transaction, until the
// store closes.
func (s *Store) writer() {
	defer s.done.Done()
	for {
		s.mu.Lock()
		for len(s.pending) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.pending) == 0 {
			s.mu.Unlock()
			return
		}
		batch, stored := s.pending, s.cur
		s.pending, s.cur = nil, nil
		s.inflight = stored
		failed := s.failed
		if len(failed) > 0 {
			s.failed = make(map[string]uint64)
		}
		s.cond.Broadcast() // room for Append
		s.mu.Unlock()

		err := s.db.Update(func(tx *bolt.Tx) error { return s.apply(tx, batch, failed) })
		if err != nil {
			s.log.Error("history store: commit failed; those messages are not kept", "messages", len(batch), "err", err)
			s.mu.Lock()
			for ch, off := range failed {
				s.failed[ch] = max(s.failed[ch], off)
			}
			for _, o := range batch {
				if o.forget {
					continue
				}
				s.failed[o.channel] = max(s.failed[o.channel], o.off)
				if c := s.channels[o.channel]; o.epoch != "" && c != nil && c.epoch == o.epoch {
					c.fresh = true // its record was not written: the next append writes it
				}
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
		stored.Done(err)
	}
}

// apply writes a batch: its messages and forgettings in order, then each
// touched channel's retention. failed are channels whose messages up to
// an offset could not be written: they count as removed.
func (s *Store) apply(tx *bolt.Tx, batch []op, failed map[string]uint64) error {
	mb, msgs := tx.Bucket(bucketMeta), tx.Bucket(bucketMsgs)
	metas := make(map[string]*meta)
	buckets := make(map[string]*bolt.Bucket)
	get := func(ch string) (*meta, error) {
		if m := metas[ch]; m != nil {
			return m, nil
		}
		m := new(meta)
		if v := mb.Get([]byte(ch)); v != nil {
			if err := json.Unmarshal(v, m); err != nil {
				return nil, fmt.Errorf("channel %q: %w", ch, err)
			}
		}
		metas[ch] = m
		return m, nil
	}
	var key [8]byte
	for _, o := range batch {
		if o.forget {
			delete(metas, o.channel)
			delete(buckets, o.channel)
			if err := mb.Delete([]byte(o.channel)); err != nil {
				return err
			}
			if err := msgs.DeleteBucket([]byte(o.channel)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			continue
		}
		m, err := get(o.channel)
		if err != nil {
			return err
		}
		if o.epoch != "" {
			// A new stream: whatever a forgotten one left goes.
			*m = meta{Epoch: o.epoch}
			if err := msgs.DeleteBucket([]byte(o.channel)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			delete(buckets, o.channel)
		}
		b := buckets[o.channel]
		if b == nil {
			if b, err = msgs.CreateBucketIfNotExists([]byte(o.channel)); err != nil {
				return err
			}
			buckets[o.channel] = b
		}
		binary.BigEndian.PutUint64(key[:], o.off)
		v := make([]byte, 8+len(o.json))
		binary.BigEndian.PutUint64(v, uint64(o.at))
		copy(v[8:], o.json)
		if err := b.Put(key[:], v); err != nil {
			return err
		}
		m.Last = max(m.Last, o.off)
		m.Count++
		m.Bytes += int64(len(o.json))
		m.MaxLen, m.MaxBytes, m.MaxAge, m.Used = o.pol.MaxLen, o.pol.MaxBytes, int64(o.pol.MaxAge), o.used
	}
	for ch, off := range failed {
		if m, err := get(ch); err == nil && m.Epoch != "" {
			m.Dropped = max(m.Dropped, off)
		}
	}
	now := s.now().UnixNano()
	for ch, m := range metas {
		if m.Epoch == "" {
			continue // forgotten, or failed on a channel gone since
		}
		if b := msgs.Bucket([]byte(ch)); b != nil {
			if err := trim(b, m, m.MaxLen, m.MaxBytes, cutoff(now, m.MaxAge)); err != nil {
				return err
			}
		}
		if err := putMeta(mb, []byte(ch), m); err != nil {
			return err
		}
	}
	return nil
}

// cutoff is the oldest storage time kept under maxAge (0: no limit).
func cutoff(now, maxAge int64) int64 {
	if maxAge <= 0 {
		return 0
	}
	return now - maxAge
}

// trim removes a channel's oldest messages beyond maxLen, beyond
// maxBytes (the newest stays) and stored before cut (0: none), and
// records them in m.
func trim(b *bolt.Bucket, m *meta, maxLen int, maxBytes, cut int64) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		over := maxLen > 0 && m.Count > maxLen
		over = over || (maxBytes > 0 && m.Bytes > maxBytes && m.Count > 1)
		over = over || (cut > 0 && len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < cut)
		if !over {
			return nil
		}
		m.Dropped = max(m.Dropped, binary.BigEndian.Uint64(k))
		m.Count--
		m.Bytes -= int64(len(v) - 8)
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// sweeper removes the messages past their channel's MaxAge every
// SweepInterval.
func (s *Store) sweeper() {
	defer s.done.Done()
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.sweep(); err != nil {
				s.log.Error("history store: removing old messages failed", "err", err)
			}
		}
	}
}

// sweep removes the messages past their channel's MaxAge.
func (s *Store) sweep() error {
	now := s.now().UnixNano()
	return s.db.Update(func(tx *bolt.Tx) error {
		mb, msgs := tx.Bucket(bucketMeta), tx.Bucket(bucketMsgs)
		type aged struct {
			ch string
			m  meta
		}
		var due []aged
		err := mb.ForEach(func(k, v []byte) error {
			var m meta
			if json.Unmarshal(v, &m) == nil && m.MaxAge > 0 && m.Count > 0 {
				due = append(due, aged{string(k), m})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, a := range due {
			b := msgs.Bucket([]byte(a.ch))
			if b == nil {
				continue
			}
			before := a.m.Count
			if err := trim(b, &a.m, 0, 0, cutoff(now, a.m.MaxAge)); err != nil {
				return err
			}
			if a.m.Count != before {
				if err := putMeta(mb, []byte(a.ch), &a.m); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Read implements server.HistoryStore. It first waits for the commit of
// what was queued before it.
func (s *Store) Read(ctx context.Context, channel string, q server.HistoryQuery) (server.HistoryPage, error) {
	s.mu.Lock()
	wait := s.cur
	if wait == nil {
		wait = s.inflight
	}
	var top protocol.Position
	if c := s.channels[channel]; c != nil {
		c.used = s.now().UnixNano()
		top = protocol.Position{Epoch: c.epoch, Offset: c.last}
	}
	s.mu.Unlock()
	if err := wait.Wait(ctx); err != nil && ctx.Err() != nil {
		return server.HistoryPage{}, err
	}
	var pg server.HistoryPage
	err := s.db.View(func(tx *bolt.Tx) error {
		var m meta
		if v := tx.Bucket(bucketMeta).Get([]byte(channel)); v != nil {
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("channel %q: %w", channel, err)
			}
		}
		if m.Epoch == "" {
			pg = server.HistoryPage{Lost: q.Since != nil && q.Since.Epoch != ""}
			return nil
		}
		if top.Epoch != m.Epoch {
			top = protocol.Position{Epoch: m.Epoch, Offset: m.Last}
		}
		b := tx.Bucket(bucketMsgs).Bucket([]byte(channel))
		pg = page(b, channel, &m, top, q, cutoff(s.now().UnixNano(), int64(q.MaxAge)))
		return nil
	})
	return pg, err
}

// page answers q from a channel's bucket (nil: no messages). Messages
// stored before cut count as removed.
func page(b *bolt.Bucket, channel string, m *meta, top protocol.Position, q server.HistoryQuery, cut int64) server.HistoryPage {
	pg := server.HistoryPage{Top: top}
	limit := max(q.Limit, 1)
	if b == nil {
		if q.Since != nil && (q.Since.Epoch != "" && q.Since.Epoch != m.Epoch || q.Since.Offset < m.Dropped) {
			pg.Lost = true
		}
		return pg
	}
	c := b.Cursor()
	// The messages past their age are the oldest: they count as removed.
	dropped := m.Dropped
	for k, v := c.First(); cut > 0 && k != nil; k, v = c.Next() {
		if int64(binary.BigEndian.Uint64(v)) >= cut {
			break
		}
		dropped = max(dropped, binary.BigEndian.Uint64(k))
	}
	kept := func(k []byte) bool { return k != nil && binary.BigEndian.Uint64(k) > dropped }
	add := func(k, v []byte) {
		json := append([]byte(nil), v[8:]...)
		pg.Messages = append(pg.Messages, &server.Payload{Channel: channel, JSON: json,
			Pos: protocol.Position{Epoch: m.Epoch, Offset: binary.BigEndian.Uint64(k)}})
	}
	var key [8]byte
	size := int64(0)
	fits := func(v []byte) bool {
		sz := int64(len(v) - 8)
		if len(pg.Messages) > 0 && (len(pg.Messages) >= limit || q.MaxBytes > 0 && size+sz > q.MaxBytes) {
			return false
		}
		size += sz
		return true
	}
	if q.Since != nil {
		since := *q.Since
		if since.Epoch == "" {
			since.Epoch = m.Epoch // no stream when the position was taken
		}
		if since.Epoch != m.Epoch || since.Offset < dropped {
			pg.Lost = true
			return pg
		}
		binary.BigEndian.PutUint64(key[:], since.Offset+1)
		for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
			if !fits(v) {
				pg.More = true
				break
			}
			add(k, v)
		}
		return pg
	}
	var k, v []byte
	if q.Before != nil {
		if q.Before.Epoch != m.Epoch {
			return pg
		}
		binary.BigEndian.PutUint64(key[:], q.Before.Offset)
		if k, _ = c.Seek(key[:]); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	} else {
		k, v = c.Last()
	}
	for ; kept(k); k, v = c.Prev() {
		if !fits(v) {
			pg.More = true
			break
		}
		add(k, v)
	}
	// Oldest first.
	for i, j := 0, len(pg.Messages)-1; i < j; i, j = i+1, j-1 {
		pg.Messages[i], pg.Messages[j] = pg.Messages[j], pg.Messages[i]
	}
	return pg
}
