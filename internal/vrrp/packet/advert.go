// Package packet is the VRRP wire codec: VRRPv2 (RFC 3768) adverts over
// IPv4, VRRPv3 (RFC 5798) adverts over IPv4 and IPv6, their checksums, and
// the receive-side validation keepalived applies, which names one
// DropReason for every packet it refuses.
//
// The package knows bytes, not sockets or timers: vrrp/transport hands it
// what a raw socket read and vrrp (the state machine) acts on what it
// returns. Everything here is pure and allocation-lean, since it runs for
// every advert on the link, including other routers' VRIDs.
package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number (IPv4) and next header (IPv6) of VRRP.
const Protocol = 112

// protoAH is IPsec AH, which keepalived's VRRPv2 auth_type AH wraps adverts
// in (RFC 2338 section 5.3.6.3).
const protoAH = 51

// TTL is the IPv4 TTL and IPv6 hop limit a multicast advert is sent with and
// must arrive with: a value below it means the advert crossed a router.
const TTL = 255

// TypeAdvertisement is the only VRRP packet type (RFC 3768 5.3.2, RFC 5798 5.2.2).
const TypeAdvertisement = 1

// Multicast groups adverts go to (RFC 5798 5.1.1.2 and 5.1.2.2).
var (
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupIPv6 = netip.AddrFrom16([16]byte{0xff, 0x02, 15: 0x12})
)

// Lengths of the wire fields.
const (
	HeaderLen   = 8 // version/type through checksum
	AuthDataLen = 8 // VRRPv2 Authentication Data
	// MaxAdvertIntV3 is the largest 12-bit VRRPv3 Max Adver Int (centiseconds).
	MaxAdvertIntV3 = 0x0fff
	// MaxAdvertIntV2 is the largest 8-bit VRRPv2 Adver Int (seconds).
	MaxAdvertIntV2 = 0xff
)

// Family is the IP family an instance runs over; it decides the address size
// in the advert and the checksum's pseudo header.
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// addrLen is the size of one address in the advert, 0 for an unknown family.
func (f Family) addrLen() int {
	switch f {
	case IPv4:
		return 4
	case IPv6:
		return 16
	}
	return 0
}

func (f Family) has(a netip.Addr) bool {
	switch f {
	case IPv4:
		return a.Is4()
	case IPv6:
		// A v4-mapped address is 16 bytes on the wire like any other.
		return a.Is6()
	}
	return false
}

// AuthType is the VRRPv2 Auth Type field (RFC 2338 5.3.6; RFC 3768 keeps
// only 0 and marks 1 and 2 as "reserved for compatibility").
type AuthType uint8

const (
	AuthNone AuthType = 0
	// AuthPass is keepalived's auth_type PASS: a clear-text password of up
	// to 8 bytes in the Authentication Data field.
	AuthPass AuthType = 1
	// AuthAH is keepalived's auth_type AH (IPsec AH, HMAC-MD5-96). keepvs
	// recognises it and refuses it: DropAuthAH.
	AuthAH AuthType = 2
)

func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "none"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return fmt.Sprintf("AuthType(%d)", uint8(t))
}

// Advert is one VRRP advertisement, the VRRP message without the IP header.
type Advert struct {
	Version  uint8 // 2 or 3
	Type     uint8 // TypeAdvertisement on the wire; 4 bits
	VRID     uint8
	Priority uint8
	// CountIPAddrs is the Count IP Addrs field as received. Encoding writes
	// len(Addrs) instead.
	CountIPAddrs uint8
	AuthType     AuthType // VRRPv2 only
	// AdvertInt is the raw interval field: VRRPv2 Adver Int in seconds (8
	// bits), VRRPv3 Max Adver Int in centiseconds (12 bits; the 4 reserved
	// bits above it are dropped on decode and sent as zero).
	// AdvertInterval converts it.
	AdvertInt uint16
	// Checksum is the field as received. Encoding computes it.
	Checksum uint16
	Addrs    []netip.Addr
	AuthData [AuthDataLen]byte // VRRPv2 over IPv4 only
}

// AdvertInterval is AdvertInt as a duration in the version's unit.
func (a *Advert) AdvertInterval() time.Duration {
	if a.Version == 2 {
		return time.Duration(a.AdvertInt) * time.Second
	}
	return time.Duration(a.AdvertInt) * 10 * time.Millisecond
}

// SetAdvertInterval sets AdvertInt from d in the unit of a.Version, which
// must be set first. d must be a whole number of units (seconds for v2,
// centiseconds for v3) and fit the field; keepalived rounds a fractional v2
// advert_int when it reads the config, which is the config layer's job.
func (a *Advert) SetAdvertInterval(d time.Duration) error {
	v, err := AdvertIntFor(a.Version, d)
	if err != nil {
		return err
	}
	a.AdvertInt = v
	return nil
}

