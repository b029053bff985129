package sched

// neverQueue is ip_vs_nq.c: the first idle destination (no active
// connections) at once, else sed's choice. Unlike sed, weight-0 destinations
// are skipped in every comparison, not only for the start.
type neverQueue struct{ dests []*Dest }

func newNeverQueue(Config) Scheduler { return &neverQueue{} }

func (s *neverQueue) Name() string { return "nq" }

func (s *neverQueue) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *neverQueue) Schedule(Flow) *Dest {
	var least *Dest
	var loh int64
	for _, d := range s.dests {
		if d.Overloaded || d.Weight == 0 {
			continue
		}
		if d.ActiveConns == 0 {
			return d
		}
		doh := expectedDelay(d)
		if least == nil || loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}
