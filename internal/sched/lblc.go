package sched

// localityLeastConn is ip_vs_lblc.c, locality-based least-connection: each
// destination IP address of the traffic sticks to one real server, chosen
// by wlc the first time, and chosen again by wlc only when that server is
// gone, quiesced (weight 0) or overloaded in localityOverloaded's sense.
// Note that the overload flag itself does not move a destination address
// that already has a server. Entries expire as localityTable says.
type localityLeastConn struct {
	dests []*Dest
	table localityTable[localityRef]
}

func newLocalityLeastConn(cfg Config) Scheduler {
	s := &localityLeastConn{}
	s.table.init(cfg)
	return s
}

func (s *localityLeastConn) Name() string { return "lblc" }

func (s *localityLeastConn) Update(dests []*Dest) {
	s.dests = keepList(dests)
	live := liveDests(dests)
	s.table.each(func(e *localityEntry[localityRef]) { e.val.follow(live) })
}

func (s *localityLeastConn) Schedule(f Flow) *Dest {
	now := s.table.now()
	en := s.table.get(f.Dst)
	if en != nil {
		en.lastuse = now
		if d := en.val.dest; en.val.avail && d.Weight > 0 && !localityOverloaded(d, s.dests) {
			return d
		}
	}
	d := wlcPick(s.dests)
	if d == nil {
		return nil
	}
	if en == nil {
		s.table.add(&localityEntry[localityRef]{addr: f.Dst, lastuse: now, val: localityRef{d, true}})
	} else {
		en.val = localityRef{d, true}
	}
	return d
}
