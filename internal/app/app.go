// Package app wires the server binary together: configuration, logging,
// the Bayeux server, the document root and the HTTP server with graceful
// shutdown. cmd/bayeux stays a thin wrapper around Run.
package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux"
	"github.com/bayeux-go/bayeux/assets"
	"github.com/bayeux-go/bayeux/internal/admin"
	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/internal/chatweb"
	"github.com/bayeux-go/bayeux/internal/config"
	"github.com/bayeux-go/bayeux/internal/memsettle"
	"github.com/bayeux-go/bayeux/internal/readme"
	"github.com/bayeux-go/bayeux/server"
	"github.com/bayeux-go/bayeux/server/auth"
	"github.com/bayeux-go/bayeux/server/bolthistory"
	"github.com/bayeux-go/bayeux/server/redis"
	"github.com/bayeux-go/bayeux/ui"
)

// Version is shown on /admin/ and in bayeux_build_info; set it with
// -ldflags "-X github.com/bayeux-go/bayeux/internal/app.Version=v1.2.3".
// Empty: the module's build info.
var Version string

// App is a configured server ready to serve.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Bayeux   *server.Server
	Auth     *auth.Authenticator
	Logins   *auth.Logins
	Chat     *chat.Chat
	Recorder *admin.Recorder
	Ready    *admin.Ready
	Handler  http.Handler

	certs   *certFiles // nil: plain HTTP
	closers []io.Closer
}

