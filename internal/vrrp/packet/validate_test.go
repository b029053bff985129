package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// The instances the tests receive for: keepalived's VI_1 in each flavour.
func expectV2() *Expect {
	return &Expect{Version: 2, Family: IPv4, VRID: 51, AuthType: AuthPass, AuthData: pass111,
		AdvertInterval: time.Second, VIPs: []netip.Addr{vip4}}
}

func expectV3() *Expect {
	return &Expect{Version: 3, Family: IPv4, VRID: 51, AdvertInterval: time.Second, VIPs: []netip.Addr{vip4}}
}

func expectV3v6() *Expect {
	return &Expect{Version: 3, Family: IPv6, VRID: 51, AdvertInterval: time.Second, VIPs: []netip.Addr{vip6}}
}

func advertV2() Advert {
	return Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1,
		AuthType: AuthPass, AuthData: pass111, Addrs: []netip.Addr{vip4}}
}

func advertV3() Advert {
	return Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100, Addrs: []netip.Addr{vip4}}
}

func advertV3v6() Advert {
	return Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100, Addrs: []netip.Addr{vip6}}
}

var (
	mcast4   = RecvMeta{Src: src4, Dst: GroupIPv4, TTL: 255}
	unicast4 = RecvMeta{Src: src4, Dst: peer4, TTL: 64}
	mcast6   = RecvMeta{Src: src6, Dst: GroupIPv6, TTL: 255}
	enc4     = EncodeOptions{Family: IPv4, Src: src4, Dst: GroupIPv4}
	encUni4  = EncodeOptions{Family: IPv4, Src: src4, Dst: peer4}
	enc6     = EncodeOptions{Family: IPv6, Src: src6, Dst: GroupIPv6}
)

// craft encodes a, lets mut change the bytes, then puts back a correct
// checksum for o, so that only the check under test fails.
func craft(t testing.TB, a Advert, o EncodeOptions, mut func(b []byte)) []byte {
	t.Helper()
	b, err := a.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if mut != nil {
		mut(b)
	}
	var ck ChecksumOptions
	if a.Version == 3 && (o.Family == IPv6 || !o.V3ChecksumAsV2) {
		ck = ChecksumOptions{Src: o.Src, Dst: o.Dst}
	}
	binary.BigEndian.PutUint16(b[6:], Checksum(b, ck))
	return b
}

func with(e *Expect, f func(*Expect)) *Expect { f(e); return e }

