package packet

import "fmt"

// DropReason is why a received packet was refused; DropNone means it was
// accepted. The values are listed in the order the checks run, except
// DropAuthAH, which SplitIPv4 (IP protocol 51) and the VRRPv2 auth type
// check (auth type 2) both return.
type DropReason uint8

const (
	DropNone DropReason = iota

	// Found by SplitIPv4, before the VRRP message is looked at.

	// DropIPHeader: not IPv4, or an IHL below 5 or past the packet's end.
	DropIPHeader
	// DropProtocol: an IP protocol other than VRRP (112) or AH (51).
	DropProtocol
	// DropIPTotalLen: the IP total length is not the length received.
	DropIPTotalLen

	// Found by Validate, in keepalived's order.

	// DropMeta: the receive metadata lacks a source or destination of the
	// instance's family. A transport bug, not something on the wire.
	DropMeta
	// DropTooShort: less than the 8-byte VRRP header.
	DropTooShort
	// DropVRID: another virtual router's advert.
	DropVRID
	// DropAuthAH: IPsec AH (IP protocol 51, or VRRPv2 auth type 2), which
	// keepvs does not implement.
	DropAuthAH
	// DropLength: the length is not what Count IP Addrs makes it.
	DropLength
	// DropTTL: a multicast advert whose TTL / hop limit is not 255.
	DropTTL
	// DropVersion: not the instance's VRRP version.
	DropVersion
	// DropInvalidAuthType: a VRRPv2 auth type other than 0, 1, 2.
	DropInvalidAuthType
	// DropAuthTypeMismatch: a VRRPv2 auth type other than the instance's.
	DropAuthTypeMismatch
	// DropAuthFailure: a VRRPv2 PASS password other than the instance's.
	DropAuthFailure
	// DropAdvertInterval: a VRRPv2 Adver Int other than the instance's.
	DropAdvertInterval
	// DropType: a type other than ADVERTISEMENT.
	DropType
	// DropAddrCount: Count IP Addrs is not the number of VIPs configured.
	DropAddrCount
	// DropChecksum: the checksum does not match.
	DropChecksum
	// DropCast: a multicast advert to a unicast instance or the reverse.
	DropCast
	// DropAddrList: a configured VIP is missing from the advert.
	DropAddrList
	// DropUnicastSrc: check_unicast_src is on and the source is not a
	// unicast_peer.
	DropUnicastSrc

	numReasons
)

var reasonNames = [numReasons]string{
	DropNone:             "accepted",
	DropIPHeader:         "bad ip header",
	DropProtocol:         "not vrrp protocol",
	DropIPTotalLen:       "ip total length mismatch",
	DropMeta:             "receive metadata incomplete",
	DropTooShort:         "shorter than vrrp header",
	DropVRID:             "vrid mismatch",
	DropAuthAH:           "ipsec ah not supported",
	DropLength:           "length does not match address count",
	DropTTL:              "ttl not 255",
	DropVersion:          "version mismatch",
	DropInvalidAuthType:  "invalid auth type",
	DropAuthTypeMismatch: "auth type mismatch",
	DropAuthFailure:      "auth failure",
	DropAdvertInterval:   "advert interval mismatch",
	DropType:             "invalid type",
	DropAddrCount:        "address count mismatch",
	DropChecksum:         "checksum error",
	DropCast:             "unicast/multicast mismatch",
	DropAddrList:         "vip missing from advert",
	DropUnicastSrc:       "source not a unicast peer",
}

func (r DropReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Dropped reports whether r refuses the packet.
func (r DropReason) Dropped() bool { return r != DropNone }

// Reasons lists every DropReason other than DropNone, in check order.
func Reasons() []DropReason {
	rs := make([]DropReason, 0, numReasons-1)
	for r := DropNone + 1; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}
