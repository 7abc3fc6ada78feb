package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/bolthistory"
)

// Channels keep their history and publish their members as rules say;
// Server.History reads a history page by page.
func ExampleServer_History() {
	rules, _ := server.ParseChannelRules("/news/*:history=100;/chat/**:history=10000,presence")
	srv, _ := server.New(server.Options{Channels: rules, Logger: slog.New(slog.DiscardHandler)})
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	for _, headline := range []string{"first", "second", "third"} {
		srv.Publish(ctx, "/news/today", headline)
	}
	newest, _ := srv.History(ctx, "/news/today", server.HistoryQuery{Limit: 2})
	for _, p := range newest.Messages {
		m, _ := p.Message()
		pos, _ := protocol.PositionOf(m) // also in p.Pos
		fmt.Println(pos.Offset, string(m.Data))
	}
	older, _ := srv.History(ctx, "/news/today", server.HistoryQuery{Before: &newest.Messages[0].Pos})
	fmt.Println("before them:", len(older.Messages), "more:", older.More)
	// Output:
	// 2 "second"
	// 3 "third"
	// before them: 1 more: false
}

// A single node keeps its histories across restarts in a bbolt file.
func ExampleOptions_historyStore() {
	dir, _ := os.MkdirTemp("", "history")
	defer os.RemoveAll(dir)
	rules := []server.ChannelRule{{Pattern: "/chat/**", History: 10000, Presence: true}}
	start := func() *server.Server {
		st, err := bolthistory.Open(filepath.Join(dir, "history.db"), bolthistory.Options{})
		if err != nil {
			panic(err)
		}
		srv, _ := server.New(server.Options{Channels: rules, HistoryStore: st, Logger: slog.New(slog.DiscardHandler)})
		return srv
	}
	srv := start()
	srv.Publish(context.Background(), "/chat/demo", "kept") // returns once on disk
	srv.Shutdown(context.Background())                      // closes the store

	srv = start()
	defer srv.Shutdown(context.Background())
	pg, _ := srv.History(context.Background(), "/chat/demo", server.HistoryQuery{})
	m, _ := pg.Messages[0].Message()
	fmt.Println(string(m.Data))
	// Output:
	// "kept"
}
