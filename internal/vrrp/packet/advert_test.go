package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	vip4    = netip.MustParseAddr("192.168.80.130")
	vip4b   = netip.MustParseAddr("192.168.80.131")
	src4    = netip.MustParseAddr("192.168.80.1")
	peer4   = netip.MustParseAddr("192.168.80.2")
	vip6    = netip.MustParseAddr("2001:db8::80:130")
	vip6b   = netip.MustParseAddr("2001:db8::80:131")
	src6    = netip.MustParseAddr("fe80::1")
	peer6   = netip.MustParseAddr("fe80::2")
	pass111 = PassAuthData("1111")
)

// The advert keepalived sends for
//
//	vrrp_instance VI_1 {
//	    virtual_router_id 51
//	    priority 100
//	    advert_int 1
//	    authentication { auth_type PASS; auth_pass 1111 }
//	    virtual_ipaddress { 192.168.80.130 }
//	}
//
// Checksum by hand (RFC 1071: sum the 16-bit words with the checksum field
// zero, fold the carries, complement):
//
//	2133 vers 2, type 1, vrid 0x33
//	6401 priority 100, 1 address
//	0101 auth type PASS, adver int 1
//	c0a8 5082 192.168.80.130
//	3131 3131 0000 0000 "1111" zero padded
//	sum = 0x2133+0x6401+0x0101+0xc0a8+0x5082+0x3131+0x3131 = 0x1f9c1
//	fold: 0xf9c1 + 0x1 = 0xf9c2; complement: 0x063d
var goldenV2 = []byte{
	0x21, 0x33, 0x64, 0x01,
	0x01, 0x01, 0x06, 0x3d,
	0xc0, 0xa8, 0x50, 0x82,
	'1', '1', '1', '1', 0, 0, 0, 0,
}

// The VRRPv3 advert of the same instance (advert_int 1 = 100 cs), sent
// from 192.168.80.1 to 224.0.0.18. By hand:
//
//	pseudo header: c0a8 5001 (src) e000 0012 (dst) 0070 (zero, proto 112)
//	               000c (length 12)
//	  sum = 0x1f137
//	message: 3133 6401 0064 c0a8 5082
//	  sum = 0x1a6c2
//	total 0x397f9, fold 0x97fc, complement 0x6803
//	v3_checksum_as_v2 (message only): fold 0xa6c3, complement 0x593c
var goldenV3 = []byte{
	0x31, 0x33, 0x64, 0x01,
	0x00, 0x64, 0x68, 0x03,
	0xc0, 0xa8, 0x50, 0x82,
}

func TestGoldenV2(t *testing.T) {
	a := Advert{Version: 2, Type: TypeAdvertisement, VRID: 51, Priority: 100,
		AuthType: AuthPass, AuthData: pass111, Addrs: []netip.Addr{vip4}}
	if err := a.SetAdvertInterval(time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := a.Marshal(EncodeOptions{Family: IPv4})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenV2) {
		t.Errorf("Marshal:\n got % x\nwant % x", got, goldenV2)
	}
	if ck := independentChecksum(nil, goldenV2); ck != 0x063d {
		t.Errorf("independent checksum = %#04x, want 0x063d", ck)
	}
	d, err := Decode(goldenV2, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	a.CountIPAddrs, a.Checksum = 1, 0x063d
	if !reflect.DeepEqual(d, a) {
		t.Errorf("Decode (-want +got):\n-%+v\n+%+v", a, d)
	}
}

func TestGoldenV3(t *testing.T) {
	a := Advert{Version: 3, Type: TypeAdvertisement, VRID: 51, Priority: 100, AdvertInt: 100,
		Addrs: []netip.Addr{vip4}}
	got, err := a.Marshal(EncodeOptions{Family: IPv4, Src: src4, Dst: GroupIPv4})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, goldenV3) {
		t.Errorf("Marshal:\n got % x\nwant % x", got, goldenV3)
	}
	asV2, err := a.Marshal(EncodeOptions{Family: IPv4, V3ChecksumAsV2: true})
	if err != nil {
		t.Fatal(err)
	}
	if ck := binary.BigEndian.Uint16(asV2[6:]); ck != 0x593c {
		t.Errorf("v3_checksum_as_v2 checksum = %#04x, want 0x593c", ck)
	}
	if d := a.AdvertInterval(); d != time.Second {
		t.Errorf("AdvertInterval = %v, want 1s", d)
	}
}