// AdvertIntFor converts d to the raw interval field of the given version.
func AdvertIntFor(version uint8, d time.Duration) (uint16, error) {
	unit, limit := time.Duration(0), 0
	switch version {
	case 2:
		unit, limit = time.Second, MaxAdvertIntV2
	case 3:
		unit, limit = 10*time.Millisecond, MaxAdvertIntV3
	default:
		return 0, fmt.Errorf("advert interval: version %d: %w", version, ErrVersion)
	}
	if d <= 0 || d%unit != 0 || d/unit > time.Duration(limit) {
		return 0, fmt.Errorf("advert interval %v for VRRPv%d: %w", d, version, ErrInterval)
	}
	return uint16(d / unit), nil
}

// PassAuthData is keepalived's auth_pass as it goes on the wire: the first 8
// bytes of the password, zero padded.
func PassAuthData(password string) [AuthDataLen]byte {
	var b [AuthDataLen]byte
	copy(b[:], password)
	return b
}

// Sentinel errors of Decode and encoding; test with errors.Is.
var (
	ErrTooShort    = errors.New("vrrp message shorter than its header")
	ErrVersion     = errors.New("vrrp version not 2 or 3")
	ErrV2IPv6      = errors.New("vrrpv2 over ipv6 is not supported")
	ErrFamily      = errors.New("unknown address family")
	ErrLength      = errors.New("vrrp message length does not match its address count")
	ErrInterval    = errors.New("advert interval out of range")
	ErrAddrFamily  = errors.New("address of the wrong family")
	ErrTooMany     = errors.New("more than 255 addresses")
	ErrEndpoints   = errors.New("checksum needs source and destination addresses of the family")
	ErrType        = errors.New("vrrp type does not fit 4 bits")
	ErrAuthAH      = errors.New("auth type AH is not supported")
	ErrAuthVersion = errors.New("authentication is VRRPv2 only")
)

// MessageLen is the length of a well-formed advert of this version and
// family with n addresses: the header, n addresses, and for VRRPv2 over
// IPv4 the 8 bytes of authentication data.
func MessageLen(version uint8, fam Family, n int) int {
	l := HeaderLen + n*fam.addrLen()
	if version == 2 && fam == IPv4 {
		l += AuthDataLen
	}
	return l
}

// Decode parses the VRRP message b (no IP header) of the given family. It
// checks only what the layout needs: a version it knows and a length that
// matches Count IP Addrs. Everything else, checksum included, is Validate's.
func Decode(b []byte, fam Family) (Advert, error) {
	var a Advert
	err := a.decode(b, fam)
	return a, err
}

// DecodeInto is Decode into a, reusing a.Addrs' storage.
func DecodeInto(a *Advert, b []byte, fam Family) error { return a.decode(b, fam) }

func (a *Advert) decode(b []byte, fam Family) error {
	if fam.addrLen() == 0 {
		return fmt.Errorf("decode: family %d: %w", fam, ErrFamily)
	}
	if len(b) < HeaderLen {
		return fmt.Errorf("decode: %d bytes: %w", len(b), ErrTooShort)
	}
	a.decodeHeader(b)
	switch a.Version {
	case 2:
		if fam == IPv6 {
			return fmt.Errorf("decode: %w", ErrV2IPv6)
		}
	case 3:
	default:
		return fmt.Errorf("decode: version %d: %w", a.Version, ErrVersion)
	}
	if want := MessageLen(a.Version, fam, int(a.CountIPAddrs)); len(b) != want {
		return fmt.Errorf("decode: %d bytes, %d addresses want %d: %w", len(b), a.CountIPAddrs, want, ErrLength)
	}
	a.decodeBody(b, fam)
	return nil
}

// decodeHeader reads the fixed 8 bytes; b must hold them.
func (a *Advert) decodeHeader(b []byte) {
	a.Version = b[0] >> 4
	a.Type = b[0] & 0x0f
	a.VRID = b[1]
	a.Priority = b[2]
	a.CountIPAddrs = b[3]
	if a.Version == 2 {
		a.AuthType = AuthType(b[4])
		a.AdvertInt = uint16(b[5])
	} else {
		a.AuthType = 0
		a.AdvertInt = binary.BigEndian.Uint16(b[4:6]) & MaxAdvertIntV3
	}
	a.Checksum = binary.BigEndian.Uint16(b[6:8])
	a.Addrs = a.Addrs[:0]
	a.AuthData = [AuthDataLen]byte{}
}

