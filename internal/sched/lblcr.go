package sched

import "time"

// localityLeastConnRepl is ip_vs_lblcr.c, locality-based least-connection
// with replication: each destination IP address maps to a set of real
// servers. A connection goes to the least loaded (wlc) member of the set;
// when there is none, or it is overloaded in localityOverloaded's sense,
// wlc over the whole service picks a server, which joins the set. A set of
// more than one that has not changed for the expiration loses its most
// loaded member. Entries expire as localityTable says.
type localityLeastConnRepl struct {
	dests []*Dest
	table localityTable[destSet]
}

func newLocalityLeastConnRepl(cfg Config) Scheduler {
	s := &localityLeastConnRepl{}
	s.table.init(cfg)
	return s
}

func (s *localityLeastConnRepl) Name() string { return "lblcr" }

func (s *localityLeastConnRepl) Update(dests []*Dest) {
	s.dests = keepList(dests)
	live := liveDests(dests)
	s.table.each(func(e *localityEntry[destSet]) {
		for i := range e.val.members {
			e.val.members[i].follow(live)
		}
	})
}

func (s *localityLeastConnRepl) Schedule(f Flow) *Dest {
	now := s.table.now()
	en := s.table.get(f.Dst)
	if en == nil {
		d := wlcPick(s.dests)
		if d == nil {
			return nil
		}
		e := &localityEntry[destSet]{addr: f.Dst, lastuse: now}
		e.val.insert(d, now)
		s.table.add(e)
		return d
	}

	en.lastuse = now
	set := &en.val
	// The least loaded member is chosen before the set is trimmed, so it
	// may be the member just removed; the kernel returns it all the same.
	d := set.min()
	if len(set.members) > 1 && now > set.lastmod+s.table.expiration {
		if m := set.max(); m != nil {
			set.erase(m, now)
		}
	}
	if d != nil && !localityOverloaded(d, s.dests) {
		return d
	}
	d = wlcPick(s.dests)
	if d == nil {
		return nil
	}
	set.insert(d, now)
	return d
}

// destSet is ip_vs_dest_set: the members, newest first (list_add_rcu at the
// head), and when it last changed.
type destSet struct {
	members []localityRef
	lastmod time.Duration
}

// insert is ip_vs_dest_set_insert: a member already there changes nothing.
func (s *destSet) insert(d *Dest, now time.Duration) {
	for _, m := range s.members {
		if m.dest == d {
			return
		}
	}
	s.members = append(s.members, localityRef{})
	copy(s.members[1:], s.members)
	s.members[0] = localityRef{d, true}
	s.lastmod = now
}

// erase is ip_vs_dest_set_erase.
func (s *destSet) erase(d *Dest, now time.Duration) {
	for i, m := range s.members {
		if m.dest == d {
			s.members = append(s.members[:i], s.members[i+1:]...)
			s.lastmod = now
			return
		}
	}
}

// min is ip_vs_dest_set_min: wlc's choice among the available members.
func (s *destSet) min() *Dest {
	i := 0
	var least *Dest
	for ; i < len(s.members); i++ {
		m := s.members[i]
		if m.dest.Overloaded {
			continue
		}
		if m.dest.Weight > 0 && m.avail {
			least = m.dest
			break
		}
	}
	if least == nil {
		return nil
	}
	loh := connOverhead(least)
	for i++; i < len(s.members); i++ {
		m := s.members[i]
		if m.dest.Overloaded {
			continue
		}
		doh := connOverhead(m.dest)
		if loh*int64(m.dest.Weight) > doh*int64(least.Weight) && m.avail {
			least, loh = m.dest, doh
		}
	}
	return least
}

// max is ip_vs_dest_set_max: the most loaded member with weight > 0, the
// first of equals; availability and the overload flag do not matter.
func (s *destSet) max() *Dest {
	i := 0
	var most *Dest
	for ; i < len(s.members); i++ {
		if d := s.members[i].dest; d.Weight > 0 {
			most = d
			break
		}
	}
	if most == nil {
		return nil
	}
	moh := connOverhead(most)
	for i++; i < len(s.members); i++ {
		d := s.members[i].dest
		doh := connOverhead(d)
		if moh*int64(d.Weight) < doh*int64(most.Weight) && d.Weight > 0 {
			most, moh = d, doh
		}
	}
	return most
}
