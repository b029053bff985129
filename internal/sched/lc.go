package sched

// leastConn is ip_vs_lc.c: the destination with the smallest
// connOverhead, the first of equals in list order; weight only matters as
// 0 = quiesced.
type leastConn struct{ dests []*Dest }

func newLeastConn(Config) Scheduler { return &leastConn{} }

func (s *leastConn) Name() string { return "lc" }

func (s *leastConn) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *leastConn) Schedule(Flow) *Dest {
	var least *Dest
	var loh int64
	for _, d := range s.dests {
		if d.Overloaded || d.Weight <= 0 {
			continue
		}
		if doh := connOverhead(d); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}
