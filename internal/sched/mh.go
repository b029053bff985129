package sched

import (
	"math/bits"
	"net/netip"
)

const (
	// mhTabIndex is CONFIG_IP_VS_MH_TAB_INDEX' default, 12. The table size
	// is primes[12-8] of the kernel's {251, 509, 1021, 2039, 4093, 8191,
	// 16381, 32749, 65521, 131071}, and the weight scaling keeps
	// mhTabIndex/2 bits of weight/gcd.
	mhTabIndex = 12
	mhTabSize  = 4093
	mhTabBits  = mhTabIndex / 2

	// The kernel's hash "secrets" are constants (generate_hash_secret),
	// not random, so tables are the same on every host and there is no
	// key to configure. hash1 gives a destination's offset and the lookup
	// position of a client, hash2 a destination's skip.
	mhHash1Key = 2654435761
	mhHash2Key = 2654446892
)

// maglevHashing is ip_vs_mh.c, Maglev consistent hashing: a 4093-entry
// lookup table filled by letting the destinations, in list order, take
// turns claiming the next free entry of their own permutation (offset, then
// steps of skip, mod 4093); a destination takes as many entries per turn as
// its weight/gcd (scaled down to at most 6 bits). A client's address (and
// with mh-port its source port) hashes to one entry. A destination with
// weight 0 or overloaded gives no destination unless mh-fallback probes for
// another.
type maglevHashing struct {
	flags  Flags
	lookup []*Dest
	// lastWeight is the kernel's dest->last_weight by destination: the
	// weight on add, then the latest non-zero weight. The table is built
	// from it, so quiescing a destination (weight 0) keeps its entries
	// and only lookups skip it; the table does not reshuffle.
	lastWeight map[netip.AddrPort]int
}

func newMaglevHashing(cfg Config) Scheduler {
	return &maglevHashing{flags: cfg.Flags, lookup: make([]*Dest, mhTabSize)}
}

func (s *maglevHashing) Name() string { return "mh" }

// Update is ip_vs_mh_dest_changed, the add, del and upd hook alike.
func (s *maglevHashing) Update(dests []*Dest) {
	last := make(map[netip.AddrPort]int, len(dests))
	for _, d := range dests {
		w, known := s.lastWeight[d.key()]
		if !known || d.Weight != 0 {
			w = d.Weight
		}
		last[d.key()] = w
	}
	s.lastWeight = last

	if len(dests) > mhTabSize {
		// ip_vs_mh_reassign refuses (-EINVAL) and the old table stays.
		return
	}
	g, maxW := 0, 0
	for _, d := range dests {
		w := last[d.key()]
		if w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
		if w > maxW {
			maxW = w
		}
	}
	if g < 1 {
		// No destinations, or all last weights 0: an empty table.
		clear(s.lookup)
		return
	}
	// ip_vs_mh_shift_weight: keep the scaled weights within mhTabBits.
	rshift := max(bits.Len(uint(maxW/g))-mhTabBits, 0)

	type setup struct {
		perm, skip uint32
		turns      int
	}
	ds := make([]setup, len(dests))
	for i, d := range dests {
		v := uint32(d.Port) + foldAddr(d.Addr)
		offset := hsiphash32(v, mhHash1Key, mhHash1Key) % mhTabSize
		ds[i].skip = hsiphash32(v, mhHash2Key, mhHash2Key)%(mhTabSize-1) + 1
		ds[i].perm = offset
		lw := last[d.key()]
		ds[i].turns = (lw / g) >> rshift
		if ds[i].turns == 0 && lw != 0 {
			ds[i].turns = 1
		}
	}

	// ip_vs_mh_populate: every entry is claimed exactly once, so the whole
	// table is rewritten.
	taken := make([]bool, mhTabSize)
	n, dtCount := 0, 0
	for {
		for i := 0; i < len(dests); {
			if ds[i].turns < 1 {
				i++
				continue
			}
			c := ds[i].perm
			for taken[c] {
				ds[i].perm += ds[i].skip
				if ds[i].perm >= mhTabSize {
					ds[i].perm -= mhTabSize
				}
				c = ds[i].perm
			}
			taken[c] = true
			s.lookup[c] = dests[i]
			if n++; n == mhTabSize {
				return
			}
			if dtCount++; dtCount >= ds[i].turns {
				dtCount = 0
				i++
			}
		}
	}
}

func (s *maglevHashing) Schedule(f Flow) *Dest {
	var port uint16
	if s.flags&MHPort != 0 {
		port = flowPort(f)
	}
	fold := foldAddr(f.Src)
	ihash := mhHash(fold, port, 0)
	d := s.lookup[ihash]
	if d == nil {
		return nil
	}
	if shAvailable(d) {
		return d
	}
	if s.flags&MHFallback == 0 {
		return nil
	}
	// ip_vs_mh_get_fallback: rehash with offsets ihash, ihash+1, ...
	for offset := uint32(0); offset < mhTabSize; offset++ {
		roffset := (offset + ihash) % mhTabSize
		d := s.lookup[mhHash(fold, port, roffset)]
		if d == nil {
			break
		}
		if shAvailable(d) {
			return d
		}
	}
	return nil
}

// mhHash is ip_vs_mh_hashkey with hash1, reduced to a lookup position.
func mhHash(fold uint32, port uint16, offset uint32) uint32 {
	return hsiphash32(offset+uint32(port)+fold, mhHash1Key, mhHash1Key) % mhTabSize
}
