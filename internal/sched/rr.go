package sched

import "net/netip"

// roundRobin is ip_vs_rr.c: a cursor on the circular destination list,
// left on the last destination picked. Each pick starts after the cursor and
// goes once round the list, the cursor's own destination last, taking the
// first one that is not overloaded and has weight > 0.
type roundRobin struct {
	dests []*Dest
	// cursor is the index of the last pick, or -1 for the list head (the
	// kernel's sched_data pointing at svc->destinations).
	cursor int
}

func newRoundRobin(Config) Scheduler { return &roundRobin{cursor: -1} }

func (s *roundRobin) Name() string { return "rr" }

// Update keeps the cursor on the same destination. rr has no add_dest or
// upd_dest hook, and its del_dest moves the cursor back to the deleted
// destination's predecessor, so after any number of deletions the cursor is
// on the nearest surviving destination before it, or the head.
func (s *roundRobin) Update(dests []*Dest) {
	s.cursor = survivingCursor(s.dests, s.cursor, dests)
	s.dests = keepList(dests)
}

func (s *roundRobin) Schedule(Flow) *Dest {
	n := len(s.dests)
	for k := 1; k <= n; k++ {
		i := (s.cursor + k) % n
		if d := s.dests[i]; !d.Overloaded && d.Weight > 0 {
			s.cursor = i
			return d
		}
	}
	// No destination: the cursor stays where it was.
	return nil
}

// survivingCursor maps a cursor on old (an index, or -1 for the head) to
// new: the same destination if it survived, else the nearest surviving
// destination before it in old, else the head.
func survivingCursor(old []*Dest, cursor int, new []*Dest) int {
	if cursor < 0 {
		return -1
	}
	at := make(map[netip.AddrPort]int, len(new))
	for i, d := range new {
		at[d.key()] = i
	}
	for i := cursor; i >= 0; i-- {
		if j, ok := at[old[i].key()]; ok {
			return j
		}
	}
	return -1
}