// New builds the application from cfg. The caller must Close it.
func New(cfg *config.Config, logOut io.Writer) (*App, error) {
	a := &App{Config: cfg}
	if err := cfg.EnsureDataDir(); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		a.closers = append(a.closers, f)
		logOut = f
	}
	a.Log = slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)}))
	if cfg.TLSCert != "" {
		var err error
		if a.certs, err = loadCertFiles(cfg.TLSCert, cfg.TLSKey, a.Log); err != nil {
			a.Close()
			return nil, err
		}
	}

	guessLimits := auth.GuessLimits{
		Window: cfg.LoginLimitWindow, PerUserIP: cfg.LoginLimitUserIP, PerIP: cfg.LoginLimitIP, PerUser: cfg.LoginLimitUser,
	}
	loginLimits := auth.LoginLimits{MaxAge: cfg.LoginMaxAge, Idle: cfg.LoginIdle, PerUser: cfg.LoginsPerUser}
	var (
		eng        server.Engine // nil: the memory engine
		history    server.HistoryStore
		guesses    auth.Guesses
		loginStore auth.LoginStore
	)
	if config.IsRedisEngine(cfg.Engine) {
		re, err := redis.New(redis.Options{URL: cfg.Engine, Budgets: budgets(cfg), HandoverTimeout: cfg.RedisHandoverTimeout, Logger: a.Log})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("BAYEUX_ENGINE: %w", err)
		}
		eng = re
		// Logins and failed-login counts live where the sessions do, so
		// that every node sees the same logins and the limits hold for
		// the cluster, not per node.
		guesses = redis.NewGuesses(re.Client(), "", guessLimits)
		loginStore = redis.NewLoginStore(re.Client(), "", loginLimits)
	} else {
		fl, err := auth.OpenFileLogins(filepath.Join(cfg.DataDir, "logins"), loginLimits)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("logins file: %w", err)
		}
		a.closers = append(a.closers, a.flushEvery(fl, time.Minute), fl)
		guesses = auth.NewMemoryGuesses(guessLimits)
		loginStore = fl
		// Channel histories survive restarts in the data directory (the
		// engine closes the store at shutdown; Close covers a failed
		// start).
		hs, err := bolthistory.Open(filepath.Join(cfg.DataDir, "history.db"),
			bolthistory.Options{MaxChannels: cfg.MaxHistoryChannels, Logger: a.Log})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("history: %w", err)
		}
		a.closers = append(a.closers, hs)
		history = hs
	}
	users, created, err := openUsers(cfg.UsersFile, a.Log)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Auth = &auth.Authenticator{Users: users, Guesses: guesses}
	keys, err := auth.LoadKeys(cfg.SessionKeys, cfg.DataDir)
	if err != nil {
		a.Close()
		return nil, err
	}
	if a.Logins, err = auth.NewLogins(keys, loginStore, cfg.LoginMaxAge); err != nil {
		a.Close()
		return nil, err
	}
	a.Chat = chat.New(a.Auth, a.Logins, a.Log)
	if a.Chat.Tokens, err = newTokens(cfg); err != nil {
		a.Close()
		return nil, err
	}
	a.Chat.RoomRate, a.Chat.RoomBurst = cfg.RoomRate, cfg.RoomBurst
	admins, err := admin.OpenAdmins(filepath.Join(cfg.DataDir, "admins"), cfg.Admins)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("admins file: %w", err)
	}
	a.Chat.IsAdmin = admins.IsAdmin
	if created && len(cfg.Admins) == 0 {
		// The first-start user admin administers the server.
		if err := admins.Grant("admin"); err != nil {
			a.Close()
			return nil, fmt.Errorf("admins file: %w", err)
		}
	}
	a.Recorder = admin.NewRecorder(admin.RecorderOptions{})
	a.closers = append(a.closers, a.Recorder)

	srv, err := server.New(server.Options{
		Authorize:             a.Recorder.Authorize(a.Chat.Authorize),
		Authorizers:           a.Chat.Authorizers(),
		OnEvent:               a.Recorder.OnEvent,
		Services:              a.Chat.Services(),
		Logger:                a.Log,
		Engine:                eng,
		HistoryStore:          history,
		Channels:              cfg.ChannelRules(),
		HistoryChannelBytes:   cfg.HistoryChannelBytes,
		MaxHistoryPage:        cfg.MaxHistoryPage,
		MaxRecover:            cfg.MaxRecover,
		PollTimeout:           cfg.PollTimeout,
		PollInterval:          cfg.PollInterval,
		ConnectTimeout:        cfg.ConnectTimeout,
		AnonPublish:           cfg.AnonPublish,
		MaxMessageSize:        cfg.MaxMessageSize,
		MaxBatch:              cfg.MaxBatch,
		MaxChannelLength:      cfg.MaxChannelLength,
		MaxSubscriptions:      cfg.MaxSubscriptions,
		MaxQueue:              cfg.MaxQueue,
		MaxQueueBytes:         cfg.MaxQueueBytes,
		MaxQueuedBytes:        cfg.MaxQueuedBytes,
		MaxReplySize:          cfg.MaxReplySize,
		MaxHistoryChannels:    cfg.MaxHistoryChannels,
		MaxPublishSize:        cfg.MaxPublishSize,
		MaxSessionsPerIP:      cfg.MaxSessionsPerIP,
		HandshakeRate:         cfg.HandshakeRate,
		HandshakeBurst:        cfg.HandshakeBurst,
		ClientMaxConnections:  cfg.ClientMaxConnections,
		MaxSessionsPerBrowser: cfg.MaxSessionsPerBrowser,
		MultiSessionInterval:  cfg.MultiSessionInterval,
		TrustClientSession:    cfg.TrustClientSession,
		NoWebSocket:           !cfg.WebSocket,
		WriteTimeout:          cfg.WriteTimeout,
		ParkAfter:             cfg.ParkAfter,
		AllowedOrigins:        cfg.AllowedOrigins,
		TrustedProxies:        cfg.TrustedProxies,
		ForwardedHeader:       cfg.ForwardedHeaders,
		MaxConnsPerIP:         cfg.MaxConnsPerIP,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Bayeux = srv
	a.Chat.Attach(srv)
	a.Recorder.Attach(srv)
	a.Ready = &admin.Ready{Server: srv}
	version, engine := admin.BuildVersion(Version), admin.EngineName(cfg.Engine)
	pages := ui.NewPages(srv, a.Logins, a.Log)
	pages.UserExists = users.Exists

	root, err := a.documentRoot()
	if err != nil {
		a.Close()
		return nil, err
	}
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
	chatHandler, err := chatweb.New(chatweb.Options{Files: assets.Web, Guard: pages.RequireLogin, EmbedOrigins: cfg.EmbedOrigins})
	if err != nil {
		a.Close()
		return nil, err
	}
	embedHandler, err := chatweb.NewEmbed(chatweb.EmbedOptions{Files: assets.Embed, AllowedOrigins: cfg.AllowedOrigins})
	if err != nil {
		a.Close()
		return nil, err
	}
	site := srv.Site(server.SiteOptions{
		ContentHandlers: map[string]http.Handler{
			"GET /healthz": health,
			"/login":       pages.Login(),
			"/logout":      pages.Logout(),
			"/chat":        chatHandler,
			"/chat/":       chatHandler,
			"/embed/":      embedHandler,
			"/admin/": pages.Admin(ui.AdminOptions{
				Users: users, Admins: admins, Recorder: a.Recorder, FailedLogins: a.Auth.Failed.Load,
				Version: version, Engine: engine, TokenKey: ui.FormTokenKey(keys),
			}),
			"/metrics": admin.Metrics(admin.MetricsOptions{
				Recorder: a.Recorder, FailedLogins: a.Auth.Failed.Load, Version: version, Engine: engine, Log: a.Log,
			}),
			"GET /readyz": a.Ready,
		},
		Files: server.FileServerOptions{
			Root:           root,
			DirectoryIndex: cfg.DirectoryIndex,
			TypeExpires:    cfg.TypeExpires,
		},
	})
	a.Handler = site
	return a, nil
}

// documentRoot is BAYEUX_DOCUMENT_ROOT, or the default one: the landing
// page of assets and the README rendered as /readme.html (the landing
// page links to its sections).
func (a *App) documentRoot() (fs.FS, error) {
	if a.Config.DocumentRoot == "" {
		page, err := readme.Page(bayeux.README, ui.StyleSheet)
		if err != nil {
			return nil, fmt.Errorf("rendering the README: %w", err)
		}
		return readme.WithFile(assets.FS, "readme.html", page), nil
	}
	r, err := os.OpenRoot(a.Config.DocumentRoot)
	if err != nil {
		return nil, fmt.Errorf("BAYEUX_DOCUMENT_ROOT: %w", err)
	}
	a.closers = append(a.closers, r)
	return r.FS(), nil
}

// flushEvery writes the logins' LastSeen changes every d until the
// returned Closer is closed.
func (a *App) flushEvery(fl *auth.FileLoginStore, d time.Duration) io.Closer {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := fl.Flush(); err != nil {
					a.Log.Error("logins file", "err", err)
				}
			}
		}
	}()
	return closerFunc(func() error {
		close(stop)
		<-done
		return nil
	})
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Close releases files the App opened.
func (a *App) Close() {
	for _, c := range a.closers {
		c.Close()
	}
	a.closers = nil
}

