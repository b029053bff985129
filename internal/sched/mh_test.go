package sched

import (
	"net/netip"
	"testing"
)

// hsiphash must be the kernel's: lib/test_siphash.c checks, on 64-bit,
// hsiphash_1u32(0x03020100, key 00..0f) == test_vectors_hsiphash[4].
func TestHsiphashKernelVector(t *testing.T) {
	if got := hsiphash32(0x03020100, 0x0706050403020100, 0x0f0e0d0c0b0a0908); got != 0x88d38328 {
		t.Errorf("hsiphash32 = %#x, want 0x88d38328", got)
	}
}

func mhShares(s Scheduler) map[string]int {
	n := map[string]int{}
	for _, d := range s.(*maglevHashing).lookup {
		n[name(d)]++
	}
	return n
}

// The populate loop hands out 4093 entries in turns of weight/gcd
// (shifted to 6 bits), so the shares follow from the weights alone.
func TestMaglevShares(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
		want    map[string]int
	}{
		// 4093 = 2*2046 + 1: A takes the odd one.
		{"1,1", []int{1, 1}, map[string]int{"A": 2047, "B": 2046}},
		// Turns 2,1; 4093 = 3*1364 + 1.
		{"2,1", []int{2, 1}, map[string]int{"A": 2729, "B": 1364}},
		// gcd 2, turns 2,3; 4093 = 5*818 + 3: A 2, B 1 more.
		{"4,6", []int{4, 6}, map[string]int{"A": 1638, "B": 2455}},
		// max/gcd 256, fls 9, rshift 9-6 = 3: turns 32 and (1>>3 = 0, so) 1;
		// 4093 = 33*124 + 1.
		{"256,1", []int{256, 1}, map[string]int{"A": 3969, "B": 124}},
		// A destination added with weight 0 takes no entry.
		{"0,1", []int{0, 1}, map[string]int{"B": 4093}},
		{"all 0", []int{0, 0}, map[string]int{"-": 4093}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, "mh", Config{}, servers(tc.weights...))
			got := mhShares(s)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("shares %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}

// Pins of the permutation and lookup, computed with hsiphash32 (checked
// against the kernel's vector above) and the kernel's fixed keys.
func TestMaglevPermutation(t *testing.T) {
	ds := servers(1, 1, 1)
	s := newSched(t, "mh", Config{}, ds).(*maglevHashing)
	// offset = hsiphash(port + ntohl(addr), hash1) % 4093, skip =
	// hsiphash(same, hash2) % 4092 + 1. A 192.0.2.1:80 = 3221226065:
	// offset 3378, skip 1985; B: 3955, 542; C: 460, 3767. Each takes its
	// offset in the first round and A its next, (3378+1985) mod 4093 =
	// 1270, in the second.
	for pos, want := range map[int]string{3378: "A", 3955: "B", 460: "C", 1270: "A", (3955 + 542) % 4093: "B", (460 + 3767) % 4093: "C"} {
		if got := name(s.lookup[pos]); got != want {
			t.Errorf("lookup[%d] = %s, want %s", pos, got, want)
		}
	}
	// Client 10.0.0.1 without port: hsiphash(0x0A000001, hash1) % 4093 = 3711.
	if got := mhHash(0x0A000001, 0, 0); got != 3711 {
		t.Errorf("position of 10.0.0.1 = %d, want 3711", got)
	}
	f := fromSrc("10.0.0.1")(0)
	if got, want := s.Schedule(f), s.lookup[3711]; got != want {
		t.Errorf("10.0.0.1 went to %s, lookup[3711] is %s", name(got), name(want))
	}
}

// last_weight: quiescing a destination (weight 0) leaves the table as it
// is, so no other client moves; its own clients get nothing, or with
// mh-fallback another destination.
func TestMaglevQuiesce(t *testing.T) {
	ds := servers(1, 1, 1)
	s := newSched(t, "mh", Config{}, ds).(*maglevHashing)
	fb := newSched(t, "mh", Config{Flags: MHFallback}, ds).(*maglevHashing)
	before := append([]*Dest(nil), s.lookup...)

	// Find a client of A.
	var src netip.Addr
	for i := range 1000 {
		f := clientFlow(i)
		if s.Schedule(f) == ds[0] {
			src = f.Src
			break
		}
	}
	flow := func(int) Flow { return Flow{Proto: protoTCP, Src: src, SrcPort: 1} }

	ds[0].Weight = 0
	s.Update(ds)
	fb.Update(ds)
	for i := range before {
		if before[i] != s.lookup[i] {
			t.Fatalf("quiescing A changed lookup[%d]", i)
		}
	}
	diffSeq(t, "A's client, no fallback", "-", picks(s, 1, flow, nil))
	if got := fb.Schedule(flow(0)); got == nil || got == ds[0] {
		t.Errorf("A's client with fallback went to %s", name(got))
	}

	// Back to weight 2: now the table changes (A's last weight is 2).
	ds[0].Weight = 2
	s.Update(ds)
	if n := mhShares(s)["A"]; n != 2047 {
		// 4093 = 4*1023 + 1: A 2*1023 + 1.
		t.Errorf("A weight 2 of 2,1,1 has %d entries, want 2047", n)
	}
}

// Maglev is consistent: removing one of ten destinations moves its own
// clients and few others.
func TestMaglevConsistency(t *testing.T) {
	ds := servers(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	s := newSched(t, "mh", Config{}, ds)
	before := make([]*Dest, 5000)
	for i := range before {
		before[i] = s.Schedule(clientFlow(i))
	}
	s.Update(append(ds[:3:3], ds[4:]...)) // remove D
	moved := 0
	for i, b := range before {
		got := s.Schedule(clientFlow(i))
		if b == ds[3] {
			if got == ds[3] {
				t.Fatal("a client still goes to the removed destination")
			}
			continue
		}
		if got != b {
			moved++
		}
	}
	// Maglev guarantees near-minimal disruption, not zero: allow 5%.
	if moved > len(before)/20 {
		t.Errorf("%d of %d clients of other destinations moved", moved, len(before))
	}
}

func TestMaglevPort(t *testing.T) {
	ports := func(i int) Flow {
		f := clientFlow(0)
		f.SrcPort = uint16(1024 + i)
		return f
	}
	s := newSched(t, "mh", Config{}, servers(1, 1, 1, 1))
	if got := count(s, 1000, ports); len(got) != 1 {
		t.Errorf("one client spread over %v", got)
	}
	s = newSched(t, "mh", Config{Flags: MHPort}, servers(1, 1, 1, 1))
	if got := count(s, 1000, ports); len(got) != 4 {
		t.Errorf("mh-port: one client's ports reached %v", got)
	}
}
