package packet

// Stats are one instance's packet counters, named after the VRRPv3 MIB
// (RFC 6527 vrrpv3StatisticsTable) and, for authentication, the VRRPv2 MIB
// (RFC 2787 vrrpRouterStatsTable). State counters (MasterTransitions,
// NewMasterReason) belong to the state machine.
//
// RFC 6527 keeps ChecksumErrors, VersionErrors and VrIdErrors per router,
// not per instance; they are here per instance, and the router's are their
// sum. VrIdErrors counts adverts for other VRIDs that reached this
// instance's Validate; keepalived's dispatcher drops those before any
// instance sees them and counts nothing.
//
// Stats is a plain value: the goroutine that owns the instance updates it.
type Stats struct {
	RcvdAdvertisements     uint64
	AdvIntervalErrors      uint64
	IPTTLErrors            uint64
	RcvdPriZeroPackets     uint64
	SentPriZeroPackets     uint64
	RcvdInvalidTypePackets uint64
	AddressListErrors      uint64
	PacketLengthErrors     uint64
	ChecksumErrors         uint64
	VersionErrors          uint64
	VrIdErrors             uint64
	// VRRPv2 authentication (RFC 2787).
	AuthFailures     uint64
	InvalidAuthType  uint64
	AuthTypeMismatch uint64

	SentAdvertisements uint64
	// Drops counts every refused packet by reason, including those no MIB
	// counter covers; Drops[DropNone] stays zero.
	Drops [numReasons]uint64
}

// Count records the outcome of one received packet: the Advert and
// DropReason Validate (or SplitIPv4) returned. It follows keepalived's
// accounting: a packet is a received advert once it has passed the checks
// up to the checksum and unicast/multicast match, even if the address list
// check then refuses it; priority 0 is counted only on accepted adverts.
func (s *Stats) Count(a *Advert, r DropReason) {
	if r < numReasons && r != DropNone {
		s.Drops[r]++
	}
	switch r {
	case DropNone:
		s.RcvdAdvertisements++
		if a.Priority == 0 {
			s.RcvdPriZeroPackets++
		}
	case DropAddrList, DropUnicastSrc:
		s.RcvdAdvertisements++
		if r == DropAddrList {
			s.AddressListErrors++
		}
	case DropTooShort, DropLength, DropIPTotalLen, DropIPHeader:
		s.PacketLengthErrors++
	case DropTTL:
		s.IPTTLErrors++
	case DropVersion:
		s.VersionErrors++
	case DropVRID:
		s.VrIdErrors++
	case DropInvalidAuthType:
		s.InvalidAuthType++
	case DropAuthTypeMismatch, DropAuthAH:
		// keepalived: an AH packet to a non-AH instance, or a non-AH
		// packet to an AH one, is an auth type mismatch.
		s.AuthTypeMismatch++
	case DropAuthFailure:
		s.AuthFailures++
	case DropAdvertInterval:
		s.AdvIntervalErrors++
	case DropType:
		s.RcvdInvalidTypePackets++
	case DropAddrCount, DropCast:
		s.AddressListErrors++
	case DropChecksum:
		s.ChecksumErrors++
	}
}

// CountSent records one advert sent.
func (s *Stats) CountSent(a *Advert) {
	s.SentAdvertisements++
	if a.Priority == 0 {
		s.SentPriZeroPackets++
	}
}
