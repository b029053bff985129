package packet

import (
	"net/netip"
	"testing"
)

func BenchmarkValidate(b *testing.B) {
	v3 := craft(b, advertV3(), enc4, nil)
	v6 := craft(b, advertV3v6(), enc6, nil)
	benches := []struct {
		name string
		pkt  []byte
		meta RecvMeta
		want *Expect
	}{
		{"v2-pass", goldenV2, mcast4, expectV2()},
		{"v3-ipv4", v3, mcast4, expectV3()},
		{"v3-ipv6", v6, mcast6, expectV3v6()},
		{"other-vrid", goldenV2, mcast4, with(expectV2(), func(e *Expect) { e.VRID = 1 })},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			var a Advert
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.pkt)))
			for b.Loop() {
				ValidateInto(&a, bb.pkt, bb.meta, bb.want)
			}
		})
		b.Run(bb.name+"-fresh", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Validate(bb.pkt, bb.meta, bb.want)
			}
		})
	}
}

func BenchmarkSplitValidateIPv4(b *testing.B) {
	pkt := ipv4Packet(src4, GroupIPv4, 255, Protocol, goldenV2)
	want := expectV2()
	var a Advert
	b.ReportAllocs()
	for b.Loop() {
		meta, payload, r := SplitIPv4(pkt)
		if r == DropNone {
			ValidateInto(&a, payload, meta, want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	many := craft(b, Advert{Version: 3, Type: 1, VRID: 1, AdvertInt: 100, Addrs: func() []netip.Addr {
		s := make([]netip.Addr, 20)
		for i := range s {
			s[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		}
		return s
	}()}, enc4, nil)
	for _, bb := range []struct {
		name string
		pkt  []byte
	}{{"v2-1addr", goldenV2}, {"v3-20addrs", many}} {
		b.Run(bb.name, func(b *testing.B) {
			var a Advert
			b.ReportAllocs()
			for b.Loop() {
				_ = DecodeInto(&a, bb.pkt, IPv4)
			}
		})
	}
}

func BenchmarkAppendTo(b *testing.B) {
	benches := []struct {
		name string
		a    Advert
		o    EncodeOptions
	}{
		{"v2-pass", advertV2(), EncodeOptions{Family: IPv4}},
		{"v3-ipv4", advertV3(), enc4},
		{"v3-ipv6", advertV3v6(), enc6},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = bb.a.AppendTo(buf[:0], bb.o)
			}
		})
	}
}