// decodeBody reads the addresses and auth data; the length must already be
// MessageLen.
func (a *Advert) decodeBody(b []byte, fam Family) {
	n := int(a.CountIPAddrs)
	if cap(a.Addrs) < n {
		a.Addrs = make([]netip.Addr, n)
	} else {
		a.Addrs = a.Addrs[:n]
	}
	p := b[HeaderLen:]
	for i := range n {
		if fam == IPv4 {
			a.Addrs[i] = netip.AddrFrom4([4]byte(p[:4]))
			p = p[4:]
		} else {
			a.Addrs[i] = netip.AddrFrom16([16]byte(p[:16]))
			p = p[16:]
		}
	}
	if a.Version == 2 && fam == IPv4 {
		a.AuthData = [AuthDataLen]byte(p[:AuthDataLen])
	}
}

// EncodeOptions are what encoding needs beyond the advert: the family, and
// for a VRRPv3 checksum the addresses of its pseudo header.
type EncodeOptions struct {
	Family Family
	// Src and Dst are the IP source and destination the advert is sent
	// with (Dst the multicast group or, unicast, the peer). VRRPv3 needs
	// them unless V3ChecksumAsV2 over IPv4; VRRPv2 ignores them.
	Src, Dst netip.Addr
	// V3ChecksumAsV2 is keepalived's v3_checksum_as_v2: the VRRPv3 IPv4
	// checksum covers the message only, as VRRPv2's does and as Cisco and
	// RFC 9568 compute it. It has no effect over IPv6.
	V3ChecksumAsV2 bool
}

// Marshal encodes a into a new buffer.
func (a *Advert) Marshal(o EncodeOptions) ([]byte, error) {
	n := len(a.Addrs)
	return a.AppendTo(make([]byte, 0, MessageLen(a.Version, o.Family, n)), o)
}

// AppendTo appends the encoded advert to b. It writes len(Addrs) as the
// address count and computes the checksum; CountIPAddrs and Checksum are
// ignored. It allocates only when b lacks the capacity.
func (a *Advert) AppendTo(b []byte, o EncodeOptions) ([]byte, error) {
	fam := o.Family
	if fam.addrLen() == 0 {
		return b, fmt.Errorf("encode: family %d: %w", fam, ErrFamily)
	}
	switch a.Version {
	case 2:
		if fam == IPv6 {
			return b, fmt.Errorf("encode: %w", ErrV2IPv6)
		}
	case 3:
		if a.AuthType != AuthNone {
			return b, fmt.Errorf("encode: auth type %v: %w", a.AuthType, ErrAuthVersion)
		}
		if a.AdvertInt > MaxAdvertIntV3 {
			return b, fmt.Errorf("encode: max adver int %d: %w", a.AdvertInt, ErrInterval)
		}
	default:
		return b, fmt.Errorf("encode: version %d: %w", a.Version, ErrVersion)
	}
	if a.Version == 2 && a.AdvertInt > MaxAdvertIntV2 {
		return b, fmt.Errorf("encode: adver int %d: %w", a.AdvertInt, ErrInterval)
	}
	if a.Type > 0x0f {
		return b, fmt.Errorf("encode: type %d: %w", a.Type, ErrType)
	}
	if len(a.Addrs) > 255 {
		return b, fmt.Errorf("encode: %d addresses: %w", len(a.Addrs), ErrTooMany)
	}
	for _, ip := range a.Addrs {
		if !fam.has(ip) {
			return b, fmt.Errorf("encode: %v in an %v advert: %w", ip, fam, ErrAddrFamily)
		}
	}
	pseudo := a.Version == 3 && (fam == IPv6 || !o.V3ChecksumAsV2)
	if pseudo && (!fam.has(o.Src) || !fam.has(o.Dst)) {
		return b, fmt.Errorf("encode: src %v dst %v: %w", o.Src, o.Dst, ErrEndpoints)
	}

	start := len(b)
	b = append(b, a.Version<<4|a.Type, a.VRID, a.Priority, uint8(len(a.Addrs)))
	if a.Version == 2 {
		b = append(b, uint8(a.AuthType), uint8(a.AdvertInt))
	} else {
		b = binary.BigEndian.AppendUint16(b, a.AdvertInt)
	}
	b = append(b, 0, 0) // checksum, computed below
	for _, ip := range a.Addrs {
		if fam == IPv4 {
			a4 := ip.As4()
			b = append(b, a4[:]...)
		} else {
			a16 := ip.As16()
			b = append(b, a16[:]...)
		}
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	var ck uint16
	if pseudo {
		ck = checksumPseudo(msg, fam, o.Src, o.Dst)
	} else {
		ck = checksum(msg)
	}
	binary.BigEndian.PutUint16(msg[6:8], ck)
	return b, nil
}