// budgets are the engine's budgets from cfg (the server gives the same
// to the memory engine it makes).
func budgets(cfg *config.Config) server.Budgets {
	return server.Budgets{
		MaxQueue:           cfg.MaxQueue,
		MaxQueueBytes:      cfg.MaxQueueBytes,
		MaxFetchBytes:      cfg.MaxReplySize,
		MaxQueuedBytes:     cfg.MaxQueuedBytes,
		MaxHistoryChannels: cfg.MaxHistoryChannels,
	}
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Serve listens on cfg.Addr (or uses ln, a plain TCP listener, when not
// nil) and serves until ctx ends, then shuts down gracefully: held
// connects are answered with retry advice, in-flight requests finish, and
// the engine closes. With BAYEUX_TLS_CERT it serves HTTPS (HTTP/2 offered
// unless BAYEUX_HTTP2=false).
//
// Slow clients: headers must arrive within BAYEUX_HEADER_TIMEOUT, and
// headers and body within BAYEUX_READ_TIMEOUT (http.Server.ReadTimeout;
// net/http lifts it once a body is read, so held connects, parked or
// not, and WebSockets are not cut: see server.Server.Serve).
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", a.Config.Addr)
		if err != nil {
			return err
		}
	}
	hs := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: a.Config.HeaderTimeout,
		ReadTimeout:       a.Config.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    a.Config.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	if !a.Config.HTTP2 {
		hs.Protocols = new(http.Protocols)
		hs.Protocols.SetHTTP1(true)
	}
	a.Log.Info("bayeux listening", "addr", ln.Addr().String(), "tls", a.certs != nil, "engine", a.Config.Engine, "document_root", a.Config.DocumentRoot)
	settleCtx, stopSettle := context.WithCancel(context.Background())
	defer stopSettle()
	go memsettle.Run(settleCtx, a.Config.MemorySettle)
	if a.Config.DebugAddr != "" {
		stop, err := a.serveDebug(a.Config.DebugAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	errc := make(chan error, 1)
	if a.certs != nil {
		hs.TLSConfig = &tls.Config{GetCertificate: a.certs.get, MinVersion: tls.VersionTLS12}
		go func() { errc <- a.Bayeux.ServeTLS(hs, ln) }()
	} else {
		go func() { errc <- a.Bayeux.Serve(hs, ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	a.Ready.BeginShutdown()
	a.Bayeux.BeginShutdown()
	err := hs.Shutdown(sctx)
	if berr := a.Bayeux.Shutdown(sctx); err == nil {
		err = berr
	}
	if err != nil {
		a.Log.Warn("shutdown incomplete", "err", err)
	}
	a.Log.Info("stopped")
	return nil
}

// serveDebug serves Go's profiles (/debug/pprof/) on addr, apart from the
// public listener: profiles show internals and cost CPU, so they are only
// where the operator asks (BAYEUX_DEBUG_ADDR, loopback).
func (a *App) serveDebug(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	a.Log.Info("debug profiles listening", "addr", ln.Addr().String())
	return func() { _ = hs.Close() }, nil
}
