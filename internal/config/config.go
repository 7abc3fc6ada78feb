// Package config reads the server's configuration from BAYEUX_*
// environment variables (caarlos0/env) and prints it for -h.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/bayeux-go/bayeux/internal/origin"
	"github.com/bayeux-go/bayeux/internal/realip"
	"github.com/bayeux-go/bayeux/server"
)

// Prefix is the prefix of every environment variable.
const Prefix = "BAYEUX_"

// Config is the server configuration. Each field's env tag names its
// variable (after Prefix), envDefault its default and desc its help text.
type Config struct {
	Addr           string                   `env:"ADDR" envDefault:":8080" desc:"listen address (host:port)"`
	DocumentRoot   string                   `env:"DOCUMENT_ROOT" desc:"directory served for paths that are not pages or /cometd; empty: the bundled assets/"`
	DirectoryIndex []string                 `env:"DIRECTORY_INDEX" envDefault:"index.html" desc:"comma-separated index file names tried for a directory"`
	TypeExpires    map[string]time.Duration `env:"TYPE_EXPIRES" envKeyValSeparator:"=" envDefault:"image/*=24h,font/*=24h" desc:"comma-separated MIME=duration: how long browsers may cache each type (image/* wildcards allowed)"`
	AnonPublish    bool                     `env:"ANON_PUBLISH" envDefault:"false" desc:"allow publishing without a handshake"`
	ConnectTimeout time.Duration            `env:"CONNECT_TIMEOUT" envDefault:"30s" desc:"a session expires when no /meta/connect arrives this long after the last connect reply"`
	PollTimeout    time.Duration            `env:"POLL_TIMEOUT" envDefault:"30s" desc:"how long a /meta/connect is held when nothing is queued (timeout advice)"`
	PollInterval   time.Duration            `env:"POLL_INTERVAL" envDefault:"0s" desc:"pause clients make between connects (interval advice)"`

	ClientMaxConnections  int           `env:"CLIENT_MAX_CONNECTIONS" envDefault:"100" desc:"concurrent requests per client IP address on every route (held connects and WebSockets included; 429 beyond); 0 = unlimited"`
	MaxConnsPerIP         int           `env:"MAX_CONNS_PER_IP" envDefault:"256" desc:"open connections from one peer address, idle ones included (closed at once beyond; trusted proxies exempt); 0 = unlimited"`
	ReadTimeout           time.Duration `env:"READ_TIMEOUT" envDefault:"20s" desc:"a request's headers and body must arrive within this (408 beyond); held connects and WebSockets are not cut"`
	HeaderTimeout         time.Duration `env:"HEADER_TIMEOUT" envDefault:"10s" desc:"a request's headers must arrive within this"`
	MaxHeaderBytes        int           `env:"MAX_HEADER_BYTES" envDefault:"65536" desc:"bytes of one request's headers (431 beyond)"`
	MaxMessageSize        int64         `env:"MAX_MESSAGE_SIZE" envDefault:"524288" desc:"bytes of one HTTP request body (413 beyond) or WebSocket message (the socket is closed with 1009)"`
	MaxQueue              int           `env:"MAX_QUEUE" envDefault:"1000" desc:"messages waiting in one session's queue; the oldest is dropped beyond"`
	MaxQueueBytes         int64         `env:"MAX_QUEUE_BYTES" envDefault:"4194304" desc:"bytes waiting in one session's queue; the oldest are dropped beyond (the client is told in ext.dropped)"`
	MaxQueuedBytes        int64         `env:"MAX_QUEUED_BYTES" envDefault:"268435456" desc:"bytes waiting in all sessions' queues together; beyond, the biggest queues drop their oldest messages first (told in ext.dropped)"`
	MaxReplySize          int64         `env:"MAX_REPLY_SIZE" envDefault:"1048576" desc:"bytes of queued messages in one connect reply or WebSocket frame; the rest waits for the next connect (a reply carries at least one message)"`
	MaxPublishSize        int64         `env:"MAX_PUBLISH_SIZE" envDefault:"65536" desc:"bytes of one published message (channel, data and ext); bigger ones are refused with 413::publish_too_large"`
	MaxSessionsPerIP      int           `env:"MAX_SESSIONS_PER_IP" envDefault:"100" desc:"sessions one IP address may hold at once on this node; more handshakes are refused with 429::too_many_sessions; 0 = unlimited"`
	HandshakeRate         float64       `env:"HANDSHAKE_RATE" envDefault:"5" desc:"handshakes per second one IP address may make on this node (token bucket); more are refused with 429::too_many_handshakes; 0 = unlimited"`
	HandshakeBurst        int           `env:"HANDSHAKE_BURST" envDefault:"30" desc:"handshakes one IP address may make at once (the token bucket's size)"`
	Channels              string        `env:"CHANNELS" envDefault:"/chat/**:history=10000,presence" desc:"history and presence per channel pattern: PATTERN:history=N,ttl=DURATION,presence;... (the first matching rule applies); none = no history or presence"`
	MaxHistoryChannels    int           `env:"MAX_HISTORY_CHANNELS" envDefault:"200" desc:"channels that keep a history; beyond, the least recently used channel's history is forgotten (BAYEUX_MAX_HISTORY_ROOMS is read too)"`
	HistoryChannelBytes   int64         `env:"HISTORY_CHANNEL_BYTES" envDefault:"8388608" desc:"bytes of one channel's history; the oldest messages are removed beyond"`
	MaxHistoryPage        int           `env:"MAX_HISTORY_PAGE" envDefault:"100" desc:"messages one /service/history reply carries"`
	MaxRecover            int           `env:"MAX_RECOVER" envDefault:"1000" desc:"messages a client recovers when it subscribes again after losing its session; more are not recovered (it is told)"`
	RoomRate              float64       `env:"ROOM_RATE" envDefault:"10" desc:"chat rooms one user may create per minute (admins: unlimited); more are refused with 403:room_rate_limited:channel_create_denied (create_denied on subscribe); 0 = unlimited"`
	RoomBurst             int           `env:"ROOM_BURST" envDefault:"10" desc:"chat rooms one user may create at once (the token bucket's size)"`
	MaxBatch              int           `env:"MAX_BATCH" envDefault:"256" desc:"messages in one request"`
	MaxChannelLength      int           `env:"MAX_CHANNEL_LENGTH" envDefault:"256" desc:"bytes of a channel name"`
	MaxSubscriptions      int           `env:"MAX_SUBSCRIPTIONS" envDefault:"1024" desc:"subscriptions of one session"`
	MaxSessionsPerBrowser int           `env:"MAX_SESSIONS_PER_BROWSER" envDefault:"1" desc:"held connects per browser over HTTP/1.x; others poll (multiple-clients advice); -1 = unlimited"`
	MultiSessionInterval  time.Duration `env:"MULTI_SESSION_INTERVAL" envDefault:"2s" desc:"interval advised to a browser's extra sessions"`
	TrustClientSession    bool          `env:"TRUST_CLIENT_SESSION" envDefault:"false" desc:"accept a clientId without the browser cookie it was issued with"`
	WebSocket             bool          `env:"WEBSOCKET" envDefault:"true" desc:"offer the websocket transport (long-polling and callback-polling are always on)"`
	WriteTimeout          time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" desc:"a client that does not read a response (a WebSocket frame, a parked long-poll's reply) for this long is cut off"`
	ParkAfter             time.Duration `env:"PARK_AFTER" envDefault:"50ms" desc:"a long-poll held this long waits without a goroutine or buffers (parked); negative = never"`
	AllowedOrigins        []string      `env:"ALLOWED_ORIGINS" desc:"comma-separated origins (scheme://host[:port]) allowed cross-origin with credentials (CORS); * = any other origin too, without credentials"`
	EmbedOrigins          []string      `env:"EMBED_ORIGINS" desc:"comma-separated origins (scheme://host[:port]) allowed to frame the chat; * = any"`

	TrustedProxies   []string `env:"TRUSTED_PROXIES" desc:"comma-separated CIDRs or addresses of reverse proxies whose forwarding headers give the client's IP and scheme"`
	ForwardedHeaders string   `env:"FORWARDED_HEADERS" envDefault:"x-forwarded" desc:"headers the trusted proxies set: x-forwarded (X-Forwarded-For and X-Forwarded-Proto) or forwarded (RFC 7239); the other kind is ignored"`
	TLSCert          string   `env:"TLS_CERT" desc:"PEM certificate (chain) file: serve HTTPS, with BAYEUX_TLS_KEY; reloaded when the files change"`
	TLSKey           string   `env:"TLS_KEY" desc:"PEM private key file of BAYEUX_TLS_CERT"`
	HTTP2            bool     `env:"HTTP2" envDefault:"true" desc:"offer HTTP/2 over TLS (its held connects are not parked: a goroutine each)"`

	MemorySettle time.Duration `env:"MEMORY_SETTLE" envDefault:"2s" desc:"how often to check whether the process is quiet after a burst of allocation (10,000 clients connecting): then a GC returns the burst's memory to the OS at once instead of at Go's 2-minute forced GC; 0 = off"`
	DebugAddr    string        `env:"DEBUG_ADDR" desc:"listen address of a separate server for Go's /debug/pprof/ (keep it on loopback); empty = off"`
	LogLevel     string        `env:"LOG_LEVEL" envDefault:"info" desc:"debug, info, warn or error"`
	LogFile      string        `env:"LOG_FILE" desc:"append logs to this file instead of stderr"`
	DataDir      string        `env:"DATA_DIR" envDefault:"./data" desc:"directory for state (created when missing)"`
	UsersFile    string        `env:"USERS_FILE" desc:"htpasswd file with bcrypt hashes; default <data dir>/users"`
	Admins       []string      `env:"ADMINS" desc:"comma-separated user names allowed on /admin/"`
	SessionKeys  []string      `env:"SESSION_KEYS" desc:"comma-separated base64 cookie keys, newest first; default: generated once into the data dir"`

	LoginLimitWindow     time.Duration `env:"LOGIN_LIMIT_WINDOW" envDefault:"15m" desc:"how long a failed login counts against the login limits"`
	LoginLimitUserIP     int           `env:"LOGIN_LIMIT_USER_IP" envDefault:"5" desc:"failed logins per user from one IP address (IPv6: per /64) within the window; more are refused unchecked"`
	LoginLimitIP         int           `env:"LOGIN_LIMIT_IP" envDefault:"20" desc:"failed logins from one IP address (IPv6: per /64), any users, within the window; more are refused unchecked"`
	LoginLimitUser       int           `env:"LOGIN_LIMIT_USER" envDefault:"20" desc:"failed logins per user from all addresses within the window after which only addresses that have not failed for the user may try (once each)"`
	LoginMaxAge          time.Duration `env:"LOGIN_MAX_AGE" envDefault:"720h" desc:"a browser login ends this long after it was made"`
	LoginIdle            time.Duration `env:"LOGIN_IDLE" envDefault:"168h" desc:"a browser login ends when it was not used for this long"`
	LoginsPerUser        int           `env:"LOGINS_PER_USER" envDefault:"10" desc:"browser logins kept per user; a new one beyond ends the one used least recently"`
	Engine               string        `env:"ENGINE" envDefault:"memory" desc:"memory; redis://host:port/db (one Redis); redis-cluster://host:port?addr=host2:port2&addr=... (Redis Cluster); redis-sentinel://host:port/db?master_name=NAME&addr=... (Sentinel); rediss... for TLS"`
	RedisHandoverTimeout time.Duration `env:"REDIS_HANDOVER_TIMEOUT" envDefault:"1s" desc:"on Redis, how long a node that takes a session over waits for the node that had it to write what it sent"`
	ShutdownTimeout      time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" desc:"how long a graceful shutdown waits for requests"`

	TokenKeys        string        `env:"TOKEN_KEYS" desc:"keys that verify login tokens (ext.auth.token JWTs), comma-separated: hs256:[kid:]<base64 secret> or file:<PEM or JWKS of RS256/ES256/EdDSA public keys>; empty = token login off"`
	TokenAudience    string        `env:"TOKEN_AUDIENCE" desc:"when set, a token's aud must name it"`
	TokenIssuer      string        `env:"TOKEN_ISSUER" desc:"when set, a token's iss must be it"`
	TokenPrefix      string        `env:"TOKEN_PREFIX" envDefault:"token:" desc:"put before a token's sub to name its user; must contain ':' (local user names cannot, so token users never are local users or admins)"`
	TokenMaxLifetime time.Duration `env:"TOKEN_MAX_LIFETIME" envDefault:"1h" desc:"tokens valid for longer (exp - iat, or exp - now) are refused"`
	TokenLeeway      time.Duration `env:"TOKEN_LEEWAY" envDefault:"30s" desc:"clock skew allowed when checking a token's exp, nbf and iat"`
	TokenMaxBytes    int           `env:"TOKEN_MAX_BYTES" envDefault:"8192" desc:"longest token accepted, in bytes"`
	TokenIPFailures  int           `env:"TOKEN_IP_FAILURES" envDefault:"20" desc:"invalid tokens one IP address may present within 5 minutes; beyond, its tokens are refused unverified; 0 = no limit"`
}

// Load parses the environment.
func Load() (*Config, error) { return parse(nil) }

// LoadFrom parses the given variables instead of the process environment
// (for tests).
func LoadFrom(vars map[string]string) (*Config, error) {
	if vars == nil {
		vars = map[string]string{}
	}
	return parse(vars)
}

func parse(vars map[string]string) (*Config, error) {
	c := new(Config)
	opts := env.Options{Prefix: Prefix, Environment: vars}
	if err := env.ParseWithOptions(c, opts); err != nil {
		return nil, nameVariable(err)
	}
	if err := c.oldNames(vars); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.UsersFile == "" {
		c.UsersFile = filepath.Join(c.DataDir, "users")
	}
	return c, nil
}

// oldNames reads variables renamed since: BAYEUX_MAX_HISTORY_ROOMS is
// BAYEUX_MAX_HISTORY_CHANNELS when that is not set.
func (c *Config) oldNames(vars map[string]string) error {
	lookup := os.LookupEnv
	if vars != nil {
		lookup = func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	}
	if _, set := lookup(Prefix + "MAX_HISTORY_CHANNELS"); set {
		return nil
	}
	if v, ok := lookup(Prefix + "MAX_HISTORY_ROOMS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%sMAX_HISTORY_ROOMS: %w", Prefix, err)
		}
		c.MaxHistoryChannels = n
	}
	return nil
}

