package config

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
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
		{name: "bad level", vars: map[string]string{"BAYEUX_LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
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
	for _, name := range []string{"ADDR", "DOCUMENT_ROOT", "DIRECTORY_INDEX", "TYPE_EXPIRES", "ANON_PUBLISH", "CONNECT_TIMEOUT", "POLL_TIMEOUT", "CLIENT_MAX_CONNECTIONS", "LOG_LEVEL", "LOG_FILE", "DATA_DIR", "USERS_FILE", "ADMINS", "SESSION_KEYS", "ENGINE", "ALLOWED_ORIGINS", "EMBED_ORIGINS", "MAX_MESSAGE_SIZE", "MAX_QUEUE", "POLL_INTERVAL"} {
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
