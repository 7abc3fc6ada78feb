package protocol

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseErrorRoundTrip(t *testing.T) {
	t.Parallel()
	type testCase struct {
		in   string
		code int
		args []string
		msg  string
	}
	tests := []testCase{
		{"402::session_unknown", 402, nil, "session_unknown"},
		{"401::No client ID", 401, nil, "No client ID"},
		{"402:xj3sjdsjdsjad:Unknown Client ID", 402, []string{"xj3sjdsjdsjad"}, "Unknown Client ID"},
		{"403:xj3sjdsjdsjad,/foo/bar:Subscription denied", 403, []string{"xj3sjdsjdsjad", "/foo/bar"}, "Subscription denied"},
		{"403:denied_by_security_policy:publish_denied", 403, []string{"denied_by_security_policy"}, "publish_denied"},
		{"405:long-polling,callback-polling:no_transport", 405, []string{"long-polling", "callback-polling"}, "no_transport"},
		{"500::message: with colons", 500, nil, "message: with colons"},
		{"404::", 404, nil, ""},
		{"999:a,,b:x", 999, []string{"a", "", "b"}, "x"},
	}
	for _, tc := range tests {
		e, err := ParseError(tc.in)
		if err != nil {
			t.Errorf("ParseError(%q): %v", tc.in, err)
			continue
		}
		if e.Code != tc.code || !reflect.DeepEqual(e.Args, tc.args) || e.Message != tc.msg {
			t.Errorf("ParseError(%q) = %+v, want code %d args %q message %q", tc.in, e, tc.code, tc.args, tc.msg)
		}
		if got := e.Error(); got != tc.in {
			t.Errorf("ParseError(%q).Error() = %q", tc.in, got)
		}
	}
}

func TestParseErrorMalformed(t *testing.T) {
	t.Parallel()
	type testCase struct{ in string }
	tests := []testCase{
		{""},
		{"session_unknown"},
		{"402"},
		{"402:"},
		{"402:session_unknown"},
		{"40::x"},
		{"4020::x"},
		{"abc::x"},
		{"099::x"},
		{"-12::x"},
		{"+12::x"},
		{":402::x"},
	}
	for _, tc := range tests {
		if e, err := ParseError(tc.in); err == nil {
			t.Errorf("ParseError(%q) = %+v, want an error", tc.in, e)
		}
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name string
		err  error
		want string
	}
	tests := []testCase{
		{"nil", nil, ""},
		{"bayeux error", ErrSessionUnknown, "402::session_unknown"},
		{"with args", ErrSubscribeDenied, "403:denied_by_security_policy:subscribe_denied"},
		{"wrapped bayeux error", fmt.Errorf("ctx: %w", ErrDataMissing), "400::data_missing"},
		{"plain error", errors.New("not allowed"), "403::not allowed"},
		{"plain error with colons", errors.New("a:b:c"), "403::a b c"},
	}
	for _, tc := range tests {
		got := ErrorString(tc.err)
		if got != tc.want {
			t.Errorf("%s: ErrorString = %q, want %q", tc.name, got, tc.want)
		}
		if tc.err != nil {
			if _, err := ParseError(got); err != nil {
				t.Errorf("%s: ErrorString result %q does not parse: %v", tc.name, got, err)
			}
		}
	}
}

func TestErrorIsAndWithArgs(t *testing.T) {
	t.Parallel()
	e := ErrChannelInvalid.WithArgs("too_long")
	if e.Error() != "405:too_long:channel_invalid" {
		t.Errorf("WithArgs = %q", e.Error())
	}
	if ErrChannelInvalid.Error() != "405::channel_invalid" || ErrChannelInvalid.Args != nil {
		t.Errorf("WithArgs changed the original: %q", ErrChannelInvalid.Error())
	}
	if !errors.Is(e, ErrChannelInvalid) {
		t.Error("errors.Is ignores args: want true")
	}
	if !errors.Is(fmt.Errorf("wrap: %w", e), ErrChannelInvalid) {
		t.Error("errors.Is through wrapping")
	}
	if errors.Is(e, ErrDataMissing) {
		t.Error("different codes matched")
	}
	if errors.Is(&Error{Code: 405, Message: "other"}, ErrChannelInvalid) {
		t.Error("different messages matched")
	}
	if errors.Is(errors.New("405::channel_invalid"), ErrChannelInvalid) {
		t.Error("a plain error matched")
	}
}

// TestKnownErrors: every error the server emits is well formed, round-trips
// through ParseError, and uses a Bayeux code.
func TestKnownErrors(t *testing.T) {
	t.Parallel()
	all := []*Error{ErrSessionUnknown, ErrHandshakeDenied, ErrHandshakeNotAlone, ErrVersionMissing, ErrNoTransport,
		ErrChannelMissing, ErrChannelInvalid, ErrMessageIDInvalid, ErrDataMissing, ErrConnectionTypeInvalid,
		ErrConnectNotAlone, ErrSubscriptionMissing, ErrSubscriptionInvalid, ErrSubscriptionLimit, ErrSubscribeDenied,
		ErrPublishDenied, ErrMessageDeleted, ErrServiceUnknown, ErrUnknownMeta, ErrServerError, ErrOverloaded}
	seen := map[string]bool{}
	for _, e := range all {
		s := e.Error()
		if seen[s] {
			t.Errorf("duplicate error string %q", s)
		}
		seen[s] = true
		p, err := ParseError(s)
		if err != nil {
			t.Errorf("%q does not parse: %v", s, err)
			continue
		}
		if !errors.Is(p, e) || p.Error() != s {
			t.Errorf("%q round-trips to %q", s, p.Error())
		}
		if e.Code < 400 || e.Code > 599 || e.Message == "" || strings.ContainsAny(e.Message, ":,") {
			t.Errorf("odd error %q", s)
		}
	}
	if ErrSessionUnknown.Error() != "402::session_unknown" {
		t.Errorf("ErrSessionUnknown = %q, CometD 5+ sends 402::session_unknown", ErrSessionUnknown.Error())
	}
}