func TestValidateDrops(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		meta RecvMeta
		want *Expect
		r    DropReason
	}{
		{"meta without source", goldenV2, RecvMeta{Dst: GroupIPv4, TTL: 255}, expectV2(), DropMeta},
		{"meta of the other family", craft(t, advertV3v6(), enc6, nil), mcast4, expectV3v6(), DropMeta},
		{"shorter than the header", goldenV2[:7], mcast4, expectV2(), DropTooShort},
		{"other vrid", craft(t, advertV2(), enc4, func(b []byte) { b[1] = 52 }), mcast4, expectV2(), DropVRID},
		{"count says 2, one address", craft(t, advertV2(), enc4, func(b []byte) { b[3] = 2 }), mcast4, expectV2(), DropLength},
		{"trailing byte", append(craft(t, advertV2(), enc4, nil), 0), mcast4, expectV2(), DropLength},
		{"v3 ipv4 layout to v6 instance", craft(t, advertV3(), enc4, nil), mcast6, expectV3v6(), DropLength},
		{"ttl 254", goldenV2, RecvMeta{Src: src4, Dst: GroupIPv4, TTL: 254}, expectV2(), DropTTL},
		{"hop limit 1", craft(t, advertV3v6(), enc6, nil), RecvMeta{Src: src6, Dst: GroupIPv6, TTL: 1}, expectV3v6(), DropTTL},
		{"v3 advert to v2 instance", craft(t, advertV3(), enc4, nil), mcast4, expectV2(), DropVersion},
		{"v2 advert to v3 instance", goldenV2, mcast4, expectV3(), DropVersion},
		{"version 15", craft(t, advertV3(), enc4, func(b []byte) { b[0] = 0xf1 }), mcast4, expectV3(), DropVersion},
		{"auth type AH", craft(t, advertV2(), enc4, func(b []byte) { b[4] = 2 }), mcast4, expectV2(), DropAuthAH},
		{"auth type 3", craft(t, advertV2(), enc4, func(b []byte) { b[4] = 3 }), mcast4, expectV2(), DropInvalidAuthType},
		{"no auth to PASS instance", craft(t, advertV2(), enc4, func(b []byte) { b[4] = 0 }), mcast4, expectV2(), DropAuthTypeMismatch},
		{"PASS to no-auth instance", goldenV2, mcast4, with(expectV2(), func(e *Expect) { e.AuthType = AuthNone }), DropAuthTypeMismatch},
		{"wrong password", goldenV2, mcast4, with(expectV2(), func(e *Expect) { e.AuthData = PassAuthData("2222") }), DropAuthFailure},
		{"password 11111 is not 1111",
			goldenV2, mcast4, with(expectV2(), func(e *Expect) { e.AuthData = PassAuthData("11111") }), DropAuthFailure},
		{"v2 interval 2s", craft(t, advertV2(), enc4, func(b []byte) { b[5] = 2 }), mcast4, expectV2(), DropAdvertInterval},
		{"type 2", craft(t, advertV2(), enc4, func(b []byte) { b[0] = 0x22 }), mcast4, expectV2(), DropType},
		{"type 0 v3", craft(t, advertV3(), enc4, func(b []byte) { b[0] = 0x30 }), mcast4, expectV3(), DropType},
		{"two addresses, one vip", craft(t, Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1,
			AuthType: AuthPass, AuthData: pass111, Addrs: []netip.Addr{vip4, vip4b}}, enc4, nil), mcast4, expectV2(), DropAddrCount},
		{"addresses, no vips", goldenV2, mcast4, with(expectV2(), func(e *Expect) { e.VIPs = nil }), DropAddrCount},
		{"v2 checksum", func() []byte {
			b := craft(t, advertV2(), enc4, nil)
			b[7]++
			return b
		}(), mcast4, expectV2(), DropChecksum},
		{"v3 checksum from another source", craft(t, advertV3(), enc4, nil),
			RecvMeta{Src: peer4, Dst: GroupIPv4, TTL: 255}, expectV3(), DropChecksum},
		{"v3 pseudo header to v3_checksum_as_v2 instance", craft(t, advertV3(), enc4, nil), mcast4,
			with(expectV3(), func(e *Expect) { e.V3ChecksumAsV2 = true }), DropChecksum},
		{"v3 as v2 to default instance", craft(t, advertV3(), EncodeOptions{Family: IPv4, V3ChecksumAsV2: true}, nil), mcast4,
			expectV3(), DropChecksum},
		{"v3 ipv6 checksum", func() []byte {
			b := craft(t, advertV3v6(), enc6, nil)
			b[6] ^= 0x80
			return b
		}(), mcast6, expectV3v6(), DropChecksum},
		{"unicast advert to multicast instance", goldenV2, RecvMeta{Src: src4, Dst: peer4, TTL: 255}, expectV2(), DropCast},
		{"multicast advert to unicast instance", goldenV2, mcast4,
			with(expectV2(), func(e *Expect) { e.Unicast = true }), DropCast},
		{"vip missing", goldenV2, mcast4, with(expectV2(), func(e *Expect) { e.VIPs = []netip.Addr{vip4b} }), DropAddrList},
		{"ipv6 vip missing", craft(t, advertV3v6(), enc6, nil), mcast6,
			with(expectV3v6(), func(e *Expect) { e.VIPs = []netip.Addr{vip6b} }), DropAddrList},
		{"source not a unicast peer", craft(t, advertV3(), encUni4, nil), unicast4,
			with(expectV3(), func(e *Expect) {
				e.Unicast, e.CheckUnicastSrc, e.UnicastPeers = true, true, []netip.Addr{peer4}
			}), DropUnicastSrc},
		{"unicast peer's ttl under its min_ttl", craft(t, advertV3(), encUni4, nil), unicast4,
			with(expectV3(), func(e *Expect) {
				e.Unicast, e.UnicastPeers, e.PeerTTL = true, []netip.Addr{peer4, src4}, []TTLRange{{0, 255}, {65, 255}}
			}), DropTTL},
		{"unicast peer's ttl over its max_ttl", craft(t, advertV3(), encUni4, nil), unicast4,
			with(expectV3(), func(e *Expect) {
				e.Unicast, e.UnicastPeers, e.PeerTTL = true, []netip.Addr{src4}, []TTLRange{{0, 63}}
			}), DropTTL},
	}
	seen := map[DropReason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r != DropMeta {
				if err := tt.want.Check(); err != nil {
					t.Fatalf("test instance: %v", err)
				}
			}
			a, r := Validate(tt.pkt, tt.meta, tt.want)
			if r != tt.r {
				t.Errorf("Validate = %v, want %v (advert %+v)", r, tt.r, a)
			}
			seen[tt.r] = true
		})
	}
	for _, tt := range splitTests {
		seen[tt.r] = true
	}
	for _, r := range Reasons() {
		if !seen[r] {
			t.Errorf("no test row for %v", r)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		meta RecvMeta
		want *Expect
		a    Advert
	}{
		{"keepalived v2", goldenV2, mcast4, expectV2(), advertV2()},
		{"v2 no auth", craft(t, Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1,
			Addrs: []netip.Addr{vip4}}, enc4, nil), mcast4,
			with(expectV2(), func(e *Expect) { e.AuthType, e.AuthData = AuthNone, [8]byte{} }),
			Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1, Addrs: []netip.Addr{vip4}}},
		{"v2 priority 0", craft(t, func() Advert { a := advertV2(); a.Priority = 0; return a }(), enc4, nil), mcast4, expectV2(),
			func() Advert { a := advertV2(); a.Priority = 0; return a }()},
		{"v3 multicast", goldenV3, mcast4, expectV3(), advertV3()},
		{"v3 other interval is adopted, not refused", craft(t, func() Advert { a := advertV3(); a.AdvertInt = 25; return a }(), enc4, nil),
			mcast4, expectV3(), func() Advert { a := advertV3(); a.AdvertInt = 25; return a }()},
		{"v3 unicast ttl not checked", craft(t, advertV3(), encUni4, nil), unicast4,
			with(expectV3(), func(e *Expect) {
				e.Unicast, e.CheckUnicastSrc, e.UnicastPeers = true, true, []netip.Addr{peer4, src4}
			}), advertV3()},
		{"v3 old unicast checksum", craft(t, advertV3(), enc4, nil), unicast4,
			with(expectV3(), func(e *Expect) { e.Unicast, e.OldUnicastChecksum = true, true }), advertV3()},
		{"v3 as v2", craft(t, advertV3(), EncodeOptions{Family: IPv4, V3ChecksumAsV2: true}, nil), mcast4,
			with(expectV3(), func(e *Expect) { e.V3ChecksumAsV2 = true }), advertV3()},
		{"v3 ipv6", craft(t, advertV3v6(), enc6, nil), mcast6, expectV3v6(), advertV3v6()},
		{"v3 ipv6 no hop limit reported", craft(t, advertV3v6(), enc6, nil), RecvMeta{Src: src6, Dst: GroupIPv6, TTL: -1},
			expectV3v6(), advertV3v6()},
		{"v3 ipv6 zoned source", craft(t, advertV3v6(), enc6, nil), RecvMeta{Src: src6.WithZone("eth0"), Dst: GroupIPv6, TTL: 255},
			expectV3v6(), advertV3v6()},
		{"v4-mapped metadata", goldenV2, RecvMeta{Src: netip.AddrFrom16(src4.As16()), Dst: netip.AddrFrom16(GroupIPv4.As16()), TTL: 255},
			expectV2(), advertV2()},
		{"skip_check_adv_addr", craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip4b, vip4}}, enc4, nil), mcast4,
			with(expectV3(), func(e *Expect) { e.SkipAddrCheck, e.VIPs = true, []netip.Addr{vip4b} }),
			Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100, Addrs: []netip.Addr{vip4b, vip4}}},
		{"vips in another order", craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip4b, vip4}}, enc4, nil), mcast4,
			with(expectV3(), func(e *Expect) { e.VIPs = []netip.Addr{vip4, vip4b} }),
			Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100, Addrs: []netip.Addr{vip4b, vip4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.want.Check(); err != nil {
				t.Fatalf("test instance: %v", err)
			}
			got, r := Validate(tt.pkt, tt.meta, tt.want)
			if r != DropNone {
				t.Fatalf("Validate dropped: %v", r)
			}
			want := tt.a
			want.CountIPAddrs = uint8(len(want.Addrs))
			want.Checksum = binary.BigEndian.Uint16(tt.pkt[6:])
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Validate (-want +got):\n-%+v\n+%+v", want, got)
			}
		})
	}
}

