package sched

// dhTabBits is CONFIG_IP_VS_DH_TAB_BITS' default: 256 buckets.
const dhTabBits = 8

// destinationHashing is ip_vs_dh.c: a static 256-bucket table from the hash
// of the packet's destination address to a destination. Buckets are dealt to
// the destinations in list order, one each, round and round (weight plays no
// part); a bucket whose destination has weight 0 or is overloaded gives no
// destination at all: there is no fallback.
type destinationHashing struct {
	buckets [1 << dhTabBits]*Dest
}

func newDestinationHashing(Config) Scheduler { return &destinationHashing{} }

func (s *destinationHashing) Name() string { return "dh" }

// Update is ip_vs_dh_reassign (the kernel hooks it to add and del only;
// since weights do not shape the table, an edit would not change it).
func (s *destinationHashing) Update(dests []*Dest) {
	for i := range s.buckets {
		if len(dests) == 0 {
			s.buckets[i] = nil
			continue
		}
		s.buckets[i] = dests[i%len(dests)]
	}
}

func (s *destinationHashing) Schedule(f Flow) *Dest {
	d := s.buckets[dhBucket(f)]
	if d == nil || d.Weight <= 0 || d.Overloaded {
		return nil
	}
	return d
}

// dhBucket is ip_vs_dh_hashkey: hash_32 of the folded destination address,
// top 8 bits.
func dhBucket(f Flow) uint32 { return hash32(foldAddr(f.Dst), dhTabBits) }
