package sched

// weightedRoundRobin is ip_vs_wrr.c. It walks the list in passes: in each
// pass it takes, from the cursor on, destinations whose weight is at least
// the current weight cw; between passes cw steps down by di, the gcd of the
// positive weights, from mw down to 1, then starts again at mw. mw is the
// maximum weight less (di - 1), so that the last pass is always cw = 1 and
// catches a weight lowered below di. Weights 4,3,2 give A A B A B C A B C.
type weightedRoundRobin struct {
	dests []*Dest
	cl    int // index of the last pick, or -1 for the list head
	cw    int // current weight
	mw    int // maximum weight - (di - 1)
	di    int // gcd of the positive weights, 1 when there are none
}

func newWeightedRoundRobin(Config) Scheduler {
	// init_svc on an empty service: di 1, mw 0, cw 0.
	return &weightedRoundRobin{cl: -1, di: 1}
}

func (s *weightedRoundRobin) Name() string { return "wrr" }

// Update is ip_vs_wrr_dest_changed, the add, del and upd hook alike: back to
// the list head, di and mw recomputed, and cw kept where it is unless it is
// now above mw or zero (then mw), or rounded to a pass of the new di.
func (s *weightedRoundRobin) Update(dests []*Dest) {
	s.dests = keepList(dests)
	s.cl = -1
	g, maxW := 0, 0
	for _, d := range s.dests {
		if d.Weight > 0 {
			if g > 0 {
				g = gcd(d.Weight, g)
			} else {
				g = d.Weight
			}
		}
		// The maximum counts every destination, overloaded or not.
		if d.Weight > maxW {
			maxW = d.Weight
		}
	}
	if g == 0 {
		g = 1
	}
	s.di = g
	s.mw = maxW - (s.di - 1)
	switch {
	case s.cw > s.mw || s.cw == 0:
		s.cw = s.mw
	case s.di > 1:
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

func (s *weightedRoundRobin) Schedule(Flow) *Dest {
	if s.mw == 0 {
		return nil
	}
	n := len(s.dests)
	last := s.cl
	stop := -2 // no destination yet
	lastPass, restarted := false, false
	for i := s.cl; ; i = -1 {
		for i++; i < n; i++ {
			d := s.dests[i]
			if !d.Overloaded && d.Weight >= s.cw {
				s.cl = i
				return d
			}
			if i == stop {
				s.cl = i
				return nil
			}
		}
		// Back at the list head: the next pass asks for less weight.
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			// Give up once every destination was tried at cw = 1:
			// this started from the head, or the last pass is done.
			if lastPass || last == -1 {
				s.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last != -1 {
			// The first traversal at cw = 1 covered only the
			// destinations after the cursor; this one ends at it.
			stop = last
		}
	}
}
