package sched

const (
	// shTabBits is CONFIG_IP_VS_SH_TAB_BITS' default: 256 buckets.
	shTabBits = 8
	shTabSize = 1 << shTabBits
	shTabMask = shTabSize - 1
)

// sourceHashing is ip_vs_sh.c: a 256-bucket table from the hash of the
// client's address (and with sh-port its source port) to a destination.
// Weight shapes the table: each destination fills weight consecutive
// buckets (at least one) in list order, round and round. A bucket whose
// destination has weight 0 or is overloaded gives no destination, unless
// sh-fallback probes the table for another.
type sourceHashing struct {
	flags   Flags
	buckets [shTabSize]*Dest
}

func newSourceHashing(cfg Config) Scheduler { return &sourceHashing{flags: cfg.Flags} }

func (s *sourceHashing) Name() string { return "sh" }

// Update is ip_vs_sh_reassign, the add, del and upd hook alike.
func (s *sourceHashing) Update(dests []*Dest) {
	p, count := 0, 0
	for i := range s.buckets {
		if len(dests) == 0 {
			s.buckets[i] = nil
			continue
		}
		d := dests[p]
		s.buckets[i] = d
		// A weight of 0 still takes one bucket: the count is already 1.
		if count++; count >= d.Weight {
			p = (p + 1) % len(dests)
			count = 0
		}
	}
}

func (s *sourceHashing) Schedule(f Flow) *Dest {
	var port uint16
	if s.flags&SHPort != 0 {
		port = flowPort(f)
	}
	fold := foldAddr(f.Src)
	ihash := shHash(fold, port, 0)
	d := s.buckets[ihash]
	if d == nil {
		return nil
	}
	if shAvailable(d) {
		return d
	}
	if s.flags&SHFallback == 0 {
		return nil
	}
	// ip_vs_sh_get_fallback: try every bucket once, from a starting point
	// derived from the hash so a client always fails over the same way.
	// The probe adds roffset = ihash+offset to the hash again, so it
	// visits buckets 2*ihash, 2*ihash+1, ... (mod 256), not ihash+1.
	for offset := uint32(0); offset < shTabSize; offset++ {
		roffset := (offset + ihash) % shTabSize
		d := s.buckets[shHash(fold, port, roffset)]
		if d == nil {
			break
		}
		if shAvailable(d) {
			return d
		}
	}
	return nil
}

// shHash is ip_vs_sh_hashkey: hash_32 of port+address (host order, 32-bit
// wrap), top 8 bits, plus offset, masked to the table.
func shHash(fold uint32, port uint16, offset uint32) uint32 {
	return (offset + hash32(uint32(port)+fold, shTabBits)) & shTabMask
}

// shAvailable is the negation of sh's (and mh's) is_unavailable.
func shAvailable(d *Dest) bool { return d.Weight > 0 && !d.Overloaded }
