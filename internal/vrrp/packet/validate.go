package packet

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// RecvMeta is what the receive path knows about a packet beyond its VRRP
// bytes: the IP header for IPv4 (see SplitIPv4), control messages for IPv6
// (IPV6_HOPLIMIT, IPV6_PKTINFO).
type RecvMeta struct {
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit, or -1 when the socket did not
	// report it (no IPV6_HOPLIMIT control message): keepalived skips the
	// check then, and so does Validate.
	TTL int
}

// Unicast reports whether the packet was sent to a unicast address.
func (m RecvMeta) Unicast() bool { return !m.Dst.IsMulticast() }

// Expect is what one instance accepts: its configuration as the receive
// checks see it. Check reports a configuration Validate cannot honour.
type Expect struct {
	Version uint8 // 2 or 3
	Family  Family
	VRID    uint8
	// AuthType and AuthData: VRRPv2 authentication. AuthData is
	// PassAuthData(auth_pass) for AuthPass.
	AuthType AuthType
	AuthData [AuthDataLen]byte
	// AdvertInterval is advert_int. Only VRRPv2 checks it; a VRRPv3
	// backup adopts the master's interval instead (RFC 5798 6.4.2).
	AdvertInterval time.Duration
	// VIPs are virtual_ipaddress, all of Family.
	VIPs []netip.Addr
	// SkipAddrCheck turns off the address count and address list checks.
	// The state machine sets it for keepalived's skip_check_adv_addr when
	// the advert comes from the master it already follows.
	SkipAddrCheck bool
	// Unicast is true when unicast_peer is configured: adverts must then
	// arrive unicast and their TTL is not checked, else multicast with TTL
	// 255.
	Unicast bool
	// CheckUnicastSrc is keepalived's check_unicast_src: a unicast advert
	// must come from one of UnicastPeers.
	CheckUnicastSrc bool
	UnicastPeers    []netip.Addr
	// PeerTTL, when not nil, holds for each of UnicastPeers the TTL (hop
	// limit) range its adverts must arrive with: keepalived's min_ttl and
	// max_ttl. An advert outside it is DropTTL.
	PeerTTL []TTLRange
	// V3ChecksumAsV2 is keepalived's v3_checksum_as_v2: the VRRPv3 IPv4
	// checksum without the pseudo header.
	V3ChecksumAsV2 bool
	// OldUnicastChecksum is keepalived's old_unicast_checksum: a unicast
	// VRRPv3 IPv4 checksum whose pseudo header carries the multicast group,
	// not the real destination, as keepalived before 2.0.8 sent it.
	OldUnicastChecksum bool
}

// Check reports a configuration Validate cannot honour.
func (e *Expect) Check() error {
	switch e.Family {
	case IPv4, IPv6:
	default:
		return fmt.Errorf("expect: family %d: %w", e.Family, ErrFamily)
	}
	switch e.Version {
	case 2:
		if e.Family == IPv6 {
			return fmt.Errorf("expect: %w", ErrV2IPv6)
		}
		if _, err := AdvertIntFor(2, e.AdvertInterval); err != nil {
			return fmt.Errorf("expect: %w", err)
		}
		switch e.AuthType {
		case AuthNone, AuthPass:
		case AuthAH:
			return fmt.Errorf("expect: %w", ErrAuthAH)
		default:
			return fmt.Errorf("expect: auth type %d: %w", e.AuthType, ErrAuthVersion)
		}
	case 3:
		if e.AuthType != AuthNone {
			return fmt.Errorf("expect: auth type %v: %w", e.AuthType, ErrAuthVersion)
		}
	default:
		return fmt.Errorf("expect: version %d: %w", e.Version, ErrVersion)
	}
	if len(e.VIPs) > 255 {
		return fmt.Errorf("expect: %d vips: %w", len(e.VIPs), ErrTooMany)
	}
	for _, ip := range e.VIPs {
		if !e.Family.has(ip) {
			return fmt.Errorf("expect: vip %v in an %v instance: %w", ip, e.Family, ErrAddrFamily)
		}
	}
	return nil
}

// Validate checks a received VRRP message (no IP header; for IPv4 see
// SplitIPv4) against one instance and decodes it. It applies keepalived's
// receive checks in keepalived's order and returns the first that fails.
// On a drop the Advert holds what could be read, for logging: the header
// once 8 bytes arrived, the addresses once the length checked out.
//
// want should have passed Check; if not, Validate drops more than it should
// but never panics.
func Validate(pkt []byte, meta RecvMeta, want *Expect) (Advert, DropReason) {
	var a Advert
	r := ValidateInto(&a, pkt, meta, want)
	return a, r
}