// pseudo4 and pseudo6 build the pseudo headers from the RFC text, apart
// from the package's code.
func pseudo4(src, dst netip.Addr, n int) []byte {
	b := append(src.AsSlice(), dst.AsSlice()...)
	return append(b, 0, 112, byte(n>>8), byte(n))
}

func pseudo6(src, dst netip.Addr, n int) []byte {
	b := append(src.AsSlice(), dst.AsSlice()...)
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, 112)
}

// independentChecksum is RFC 1071 done the slow way: concatenate, zero the
// checksum field, sum in 64 bits, fold once at the end.
func independentChecksum(pseudo, msg []byte) uint16 {
	buf := append(append([]byte{}, pseudo...), msg...)
	buf[len(pseudo)+6], buf[len(pseudo)+7] = 0, 0
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var s uint64
	for i := 0; i < len(buf); i += 2 {
		s += uint64(buf[i])<<8 | uint64(buf[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestV3ChecksumPseudoHeader(t *testing.T) {
	tests := []struct {
		name     string
		fam      Family
		src, dst netip.Addr
		addrs    []netip.Addr
		pseudo   func(src, dst netip.Addr, n int) []byte
	}{
		{"ipv4 multicast", IPv4, src4, GroupIPv4, []netip.Addr{vip4, vip4b}, pseudo4},
		{"ipv4 unicast", IPv4, src4, peer4, []netip.Addr{vip4}, pseudo4},
		{"ipv4 no vips", IPv4, src4, GroupIPv4, nil, pseudo4},
		{"ipv6 multicast", IPv6, src6, GroupIPv6, []netip.Addr{vip6, vip6b}, pseudo6},
		{"ipv6 unicast", IPv6, src6, peer6, []netip.Addr{vip6}, pseudo6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Advert{Version: 3, Type: 1, VRID: 7, Priority: 254, AdvertInt: 25, Addrs: tt.addrs}
			b, err := a.Marshal(EncodeOptions{Family: tt.fam, Src: tt.src, Dst: tt.dst})
			if err != nil {
				t.Fatal(err)
			}
			got := binary.BigEndian.Uint16(b[6:])
			want := independentChecksum(tt.pseudo(tt.src, tt.dst, len(b)), b)
			if got != want {
				t.Errorf("encoded checksum %#04x, independent %#04x", got, want)
			}
			if c := Checksum(b, ChecksumOptions{Src: tt.src, Dst: tt.dst}); c != want {
				t.Errorf("Checksum() = %#04x, independent %#04x", c, want)
			}
			if c := Checksum(b, ChecksumOptions{}); c != independentChecksum(nil, b) {
				t.Errorf("Checksum() without pseudo header = %#04x, independent %#04x", c, independentChecksum(nil, b))
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	many := make([]netip.Addr, 255)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	tests := []struct {
		name string
		a    Advert
		o    EncodeOptions
	}{
		{"v2 no auth", Advert{Version: 2, Type: 1, VRID: 1, Priority: 255, AdvertInt: 3,
			Addrs: []netip.Addr{vip4, vip4b}}, EncodeOptions{Family: IPv4}},
		{"v2 pass", Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1,
			AuthType: AuthPass, AuthData: PassAuthData("longer than eight"), Addrs: []netip.Addr{vip4}}, EncodeOptions{Family: IPv4}},
		{"v2 priority 0 no vips", Advert{Version: 2, Type: 1, VRID: 9, AdvertInt: 255}, EncodeOptions{Family: IPv4}},
		{"v3 ipv4", Advert{Version: 3, Type: 1, VRID: 200, Priority: 50, AdvertInt: MaxAdvertIntV3,
			Addrs: []netip.Addr{vip4}}, EncodeOptions{Family: IPv4, Src: src4, Dst: GroupIPv4}},
		{"v3 ipv4 255 addresses", Advert{Version: 3, Type: 1, VRID: 2, Priority: 1, AdvertInt: 1,
			Addrs: many}, EncodeOptions{Family: IPv4, Src: src4, Dst: GroupIPv4}},
		{"v3 ipv4 as v2", Advert{Version: 3, Type: 1, VRID: 3, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip4}}, EncodeOptions{Family: IPv4, V3ChecksumAsV2: true}},
		{"v3 ipv6", Advert{Version: 3, Type: 1, VRID: 4, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip6, vip6b}}, EncodeOptions{Family: IPv6, Src: src6, Dst: GroupIPv6}},
		{"v3 ipv6 v4-mapped address", Advert{Version: 3, Type: 1, VRID: 4, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}}, EncodeOptions{Family: IPv6, Src: src6, Dst: GroupIPv6}},
		{"v3 ipv6 no vips", Advert{Version: 3, Type: 1, VRID: 4, Priority: 100, AdvertInt: 100},
			EncodeOptions{Family: IPv6, Src: src6, Dst: peer6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.Marshal(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != MessageLen(tt.a.Version, tt.o.Family, len(tt.a.Addrs)) {
				t.Errorf("len %d, MessageLen %d", len(b), MessageLen(tt.a.Version, tt.o.Family, len(tt.a.Addrs)))
			}
			got, err := Decode(b, tt.o.Family)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.a
			want.CountIPAddrs = uint8(len(want.Addrs))
			want.Checksum = binary.BigEndian.Uint16(b[6:])
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Decode(Marshal(a)) (-want +got):\n-%+v\n+%+v", want, got)
			}
			var ck ChecksumOptions
			if tt.a.Version == 3 && !tt.o.V3ChecksumAsV2 {
				ck = ChecksumOptions{Src: tt.o.Src, Dst: tt.o.Dst}
			}
			if c := Checksum(b, ck); c != got.Checksum {
				t.Errorf("Checksum() = %#04x, field %#04x", c, got.Checksum)
			}
			again, err := got.AppendTo(nil, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("re-encoded:\n got % x\nwant % x", again, b)
			}
		})
	}
}

func TestAppendToAppends(t *testing.T) {
	a := Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1,
		AuthType: AuthPass, AuthData: pass111, Addrs: []netip.Addr{vip4}}
	prefix := []byte{0xde, 0xad}
	b, err := a.AppendTo(prefix, EncodeOptions{Family: IPv4})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:2], prefix) || !bytes.Equal(b[2:], goldenV2) {
		t.Errorf("AppendTo = % x", b)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = a.AppendTo(buf[:0], EncodeOptions{Family: IPv4})
	}); n != 0 {
		t.Errorf("AppendTo with room allocates %v times", n)
	}
}

