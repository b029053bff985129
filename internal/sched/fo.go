package sched

// weightedFailover is ip_vs_fo.c: all new connections to the destination
// with the highest weight that is not overloaded, the first of equals.
// Connection counts do not matter.
type weightedFailover struct{ dests []*Dest }

func newWeightedFailover(Config) Scheduler { return &weightedFailover{} }

func (s *weightedFailover) Name() string { return "fo" }

func (s *weightedFailover) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *weightedFailover) Schedule(Flow) *Dest {
	var high *Dest
	hw := 0 // so weight 0 never wins
	for _, d := range s.dests {
		if !d.Overloaded && d.Weight > hw {
			high, hw = d, d.Weight
		}
	}
	return high
}
