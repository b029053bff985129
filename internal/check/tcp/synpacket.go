package tcp

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The TCP segments of a half-open probe: the SYN it sends, the replies it
// takes (SYN-ACK or RST, both acknowledging the SYN), and the classic BPF
// program that keeps every other TCP segment of the host out of its raw
// sockets.

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10

	synLen = 24 // TCP header with one option, the MSS
	// replyKeep is how much of an accepted packet the filter keeps: a
	// maximal IPv4 header and a TCP header with room to spare.
	replyKeep = 128
)

// synSegment writes into b (synLen bytes) a TCP SYN from src:sport to
// dst:dport with sequence number isn, checksum included: a raw IPPROTO_TCP
// socket sends the TCP header as given. It carries an MSS option, as
// every real SYN does, so no middlebox takes it for a scan.
func synSegment(b []byte, src, dst netip.Addr, sport, dport uint16, isn uint32) {
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], isn)
	binary.BigEndian.PutUint32(b[8:], 0)
	b[12] = (synLen / 4) << 4
	b[13] = tcpSYN
	binary.BigEndian.PutUint16(b[14:], 64240) // window
	binary.BigEndian.PutUint32(b[16:], 0)     // checksum, urgent pointer
	b[20], b[21] = 2, 4                       // MSS, length 4
	binary.BigEndian.PutUint16(b[22:], 1460)
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(b[:synLen], src, dst))
}

// ip4Len is the IPv4 header of a SYN: no options.
const ip4Len = 20

// ip4Header writes into b (ip4Len bytes) the IPv4 header of a TCP segment
// of payload bytes from src to dst: don't fragment, TTL 64, the ID given
// (nonzero: the kernel would pick one otherwise). The kernel fills in the
// checksum of a header it is given (IP_HDRINCL).
func ip4Header(b []byte, src, dst netip.Addr, id uint16, payload int) {
	b[0], b[1] = 0x45, 0
	binary.BigEndian.PutUint16(b[2:], uint16(ip4Len+payload))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], 0x4000) // DF
	b[8], b[9] = 64, 6                        // TTL, TCP
	binary.BigEndian.PutUint16(b[10:], 0)
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
}

// ip6Len is the IPv6 header of a SYN: no extension headers.
const ip6Len = 40

// ip6Header writes into b (ip6Len bytes) the IPv6 header of a TCP segment
// of payload bytes from src to dst, hop limit 64: an IPPROTO_RAW socket
// sends it as given (IPV6_HDRINCL).
func ip6Header(b []byte, src, dst netip.Addr, payload int) {
	binary.BigEndian.PutUint32(b[0:], 6<<28) // version, no class, no flow label
	binary.BigEndian.PutUint16(b[4:], uint16(payload))
	b[6], b[7] = 6, 64 // TCP, hop limit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
}

// tcpChecksum is the TCP checksum of seg over the IPv4 or IPv6 pseudo
// header.
func tcpChecksum(seg []byte, src, dst netip.Addr) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		add(s[:])
		add(d[:])
	} else {
		s, d := src.As16(), dst.As16()
		add(s[:])
		add(d[:])
	}
	// Protocol and length; the IPv6 pseudo header spreads the same
	// numbers over wider fields, which sum the same for a TCP header.
	sum += 6 + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// reply is what a half-open probe reads from a SYN's answer.
type reply struct {
	remote    netip.AddrPort // who answered
	localPort uint16
	ack       uint32
	flags     byte
}

// parseReply4 reads an IPv4 packet as a raw IPv4 socket delivers it, IP
// header first.
func parseReply4(b []byte) (reply, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != 6 {
		return reply{}, false
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < 20 || len(b) < ihl+20 || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		return reply{}, false
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	r, ok := parseSegment(b[ihl:])
	r.remote = netip.AddrPortFrom(src, r.remote.Port())
	return r, ok
}

// parseReply6 reads an IPv6 packet as a packet ring delivers it, IP
// header first, TCP right after it (the ring's filter passes no other).
func parseReply6(b []byte) (reply, bool) {
	if len(b) < ip6Len+20 || b[0]>>4 != 6 || b[6] != 6 {
		return reply{}, false
	}
	src := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	r, ok := parseSegment(b[ip6Len:])
	r.remote = netip.AddrPortFrom(src, r.remote.Port())
	return r, ok
}

// parseSegment reads a TCP header (what a raw IPv6 socket delivers; the
// sender's address comes with recvfrom). remote holds only the port.
func parseSegment(b []byte) (reply, bool) {
	if len(b) < 20 {
		return reply{}, false
	}
	return reply{
		remote:    netip.AddrPortFrom(netip.Addr{}, binary.BigEndian.Uint16(b[0:])),
		localPort: binary.BigEndian.Uint16(b[2:]),
		ack:       binary.BigEndian.Uint32(b[8:]),
		flags:     b[13],
	}, true
}

// replyFilter is the socket filter of a raw IPPROTO_TCP socket that takes
// only answers to our SYNs: TCP segments to a port in [lo, hi] with ACK
// and SYN or RST set. Without it every TCP segment the host receives is
// copied to the socket. ipv4: the socket sees the IP header first (an
// IPv6 raw socket sees the TCP header first).
func replyFilter(ipv4 bool, lo, hi uint16) ([]bpf.RawInstruction, error) {
	if ipv4 {
		return replyProgram(lo, hi,
			// Not the first fragment: no TCP header to read.
			bpf.LoadAbsolute{Off: 6, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff},
			bpf.LoadMemShift{Off: 0}, // X = IP header length
		)
	}
	return replyProgram(lo, hi, bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
}

// ringFilter is replyFilter for a packet ring's socket, which sees every
// packet of its protocol, network header first: it also takes only
// packets for this host, TCP, and (IPv6) with no extension header before
// the TCP one.
func ringFilter(v6 bool, lo, hi uint16) ([]bpf.RawInstruction, error) {
	host := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.PACKET_HOST},
	}
	if v6 {
		return replyProgram(lo, hi, append(host,
			bpf.LoadAbsolute{Off: 6, Size: 1}, // next header
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP},
			bpf.LoadConstant{Dst: bpf.RegX, Val: ip6Len},
		)...)
	}
	return replyProgram(lo, hi, append(host,
		bpf.LoadAbsolute{Off: 9, Size: 1}, // protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_TCP},
		bpf.LoadAbsolute{Off: 6, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff},
		bpf.LoadMemShift{Off: 0},
	)...)
}

// replyProgram is head, which leaves X at the TCP header and whose every
// JumpIf drops the packet when true, followed by the test of the TCP
// header both filters share.
func replyProgram(lo, hi uint16, head ...bpf.Instruction) ([]bpf.RawInstruction, error) {
	const tail = 6 // the tail's instructions before its drop
	prog := make([]bpf.Instruction, 0, len(head)+tail+2)
	for i, ins := range head {
		if j, ok := ins.(bpf.JumpIf); ok {
			j.SkipTrue = uint8(len(head) - 1 - i + tail)
			ins = j
		}
		prog = append(prog, ins)
	}
	prog = append(prog,
		bpf.LoadIndirect{Off: 2, Size: 2}, // destination port
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(lo), SkipTrue: 4},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(hi), SkipTrue: 3},
		bpf.LoadIndirect{Off: 13, Size: 1}, // flags
		bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: tcpACK, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpSYN | tcpRST, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: replyKeep},
	)
	return bpf.Assemble(prog)
}