func TestValidateIntoReuses(t *testing.T) {
	want := expectV2()
	var a Advert
	if n := testing.AllocsPerRun(100, func() {
		if r := ValidateInto(&a, goldenV2, mcast4, want); r != DropNone {
			t.Fatal(r)
		}
	}); n != 0 {
		t.Errorf("ValidateInto with a reused Advert allocates %v times", n)
	}
	// A drop after a success must not leave the old addresses behind.
	if r := ValidateInto(&a, goldenV2[:7], mcast4, want); r != DropTooShort || len(a.Addrs) != 0 || a.VRID != 0 {
		t.Errorf("after drop: %v %+v", r, a)
	}
}

// ipv4Packet wraps payload in the IPv4 header keepalived sends (TOS 0xc0).
func ipv4Packet(src, dst netip.Addr, ttl, proto uint8, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0], h[1] = 0x45, 0xc0
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h[8], h[9] = ttl, proto
	copy(h[12:16], src.AsSlice())
	copy(h[16:20], dst.AsSlice())
	return append(h, payload...)
}

var splitTests = []struct {
	name string
	pkt  []byte
	r    DropReason
}{
	{"19 bytes", ipv4Packet(src4, GroupIPv4, 255, Protocol, nil)[:19], DropTooShort},
	{"ipv6 version", func() []byte { b := ipv4Packet(src4, GroupIPv4, 255, Protocol, goldenV2); b[0] = 0x65; return b }(), DropIPHeader},
	{"ihl 4", func() []byte { b := ipv4Packet(src4, GroupIPv4, 255, Protocol, goldenV2); b[0] = 0x44; return b }(), DropIPHeader},
	{"ihl past the end", func() []byte { b := ipv4Packet(src4, GroupIPv4, 255, Protocol, nil); b[0] = 0x46; return b }(), DropIPHeader},
	{"udp", ipv4Packet(src4, GroupIPv4, 255, 17, goldenV2), DropProtocol},
	{"ipsec ah", ipv4Packet(src4, GroupIPv4, 255, 51, goldenV2), DropAuthAH},
	{"total length short", func() []byte { b := ipv4Packet(src4, GroupIPv4, 255, Protocol, goldenV2); b[3]--; return b }(), DropIPTotalLen},
	{"total length long", func() []byte { b := ipv4Packet(src4, GroupIPv4, 255, Protocol, goldenV2); b[3]++; return b }(), DropIPTotalLen},
	{"keepalived's advert", ipv4Packet(src4, GroupIPv4, 255, Protocol, goldenV2), DropNone},
}

