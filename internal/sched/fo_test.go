package sched

import "testing"

func TestFailoverAndOverflow(t *testing.T) {
	for _, tc := range []struct {
		sched, name string
		dests       []load
		want        string
	}{
		{"fo", "highest weight", []load{{2, 0, 0, false}, {5, 99, 0, false}, {3, 0, 0, false}}, "B"},
		{"fo", "first of equals", []load{{5, 0, 0, false}, {5, 0, 0, false}}, "A"},
		{"fo", "overloaded skipped", []load{{2, 0, 0, false}, {5, 0, 0, true}, {3, 0, 0, false}}, "C"},
		{"fo", "weight 0 never", []load{{0, 0, 0, false}}, "-"},

		{"ovf", "highest weight with room", []load{{2, 0, 0, false}, {5, 3, 0, false}}, "B"},
		// The kernel skips only activeconns > weight: 5 of 5 still has room.
		{"ovf", "full is not over", []load{{2, 0, 0, false}, {5, 5, 0, false}}, "B"},
		{"ovf", "over weight", []load{{2, 0, 0, false}, {5, 6, 0, false}}, "A"},
		{"ovf", "first of equals", []load{{5, 1, 0, false}, {5, 0, 0, false}}, "A"},
		{"ovf", "inactive ignored", []load{{1, 0, 1000, false}}, "A"},
		{"ovf", "overloaded skipped", []load{{2, 0, 0, false}, {5, 0, 0, true}}, "A"},
		{"ovf", "all over", []load{{1, 2, 0, false}, {0, 0, 0, false}}, "-"},
	} {
		t.Run(tc.sched+"/"+tc.name, func(t *testing.T) {
			s := newSched(t, tc.sched, Config{}, loaded(tc.dests...))
			diffSeq(t, "pick", tc.want, picks(s, 1, nil, nil))
		})
	}
}

// ovf fills the highest weight to weight+1 active connections, then
// overflows to the next.
func TestOverflowSequence(t *testing.T) {
	s := newSched(t, "ovf", Config{}, servers(1, 3, 2))
	diffSeq(t, "picks", "B B B B C C C A A -", picks(s, 10, nil, connect))
}

// scripted returns the draws in order, and records the bounds asked for.
type scripted struct {
	draws  []uint32
	bounds []uint32
}

func (r *scripted) rand(n uint32) uint32 {
	r.bounds = append(r.bounds, n)
	d := r.draws[0]
	r.draws = r.draws[1:]
	return d
}

func TestTwoChoices(t *testing.T) {
	// A weight 1 with 2 active (overhead 512), B weight 2 with 1 active
	// (256), C weight 1 idle (0), D weight 7 but overloaded. Total usable
	// weight 4, so each draw is in [0, 4]: A takes draw 0-1, B 2-3, C 4.
	for _, tc := range []struct {
		r1, r2 uint32
		want   string
	}{
		{0, 0, "A"}, // the same twice
		{1, 3, "B"}, // 2*512 > 1*256: B less loaded per weight
		{3, 1, "B"}, // B first; A does not beat it
		{4, 0, "C"}, // C 0/1 drawn first; A 512/1 is not less loaded
		{0, 4, "C"},
		{2, 4, "C"}, // 1*256 > 2*0
	} {
		ds := loaded(load{1, 2, 0, false}, load{2, 1, 0, false}, load{1, 0, 0, false}, load{7, 0, 0, true})
		r := &scripted{draws: []uint32{tc.r1, tc.r2}}
		s := newSched(t, "twos", Config{Rand: r.rand}, ds)
		got := name(s.Schedule(clientFlow(0)))
		if got != tc.want {
			t.Errorf("draws %d,%d: got %s, want %s", tc.r1, tc.r2, got, tc.want)
		}
		if len(r.bounds) != 2 || r.bounds[0] != 5 || r.bounds[1] != 5 {
			t.Errorf("draws asked for bounds %v, want [5 5]", r.bounds)
		}
	}

	// Equal load per weight: the first drawn stays.
	ds := loaded(load{1, 1, 0, false}, load{2, 2, 0, false})
	r := &scripted{draws: []uint32{2, 0}}
	s := newSched(t, "twos", Config{Rand: r.rand}, ds)
	diffSeq(t, "tie", "B", picks(s, 1, nil, nil))

	// Nothing usable: no draw at all.
	r = &scripted{}
	s = newSched(t, "twos", Config{Rand: r.rand}, servers(0, 0))
	diffSeq(t, "none", "-", picks(s, 1, nil, nil))
	if len(r.bounds) != 0 {
		t.Errorf("drew %v with nothing usable", r.bounds)
	}
}
