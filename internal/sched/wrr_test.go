package sched

import "testing"

func TestWeightedRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		name       string
		weights    []int
		overloaded []int
		n          int
		want       string
	}{
		// di 1, mw 4: passes at cw 4 (A), 3 (A B), 2 (A B C), 1 (A B C).
		{"4,3,2", []int{4, 3, 2}, nil, 18, repeat("A A B A B C A B C", 2)},
		// List order matters: the same weights from the other end.
		{"2,3,4", []int{2, 3, 4}, nil, 9, "C B C A B C A B C"},
		// di 5, mw 10-4 = 6: passes at cw 6 (A) and 1 (A B).
		{"10,5", []int{10, 5}, nil, 6, "A A B A A B"},
		// di 2, mw 3: passes at cw 3 (A) and 1 (A B).
		{"4,2", []int{4, 2}, nil, 6, "A A B A A B"},
		{"equal", []int{3, 3, 3}, nil, 6, "A B C A B C"},
		{"weight 0 skipped", []int{3, 0, 2}, nil, 10, repeat("A A C A C", 2)},
		{"overloaded skipped", []int{4, 3, 2}, []int{1}, 12, repeat("A A A C A C", 2)},
		{"all weight 0", []int{0, 0}, nil, 2, "- -"},
		{"all overloaded", []int{1, 2}, []int{0, 1}, 2, "- -"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := servers(tc.weights...)
			for _, i := range tc.overloaded {
				ds[i].Overloaded = true
			}
			s := newSched(t, "wrr", Config{}, ds)
			diffSeq(t, "picks", tc.want, picks(s, tc.n, nil, nil))
		})
	}
}

// ip_vs_wrr_dest_changed: back to the head, cw kept unless above the new
// mw, or rounded to the new di (cw/di*di + 1).
func TestWeightedRoundRobinUpdate(t *testing.T) {
	ds := servers(4, 2) // di 2, mw 3
	s := newSched(t, "wrr", Config{}, ds)
	w := s.(*weightedRoundRobin)
	diffSeq(t, "start", "A A", picks(s, 2, nil, nil)) // the second A at cw 1

	// B 2 -> 6: di 2, mw 5, cw (1/2)*2+1 = 1, from the head: A B at cw 1,
	// then B (cw 5), A B (cw 3), A B (cw 1).
	ds[1].Weight = 6
	s.Update(ds)
	if w.cw != 1 || w.mw != 5 || w.di != 2 || w.cl != -1 {
		t.Errorf("after edit: cw %d mw %d di %d cl %d, want 1 5 2 -1", w.cw, w.mw, w.di, w.cl)
	}
	diffSeq(t, "after edit", "A B B A B A B B", picks(s, 8, nil, nil))
	// Now at cw 5 (the last B was the start of a new round).

	// Remove B: mw 4-(4-1) = 1, cw 5 > mw so cw = mw = 1.
	s.Update(ds[:1])
	if w.cw != 1 || w.mw != 1 || w.di != 4 {
		t.Errorf("after removal: cw %d mw %d di %d, want 1 1 4", w.cw, w.mw, w.di)
	}
	diffSeq(t, "after removal", "A A A", picks(s, 3, nil, nil))

	// Add C (weight 3) at the head: di 1, mw 4, cw 1 stays (di 1).
	c := server('C', 3)
	s.Update([]*Dest{c, ds[0]})
	diffSeq(t, "after adding C", "C A A C A C A C A", picks(s, 9, nil, nil))
}

// Weights 10:5 split 2:1.
func TestWeightedRoundRobinDistribution(t *testing.T) {
	s := newSched(t, "wrr", Config{}, servers(10, 5))
	got := count(s, 1500, clientFlow)
	if got["A"] != 1000 || got["B"] != 500 {
		t.Errorf("1500 flows split %v, want A 1000 B 500", got)
	}
}