// ChannelRules returns the rules of BAYEUX_CHANNELS (validated by Load).
func (c *Config) ChannelRules() []server.ChannelRule {
	rules, _ := parseChannels(c.Channels)
	return rules
}

// parseChannels parses BAYEUX_CHANNELS: "none" (an empty value takes the
// default) or rules.
func parseChannels(s string) ([]server.ChannelRule, error) {
	if strings.TrimSpace(s) == "none" {
		return nil, nil
	}
	return server.ParseChannelRules(s)
}

func (c *Config) validate() error {
	var errs []error
	bad := func(name, why string) { errs = append(errs, fmt.Errorf("%s%s: %s", Prefix, name, why)) }
	if c.PollTimeout <= 0 {
		bad("POLL_TIMEOUT", "must be positive")
	}
	if c.ConnectTimeout <= 0 {
		bad("CONNECT_TIMEOUT", "must be positive")
	}
	if c.PollInterval < 0 {
		bad("POLL_INTERVAL", "must not be negative")
	}
	if c.ClientMaxConnections < 0 {
		bad("CLIENT_MAX_CONNECTIONS", "must be 0 (unlimited) or positive")
	}
	if c.MaxConnsPerIP < 0 {
		bad("MAX_CONNS_PER_IP", "must be 0 (unlimited) or positive")
	}
	if c.ReadTimeout <= 0 {
		bad("READ_TIMEOUT", "must be positive")
	}
	if c.HeaderTimeout <= 0 {
		bad("HEADER_TIMEOUT", "must be positive")
	}
	if c.RedisHandoverTimeout <= 0 {
		bad("REDIS_HANDOVER_TIMEOUT", "must be positive")
	}
	if c.MaxHeaderBytes < 1024 {
		bad("MAX_HEADER_BYTES", "must be at least 1024")
	}
	if _, err := origin.ParseList(c.AllowedOrigins); err != nil {
		bad("ALLOWED_ORIGINS", err.Error())
	}
	if _, err := origin.ParseList(c.EmbedOrigins); err != nil {
		bad("EMBED_ORIGINS", err.Error())
	}
	if _, err := realip.New(c.TrustedProxies, ""); err != nil {
		bad("TRUSTED_PROXIES", err.Error())
	}
	if _, err := realip.New(nil, c.ForwardedHeaders); err != nil {
		bad("FORWARDED_HEADERS", err.Error())
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("TLS_CERT", "BAYEUX_TLS_CERT and BAYEUX_TLS_KEY go together")
	}
	if c.MaxMessageSize <= 0 {
		bad("MAX_MESSAGE_SIZE", "must be positive")
	}
	for name, v := range map[string]int{"MAX_QUEUE": c.MaxQueue, "MAX_BATCH": c.MaxBatch, "MAX_CHANNEL_LENGTH": c.MaxChannelLength,
		"MAX_SUBSCRIPTIONS": c.MaxSubscriptions, "MAX_HISTORY_CHANNELS": c.MaxHistoryChannels,
		"MAX_HISTORY_PAGE": c.MaxHistoryPage, "MAX_RECOVER": c.MaxRecover, "HANDSHAKE_BURST": c.HandshakeBurst, "ROOM_BURST": c.RoomBurst,
		"LOGIN_LIMIT_USER_IP": c.LoginLimitUserIP, "LOGIN_LIMIT_IP": c.LoginLimitIP, "LOGIN_LIMIT_USER": c.LoginLimitUser, "LOGINS_PER_USER": c.LoginsPerUser} {
		if v <= 0 {
			bad(name, "must be positive")
		}
	}
	for name, v := range map[string]time.Duration{"LOGIN_LIMIT_WINDOW": c.LoginLimitWindow, "LOGIN_MAX_AGE": c.LoginMaxAge, "LOGIN_IDLE": c.LoginIdle} {
		if v <= 0 {
			bad(name, "must be positive")
		}
	}
	for name, v := range map[string]int64{"MAX_QUEUE_BYTES": c.MaxQueueBytes, "MAX_QUEUED_BYTES": c.MaxQueuedBytes,
		"MAX_REPLY_SIZE": c.MaxReplySize, "MAX_PUBLISH_SIZE": c.MaxPublishSize, "HISTORY_CHANNEL_BYTES": c.HistoryChannelBytes} {
		if v <= 0 {
			bad(name, "must be positive")
		}
	}
	if _, err := parseChannels(c.Channels); err != nil {
		bad("CHANNELS", err.Error())
	}
	if c.MaxSessionsPerIP < 0 {
		bad("MAX_SESSIONS_PER_IP", "must be 0 (unlimited) or positive")
	}
	for name, v := range map[string]float64{"HANDSHAKE_RATE": c.HandshakeRate, "ROOM_RATE": c.RoomRate} {
		if v < 0 {
			bad(name, "must be 0 (unlimited) or positive")
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error")
	}
	if c.Engine != "memory" && !IsRedisEngine(c.Engine) {
		bad("ENGINE", "must be memory, redis://host:port/db, redis-cluster://host:port?addr=... or redis-sentinel://host:port/db?master_name=...")
	}
	if c.DataDir == "" {
		bad("DATA_DIR", "must not be empty")
	}
	if !strings.Contains(c.TokenPrefix, ":") || strings.ContainsAny(c.TokenPrefix, " \t\r\n") || len(c.TokenPrefix) > 32 {
		bad("TOKEN_PREFIX", "must contain ':' and no spaces, at most 32 bytes")
	}
	if c.TokenMaxLifetime <= 0 {
		bad("TOKEN_MAX_LIFETIME", "must be positive")
	}
	if c.TokenLeeway < 0 {
		bad("TOKEN_LEEWAY", "must not be negative")
	}
	if c.TokenMaxBytes <= 0 {
		bad("TOKEN_MAX_BYTES", "must be positive")
	}
	if c.TokenIPFailures < 0 {
		bad("TOKEN_IP_FAILURES", "must be 0 (no limit) or positive")
	}
	return errors.Join(errs...)
}

// nameVariable prefixes a parse error with the variable it is about, since
// caarlos0/env names the Go field.
func nameVariable(err error) error {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if strings.Contains(err.Error(), `"`+f.Name+`"`) {
			return fmt.Errorf("%s%s: %w", Prefix, f.Tag.Get("env"), err)
		}
	}
	return err
}