// ValidateInto is Validate into a, reusing a.Addrs' storage, so a receive
// loop that keeps one Advert does not allocate.
func ValidateInto(a *Advert, pkt []byte, meta RecvMeta, want *Expect) DropReason {
	fam := want.Family
	// A zone (fe80::1%eth0) is the transport's business: peers and the
	// pseudo header compare addresses without it. A v4-mapped address
	// counts as IPv4.
	meta.Src = meta.Src.Unmap().WithZone("")
	meta.Dst = meta.Dst.Unmap().WithZone("")
	*a = Advert{Addrs: a.Addrs[:0]}
	if !fam.has(meta.Src) || !fam.has(meta.Dst) {
		return DropMeta
	}

	// keepalived's vrrp_get_header: a whole VRRP header, or nothing to
	// look at. Then the dispatcher finds the instance by VRID; an advert
	// for a VRID nobody runs is ignored there (logged only with
	// log_unknown_vrids).
	if len(pkt) < HeaderLen {
		return DropTooShort
	}
	a.decodeHeader(pkt)
	if a.VRID != want.VRID {
		return DropVRID
	}

	// vrrp_check_packet proper. The length it expects follows the
	// packet's own version, so a VRRPv3 advert to a VRRPv2 instance fails
	// on version, not length.
	if len(pkt) != MessageLen(a.Version, fam, int(a.CountIPAddrs)) {
		return DropLength
	}
	if !want.Unicast && meta.TTL >= 0 && meta.TTL != TTL {
		return DropTTL
	}
	if a.Version != want.Version {
		return DropVersion
	}
	if a.Version == 2 {
		switch a.AuthType {
		case AuthNone, AuthPass:
		case AuthAH:
			// keepalived takes AH as a valid type and then requires it
			// to be the configured one; keepvs never configures it.
			return DropAuthAH
		default:
			return DropInvalidAuthType
		}
		if a.AuthType != want.AuthType {
			return DropAuthTypeMismatch
		}
		if a.AuthType == AuthPass {
			// keepalived reads the password at the end of the IP
			// datagram; the length check made that the auth data.
			pw := pkt[len(pkt)-AuthDataLen:]
			if subtle.ConstantTimeCompare(pw, want.AuthData[:]) != 1 {
				return DropAuthFailure
			}
		}
		if time.Duration(a.AdvertInt)*time.Second != want.AdvertInterval {
			return DropAdvertInterval
		}
	}
	if a.Type != TypeAdvertisement {
		return DropType
	}
	if !want.SkipAddrCheck && int(a.CountIPAddrs) != len(want.VIPs) {
		return DropAddrCount
	}
	if !checksumOK(pkt, meta, want) {
		return DropChecksum
	}
	if meta.Dst.IsMulticast() == want.Unicast {
		return DropCast
	}

	// From here keepalived counts the packet as a received advert.
	a.decodeBody(pkt, fam)
	if !want.SkipAddrCheck {
		for _, vip := range want.VIPs {
			if !slices.Contains(a.Addrs, vip) {
				return DropAddrList
			}
		}
	}
	if want.Unicast && want.CheckUnicastSrc && !slices.Contains(want.UnicastPeers, meta.Src) {
		return DropUnicastSrc
	}
	if want.Unicast && want.PeerTTL != nil && meta.TTL >= 0 {
		if k := slices.Index(want.UnicastPeers, meta.Src); k >= 0 && k < len(want.PeerTTL) && !want.PeerTTL[k].Holds(meta.TTL) {
			return DropTTL
		}
	}
	return DropNone
}

// TTLRange is an inclusive range of IPv4 TTLs or IPv6 hop limits.
type TTLRange struct{ Min, Max uint8 }

// Holds reports whether ttl is in the range.
func (r TTLRange) Holds(ttl int) bool { return ttl >= int(r.Min) && ttl <= int(r.Max) }

// checksumOK checks the checksum of a message whose length is known good.
func checksumOK(pkt []byte, meta RecvMeta, want *Expect) bool {
	got := binary.BigEndian.Uint16(pkt[6:8])
	switch {
	case want.Version == 2:
		return checksum(pkt) == got
	case want.Family == IPv6:
		// The kernel checks this one already (keepalived sets
		// IPV6_CHECKSUM); checking again costs little and covers
		// transports that are not raw sockets.
		return checksumPseudo(pkt, IPv6, meta.Src, meta.Dst) == got
	case want.V3ChecksumAsV2:
		return checksum(pkt) == got
	}
	dst := meta.Dst
	if want.OldUnicastChecksum && want.Unicast {
		dst = GroupIPv4
	}
	return checksumPseudo(pkt, IPv4, meta.Src, dst) == got
}

// SplitIPv4 splits what an IPv4 raw socket returns, IP header and all, into
// the receive metadata and the VRRP message. It checks the header as far as
// keepalived relies on it: version 4, an IHL of at least 5 within the
// packet, protocol VRRP (AH is recognised and refused), and a total length
// equal to what was received.
func SplitIPv4(pkt []byte) (RecvMeta, []byte, DropReason) {
	if len(pkt) < 20 {
		return RecvMeta{}, nil, DropTooShort
	}
	ihl := int(pkt[0]&0x0f) * 4
	if pkt[0]>>4 != 4 || ihl < 20 || ihl > len(pkt) {
		return RecvMeta{}, nil, DropIPHeader
	}
	meta := RecvMeta{
		Src: netip.AddrFrom4([4]byte(pkt[12:16])),
		Dst: netip.AddrFrom4([4]byte(pkt[16:20])),
		TTL: int(pkt[8]),
	}
	switch pkt[9] {
	case Protocol:
	case protoAH:
		return meta, nil, DropAuthAH
	default:
		return meta, nil, DropProtocol
	}
	if int(binary.BigEndian.Uint16(pkt[2:4])) != len(pkt) {
		return meta, nil, DropIPTotalLen
	}
	return meta, pkt[ihl:], DropNone
}