func TestEncodeErrors(t *testing.T) {
	ok4 := EncodeOptions{Family: IPv4, Src: src4, Dst: GroupIPv4}
	tests := []struct {
		name string
		a    Advert
		o    EncodeOptions
		err  error
	}{
		{"no family", Advert{Version: 2}, EncodeOptions{}, ErrFamily},
		{"version 1", Advert{Version: 1}, ok4, ErrVersion},
		{"v2 over ipv6", Advert{Version: 2}, EncodeOptions{Family: IPv6}, ErrV2IPv6},
		{"v3 with auth", Advert{Version: 3, AuthType: AuthPass}, ok4, ErrAuthVersion},
		{"v3 interval", Advert{Version: 3, AdvertInt: 4096}, ok4, ErrInterval},
		{"v2 interval", Advert{Version: 2, AdvertInt: 256}, ok4, ErrInterval},
		{"type", Advert{Version: 3, Type: 16}, ok4, ErrType},
		{"too many", Advert{Version: 3, Addrs: make([]netip.Addr, 256)}, ok4, ErrTooMany},
		{"ipv6 vip in ipv4", Advert{Version: 3, Addrs: []netip.Addr{vip6}}, ok4, ErrAddrFamily},
		{"ipv4 vip in ipv6", Advert{Version: 3, Addrs: []netip.Addr{vip4}},
			EncodeOptions{Family: IPv6, Src: src6, Dst: GroupIPv6}, ErrAddrFamily},
		{"v3 no src", Advert{Version: 3}, EncodeOptions{Family: IPv4, Dst: GroupIPv4}, ErrEndpoints},
		{"v3 ipv6 src", Advert{Version: 3}, EncodeOptions{Family: IPv6, Src: src4, Dst: GroupIPv6}, ErrEndpoints},
		{"v3 ipv6 as v2 still needs endpoints", Advert{Version: 3},
			EncodeOptions{Family: IPv6, V3ChecksumAsV2: true}, ErrEndpoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.AppendTo([]byte{1}, tt.o)
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if len(b) != 1 {
				t.Errorf("failed AppendTo changed the buffer: % x", b)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	v3 := append([]byte{}, goldenV3...)
	tests := []struct {
		name string
		b    []byte
		fam  Family
		err  error
	}{
		{"empty", nil, IPv4, ErrTooShort},
		{"7 bytes", goldenV2[:7], IPv4, ErrTooShort},
		{"family", goldenV2, 0, ErrFamily},
		{"version 4", append([]byte{0x41}, goldenV2[1:]...), IPv4, ErrVersion},
		{"v2 over ipv6", goldenV2, IPv6, ErrV2IPv6},
		{"v2 short auth", goldenV2[:len(goldenV2)-1], IPv4, ErrLength},
		{"v2 trailing byte", append(append([]byte{}, goldenV2...), 0), IPv4, ErrLength},
		{"v3 as ipv6", v3, IPv6, ErrLength},
		{"v3 count too high", append([]byte{0x31, 0x33, 0x64, 0x02}, v3[4:]...), IPv4, ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b, tt.fam); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestDecodeV3ReservedBits(t *testing.T) {
	b := append([]byte{}, goldenV3...)
	b[4] |= 0xf0
	a, err := Decode(b, IPv4)
	if err != nil {
		t.Fatal(err)
	}
	if a.AdvertInt != 100 {
		t.Errorf("AdvertInt = %d, want 100 (reserved bits ignored)", a.AdvertInt)
	}
}

func TestAdvertIntFor(t *testing.T) {
	tests := []struct {
		v    uint8
		d    time.Duration
		want uint16
		err  error
	}{
		{2, time.Second, 1, nil},
		{2, 255 * time.Second, 255, nil},
		{2, 256 * time.Second, 0, ErrInterval},
		{2, 1500 * time.Millisecond, 0, ErrInterval},
		{2, 0, 0, ErrInterval},
		{3, 10 * time.Millisecond, 1, nil},
		{3, time.Second, 100, nil},
		{3, 40950 * time.Millisecond, 4095, nil},
		{3, 40960 * time.Millisecond, 0, ErrInterval},
		{3, 15 * time.Millisecond, 0, ErrInterval},
		{3, -time.Second, 0, ErrInterval},
		{4, time.Second, 0, ErrVersion},
	}
	for _, tt := range tests {
		got, err := AdvertIntFor(tt.v, tt.d)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("AdvertIntFor(%d, %v) = %d, %v; want %d, %v", tt.v, tt.d, got, err, tt.want, tt.err)
		}
	}
	a := Advert{Version: 2, AdvertInt: 3}
	if d := a.AdvertInterval(); d != 3*time.Second {
		t.Errorf("v2 AdvertInterval = %v", d)
	}
	a = Advert{Version: 3, AdvertInt: 3}
	if d := a.AdvertInterval(); d != 30*time.Millisecond {
		t.Errorf("v3 AdvertInterval = %v", d)
	}
}

func TestPassAuthData(t *testing.T) {
	tests := []struct {
		pw   string
		want [8]byte
	}{
		{"", [8]byte{}},
		{"1111", [8]byte{'1', '1', '1', '1'}},
		{"12345678", [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}},
		{"123456789", [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}}, // keepalived truncates to 8
	}
	for _, tt := range tests {
		if got := PassAuthData(tt.pw); got != tt.want {
			t.Errorf("PassAuthData(%q) = %q, want %q", tt.pw, got, tt.want)
		}
	}
}
