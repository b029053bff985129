package sched

// shortestExpectedDelay is ip_vs_sed.c: wlc's choice and tie rule, with the
// load (ActiveConns+1)/weight: the delay the new connection would see.
// Inactive connections do not count.
type shortestExpectedDelay struct{ dests []*Dest }

func newShortestExpectedDelay(Config) Scheduler { return &shortestExpectedDelay{} }

func (s *shortestExpectedDelay) Name() string { return "sed" }

func (s *shortestExpectedDelay) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *shortestExpectedDelay) Schedule(Flow) *Dest {
	i := 0
	var least *Dest
	for ; i < len(s.dests); i++ {
		if d := s.dests[i]; !d.Overloaded && d.Weight > 0 {
			least = d
			break
		}
	}
	if least == nil {
		return nil
	}
	loh := expectedDelay(least)
	for i++; i < len(s.dests); i++ {
		d := s.dests[i]
		if d.Overloaded {
			continue
		}
		doh := expectedDelay(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}

// expectedDelay is ip_vs_sed_dest_overhead (and nq's): active connections
// plus the one being scheduled.
func expectedDelay(d *Dest) int64 { return int64(d.ActiveConns) + 1 }
