package redis

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/server"
)

// TestHandover: a session whose batch left node A before its commit was
// written moves to node B without the batch being sent again: B's claim
// waits until A has written it. A node that is gone is claimed from
// without waiting on a single Redis, and after HandoverTimeout on a Redis
// Cluster (where nobody can tell). On one Redis and on a Redis Cluster.
func TestHandover(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, url string, cluster bool) {
		ctx := context.Background()
		a := newTestEngine(t, url, Options{}, server.EngineHooks{})
		b := newTestEngine(t, url, Options{Prefix: a.opts.Prefix, HandoverTimeout: 10 * time.Second}, server.EngineHooks{})
		mkSession(t, a, "s")
		mkSub(t, a, "s", "/h")
		for i := 1; i <= 3; i++ {
			if _, err := a.Publish(ctx, testPayload("/h", i)); err != nil {
				t.Fatal(err)
			}
		}
		// A's commits wait at the gate: its batch has left, its
		// position is not written.
		gate := make(chan struct{})
		open := sync.OnceFunc(func() { close(gate) })
		t.Cleanup(open) // before A closes
		hook := func() { <-gate }
		a.flush.testHook.Store(&hook)
		if bt, err := a.Fetch(ctx, "s", 0); err != nil || !slices.Equal(nums(t, bt), []int{1, 2, 3}) {
			t.Fatalf("fetch on A = %v, %v; want [1 2 3]", nums(t, bt), err)
		}
		type result struct {
			b   server.Batch
			err error
		}
		onB := make(chan result, 1)
		go func() {
			bt, err := b.Fetch(ctx, "s", 5*time.Second)
			onB <- result{bt, err}
		}()
		testutil.Eventually(t, 5*time.Second, func() bool { return a.owned.get("s") == nil }, "A to give the session up")
		select {
		case r := <-onB:
			t.Fatalf("B took %v, %v before A wrote its commit", nums(t, r.b), r.err)
		default:
		}
		open()
		if _, err := a.Publish(ctx, testPayload("/h", 4)); err != nil {
			t.Fatal(err)
		}
		if r := <-onB; r.err != nil || !slices.Equal(nums(t, r.b), []int{4}) {
			t.Errorf("fetch on B = %v, %v; want [4] (1-3 were sent by A)", nums(t, r.b), r.err)
		}
		if st := b.Stats(); st.Handovers != 1 || st.HandoverTimeouts != 0 {
			t.Errorf("B's handovers %d, timeouts %d; want 1, 0", st.Handovers, st.HandoverTimeouts)
		}

		// Taken for by a node that is gone.
		c := newTestEngine(t, url, Options{Prefix: a.opts.Prefix, HandoverTimeout: 200 * time.Millisecond}, server.EngineHooks{})
		if err := c.client.HSet(ctx, c.k.sess("s"), "own", "gone").Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Publish(ctx, testPayload("/h", 5)); err != nil {
			t.Fatal(err)
		}
		if bt, err := c.Fetch(ctx, "s", 0); err != nil || !slices.Equal(nums(t, bt), []int{5}) {
			t.Fatalf("fetch on C = %v, %v; want [5]", nums(t, bt), err)
		}
		want := Stats{}
		if cluster {
			want.Handovers, want.HandoverTimeouts = 1, 1
		}
		if st := c.Stats(); st.Handovers != want.Handovers || st.HandoverTimeouts != want.HandoverTimeouts {
			t.Errorf("C's handovers %d, timeouts %d; want %d, %d", st.Handovers, st.HandoverTimeouts, want.Handovers, want.HandoverTimeouts)
		}
	})
}

// TestClaimNoticeDuringClaim: another node's claim notice that arrives
// while this node's claim is under way decides by claim number once the
// claim has one: an older claim's (late) is ignored, a newer one's wins.
func TestClaimNoticeDuringClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := engine(t, Options{}, server.EngineHooks{})
	mkSession(t, a, "s")
	if err := a.client.HSet(ctx, a.k.sess("s"), "ep", 10).Err(); err != nil {
		t.Fatal(err)
	}
	s := a.owned.getOrAdd(a.Engine, "s")
	s.claimedElsewhere(10) // the claim before this one, heard late
	if _, err := a.Take(ctx, "s", server.TakeOptions{}); err != nil {
		t.Fatalf("Take after a late notice = %v", err)
	}
	if a.owned.get("s") != s || !s.live() || s.epoch.Load() != 11 {
		t.Fatalf("session after its claim: live %v, epoch %d; want live, 11", s.live(), s.epoch.Load())
	}
	s.claimedElsewhere(12) // claimed elsewhere since
	if a.owned.get("s") != nil {
		t.Fatal("a newer claim's notice left the session taken for here")
	}

	s = a.owned.getOrAdd(a.Engine, "s")
	s.claimedElsewhere(99) // a claim newer than the one this node will get
	if _, err := a.Take(ctx, "s", server.TakeOptions{}); !errors.Is(err, server.ErrSuperseded) {
		t.Errorf("Take with a newer claim heard during it = %v, want ErrSuperseded", err)
	}
}

// TestNoticeDuringClaimReply: a subscription made and a direct message
// delivered on another node after this node's claim script ran, whose
// notices arrive before the claim's reply is read, are not lost: the
// first Take reads them. On one Redis and on a Redis Cluster.
func TestNoticeDuringClaimReply(t *testing.T) {
	t.Parallel()
	onEachRedis(t, func(t *testing.T, url string, cluster bool) {
		ctx := context.Background()
		a := newTestEngine(t, url, Options{}, server.EngineHooks{})
		b := newTestEngine(t, url, Options{Prefix: a.opts.Prefix}, server.EngineHooks{})
		mkSession(t, a, "s")
		var once sync.Once
		hook := func(id string) {
			once.Do(func() {
				if err := b.Subscribe(ctx, "s", "/late", 0); err != nil {
					t.Error(err)
				}
				if err := b.Deliver(ctx, "s", testPayload("/direct", 1)); err != nil {
					t.Error(err)
				}
				s := a.owned.get("s")
				testutil.Eventually(t, 5*time.Second, func() bool { return s.sstale.Load() && s.dstale.Load() },
					"A to hear B's notices")
			})
		}
		a.claimHook.Store(&hook)
		bt, err := a.Fetch(ctx, "s", 0)
		if err != nil {
			t.Fatal(err)
		}
		got := nums(t, bt)
		if _, err := a.Publish(ctx, testPayload("/late", 2)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, func() bool {
			bt, err := a.Fetch(ctx, "s", 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, nums(t, bt)...)
			return len(got) >= 2
		}, "the direct message and the publish on the late subscription")
		slices.Sort(got)
		if !slices.Equal(got, []int{1, 2}) {
			t.Errorf("A took %v, want [1 2]", got)
		}
	})
}
