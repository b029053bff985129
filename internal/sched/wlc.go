package sched

// weightedLeastConn is ip_vs_wlc.c: the destination with the smallest
// connOverhead/weight, compared crosswise without division.
type weightedLeastConn struct{ dests []*Dest }

func newWeightedLeastConn(Config) Scheduler { return &weightedLeastConn{} }

func (s *weightedLeastConn) Name() string { return "wlc" }

func (s *weightedLeastConn) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *weightedLeastConn) Schedule(Flow) *Dest { return wlcPick(s.dests) }

// wlcPick is the kernel's weighted least-connection choice, shared by wlc
// and by lblc and lblcr when they (re)assign a destination IP. The first
// destination that is not overloaded and has weight > 0 starts; a later one
// replaces it only when strictly less loaded (loh*dw > doh*lw), so the first
// of equals wins. After the start only the overload flag is checked: a
// weight-0 destination can never be strictly less loaded, as loh*0 is 0.
func wlcPick(dests []*Dest) *Dest {
	i := 0
	var least *Dest
	for ; i < len(dests); i++ {
		if d := dests[i]; !d.Overloaded && d.Weight > 0 {
			least = d
			break
		}
	}
	if least == nil {
		return nil
	}
	loh := connOverhead(least)
	for i++; i < len(dests); i++ {
		d := dests[i]
		if d.Overloaded {
			continue
		}
		doh := connOverhead(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}
