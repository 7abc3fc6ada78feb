package bench

import "testing"

func TestScanMessage(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   delivery
		wantCh string
	}{
		{
			name:   "bench delivery",
			in:     `{"channel":"/bench/fanout","data":{"seq":12,"pub":3,"ts":1700000000123456789,"pad":"xx"}}`,
			want:   delivery{hasSeq: true, seq: 12, pub: 3, ts: 1700000000123456789},
			wantCh: "/bench/fanout",
		},
		{
			name:   "other order, spaces, id, nested and escaped values",
			in:     ` { "data" : { "pad" : "a\"}{,]" , "x":[1,{"y":"}"}], "ts" : 5 , "pub" : 0 , "seq" : 1 } , "id" : "9" , "channel" : "\/bench\/r" } `,
			want:   delivery{hasSeq: true, seq: 1, pub: 0, ts: 5},
			wantCh: "/bench/r",
		},
		{
			name:   "numbers re-encoded as floats",
			in:     `{"channel":"/a","data":{"seq":2.0,"pub":1,"ts":1.7e18}}`,
			want:   delivery{hasSeq: true, seq: 2, pub: 1, ts: 1.7e18},
			wantCh: "/a",
		},
		{name: "reply", in: `{"channel":"/a","successful":true,"id":"3"}`, want: delivery{reply: true}, wantCh: "/a"},
		{name: "meta", in: `{"channel":"/meta/connect","advice":{"timeout":0}}`, want: delivery{meta: true}, wantCh: "/meta/connect"},
		{name: "foreign data", in: `{"channel":"/chat/demo","data":{"user":"a","chat":"hi"}}`, wantCh: "/chat/demo"},
		{name: "data not an object", in: `{"channel":"/x","data":"text"}`, wantCh: "/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := scanMessage([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			ch, _ := unquote(d.channel)
			if ch != tc.wantCh {
				t.Errorf("channel %q, want %q", ch, tc.wantCh)
			}
			d.channel = nil
			if d.reply != tc.want.reply || d.meta != tc.want.meta || d.hasSeq != tc.want.hasSeq ||
				d.seq != tc.want.seq || d.pub != tc.want.pub || d.ts != tc.want.ts {
				t.Errorf("got %+v, want %+v", d, tc.want)
			}
		})
	}
}

func TestSkipStringEscapes(t *testing.T) {
	for in, end := range map[string]int{
		`"abc"x`: 5, `""`: 2, `"a\"b"x`: 6, `"a\\"x`: 5, `"a\\\"b"x`: 8, `"\\\\"`: 6,
	} {
		got, err := skipString([]byte(in), 0)
		if err != nil || got != end {
			t.Errorf("skipString(%s) = %d, %v; want %d", in, got, err, end)
		}
	}
	for _, in := range []string{`"abc`, `"a\"`, `"`} {
		if _, err := skipString([]byte(in), 0); err == nil {
			t.Errorf("skipString(%s): no error", in)
		}
	}
}

func BenchmarkScanBatch(b *testing.B) {
	var body []byte
	body = append(body, '[')
	for i := range 100 {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"channel":"/bench/fanout","data":{"seq":123456,"pub":500,"ts":1764066000123456789,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`...)
	}
	body = append(body, ']')
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = eachMessage(body, func(d delivery, elem []byte) error {
			if !d.hasSeq {
				b.Fatal("scan failed")
			}
			return nil
		})
	}
}

func TestEachMessage(t *testing.T) {
	body := ` [ {"channel":"/a","data":{"seq":1,"pub":2,"ts":3}} , {"channel":"/meta/connect","successful":true} ,{"channel":"/b","data":[1]}] `
	var got []string
	err := eachMessage([]byte(body), func(d delivery, elem []byte) error {
		got = append(got, string(d.channel)+" "+string(elem[len(elem)-2:]))
		return nil
	})
	want := []string{`"/a" }}`, `"/meta/connect" e}`, `"/b" ]}`}
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	for _, in := range []string{``, `[`, `[{"channel":"/a"}`, `[{"a":1} {"b":2}]`, `"x"`, `[1]`} {
		if err := eachMessage([]byte(in), func(delivery, []byte) error { return nil }); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
