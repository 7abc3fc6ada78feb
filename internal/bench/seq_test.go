package bench

import "testing"

func TestTrackerCounts(t *testing.T) {
	tests := []struct {
		name                  string
		arrivals              []uint32
		sent                  uint32
		failed                uint32
		dup, reord, lost, got int
	}{
		{name: "in order", arrivals: []uint32{0, 1, 2, 3}, sent: 4, got: 4},
		{name: "one swapped", arrivals: []uint32{0, 2, 1, 3}, sent: 4, reord: 1, got: 4},
		{name: "duplicate of the last", arrivals: []uint32{0, 1, 1, 2}, sent: 3, dup: 1, got: 3},
		{name: "duplicate after a gap", arrivals: []uint32{0, 2, 2, 1}, sent: 3, dup: 1, reord: 1, got: 3},
		{name: "lost in the middle", arrivals: []uint32{0, 1, 3}, sent: 4, lost: 1, got: 3},
		{name: "lost at the end", arrivals: []uint32{0, 1}, sent: 4, lost: 2, got: 2},
		{name: "nothing arrived", sent: 5, lost: 5},
		{name: "refused not expected", arrivals: []uint32{0, 1, 2}, sent: 5, failed: 2, got: 3},
		{name: "reversed", arrivals: []uint32{4, 3, 2, 1, 0}, sent: 5, reord: 4, got: 5},
		{name: "late duplicate of a filled gap", arrivals: []uint32{1, 0, 1, 0, 2}, sent: 3, reord: 1, dup: 2, got: 3},
		{name: "every 10th lost", arrivals: func() []uint32 {
			var a []uint32
			for i := range uint32(100) {
				if i%10 != 9 {
					a = append(a, i)
				}
			}
			return a
		}(), sent: 100, lost: 10, got: 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			var dup, reord int
			for _, s := range tc.arrivals {
				switch tr.Add(7, 3, s) {
				case duplicate:
					dup++
				case reordered:
					reord++
				}
			}
			if dup != tc.dup || reord != tc.reord {
				t.Errorf("dup %d reordered %d, want %d %d", dup, reord, tc.dup, tc.reord)
			}
			if got := tr.Got(7, 3); int(got) != tc.got {
				t.Errorf("got %d, want %d", got, tc.got)
			}
			if lost := tr.Lost(7, 3, tc.sent, tc.failed); int(lost) != tc.lost {
				t.Errorf("lost %d, want %d", lost, tc.lost)
			}
			if tr.Got(8, 3) != 0 || tr.Got(7, 4) != 0 {
				t.Error("streams of other publishers or channels are not separate")
			}
		})
	}
}
