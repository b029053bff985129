package sched

// overflowConn is ip_vs_ovf.c: the highest-weight destination that still
// has room, the first of equals; "room" is ActiveConns <= Weight (the kernel
// skips a destination only when activeconns > weight), so a destination
// takes weight+1 active connections before traffic overflows to the next.
type overflowConn struct{ dests []*Dest }

func newOverflowConn(Config) Scheduler { return &overflowConn{} }

func (s *overflowConn) Name() string { return "ovf" }

func (s *overflowConn) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *overflowConn) Schedule(Flow) *Dest {
	var high *Dest
	hw := 0
	for _, d := range s.dests {
		w := d.Weight
		if d.Overloaded || d.ActiveConns > w || w == 0 {
			continue
		}
		if high == nil || w > hw {
			high, hw = d, w
		}
	}
	return high
}
