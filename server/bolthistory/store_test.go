package bolthistory_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/bolthistory"
	"github.com/bayeux-go/bayeux/server/enginetest"
)

// newEngine is a memory engine keeping its histories in a store in dir.
func newEngine(t testing.TB, dir string, budgets server.Budgets, hooks server.EngineHooks) *server.MemoryEngine {
	t.Helper()
	st, err := bolthistory.Open(filepath.Join(dir, "history.db"), bolthistory.Options{MaxChannels: budgets.MaxHistoryChannels})
	if err != nil {
		t.Fatal(err)
	}
	e := server.NewMemoryEngine(server.MemoryEngineOptions{Budgets: budgets, History: st})
	if err := e.Start(hooks); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEngineHistory runs the engine suite's history scenarios on a
// memory engine whose histories are in a bbolt file.
func TestEngineHistory(t *testing.T) {
	t.Parallel()
	enginetest.RunHistory(t, func(t *testing.T, opts enginetest.Options) server.Engine {
		if opts.Peer != nil {
			return opts.Peer
		}
		e := newEngine(t, t.TempDir(), opts.Budgets, opts.Hooks)
		t.Cleanup(func() { _ = e.Close() })
		return e
	})
}

var pol = &server.HistoryPolicy{MaxLen: 1000}

// TestRestart: after a clean restart every message is there with its
// position, the stream goes on from the next offset under the same
// epoch, and pages before and since positions taken before the restart
// join without gap or duplicate.
func TestRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEngine(t, dir, server.Budgets{}, server.EngineHooks{})
	var pos []protocol.Position
	for i := range 30 {
		pos = append(pos, enginetest.PublishKept(t, e, "/chat/demo", i, pol))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = newEngine(t, dir, server.Budgets{}, server.EngineHooks{})
	defer e.Close()
	next := enginetest.PublishKept(t, e, "/chat/demo", 30, pol)
	if next.Epoch != pos[0].Epoch || next.Offset != pos[29].Offset+1 {
		t.Errorf("after a clean restart the next position is %v, want %s:%d", next, pos[0].Epoch, pos[29].Offset+1)
	}
	var got []int
	q := server.HistoryQuery{Limit: 7}
	for {
		pg := enginetest.Read(t, e, "/chat/demo", q)
		got = append(enginetest.PageNums(t, pg), got...)
		if !pg.More {
			break
		}
		q.Before = &pg.Messages[0].Pos
	}
	if want := seq(0, 30); !slices.Equal(got, want) {
		t.Errorf("scrolling back after the restart: %v, want %v", got, want)
	}
	pg := enginetest.Read(t, e, "/chat/demo", server.HistoryQuery{Since: &pos[24], Limit: 100})
	if got := enginetest.PageNums(t, pg); pg.Lost || !slices.Equal(got, seq(25, 30)) {
		t.Errorf("since a position of before the restart: %v lost %v", got, pg.Lost)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestRetentionSurvives: what the retention removed stays removed after a
// restart (lost for a reader since then), and the channel limit holds
// across it.
func TestRetentionSurvives(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	budgets := server.Budgets{MaxHistoryChannels: 2}
	e := newEngine(t, dir, budgets, server.EngineHooks{})
	var pos []protocol.Position
	for i := range 10 {
		pos = append(pos, enginetest.PublishKept(t, e, "/r", i, &server.HistoryPolicy{MaxLen: 4}))
	}
	enginetest.PublishKept(t, e, "/other", 0, pol)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	var drops enginetest.DropCounter
	e = newEngine(t, dir, budgets, drops.Hooks())
	defer e.Close()
	if got := enginetest.PageNums(t, enginetest.Read(t, e, "/r", server.HistoryQuery{Limit: 10})); !slices.Equal(got, seq(6, 9)) {
		t.Errorf("after the restart /r holds %v, want 6..9", got)
	}
	for _, tc := range []struct {
		since int
		lost  bool
	}{{4, true}, {5, false}} {
		if pg := enginetest.Read(t, e, "/r", server.HistoryQuery{Since: &pos[tc.since], Limit: 10}); pg.Lost != tc.lost {
			t.Errorf("since %d after the restart: lost %v, want %v", tc.since, pg.Lost, tc.lost)
		}
	}
	enginetest.PublishKept(t, e, "/third", 0, pol) // /other was used least recently
	if pg := enginetest.Read(t, e, "/other", server.HistoryQuery{Limit: 10}); len(pg.Messages) != 0 {
		t.Errorf("a third channel over MaxHistoryChannels 2 kept /other: %v", enginetest.PageNums(t, pg))
	}
	if n := drops.Get(server.DropHistory); n != 1 {
		t.Errorf("DropHistory reported %d, want 1", n)
	}
}

// TestFileSizeBounded: a channel publishing far more than it keeps does
// not grow the file beyond what the kept messages need (freed pages are
// reused).
func TestFileSizeBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEngine(t, dir, server.Budgets{}, server.EngineHooks{})
	defer e.Close()
	p := &server.HistoryPolicy{MaxLen: 100}
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "history.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	publish := func(from, n int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from + w; i < from+n; i += 4 {
					pl := enginetest.SizedPayload("/big", i, 1000)
					pl.History = p
					if _, err := e.Publish(context.Background(), pl); err != nil {
						t.Error(err)
						return
					}
					if err := pl.Stored.Wait(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	publish(0, 1000)
	after1k := size()
	publish(1000, 4000)
	if got := size(); got > 2*after1k {
		t.Errorf("the file grew from %d bytes after 1000 messages to %d after 5000, keeping 100", after1k, got)
	}
	if pg := enginetest.Read(t, e, "/big", server.HistoryQuery{Limit: 200}); len(pg.Messages) != 100 {
		t.Errorf("kept %d messages, want 100", len(pg.Messages))
	}
}

// crashPol keeps everything the crash test publishes.
var crashPol = &server.HistoryPolicy{MaxLen: 1 << 20}

// The crash test's child: it publishes from several goroutines and
// prints "ack N" once message N is stored, until it is killed.
func init() {
	dir := os.Getenv("BOLTHISTORY_CRASH_DIR")
	if dir == "" {
		return
	}
	st, err := bolthistory.Open(filepath.Join(dir, "history.db"), bolthistory.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	e := server.NewMemoryEngine(server.MemoryEngineOptions{History: st})
	if err := e.Start(server.EngineHooks{}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var n int64
	next := func() int {
		mu.Lock()
		defer mu.Unlock()
		n++
		return int(n)
	}
	for w := range 8 {
		go func() {
			ch := fmt.Sprintf("/crash/%d", w%2)
			for {
				i := next()
				p := enginetest.Payload(ch, i)
				p.History = crashPol
				if _, err := e.Publish(context.Background(), p); err != nil {
					continue
				}
				if p.Stored.Wait(context.Background()) == nil {
					mu.Lock()
					fmt.Fprintf(out, "ack %s %d %s\n", ch, i, p.Pos)
					out.Flush()
					mu.Unlock()
				}
			}
		}()
	}
	select {}
}

// TestCrash: a process publishing from several goroutines is killed with
// SIGKILL; every message whose storage it had acknowledged is there after
// reopening, at its position, and the streams go on past every position
// given before the crash.
func TestCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "BOLTHISTORY_CRASH_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		n   int
		pos protocol.Position
	}
	acked := map[string][]ack{}
	sc := bufio.NewScanner(stdout)
	count := 0
	deadline := time.Now().Add(20 * time.Second)
	for count < 2000 && time.Now().Before(deadline) && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "ack" {
			t.Fatalf("child: %s", sc.Text())
		}
		n, _ := strconv.Atoi(f[2])
		pos, err := protocol.ParsePosition(f[3])
		if err != nil {
			t.Fatal(err)
		}
		acked[f[1]] = append(acked[f[1]], ack{n, pos})
		count++
	}
	// Killed while it goes on publishing: messages are in flight.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if count < 2000 {
		t.Fatalf("the child acknowledged %d messages in 20 s", count)
	}
	t.Logf("killed after %d acknowledged messages", count)

	e := newEngine(t, dir, server.Budgets{}, server.EngineHooks{})
	defer e.Close()
	for ch, acks := range acked {
		stored := map[protocol.Position]int{}
		since := protocol.Position{}
		var last protocol.Position
		for {
			pg := enginetest.Read(t, e, ch, server.HistoryQuery{Since: &since, Limit: 500})
			if pg.Lost {
				t.Fatalf("%s: lost", ch)
			}
			for _, p := range pg.Messages {
				if _, dup := stored[p.Pos]; dup || (last.Epoch != "" && !p.Pos.After(last)) {
					t.Errorf("%s: %v after %v", ch, p.Pos, last)
				}
				stored[p.Pos] = enginetest.Num(t, p)
				last = p.Pos
			}
			if !pg.More {
				break
			}
			since = last
		}
		for _, a := range acks {
			if n, ok := stored[a.pos]; !ok || n != a.n {
				t.Errorf("%s: acknowledged message %d at %v: stored %d, %v", ch, a.n, a.pos, n, ok)
			}
		}
		next := enginetest.PublishKept(t, e, ch, -1, crashPol)
		if next.Epoch != last.Epoch || next.Offset <= last.Offset+2*4096 {
			t.Errorf("%s: the first position after the crash is %v, the last stored %v: a position given before the crash may come again", ch, next, last)
		}
	}
}

// TestServerHistory runs the server's history scenarios (recovery,
// pages, presence) with the histories in a bbolt file: every publish
// waits for its group commit.
func TestServerHistory(t *testing.T) {
	t.Parallel()
	enginetest.RunServer(t, func(t *testing.T, opts server.Options) (*server.Server, string) {
		st, err := bolthistory.Open(filepath.Join(t.TempDir(), "history.db"), bolthistory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		opts.Engine = server.NewMemoryEngine(server.MemoryEngineOptions{History: st, SweepInterval: 50 * time.Millisecond})
		return enginetest.Serve(t, opts)
	})
}
