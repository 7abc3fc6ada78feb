package protocol

import (
	"encoding/json"
	"testing"
)

func TestParsePosition(t *testing.T) {
	type testCase struct {
		in   string
		want Position
		ok   bool
	}
	for _, tc := range []testCase{
		{"abc:0", Position{"abc", 0}, true},
		{"k3x9q2mf7a1b:42", Position{"k3x9q2mf7a1b", 42}, true},
		{"A-b_9:18446744073709551615", Position{"A-b_9", 1<<64 - 1}, true},
		{"", Position{}, false},
		{":1", Position{}, false},
		{"abc:", Position{}, false},
		{"abc", Position{}, false},
		{"abc:01", Position{}, false},
		{"abc:-1", Position{}, false},
		{"abc:+1", Position{}, false},
		{"abc:18446744073709551616", Position{}, false},
		{"a:b:1", Position{}, false},
		{"a b:1", Position{}, false},
		{"abcdefghijklmnopqrstuvwxyz0123456:1", Position{}, false}, // 33 characters
	} {
		got, err := ParsePosition(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

func TestPositionOf(t *testing.T) {
	type testCase struct {
		ext  string
		want Position
		ok   bool
	}
	for _, tc := range []testCase{
		{`{"pos":"e:3"}`, Position{"e", 3}, true},
		{`{"pos":3}`, Position{}, false},
		{`{"pos":"nope"}`, Position{}, false},
		{`{"other":"e:3"}`, Position{}, false},
	} {
		var ext map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.ext), &ext); err != nil {
			t.Fatal(err)
		}
		got, ok := PositionOf(&Message{Ext: ext})
		if ok != tc.ok || got != tc.want {
			t.Errorf("PositionOf(%s) = %v %v, want %v %v", tc.ext, got, ok, tc.want, tc.ok)
		}
	}
	if !(Position{"e", 4}).After(Position{"e", 3}) || (Position{"f", 4}).After(Position{"e", 3}) || (Position{"e", 3}).After(Position{"e", 3}) {
		t.Error("After")
	}
}
