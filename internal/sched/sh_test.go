package sched

import (
	"net/netip"
	"testing"
)

// fromSrc is a TCP flow from client a, source port 1234.
func fromSrc(a string) func(int) Flow {
	return func(int) Flow {
		return Flow{Proto: protoTCP, Src: netip.MustParseAddr(a), SrcPort: 1234, Dst: netip.MustParseAddr("203.0.113.1"), DstPort: 80}
	}
}

func TestSourceHashingTable(t *testing.T) {
	// Each destination fills weight consecutive buckets, round and round;
	// weight 0 still takes one.
	for _, tc := range []struct {
		weights []int
		want    string // the first buckets
	}{
		{[]int{2, 1, 1}, "A A B C A A B C"},
		{[]int{0, 1}, "A B A B A B A B"},
		{[]int{3, 2}, "A A A B B A A A"},
	} {
		s := newSched(t, "sh", Config{}, servers(tc.weights...)).(*sourceHashing)
		got := ""
		for i := range 8 {
			if i > 0 {
				got += " "
			}
			got += name(s.buckets[i])
		}
		diffSeq(t, "buckets", tc.want, got)
	}

	// 256 buckets shared 3:1.
	s := newSched(t, "sh", Config{}, servers(3, 1)).(*sourceHashing)
	n := map[string]int{}
	for _, d := range s.buckets {
		n[name(d)]++
	}
	if n["A"] != 192 || n["B"] != 64 {
		t.Errorf("buckets shared %v, want A 192 B 64", n)
	}
}

func TestSourceHashing(t *testing.T) {
	// The bucket is (offset + hash_32(port + ntohl(saddr), 8)) & 255; see
	// TestDestinationHashingBucket for the arithmetic: 10.0.0.1 is 39,
	// 10.0.0.2 is 137, 10.0.0.6 is 16. Weights 2,1,1: bucket b is
	// A A B C by b % 4.
	for _, tc := range []struct {
		name    string
		flags   Flags
		weights []int
		src     string
		proto   uint8
		want    string
	}{
		{"no port", 0, []int{2, 1, 1}, "10.0.0.1", protoTCP, "C"}, // 39 % 4 = 3
		{"other client", 0, []int{2, 1, 1}, "10.0.0.2", protoTCP, "A"},
		// sh-port: hash_32(0x0A000001 + 1234 = 0x0A0004D3) = 0x805FC885
		// >> 24 = 128; 128 % 4 = 0.
		{"sh-port", SHPort, []int{2, 1, 1}, "10.0.0.1", protoTCP, "A"},
		{"sh-port udp", SHPort, []int{2, 1, 1}, "10.0.0.1", protoUDP, "A"},
		{"sh-port sctp", SHPort, []int{2, 1, 1}, "10.0.0.1", protoSCTP, "A"},
		// ICMP has no ports: port 0.
		{"sh-port icmp", SHPort, []int{2, 1, 1}, "10.0.0.1", 1, "C"},
		// 10.0.0.6 is bucket 16, A's (weight 0): nothing.
		{"weight 0", 0, []int{0, 1}, "10.0.0.6", protoTCP, "-"},
		// sh-fallback probes from bucket 2*16 = 32 (A again), then 33: B.
		{"weight 0 fallback", SHFallback, []int{0, 1}, "10.0.0.6", protoTCP, "B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, "sh", Config{Flags: tc.flags}, servers(tc.weights...))
			f := fromSrc(tc.src)(0)
			f.Proto = tc.proto
			diffSeq(t, "pick", tc.want, name(s.Schedule(f)))
		})
	}
}

// sh-fallback: ip_vs_sh_get_fallback probes bucket (roffset + ihash) & 255
// with roffset = (offset + ihash) % 256, i.e. from 2*ihash on, not from
// ihash+1.
func TestSourceHashingFallback(t *testing.T) {
	ds := servers(1, 1, 1, 1) // bucket b -> dests[b%4]
	plain := newSched(t, "sh", Config{}, ds)
	fb := newSched(t, "sh", Config{Flags: SHFallback}, ds)
	src := fromSrc("10.0.0.1") // bucket 39: D

	diffSeq(t, "all up", "D", picks(fb, 1, src, nil))
	ds[3].Overloaded = true
	diffSeq(t, "D down, no fallback", "-", picks(plain, 1, src, nil))
	// First probe: bucket 78, 78 % 4 = 2: C (ihash+1 would be A).
	diffSeq(t, "D down", "C", picks(fb, 1, src, nil))
	ds[2].Weight = 0
	// 78 C, 79 D, 80 A.
	diffSeq(t, "C and D down", "A", picks(fb, 1, src, nil))
	ds[0].Overloaded, ds[1].Overloaded = true, true
	diffSeq(t, "all down", "-", picks(fb, 1, src, nil))
}

// One client always goes to one server, whatever its source port (without
// sh-port); many clients spread.
func TestSourceHashingSticks(t *testing.T) {
	s := newSched(t, "sh", Config{}, servers(1, 1, 1, 1, 1))
	got := count(s, 1000, func(i int) Flow {
		f := clientFlow(0)
		f.SrcPort = uint16(1024 + i)
		return f
	})
	if len(got) != 1 {
		t.Errorf("one client spread over %v", got)
	}
	if spread := count(s, 1000, clientFlow); len(spread) != 5 {
		t.Errorf("1000 clients reached %v", spread)
	}
	// With sh-port, one client's connections spread.
	s = newSched(t, "sh", Config{Flags: SHPort}, servers(1, 1, 1, 1, 1))
	got = count(s, 1000, func(i int) Flow {
		f := clientFlow(0)
		f.SrcPort = uint16(1024 + i)
		return f
	})
	if len(got) != 5 {
		t.Errorf("sh-port: one client's ports reached %v", got)
	}
}
