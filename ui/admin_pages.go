package ui

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bayeux-go/bayeux/internal/admin"
	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// overview serves GET /admin/: the live figures and the rate chart.
func (h *adminHandler) overview(w http.ResponseWriter, r *http.Request, user string) {
	v, err := h.overviewData(r)
	if err != nil {
		h.p.Log.Error("admin: overview", "err", err)
		http.Error(w, "cannot read the server's state", http.StatusInternalServerError)
		return
	}
	render(w, r, http.StatusOK, adminOverviewPage(h.frame(r, user, "Overview", "overview"), v))
}

// live serves GET /admin/live: the overview's live part alone, which
// admin.js fetches every 2 s and swaps in.
func (h *adminHandler) live(w http.ResponseWriter, r *http.Request, _ string) {
	v, err := h.overviewData(r)
	if err != nil {
		h.p.Log.Error("admin: live", "err", err)
		http.Error(w, "cannot read the server's state", http.StatusInternalServerError)
		return
	}
	render(w, r, http.StatusOK, adminLive(v))
}

func (h *adminHandler) overviewData(r *http.Request) (overviewView, error) {
	rec := h.o.Recorder
	srv := h.p.Bayeux
	snap, err := rec.Snapshot(r.Context())
	if err != nil {
		return overviewView{}, err
	}
	now := time.Now()
	st := srv.Stats()
	rates := rec.RecentRates(10 * time.Second)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var failed int64
	if h.o.FailedLogins != nil {
		failed = h.o.FailedLogins()
	}
	queued := "n/a"
	if n, ok := admin.Pending(srv.Engine()); ok {
		queued = fmtCount(n)
	}
	rateTitle := "averaged over the last " + fmtDuration(rates.Window)
	v := overviewView{
		Figures: []stat{
			{ID: "uptime", Label: "Uptime", Value: fmtDuration(now.Sub(rec.Started())), Title: "since " + rec.Started().Format(time.RFC3339)},
			{ID: "version", Label: "Version", Value: orDash(h.o.Version)},
			{ID: "engine", Label: "Engine", Value: orDash(h.o.Engine)},
			{ID: "sessions", Label: "Sessions", Value: fmtCount(len(snap.Sessions))},
			{ID: "held", Label: "Held connects", Value: fmtCount(st.HeldConnects.Load()), Title: "on this node"},
			{ID: "parked", Label: "Parked connections", Value: fmtCount(st.Parked.Load()), Title: "waiting without a goroutine: parked long-polls and idle WebSockets"},
			{ID: "channels", Label: "Channels", Value: fmtCount(snap.Subscribed), Title: "channels and patterns with a subscriber"},
			{ID: "in", Label: "Messages in/s", Value: fmtRate(rates.In), Title: rateTitle},
			{ID: "out", Label: "Messages out/s", Value: fmtRate(rates.Out), Title: "deliveries queued for subscribers, " + rateTitle},
			{ID: "published", Label: "Published/s", Value: fmtRate(rates.Published), Title: rateTitle},
			{ID: "handshakes", Label: "Handshakes", Value: fmtCount(st.Handshakes.Load())},
			{ID: "failed-logins", Label: "Failed logins", Value: fmtCount(failed)},
			{ID: "errors", Label: "Errors", Value: fmtCount(st.Errors.Load()), Title: "messages answered with successful:false"},
			{ID: "dropped", Label: "Dropped", Value: fmtCount(st.Dropped.Load()), Title: "messages dropped from full queues"},
			{ID: "denied", Label: "Requests denied", Value: fmtCount(st.RequestsDenied.Load()), Title: "HTTP requests refused by limits"},
			{ID: "queued", Label: "Queued messages", Value: queued},
			{ID: "heap", Label: "Heap in use", Value: fmtBytes(ms.HeapAlloc), Title: "runtime.MemStats.HeapAlloc"},
			{ID: "sys", Label: "Memory from OS", Value: fmtBytes(ms.Sys), Title: "runtime.MemStats.Sys"},
			{ID: "gc", Label: "GC cycles", Value: fmtCount(ms.NumGC)},
			{ID: "goroutines", Label: "Goroutines", Value: fmtCount(runtime.NumGoroutine())},
		},
		Chart:   buildChart(rec.Samples(), now, chartSpan),
		Updated: now.Format("15:04:05"),
	}
	names := make([]string, 0, len(snap.ByTransport))
	for t := range snap.ByTransport {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		v.Transports = append(v.Transports, stat{ID: t, Label: t, Value: fmtCount(snap.ByTransport[t])})
	}
	return v, nil
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// clients serves GET /admin/clients[?user=U][&channel=C].
func (h *adminHandler) clients(w http.ResponseWriter, r *http.Request, user string) {
	q := r.URL.Query()
	v, err := h.clientsData(r, strings.TrimSpace(q.Get("user")), strings.TrimSpace(q.Get("channel")))
	if err != nil {
		h.p.Log.Error("admin: clients", "err", err)
		http.Error(w, "cannot read the server's state", http.StatusInternalServerError)
		return
	}
	render(w, r, http.StatusOK, adminClientsPage(h.frame(r, user, "Clients", "clients"), v))
}

func (h *adminHandler) clientsData(r *http.Request, user, channel string) (clientsView, error) {
	snap, err := h.o.Recorder.Snapshot(r.Context())
	if err != nil {
		return clientsView{}, err
	}
	now := time.Now()
	rows := snap.Filter(user, channel)
	v := clientsView{User: user, Channel: channel, Total: len(snap.Sessions), Matched: len(rows), QueueKnown: snap.QueueKnown}
	for _, s := range rows[:min(len(rows), h.o.MaxRows)] {
		row := clientRow{
			ID: s.Info.ID, Short: shortClientID(s.Info.ID), User: s.Info.User, IP: s.Info.RemoteAddr,
			Transport: s.Transport, Subscriptions: s.Subscriptions, Queue: "n/a", Local: s.Info.Local,
		}
		if s.Queue >= 0 {
			row.Queue = fmtCount(s.Queue)
		}
		row.Since, row.SinceTitle = fmtAgo(s.Info.Created, now)
		row.LastSeen, row.LastSeenTitle = fmtAgo(s.LastSeen, now)
		v.Rows = append(v.Rows, row)
	}
	return v, nil
}

// disconnect serves POST /admin/clients/disconnect (id): it ends the
// session with Server.Disconnect, so its held connect is answered with
// reconnect:"none".
func (h *adminHandler) disconnect(w http.ResponseWriter, r *http.Request, user string) {
	id := r.PostForm.Get("id")
	back := url.Values{}
	for _, k := range []string{"user", "channel"} {
		if v := r.PostForm.Get(k); v != "" {
			back.Set(k, v)
		}
	}
	info, ok, err := h.p.Bayeux.Engine().Session(r.Context(), id)
	if err != nil {
		h.p.Log.Error("admin: session lookup", "err", err)
		http.Error(w, "cannot read the server's state", http.StatusInternalServerError)
		return
	}
	if !ok || id == "" {
		redirectMsg(w, r, "/admin/clients", back, "gone")
		return
	}
	if info.Local {
		// A LocalClient belongs to a server component; removing its
		// session would break that component.
		http.Error(w, "in-process clients cannot be disconnected here", http.StatusBadRequest)
		return
	}
	removed, err := h.p.Bayeux.Disconnect(r.Context(), id)
	if err != nil {
		h.p.Log.Error("admin: disconnect", "err", err)
		http.Error(w, "cannot disconnect the session", http.StatusInternalServerError)
		return
	}
	if !removed {
		redirectMsg(w, r, "/admin/clients", back, "gone")
		return
	}
	h.p.Log.Info("admin: session disconnected", "admin", user, "client", shortClientID(id), "user", info.User, "ip", info.RemoteAddr)
	redirectMsg(w, r, "/admin/clients", back, "disconnected")
}

// channels serves GET /admin/channels[?channel=C]: the channels table and
// the announcement form (prefilled with C).
func (h *adminHandler) channels(w http.ResponseWriter, r *http.Request, user string) {
	channel := r.URL.Query().Get("channel")
	if channel == "" {
		channel = chat.RoomPrefix + chat.DefaultRoom
	}
	h.renderChannels(w, r, user, http.StatusOK, channel, "", flash{})
}

func (h *adminHandler) renderChannels(w http.ResponseWriter, r *http.Request, user string, status int, channel, text string, fl flash) {
	snap, err := h.o.Recorder.Snapshot(r.Context())
	if err != nil {
		h.p.Log.Error("admin: channels", "err", err)
		http.Error(w, "cannot read the server's state", http.StatusInternalServerError)
		return
	}
	now := time.Now()
	v := channelsView{Channel: channel, Text: text, MaxText: h.o.MaxText}
	for _, c := range snap.Channels {
		row := channelRow{
			Name: c.Name, Subscribers: c.Subscribers, Rate: fmtRate(c.Rate), Total: c.Total,
			Clients: clientsURL(c.Name), Publishable: !protocol.IsWild(c.Name) && h.publishable(c.Name) == "",
		}
		row.Last, row.LastTitle = fmtAgo(c.Last, now)
		v.Rows = append(v.Rows, row)
	}
	f := h.frame(r, user, "Channels", "channels")
	if fl.Text != "" {
		f.Flash = fl
	}
	render(w, r, status, adminChannelsPage(f, v))
}

// publishable returns why channel cannot take an announcement, or "".
func (h *adminHandler) publishable(channel string) string {
	switch {
	case channel == "":
		return "Enter a channel."
	case len(channel) > h.p.Bayeux.Options().MaxChannelLength:
		return "The channel name is too long."
	case protocol.ValidateChannel(channel) != nil:
		return "Not a channel name (a pattern with * cannot be published to)."
	case protocol.IsMeta(channel) || protocol.IsService(channel):
		return "/meta and /service channels cannot be published to."
	case channel == server.PresencePrefix || strings.HasPrefix(channel, server.PresencePrefix+"/"):
		return "Presence channels are published by the server only."
	case (channel == "/chat" || strings.HasPrefix(channel, chat.RoomPrefix)) && chat.RoomOf(channel) == "":
		return "Chat channels are /chat/<room>."
	}
	return ""
}

// publish serves POST /admin/channels/publish (channel, text): it
// publishes an announcement as the admin's LocalClient. On a chat room it
// is a chat message from "<admin> (admin)" in the shape the chat stamps
// (chat.Message); elsewhere the text goes out as JSON when it is valid
// JSON, else as a JSON string.
func (h *adminHandler) publish(w http.ResponseWriter, r *http.Request, user string) {
	channel := strings.TrimSpace(r.PostForm.Get("channel"))
	text := strings.TrimSpace(r.PostForm.Get("text"))
	fail := func(msg string) {
		h.renderChannels(w, r, user, http.StatusBadRequest, channel, text, flash{Text: msg, Error: true})
	}
	if why := h.publishable(channel); why != "" {
		fail(why)
		return
	}
	switch n := utf8.RuneCountInString(text); {
	case !utf8.ValidString(text):
		fail("The text is not valid UTF-8.")
		return
	case n == 0:
		fail("Enter a text.")
		return
	case n > h.o.MaxText:
		fail("The text is longer than the limit.")
		return
	}
	var data any
	if chat.RoomOf(channel) != "" {
		var id [8]byte
		_, _ = rand.Read(id[:])
		data = chat.Message{
			User: user + " (admin)",
			Chat: text,
			Time: time.Now().UTC().Format(time.RFC3339Nano),
			ID:   hex.EncodeToString(id[:]),
		}
	} else if json.Valid([]byte(text)) {
		data = json.RawMessage(text)
	} else {
		data = text
	}
	if err := h.publishAs(r.Context(), channel, data); err != nil {
		h.p.Log.Error("admin: publish", "channel", channel, "err", err)
		h.renderChannels(w, r, user, http.StatusInternalServerError, channel, text,
			flash{Text: "Could not publish: " + err.Error(), Error: true})
		return
	}
	h.p.Log.Info("admin: announcement published", "admin", user, "channel", channel)
	redirectMsg(w, r, "/admin/channels", url.Values{"channel": {channel}}, "published")
}