func TestSplitIPv4(t *testing.T) {
	for _, tt := range splitTests {
		t.Run(tt.name, func(t *testing.T) {
			meta, payload, r := SplitIPv4(tt.pkt)
			if r != tt.r {
				t.Fatalf("SplitIPv4 = %v, want %v", r, tt.r)
			}
			if r != DropNone {
				return
			}
			if meta != mcast4 {
				t.Errorf("meta = %+v, want %+v", meta, mcast4)
			}
			if _, r := Validate(payload, meta, expectV2()); r != DropNone {
				t.Errorf("Validate after split: %v", r)
			}
		})
	}
	// Options in the header: IHL 6.
	b := ipv4Packet(src4, GroupIPv4, 255, Protocol, append([]byte{1, 1, 1, 0}, goldenV2...))
	b[0] = 0x46
	if _, payload, r := SplitIPv4(b); r != DropNone || string(payload) != string(goldenV2) {
		t.Errorf("with options: %v % x", r, payload)
	}
}

func TestExpectCheck(t *testing.T) {
	tests := []struct {
		name string
		e    *Expect
		err  error
	}{
		{"v2", expectV2(), nil},
		{"v3", expectV3(), nil},
		{"v3 ipv6", expectV3v6(), nil},
		{"no family", with(expectV2(), func(e *Expect) { e.Family = 0 }), ErrFamily},
		{"v2 ipv6", with(expectV3v6(), func(e *Expect) { e.Version = 2 }), ErrV2IPv6},
		{"version 4", with(expectV3(), func(e *Expect) { e.Version = 4 }), ErrVersion},
		{"v2 fractional interval", with(expectV2(), func(e *Expect) { e.AdvertInterval = 1500 * time.Millisecond }), ErrInterval},
		{"AH", with(expectV2(), func(e *Expect) { e.AuthType = AuthAH }), ErrAuthAH},
		{"auth type 5", with(expectV2(), func(e *Expect) { e.AuthType = 5 }), ErrAuthVersion},
		{"v3 auth", with(expectV3(), func(e *Expect) { e.AuthType = AuthPass }), ErrAuthVersion},
		{"ipv6 vip in ipv4", with(expectV3(), func(e *Expect) { e.VIPs = []netip.Addr{vip6} }), ErrAddrFamily},
		{"too many vips", with(expectV3(), func(e *Expect) { e.VIPs = make([]netip.Addr, 256) }), ErrTooMany},
	}
	for _, tt := range tests {
		if err := tt.e.Check(); !errors.Is(err, tt.err) {
			t.Errorf("%s: Check() = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestStatsCount(t *testing.T) {
	tests := []struct {
		r    DropReason
		prio uint8
		want Stats
	}{
		{DropNone, 100, Stats{RcvdAdvertisements: 1}},
		{DropNone, 0, Stats{RcvdAdvertisements: 1, RcvdPriZeroPackets: 1}},
		{DropIPHeader, 0, Stats{PacketLengthErrors: 1}},
		{DropProtocol, 0, Stats{}},
		{DropIPTotalLen, 0, Stats{PacketLengthErrors: 1}},
		{DropMeta, 0, Stats{}},
		{DropTooShort, 0, Stats{PacketLengthErrors: 1}},
		{DropVRID, 0, Stats{VrIdErrors: 1}},
		{DropAuthAH, 0, Stats{AuthTypeMismatch: 1}},
		{DropLength, 0, Stats{PacketLengthErrors: 1}},
		{DropTTL, 0, Stats{IPTTLErrors: 1}},
		{DropVersion, 0, Stats{VersionErrors: 1}},
		{DropInvalidAuthType, 0, Stats{InvalidAuthType: 1}},
		{DropAuthTypeMismatch, 0, Stats{AuthTypeMismatch: 1}},
		{DropAuthFailure, 0, Stats{AuthFailures: 1}},
		{DropAdvertInterval, 0, Stats{AdvIntervalErrors: 1}},
		{DropType, 0, Stats{RcvdInvalidTypePackets: 1}},
		{DropAddrCount, 0, Stats{AddressListErrors: 1}},
		{DropChecksum, 0, Stats{ChecksumErrors: 1}},
		{DropCast, 0, Stats{AddressListErrors: 1}},
		{DropAddrList, 0, Stats{RcvdAdvertisements: 1, AddressListErrors: 1}},
		{DropUnicastSrc, 0, Stats{RcvdAdvertisements: 1}},
	}
	covered := map[DropReason]bool{}
	for _, tt := range tests {
		covered[tt.r] = true
		var s Stats
		s.Count(&Advert{Priority: tt.prio}, tt.r)
		want := tt.want
		if tt.r != DropNone {
			want.Drops[tt.r] = 1
		}
		if s != want {
			t.Errorf("Count(prio %d, %v):\n got %+v\nwant %+v", tt.prio, tt.r, s, want)
		}
	}
	for _, r := range Reasons() {
		if !covered[r] {
			t.Errorf("no Stats row for %v", r)
		}
	}
	var s Stats
	s.CountSent(&Advert{Priority: 0})
	s.CountSent(&Advert{Priority: 100})
	if s.SentAdvertisements != 2 || s.SentPriZeroPackets != 1 {
		t.Errorf("CountSent: %+v", s)
	}
}

func TestDropReasonString(t *testing.T) {
	names := map[string]DropReason{}
	for _, r := range append(Reasons(), DropNone) {
		s := r.String()
		if s == "" {
			t.Errorf("%d has no name", r)
		}
		if o, dup := names[s]; dup {
			t.Errorf("%d and %d are both %q", o, r, s)
		}
		names[s] = r
	}
	if s := DropReason(200).String(); s != "DropReason(200)" {
		t.Errorf("unknown reason prints %q", s)
	}
	if DropNone.Dropped() || !DropChecksum.Dropped() {
		t.Error("Dropped is wrong")
	}
}

// TestPeerTTLInRange: a unicast advert whose TTL is within its peer's
// min_ttl..max_ttl is accepted, and the range is the sender's, not
// another peer's.
func TestPeerTTLInRange(t *testing.T) {
	pkt := craft(t, advertV3(), encUni4, nil)
	e := with(expectV3(), func(e *Expect) {
		e.Unicast, e.UnicastPeers, e.PeerTTL = true, []netip.Addr{peer4, src4}, []TTLRange{{200, 255}, {64, 64}}
	})
	if _, r := Validate(pkt, unicast4, e); r != DropNone {
		t.Fatalf("ttl 64 from a peer with range 64-64: %v", r)
	}
}
