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
}

// TestDecodeSimpleAgreesWithJSON: the fast path decodes the common shapes
// and refuses the others, and where it decodes, encoding/json agrees.
func TestDecodeSimpleAgreesWithJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{simpleSeeds[0], true}, {simpleSeeds[1], true}, {simpleSeeds[2], true},
		{simpleSeeds[3], false}, {simpleSeeds[4], false}, {simpleSeeds[5], false},
		{simpleSeeds[6], false}, {simpleSeeds[7], false}, {simpleSeeds[8], false},
		{simpleSeeds[9], true}, {`[{}]`, true}, {`[]`, false}, {`[{"channel":"/é"}]`, false},
	} {
		_, ok := decodeSimple([]byte(tc.in))
		if ok != tc.fast {
			t.Errorf("decodeSimple(%s) ok = %v, want %v", tc.in, ok, tc.fast)
		}
		checkSimpleAgrees(t, []byte(tc.in))
	}
}

func checkSimpleAgrees(t *testing.T, b []byte) {
	t.Helper()
	fast, ok := decodeSimple(b)
	if !ok {
		return
	}
	var slow []*Message
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("decodeSimple accepted %q, encoding/json refuses it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		f, _ := json.Marshal(fast)
		s, _ := json.Marshal(slow)
		t.Fatalf("decodeSimple(%q) = %s, encoding/json = %s", b, f, s)
	}
}

// FuzzDecodeSimple: wherever the fast path decodes, encoding/json gives the
// same messages.
func FuzzDecodeSimple(f *testing.F) {
	for _, s := range simpleSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSimpleAgrees(t, b) })
}
