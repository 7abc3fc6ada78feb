package abuse

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMainUsage: bad usage exits 2 with a message and starts nothing; -h
// lists the attacks.
func TestMainUsage(t *testing.T) {
	t.Setenv("ABUSE_PASSWORD", "")
	type testCase struct {
		name string
		args []string
		code int
		says string
	}
	for _, tc := range []testCase{
		{"help", []string{"-h"}, 0, "login-guessing"},
		{"url without an account", []string{"-url", "http://127.0.0.1:1"}, 2, "-url needs -user and $ABUSE_PASSWORD"},
		{"pid without url", []string{"-pid", "1"}, 2, "-pid and -user go with -url"},
		{"unknown attack", []string{"-only", "nope", "-bin", "/nonexistent"}, 2, `no attack "nope"`},
		{"no binary", []string{"-bin", filepath.Join(t.TempDir(), "bayeux")}, 2, "run make build first"},
		{"stray argument", []string{"now"}, 2, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if code := Main(ctx, tc.args, &out, &errOut); code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.says) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.says)
			}
		})
	}
}

// TestChildEnv: the started server gets the suite's settings and none of
// the operator's BAYEUX_ variables.
func TestChildEnv(t *testing.T) {
	t.Parallel()
	got := childEnv([]string{"PATH=/bin", "BAYEUX_ADDR=:80", "BAYEUX_ENGINE=redis://x"}, map[string]string{"BAYEUX_ADDR": "127.0.0.1:0"})
	want := []string{"PATH=/bin", "BAYEUX_ADDR=127.0.0.1:0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("childEnv = %v, want %v", got, want)
	}
}

// TestTailFindsTheAddress: the server's log is scanned for its listening
// address and its last lines are kept.
func TestTailFindsTheAddress(t *testing.T) {
	t.Parallel()
	log := "time=x level=WARN msg=\"created the users file\"\ntime=x level=INFO msg=\"bayeux listening\" addr=127.0.0.1:40123 tls=false\nline 3\nline 4\n"
	tl := newTail(2)
	addr := make(chan string, 1)
	tl.scan(strings.NewReader(log), addr)
	if a := <-addr; a != "127.0.0.1:40123" {
		t.Errorf("address %q", a)
	}
	if tl.String() != "line 3\nline 4" {
		t.Errorf("tail %q", tl.String())
	}
}
