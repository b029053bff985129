package packet

import (
	"encoding/binary"
	"net/netip"
)

// ChecksumOptions say what a VRRP checksum covers besides the message.
type ChecksumOptions struct {
	// Src and Dst are the IP addresses of the pseudo header. With neither
	// set the checksum covers the message alone (VRRPv2, or VRRPv3 with
	// v3_checksum_as_v2); set, they add an IPv4 pseudo header (RFC 768
	// layout) when Src is IPv4, else an IPv6 one (RFC 8200 section 8.1),
	// with protocol / next header 112. A v4-mapped Src counts as IPv6.
	Src, Dst netip.Addr
}

// Checksum is the VRRP checksum of msg as it should appear in bytes 6-7,
// computed as if those bytes were zero, so it can check a received message
// without touching it.
func Checksum(msg []byte, o ChecksumOptions) uint16 {
	switch {
	case o.Src.Is4():
		return checksumPseudo(msg, IPv4, o.Src, o.Dst)
	case o.Src.IsValid() || o.Dst.IsValid():
		return checksumPseudo(msg, IPv6, o.Src, o.Dst)
	}
	return checksum(msg)
}

// checksum is the Internet checksum (RFC 1071) of msg skipping the checksum
// field at bytes 6-7.
func checksum(msg []byte) uint16 {
	return fold(sumMsg(0, msg))
}

// checksumPseudo adds the pseudo header of fam for src and dst. An address
// of the other family or unset contributes its bytes as AsSlice gives them,
// which makes the result wrong rather than panicking; callers check the
// family first.
func checksumPseudo(msg []byte, fam Family, src, dst netip.Addr) uint16 {
	s := sumBytes(0, src.AsSlice())
	s = sumBytes(s, dst.AsSlice())
	if fam == IPv4 {
		s += Protocol                  // zero byte, then protocol
		s += uint32(len(msg)) & 0xffff // 16-bit length
	} else {
		l := uint32(len(msg))
		s += l>>16 + l&0xffff // 32-bit upper-layer length
		s += Protocol         // three zero bytes, then next header
	}
	return fold(sumMsg(s, msg))
}

// sumMsg adds msg to s with the checksum field taken as zero.
func sumMsg(s uint32, msg []byte) uint32 {
	if len(msg) < HeaderLen {
		return sumBytes(s, msg)
	}
	s = sumBytes(s, msg[:6])
	return sumBytes(s, msg[HeaderLen:])
}

// sumBytes adds b as big-endian 16-bit words, an odd last byte padded with
// zero. It folds the carry as it goes, so it never overflows however long b
// is.
func sumBytes(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
		if s >= 1<<31 {
			s = s&0xffff + s>>16
		}
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
