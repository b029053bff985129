package sched

import (
	"net/netip"
	"testing"
)

// toDst is a flow from one client to destination address a.
func toDst(a string) func(int) Flow {
	return func(i int) Flow {
		f := clientFlow(i)
		f.Dst = netip.MustParseAddr(a)
		return f
	}
}

// The bucket is hash_32(ntohl(fold(daddr)), 8) = (x * 0x61C88647 mod 2^32) >> 24.
func TestDestinationHashingBucket(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want uint32
	}{
		// x = 0x0A000001. x*M = M + 0x0A000000*M; mod 2^32 the second
		// term is (0x0A*0x47 mod 256)<<24 = 0xC6000000. M + 0xC6000000 =
		// 0x1_27C88647 -> 0x27C88647, top byte 0x27 = 39.
		{"10.0.0.1", 39},
		// 2*M = 0xC3910C8E, + 0xC6000000 = 0x1_89910C8E, top byte 0x89.
		{"10.0.0.2", 137},
		// fold = 0x20010DB8 ^ 0 ^ 0 ^ 0x00000001 = 0x20010DB9.
		// 0x20000000*M mod 2^32 = (M mod 8)<<29 = 0xE0000000;
		// 0x10DB9*M mod 2^32 = 0x5F01A44F; sum 0x1_3F01A44F, top 0x3F.
		{"2001:db8::1", 63},
	} {
		if got := dhBucket(Flow{Dst: netip.MustParseAddr(tc.addr)}); got != tc.want {
			t.Errorf("bucket(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}
}

func TestDestinationHashing(t *testing.T) {
	// Five destinations, weights irrelevant: bucket b goes to dests[b%5].
	ds := servers(5, 1, 1, 1, 1)
	s := newSched(t, "dh", Config{}, ds)
	for _, tc := range []struct{ dst, want string }{
		{"10.0.0.1", "E"},    // 39 % 5 = 4
		{"10.0.0.2", "C"},    // 137 % 5 = 2
		{"2001:db8::1", "D"}, // 63 % 5 = 3
	} {
		diffSeq(t, tc.dst, repeat(tc.want, 3), picks(s, 3, toDst(tc.dst), nil))
	}

	// The destination of a bucket unavailable: nothing, whatever the
	// flags; dh has no fallback.
	ds[4].Overloaded = true
	diffSeq(t, "overloaded", "-", picks(s, 1, toDst("10.0.0.1"), nil))
	ds[4].Overloaded = false
	ds[4].Weight = 0
	diffSeq(t, "weight 0", "-", picks(s, 1, toDst("10.0.0.1"), nil))

	// Remove E: four left, 39 % 4 = 3.
	s.Update(ds[:4])
	diffSeq(t, "after removing E", "D", picks(s, 1, toDst("10.0.0.1"), nil))
}

// One destination address always goes to one server, whoever the client.
func TestDestinationHashingSticks(t *testing.T) {
	s := newSched(t, "dh", Config{}, servers(1, 1, 1, 1, 1, 1, 1))
	got := count(s, 1000, toDst("198.51.100.77"))
	if len(got) != 1 {
		t.Errorf("one destination address spread over %v", got)
	}
	// Many destination addresses spread over all the servers.
	spread := count(s, 1000, func(i int) Flow {
		f := clientFlow(0)
		f.Dst = netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		return f
	})
	if len(spread) != 7 {
		t.Errorf("1000 destination addresses reached %v", spread)
	}
}
