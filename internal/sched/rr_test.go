package sched

import "testing"

func TestRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		name       string
		weights    []int
		overloaded []int // indexes
		n          int
		want       string
	}{
		{"cycle", []int{1, 1, 1}, nil, 7, "A B C A B C A"},
		{"weights do not matter", []int{5, 1, 100}, nil, 6, "A B C A B C"},
		{"weight 0 skipped", []int{1, 0, 1, 1}, nil, 6, "A C D A C D"},
		{"overloaded skipped", []int{1, 1, 1, 1}, []int{0, 2}, 4, "B D B D"},
		{"only one available", []int{0, 3, 0}, nil, 3, "B B B"},
		{"none available", []int{0, 0}, nil, 2, "- -"},
		{"empty", nil, nil, 1, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := servers(tc.weights...)
			for _, i := range tc.overloaded {
				ds[i].Overloaded = true
			}
			s := newSched(t, "rr", Config{}, ds)
			diffSeq(t, "picks", tc.want, picks(s, tc.n, nil, nil))
		})
	}
}

// The cursor survives Update on the same destination, and the kernel's
// del_dest moves it back to the deleted destination's predecessor.
func TestRoundRobinUpdate(t *testing.T) {
	ds := servers(1, 1, 1, 1) // A B C D
	s := newSched(t, "rr", Config{}, ds)
	diffSeq(t, "start", "A B", picks(s, 2, nil, nil))

	// Remove B, the cursor: it moves back to A, so C is next.
	s.Update([]*Dest{ds[0], ds[2], ds[3]})
	diffSeq(t, "after removing B", "C", picks(s, 1, nil, nil))

	// Add E: new destinations go to the list head. The cursor stays on C.
	e := server('E', 1)
	s.Update([]*Dest{e, ds[0], ds[2], ds[3]})
	diffSeq(t, "after adding E at the head", "D E A C D", picks(s, 5, nil, nil))

	// Remove D (the cursor) and C (its predecessor): back to A, so the
	// next pick is E, the head.
	s.Update([]*Dest{e, ds[0]})
	diffSeq(t, "after removing C and D", "E A E", picks(s, 3, nil, nil))

	// A weight edit does not move the cursor (E).
	ds[0].Weight = 0
	s.Update([]*Dest{e, ds[0]})
	ds[0].Weight = 1
	s.Update([]*Dest{e, ds[0]})
	diffSeq(t, "after editing A", "A E", picks(s, 2, nil, nil))

	// Nothing available: no pick, and the cursor stays on E.
	e.Overloaded, ds[0].Overloaded = true, true
	diffSeq(t, "all overloaded", "-", picks(s, 1, nil, nil))
	e.Overloaded, ds[0].Overloaded = false, false
	diffSeq(t, "recovered", "A E", picks(s, 2, nil, nil))
}

func TestRoundRobinDistribution(t *testing.T) {
	s := newSched(t, "rr", Config{}, servers(1, 1, 1, 1))
	got := count(s, 1000, clientFlow)
	for _, n := range []string{"A", "B", "C", "D"} {
		if got[n] != 250 {
			t.Errorf("%s got %d of 1000 flows, want 250 (%v)", n, got[n], got)
		}
	}
}
