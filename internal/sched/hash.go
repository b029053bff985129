package sched

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The address-hashing schedulers (dh, sh, mh, lblc, lblcr) reduce an address
// to 32 bits the same way before hashing it.

// foldAddr is the kernel's addr_fold: an IPv4 address as a host-order
// integer (ntohl), an IPv6 address as the XOR of its four 32-bit words.
// ntohl of a XOR of big-endian words equals the XOR of the words read big
// endian, so the order of the two steps does not matter.
func foldAddr(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:4]) ^ binary.BigEndian.Uint32(b[4:8]) ^
		binary.BigEndian.Uint32(b[8:12]) ^ binary.BigEndian.Uint32(b[12:16])
}

// hash32 is include/linux/hash.h's hash_32(val, bits): multiply by
// GOLDEN_RATIO_32 and keep the top bits, which are the well-mixed ones.
// Kernels before 4.x masked the low bits of val*2654435761 instead; every
// current kernel uses hash_32 in dh, sh, lblc and lblcr.
func hash32(val uint32, nbits uint) uint32 {
	return val * 0x61C88647 >> (32 - nbits)
}

// hsiphash32 is the kernel's hsiphash() of one 4-byte value on a 64-bit
// little-endian machine (x86-64, arm64), where lib/siphash.c makes
// "HalfSipHash" SipHash-1-3 with 64-bit key words and returns the low 32
// bits. The 4 message bytes are the value's own memory, read little endian,
// so on a little-endian host they are the value itself. (A 32-bit kernel
// runs real HalfSipHash and a big-endian one reads the bytes reversed; mh
// tables differ there, and we do not model them.)
func hsiphash32(v uint32, k0, k1 uint64) uint32 {
	v0 := uint64(0x736f6d6570736575) ^ k0
	v1 := uint64(0x646f72616e646f6d) ^ k1
	v2 := uint64(0x6c7967656e657261) ^ k0
	v3 := uint64(0x7465646279746573) ^ k1
	b := uint64(4)<<56 | uint64(v)

	// One compression round for the single (final) block, three
	// finalization rounds: SipHash-1-3.
	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return uint32((v0 ^ v1) ^ (v2 ^ v3))
}

// sipRound is SipHash's SipRound.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// flowPort is the port sh-port and mh-port hash: the source port, for the
// protocols whose first 4 header bytes are two ports; 0 for the rest
// (ip_vs_sh_get_port, ip_vs_mh_get_port).
func flowPort(f Flow) uint16 {
	switch f.Proto {
	case protoTCP, protoUDP, protoSCTP:
		return f.SrcPort
	}
	return 0
}

const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)
