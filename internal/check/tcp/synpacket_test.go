package tcp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// segment4 is an IPv4 packet carrying a TCP header to dport with flags.
func segment4(dport uint16, flags byte, frag uint16) []byte {
	b := make([]byte, 40)
	b[0], b[9] = 0x45, 6
	binary.BigEndian.PutUint16(b[6:], frag)
	copy(b[12:], []byte{10, 0, 0, 1})
	copy(b[16:], []byte{10, 0, 0, 2})
	binary.BigEndian.PutUint16(b[20:], 80)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint32(b[28:], 1001)
	b[32], b[33] = 5<<4, flags
	return b
}

func TestReplyFilter(t *testing.T) {
	tests := []struct {
		name  string
		dport uint16
		flags byte
		frag  uint16
		keep  bool
	}{
		{"SYN-ACK to the pool", 40000, tcpSYN | tcpACK, 0, true},
		{"RST-ACK to the pool", 40000, tcpRST | tcpACK, 0, true},
		{"first port", 39990, tcpSYN | tcpACK, 0, true},
		{"last port", 40009, tcpRST | tcpACK, 0, true},
		{"below the pool", 39989, tcpSYN | tcpACK, 0, false},
		{"above the pool", 40010, tcpSYN | tcpACK, 0, false},
		{"SYN", 40000, tcpSYN, 0, false},
		{"RST without ACK", 40000, tcpRST, 0, false},
		{"ACK", 40000, tcpACK, 0, false},
		{"FIN-ACK", 40000, tcpFIN | tcpACK, 0, false},
		{"a later fragment", 40000, tcpSYN | tcpACK, 185, false},
	}
	for _, ipv4 := range []bool{true, false} {
		prog, err := replyFilter(ipv4, 39990, 40009)
		if err != nil {
			t.Fatal(err)
		}
		ins, ok := bpf.Disassemble(prog)
		if !ok {
			t.Fatal("cannot disassemble the filter")
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			pkt := segment4(tt.dport, tt.flags, tt.frag)
			if !ipv4 {
				if tt.frag != 0 {
					continue
				}
				pkt = pkt[20:] // an IPv6 raw socket sees the TCP header first
			}
			n, err := vm.Run(pkt)
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tt.keep {
				t.Errorf("ipv4=%v %s: kept %v, want %v", ipv4, tt.name, got, tt.keep)
			}
		}
	}
}

func TestSynSegment(t *testing.T) {
	for _, pair := range [][2]string{{"10.0.0.1", "10.0.0.2"}, {"2001:db8::1", "2001:db8::2"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		b := make([]byte, synLen)
		synSegment(b, src, dst, 40000, 80, 0xdeadbeef)
		// A correct checksum sums the segment, checksum included, to zero.
		if c := tcpChecksum(b, src, dst); c != 0 {
			t.Errorf("%s: checksum over the segment is %#x, want 0", pair, c)
		}
		r, ok := parseSegment(b)
		if !ok || r.remote.Port() != 40000 || r.localPort != 80 || r.flags != tcpSYN || binary.BigEndian.Uint32(b[4:]) != 0xdeadbeef {
			t.Errorf("%s: segment reads back as %+v", pair, r)
		}
	}
}

func TestParseReply4(t *testing.T) {
	r, ok := parseReply4(segment4(40000, tcpSYN|tcpACK, 0))
	want := reply{remote: netip.MustParseAddrPort("10.0.0.1:80"), localPort: 40000, flags: tcpSYN | tcpACK}
	if !ok || r.remote != want.remote || r.localPort != want.localPort || r.flags != want.flags {
		t.Errorf("parseReply4 = %+v, %v; want %+v", r, ok, want)
	}
	for _, bad := range [][]byte{nil, segment4(1, tcpACK, 0)[:30], segment4(1, tcpACK, 185), {0x4f, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, ok := parseReply4(bad); ok {
			t.Errorf("parseReply4(% x) accepted", bad)
		}
	}
}

func FuzzParseReply4(f *testing.F) {
	f.Add(segment4(40000, tcpSYN|tcpACK, 0))
	f.Add(segment4(40000, tcpRST|tcpACK, 0)[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		parseReply4(b)
		parseSegment(b)
	})
}