// EnsureDataDir creates the data directory when it is missing.
func (c *Config) EnsureDataDir() error { return os.MkdirAll(c.DataDir, 0o700) }

// PrintHelp writes every variable with its default and description.
func PrintHelp(w io.Writer) {
	fmt.Fprintf(w, "bayeux: a Bayeux (cometd) server with a chat.\n\nUsage:\n  bayeux        serve, configured by the environment below\n  bayeux -h     print this help\n  bayeux passwd FILE NAME   add or update a user (password read from stdin)\n  bayeux token NAME [-ttl 5m] [-channels /chat/a,/chat/b/*]\n                mint a login token for NAME with the first hs256 key of BAYEUX_TOKEN_KEYS\n\nEnvironment:\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s%s\t%s\t%s\n", Prefix, name, def, f.Tag.Get("desc"))
	}
	tw.Flush()
}

// IsRedisEngine reports whether an ENGINE value names a Redis deployment
// (one Redis, a Redis Cluster or Sentinel; TLS or not).
func IsRedisEngine(engine string) bool {
	for _, scheme := range []string{"redis://", "rediss://", "redis-cluster://", "rediss-cluster://",
		"redis-sentinel://", "rediss-sentinel://", "unix://"} {
		if strings.HasPrefix(engine, scheme) {
			return true
		}
	}
	return false
}
