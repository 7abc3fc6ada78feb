package config

import (
	"bytes"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bayeux-go/bayeux/internal/chat"
	"github.com/bayeux-go/bayeux/server"
)

func TestDefaults(t *testing.T) {
	c, err := LoadFrom(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.PollTimeout != 30*time.Second || c.ConnectTimeout != 30*time.Second {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.UsersFile != filepath.Join("data", "users") {
		t.Errorf("UsersFile = %q, want data/users", c.UsersFile)
	}
	if c.TypeExpires["image/*"] != 24*time.Hour {
		t.Errorf("TypeExpires = %v", c.TypeExpires)
	}
	if !reflect.DeepEqual(c.DirectoryIndex, []string{"index.html"}) {
		t.Errorf("DirectoryIndex = %v", c.DirectoryIndex)
	}
}

func TestParse(t *testing.T) {
	type testCase struct {
		name    string
		vars    map[string]string
		check   func(*Config) bool
		wantErr string
	}
	for _, tc := range []testCase{
		{name: "unlimited connections", vars: map[string]string{"BAYEUX_CLIENT_MAX_CONNECTIONS": "0"}, check: func(c *Config) bool { return c.ClientMaxConnections == 0 }},
		{name: "lists", vars: map[string]string{"BAYEUX_ALLOWED_ORIGINS": "http://a.test,http://b.test", "BAYEUX_DIRECTORY_INDEX": "index.htm,index.html"}, check: func(c *Config) bool {
			return len(c.AllowedOrigins) == 2 && c.DirectoryIndex[0] == "index.htm"
		}},
		{name: "type expires", vars: map[string]string{"BAYEUX_TYPE_EXPIRES": "text/css=1h,image/png=30s"}, check: func(c *Config) bool {
			return c.TypeExpires["text/css"] == time.Hour && c.TypeExpires["image/png"] == 30*time.Second
		}},
		{name: "users file follows data dir", vars: map[string]string{"BAYEUX_DATA_DIR": "/tmp/x"}, check: func(c *Config) bool { return c.UsersFile == "/tmp/x/users" }},
		{name: "bad duration", vars: map[string]string{"BAYEUX_POLL_TIMEOUT": "soon"}, wantErr: "POLL_TIMEOUT"},
		{name: "negative limit", vars: map[string]string{"BAYEUX_CLIENT_MAX_CONNECTIONS": "-1"}, wantErr: "CLIENT_MAX_CONNECTIONS"},
		{name: "bad engine", vars: map[string]string{"BAYEUX_ENGINE": "mysql://x"}, wantErr: "ENGINE"},
		{name: "redis cluster engine", vars: map[string]string{"BAYEUX_ENGINE": "redis-cluster://10.0.0.1:7000?addr=10.0.0.2:7000"},
			check: func(c *Config) bool { return IsRedisEngine(c.Engine) }},
		{name: "redis sentinel engine", vars: map[string]string{"BAYEUX_ENGINE": "redis-sentinel://10.0.0.1:26379/0?master_name=m"},
			check: func(c *Config) bool { return IsRedisEngine(c.Engine) }},
		{name: "bad level", vars: map[string]string{"BAYEUX_LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "budget defaults", vars: nil, check: func(c *Config) bool {
			return c.MaxQueueBytes == 4<<20 && c.MaxQueuedBytes == 256<<20 && c.MaxReplySize == 1<<20 && c.MaxPublishSize == 64<<10 &&
				c.MaxSessionsPerIP == 100 && c.HandshakeRate == 5 && c.HandshakeBurst == 30 && c.MaxHistoryChannels == 200 &&
				c.RoomRate == 10 && c.RoomBurst == 10
		}},
		{name: "per-address limits off", vars: map[string]string{"BAYEUX_MAX_SESSIONS_PER_IP": "0", "BAYEUX_HANDSHAKE_RATE": "0", "BAYEUX_ROOM_RATE": "0"},
			check: func(c *Config) bool { return c.MaxSessionsPerIP == 0 && c.HandshakeRate == 0 && c.RoomRate == 0 }},
		{name: "zero queue bytes", vars: map[string]string{"BAYEUX_MAX_QUEUE_BYTES": "0"}, wantErr: "MAX_QUEUE_BYTES"},
		{name: "negative publish size", vars: map[string]string{"BAYEUX_MAX_PUBLISH_SIZE": "-1"}, wantErr: "MAX_PUBLISH_SIZE"},
		{name: "negative handshake rate", vars: map[string]string{"BAYEUX_HANDSHAKE_RATE": "-2"}, wantErr: "HANDSHAKE_RATE"},
		{name: "zero history channels", vars: map[string]string{"BAYEUX_MAX_HISTORY_CHANNELS": "0"}, wantErr: "MAX_HISTORY_CHANNELS"},
		{name: "old name of history channels", vars: map[string]string{"BAYEUX_MAX_HISTORY_ROOMS": "7"},
			check: func(c *Config) bool { return c.MaxHistoryChannels == 7 }},
		{name: "new name wins", vars: map[string]string{"BAYEUX_MAX_HISTORY_ROOMS": "7", "BAYEUX_MAX_HISTORY_CHANNELS": "9"},
			check: func(c *Config) bool { return c.MaxHistoryChannels == 9 }},
		{name: "chat channels by default", vars: nil, check: func(c *Config) bool {
			return c.Channels == chat.DefaultChannels && slices.Equal(c.ChannelRules(), chat.DefaultRules()) &&
				c.HistoryChannelBytes == server.DefaultHistoryChannelBytes && c.MaxHistoryPage == server.DefaultMaxHistoryPage &&
				c.MaxRecover == server.DefaultMaxRecover
		}},
		{name: "channel rules", vars: map[string]string{"BAYEUX_CHANNELS": "/chat/**:history=50,presence; /news/*:history=10,ttl=24h"},
			check: func(c *Config) bool {
				return slices.Equal(c.ChannelRules(), []server.ChannelRule{{Pattern: "/chat/**", History: 50, Presence: true},
					{Pattern: "/news/*", History: 10, HistoryTTL: 24 * time.Hour}})
			}},
		{name: "no channel rules", vars: map[string]string{"BAYEUX_CHANNELS": "none"}, check: func(c *Config) bool { return len(c.ChannelRules()) == 0 }},
		{name: "bad channel rule", vars: map[string]string{"BAYEUX_CHANNELS": "/chat/**:history=lots"}, wantErr: "CHANNELS"},
		{name: "login limits", vars: map[string]string{"BAYEUX_LOGIN_LIMIT_USER_IP": "3", "BAYEUX_LOGIN_LIMIT_WINDOW": "1h", "BAYEUX_LOGINS_PER_USER": "2"}, check: func(c *Config) bool {
			return c.LoginLimitUserIP == 3 && c.LoginLimitWindow == time.Hour && c.LoginsPerUser == 2 && c.LoginLimitIP == 20 && c.LoginLimitUser == 20
		}},
		{name: "login limit off is refused", vars: map[string]string{"BAYEUX_LOGIN_LIMIT_IP": "0"}, wantErr: "LOGIN_LIMIT_IP"},
		{name: "login idle zero", vars: map[string]string{"BAYEUX_LOGIN_IDLE": "0s"}, wantErr: "LOGIN_IDLE"},
		{name: "edge", vars: map[string]string{"BAYEUX_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1", "BAYEUX_FORWARDED_HEADERS": "forwarded",
			"BAYEUX_READ_TIMEOUT": "5s", "BAYEUX_MAX_CONNS_PER_IP": "0", "BAYEUX_TLS_CERT": "c.pem", "BAYEUX_TLS_KEY": "k.pem"},
			check: func(c *Config) bool {
				return len(c.TrustedProxies) == 2 && c.ForwardedHeaders == "forwarded" && c.ReadTimeout == 5*time.Second &&
					c.MaxConnsPerIP == 0 && c.TLSCert == "c.pem" && c.HTTP2
			}},
		{name: "bad proxy", vars: map[string]string{"BAYEUX_TRUSTED_PROXIES": "proxy.example"}, wantErr: "TRUSTED_PROXIES"},
		{name: "bad header family", vars: map[string]string{"BAYEUX_FORWARDED_HEADERS": "x-real-ip"}, wantErr: "FORWARDED_HEADERS"},
		{name: "bad origin", vars: map[string]string{"BAYEUX_ALLOWED_ORIGINS": "app.example"}, wantErr: "ALLOWED_ORIGINS"},
		{name: "bad embed origin", vars: map[string]string{"BAYEUX_EMBED_ORIGINS": "https://a.example/page"}, wantErr: "EMBED_ORIGINS"},
		{name: "cert without key", vars: map[string]string{"BAYEUX_TLS_CERT": "c.pem"}, wantErr: "TLS_CERT"},
		{name: "no read timeout", vars: map[string]string{"BAYEUX_READ_TIMEOUT": "0s"}, wantErr: "READ_TIMEOUT"},
		{name: "redis handover timeout", vars: map[string]string{"BAYEUX_REDIS_HANDOVER_TIMEOUT": "250ms"}, check: func(c *Config) bool {
			return c.RedisHandoverTimeout == 250*time.Millisecond
		}},
		{name: "no redis handover timeout", vars: map[string]string{"BAYEUX_REDIS_HANDOVER_TIMEOUT": "0s"}, wantErr: "REDIS_HANDOVER_TIMEOUT"},
		{name: "token defaults", vars: nil, check: func(c *Config) bool {
			return c.TokenKeys == "" && c.TokenPrefix == "token:" && c.TokenMaxLifetime == time.Hour && c.TokenLeeway == 30*time.Second &&
				c.TokenMaxBytes == 8192 && c.TokenIPFailures == 20
		}},
		{name: "token settings", vars: map[string]string{"BAYEUX_TOKEN_KEYS": "hs256:abc,file:/k.pem", "BAYEUX_TOKEN_AUDIENCE": "chat",
			"BAYEUX_TOKEN_PREFIX": "blog:", "BAYEUX_TOKEN_MAX_LIFETIME": "10m", "BAYEUX_TOKEN_LEEWAY": "0s"}, check: func(c *Config) bool {
			return c.TokenKeys == "hs256:abc,file:/k.pem" && c.TokenAudience == "chat" && c.TokenPrefix == "blog:" &&
				c.TokenMaxLifetime == 10*time.Minute && c.TokenLeeway == 0
		}},
		{name: "token prefix without a colon", vars: map[string]string{"BAYEUX_TOKEN_PREFIX": "blog-"}, wantErr: "TOKEN_PREFIX"},
		{name: "token lifetime", vars: map[string]string{"BAYEUX_TOKEN_MAX_LIFETIME": "0s"}, wantErr: "TOKEN_MAX_LIFETIME"},
		{name: "token leeway", vars: map[string]string{"BAYEUX_TOKEN_LEEWAY": "-1s"}, wantErr: "TOKEN_LEEWAY"},
		{name: "token failures", vars: map[string]string{"BAYEUX_TOKEN_IP_FAILURES": "-1"}, wantErr: "TOKEN_IP_FAILURES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadFrom(tc.vars)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want mention of %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var b bytes.Buffer
	PrintHelp(&b)
	for _, name := range []string{"ADDR", "DOCUMENT_ROOT", "DIRECTORY_INDEX", "TYPE_EXPIRES", "ANON_PUBLISH", "CONNECT_TIMEOUT", "POLL_TIMEOUT", "CLIENT_MAX_CONNECTIONS", "LOG_LEVEL", "LOG_FILE", "DATA_DIR", "USERS_FILE", "ADMINS", "SESSION_KEYS", "ENGINE", "ALLOWED_ORIGINS", "EMBED_ORIGINS", "MAX_MESSAGE_SIZE", "MAX_QUEUE", "POLL_INTERVAL",
		"MAX_QUEUE_BYTES", "MAX_QUEUED_BYTES", "MAX_REPLY_SIZE", "MAX_PUBLISH_SIZE", "MAX_SESSIONS_PER_IP", "HANDSHAKE_RATE",
		"HANDSHAKE_BURST", "MAX_HISTORY_ROOMS", "ROOM_RATE", "ROOM_BURST",
		"LOGIN_LIMIT_WINDOW", "LOGIN_LIMIT_USER_IP", "LOGIN_LIMIT_IP", "LOGIN_LIMIT_USER", "LOGIN_MAX_AGE", "LOGIN_IDLE", "LOGINS_PER_USER",
		"TRUSTED_PROXIES", "FORWARDED_HEADERS", "TLS_CERT", "TLS_KEY", "HTTP2", "READ_TIMEOUT", "HEADER_TIMEOUT", "MAX_HEADER_BYTES", "MAX_CONNS_PER_IP", "REDIS_HANDOVER_TIMEOUT"} {
		if !strings.Contains(b.String(), "BAYEUX_"+name) {
			t.Errorf("help lacks BAYEUX_%s", name)
		}
	}
	if !strings.Contains(b.String(), ":8080") {
		t.Error("help lacks defaults")
	}
	for _, want := range []string{"BAYEUX_TOKEN_KEYS", "BAYEUX_TOKEN_AUDIENCE", "bayeux token NAME [-ttl 5m] [-channels"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
