package sched

import "testing"

// load is a destination's state for the least-connection tests.
type load struct {
	w, active, inact int
	over             bool
}

func loaded(ls ...load) []*Dest {
	ds := make([]*Dest, len(ls))
	for i, l := range ls {
		ds[i] = server(byte('A'+i), l.w)
		ds[i].ActiveConns, ds[i].InactConns, ds[i].Overloaded = l.active, l.inact, l.over
	}
	return ds
}

// One pick from fixed counts.
func TestLeastConnFamily(t *testing.T) {
	for _, tc := range []struct {
		sched string
		name  string
		dests []load
		want  string
	}{
		// lc: overhead active*256+inact, weight ignored but for 0.
		{"lc", "inactive count", []load{{1, 1, 0, false}, {1, 0, 300, false}, {1, 1, 10, false}}, "A"},
		{"lc", "first of equals", []load{{1, 0, 5, false}, {9, 0, 5, false}}, "A"},
		{"lc", "weight ignored", []load{{100, 1, 0, false}, {1, 0, 255, false}}, "B"},
		{"lc", "weight 0 skipped", []load{{0, 0, 0, false}, {1, 5, 0, false}}, "B"},
		{"lc", "overloaded skipped", []load{{1, 0, 0, true}, {1, 5, 0, false}}, "B"},
		{"lc", "none", []load{{0, 0, 0, false}, {1, 0, 0, true}}, "-"},

		// wlc: overheads 256/1, 266/2, 512/3: B (266*1 < 256*2, 266*3 < 512*2).
		{"wlc", "ratio", []load{{1, 1, 0, false}, {2, 1, 10, false}, {3, 2, 0, false}}, "B"},
		// 256/1 = 512/2: the first of equals stays.
		{"wlc", "first of equals", []load{{1, 1, 0, false}, {2, 2, 0, false}}, "A"},
		{"wlc", "inactive counts", []load{{1, 0, 100, false}, {1, 0, 99, false}}, "B"},
		{"wlc", "weight 0 never wins", []load{{1, 9, 0, false}, {0, 0, 0, false}}, "A"},
		{"wlc", "weight 0 not first", []load{{0, 0, 0, false}, {1, 9, 0, false}}, "B"},
		{"wlc", "overloaded skipped", []load{{1, 0, 0, true}, {1, 9, 0, false}}, "B"},
		{"wlc", "none", []load{{0, 0, 0, false}, {1, 0, 0, true}}, "-"},

		// sed: (active+1)/weight, inactive ignored: (1+1)/1 vs (2+1)/2.
		{"sed", "ratio", []load{{1, 1, 0, false}, {2, 2, 0, false}}, "B"},
		{"sed", "inactive ignored", []load{{1, 0, 1000, false}, {1, 0, 0, false}}, "A"},
		// 2/1 = 4/2: the first of equals.
		{"sed", "first of equals", []load{{1, 1, 0, false}, {2, 3, 0, false}}, "A"},
		{"sed", "none", []load{{0, 0, 0, false}}, "-"},

		// nq: the first idle destination at once, even a slower one.
		{"nq", "idle first", []load{{10, 1, 0, false}, {1, 0, 50, false}, {5, 0, 0, false}}, "B"},
		{"nq", "else sed", []load{{1, 1, 0, false}, {2, 2, 0, false}}, "B"},
		{"nq", "idle but weight 0", []load{{0, 0, 0, false}, {1, 3, 0, false}}, "B"},
		{"nq", "idle but overloaded", []load{{1, 0, 0, true}, {1, 3, 0, false}}, "B"},
		{"nq", "none", []load{{0, 0, 0, false}, {1, 0, 0, true}}, "-"},
	} {
		t.Run(tc.sched+"/"+tc.name, func(t *testing.T) {
			s := newSched(t, tc.sched, Config{}, loaded(tc.dests...))
			diffSeq(t, "pick", tc.want, picks(s, 1, nil, nil))
		})
	}
}

// Sequences of picks from idle destinations weighted 3, 2, 1, each pick
// adding an active connection, traced by hand from the kernel's rules.
func TestLeastConnSequences(t *testing.T) {
	for _, tc := range []struct {
		sched, want string
	}{
		// Every destination ends with the same active connections.
		{"lc", "A B C A B C"},
		// overhead/weight, overhead 256*active: A (all 0, the first), B
		// (0/2 beats 256/3), C (0/1), A (256/3 beats 256/2 and 256/1), B
		// (256/2 beats 512/3), A (512/3 beats 512/2 and 256/1).
		{"wlc", "A B C A B A"},
		// (active+1)/weight: A 1/3; B 2/3 > 1/2; A 2/3 (B 2/2, C 1/1);
		// A 3/3 = B 2/2, first; B 4/3 > 2/2; C 4/3, 3/2 > 1/1.
		{"sed", "A B A A B C"},
		// Idle ones first (A, B, C), then sed: A 2/3 (B 2/2, C 2/1); A 3/3 =
		// B 2/2; B 4/3 > 2/2.
		{"nq", "A B C A A B"},
	} {
		t.Run(tc.sched, func(t *testing.T) {
			s := newSched(t, tc.sched, Config{}, servers(3, 2, 1))
			diffSeq(t, "picks", tc.want, picks(s, 6, nil, connect))
		})
	}
}

// Weighted least connection converges on the weights.
func TestWeightedLeastConnDistribution(t *testing.T) {
	for _, sched := range []string{"wlc", "sed"} {
		ds := servers(3, 2, 1)
		s := newSched(t, sched, Config{}, ds)
		picks(s, 600, nil, connect)
		if ds[0].ActiveConns != 300 || ds[1].ActiveConns != 200 || ds[2].ActiveConns != 100 {
			t.Errorf("%s: 600 connections split %d/%d/%d, want 300/200/100",
				sched, ds[0].ActiveConns, ds[1].ActiveConns, ds[2].ActiveConns)
		}
	}
}
