package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

var simpleSeeds = []string{
	`[{"channel":"/meta/connect","clientId":"2p4ldhuyv4bkxbmjyq4rswuz7u","connectionType":"long-polling","id":"42"}]`,
	`[{"id":"5","channel":"/meta/connect","connectionType":"long-polling","clientId":"abc"}]`,
	` [ {"channel" : "/meta/connect" , "id" : 7 } , {"channel":"/a/b","id":"8"} ] `,
	`[{"channel":"/meta/connect","id":"1","advice":{"timeout":0}}]`,
	`[{"channel":"/meta/connect","id":"a\"b"}]`,
	`[{"Channel":"/meta/connect"}]`,
	`[{"channel":"/meta/connect","id":07}]`,
	`[{"channel":"/meta/connect","id":1.5}]`,
	`[{"channel":"/meta/connect","id":-1}]`,
	`[{"channel":"/x","channel":"/y"}]`,
	`[{}]`, `[]`, `[{"channel":"/é"}]`, `[{"channel":"/a"},]`, `[{"channel":"/a"}] x`,
	`[{"channel":"/a","id":123456789012345678901}]`,
	// Case variants of every member the fast path knows.
	`[{"CHANNEL":"/meta/connect","clientId":"abc"}]`,
	`[{"channel":"/meta/connect","clientid":"abc"}]`,
	`[{"channel":"/meta/connect","ClientId":"abc","connectiontype":"long-polling"}]`,
	`[{"channel":"/meta/connect","ID":"1"}]`,
	`[{"channel":"/meta/connect","Id":1}]`,
	`[{"chAnnel":"/a"},{"channel":"/b"}]`,
	`[{"channel":"/a","Channel":"/b"}]`,
	`[{"channel":"/a","id":"1","id":"2"}]`,
	`[{"cHannel":"/a","channel":"/a"}]`,
}

// TestDecodeSimpleAgrees: the fast path decodes the common shapes and
// refuses the others, and where it decodes, the full decoder agrees.
func TestDecodeSimpleAgrees(t *testing.T) {
	type testCase struct {
		in   string
		fast bool
	}
	for _, tc := range []testCase{
		{simpleSeeds[0], true}, {simpleSeeds[1], true}, {simpleSeeds[2], true},
		{simpleSeeds[3], false}, {simpleSeeds[4], false}, {simpleSeeds[5], false},
		{simpleSeeds[6], false}, {simpleSeeds[7], false}, {simpleSeeds[8], false},
		{simpleSeeds[9], false}, {`[{}]`, true}, {`[]`, false}, {`[{"channel":"/é"}]`, false},
		{`[{"CHANNEL":"/meta/connect","clientId":"abc"}]`, false},
		{`[{"channel":"/meta/connect","ID":"1"}]`, false},
		{`[{"channel":"/a","id":"1","id":"2"}]`, false},
	} {
		_, ok, err := decodeSimple([]byte(tc.in), 0)
		if err != nil || ok != tc.fast {
			t.Errorf("decodeSimple(%s) = %v, %v; want %v, nil", tc.in, ok, err, tc.fast)
		}
		checkSimpleAgrees(t, []byte(tc.in))
	}
}

func checkSimpleAgrees(t *testing.T, b []byte) {
	t.Helper()
	fast, ok, err := decodeSimple(b, 0)
	if err != nil {
		t.Fatalf("decodeSimple(%q) without a limit: %v", b, err)
	}
	if !ok {
		return
	}
	slow, err := decodeFull(b, 0)
	if err != nil {
		t.Fatalf("decodeSimple accepted %q, the full decoder refuses it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		f, _ := json.Marshal(fast)
		s, _ := json.Marshal(slow)
		t.Fatalf("decodeSimple(%q) = %s, full decoder = %s", b, f, s)
	}
}

// FuzzDecodeSimple: wherever the fast path decodes, the full decoder gives
// the same messages.
func FuzzDecodeSimple(f *testing.F) {
	for _, s := range simpleSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSimpleAgrees(t, b) })
}
