package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// fuzzExpect picks the instance a fuzz input is validated against, with
// its receive metadata.
func fuzzExpect(flags, ttl uint8) (*Expect, RecvMeta) {
	ttlv := int(ttl)
	if ttl == 0 {
		ttlv = -1
	}
	var e *Expect
	meta := RecvMeta{Src: src4, Dst: GroupIPv4, TTL: ttlv}
	switch flags & 3 {
	case 0:
		e = expectV2()
	case 1:
		e = expectV3()
	case 2:
		e = expectV3v6()
		meta = RecvMeta{Src: src6, Dst: GroupIPv6, TTL: ttlv}
	case 3:
		e = with(expectV3(), func(e *Expect) {
			e.Unicast, e.CheckUnicastSrc, e.UnicastPeers = true, true, []netip.Addr{src4}
			e.VIPs = []netip.Addr{vip4, vip4b}
		})
		meta.Dst = peer4
	}
	e.SkipAddrCheck = flags&8 != 0
	e.V3ChecksumAsV2 = flags&16 != 0 && e.Family == IPv4
	e.OldUnicastChecksum = flags&32 != 0
	return e, meta
}

// FuzzValidate feeds Validate (and, with flag bit 2, SplitIPv4 first) and
// checks that an accepted advert decodes to the same thing and encodes back
// to the same bytes.
func FuzzValidate(f *testing.F) {
	// The seeds are the files under testdata/fuzz/FuzzValidate.
	f.Fuzz(func(t *testing.T, data []byte, ttl, flags uint8) {
		payload, meta, want, r := fuzzInput(data, ttl, flags)
		var st Stats
		if r != DropNone {
			st.Count(&Advert{}, r)
			return
		}
		a, r := Validate(payload, meta, want)
		if r >= numReasons {
			t.Fatalf("reason %d out of range", r)
		}
		st.Count(&a, r)

		// ValidateInto over a dirty Advert must agree with Validate.
		dirty := Advert{Version: 9, Addrs: []netip.Addr{vip6, vip6, vip6}, AuthData: [8]byte{1}}
		if r2 := ValidateInto(&dirty, payload, meta, want); r2 != r || !advertEqual(dirty, a) {
			t.Fatalf("ValidateInto = %v %+v, Validate = %v %+v", r2, dirty, r, a)
		}
		if r != DropNone {
			return
		}

		d, err := Decode(payload, want.Family)
		if err != nil {
			t.Fatalf("accepted but Decode: %v", err)
		}
		if !advertEqual(d, a) {
			t.Fatalf("Decode %+v, Validate %+v", d, a)
		}
		o := EncodeOptions{Family: want.Family, Src: meta.Src, Dst: meta.Dst, V3ChecksumAsV2: want.V3ChecksumAsV2}
		if want.OldUnicastChecksum && want.Unicast && want.Family == IPv4 {
			o.Dst = GroupIPv4
		}
		enc, err := a.AppendTo(nil, o)
		if err != nil {
			t.Fatalf("accepted but AppendTo: %v", err)
		}
		got, in := bytes.Clone(enc), bytes.Clone(payload)
		if a.Version == 3 && in[4]&0xf0 != 0 {
			// Reserved bits are dropped, so the checksum changes too.
			in[4] &= 0x0f
			got[6], got[7], in[6], in[7] = 0, 0, 0, 0
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("re-encoded\n got % x\nwant % x", enc, payload)
		}
	})
}

// fuzzInput turns a FuzzValidate input into Validate's arguments: flag
// bit 2 passes data through SplitIPv4 (whose refusal is r), bit 6 puts the
// right checksum in so that mutations reach the checks after it.
func fuzzInput(data []byte, ttl, flags uint8) (payload []byte, meta RecvMeta, want *Expect, r DropReason) {
	want, meta = fuzzExpect(flags, ttl)
	payload = data
	if flags&4 != 0 && want.Family == IPv4 {
		if meta, payload, r = SplitIPv4(data); r != DropNone {
			return nil, meta, want, r
		}
	}
	if flags&64 != 0 && len(payload) >= HeaderLen {
		payload = bytes.Clone(payload)
		binary.BigEndian.PutUint16(payload[6:], fuzzChecksum(payload, meta, want))
	}
	return payload, meta, want, DropNone
}

// fuzzChecksum is the checksum want expects on payload.
func fuzzChecksum(payload []byte, meta RecvMeta, want *Expect) uint16 {
	if payload[0]>>4 != 3 || want.Family == IPv4 && want.V3ChecksumAsV2 {
		return Checksum(payload, ChecksumOptions{})
	}
	o := ChecksumOptions{Src: meta.Src, Dst: meta.Dst}
	if want.OldUnicastChecksum && want.Unicast && want.Family == IPv4 {
		o.Dst = GroupIPv4
	}
	return Checksum(payload, o)
}

// FuzzDecode checks that Decode either fails with one of its sentinel
// errors or yields an advert that encodes back to the same fields.
func FuzzDecode(f *testing.F) {
	// The seeds are the files under testdata/fuzz/FuzzDecode.
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		fam, o := IPv4, EncodeOptions{Family: IPv4, Src: src4, Dst: GroupIPv4}
		if v6 {
			fam, o = IPv6, EncodeOptions{Family: IPv6, Src: src6, Dst: GroupIPv6}
		}
		a, err := Decode(data, fam)
		if err != nil {
			for _, e := range []error{ErrTooShort, ErrVersion, ErrV2IPv6, ErrLength} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("Decode error %v is no sentinel", err)
		}
		if a.Version == 3 {
			// v3 has no auth type; the byte is part of the interval.
			a.AuthType = 0
		}
		enc, err := a.AppendTo(nil, o)
		if err != nil {
			t.Fatalf("decoded but AppendTo: %v", err)
		}
		if len(enc) != len(data) {
			t.Fatalf("re-encoded %d bytes from %d", len(enc), len(data))
		}
		b, err := Decode(enc, fam)
		if err != nil {
			t.Fatal(err)
		}
		b.Checksum = a.Checksum
		if !advertEqual(a, b) {
			t.Fatalf("Decode(AppendTo(Decode(x))) = %+v, want %+v", b, a)
		}
	})
}

func advertEqual(a, b Advert) bool {
	if len(a.Addrs) == 0 && len(b.Addrs) == 0 {
		a.Addrs, b.Addrs = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

type validateSeed struct {
	name       string
	data       []byte
	ttl, flags uint8
	r          DropReason // what Validate says, so the seeds reach both sides
}

func validateSeeds(t testing.TB) []validateSeed {
	ip := func(b []byte) []byte { return ipv4Packet(src4, GroupIPv4, 255, Protocol, b) }
	v3two := craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
		Addrs: []netip.Addr{vip4, vip4b}}, encUni4, nil)
	v3twoMcast := craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
		Addrs: []netip.Addr{vip4b, vip4}}, enc4, nil)
	return []validateSeed{
		{"keepalived-v2", goldenV2, 255, 0, DropNone},
		{"keepalived-v2-ip", ip(goldenV2), 0, 4, DropNone},
		{"v2-prio0", craft(t, func() Advert { a := advertV2(); a.Priority = 0; return a }(), enc4, nil), 255, 0, DropNone},
		{"v2-bad-password", craft(t, func() Advert { a := advertV2(); a.AuthData = PassAuthData("2222"); return a }(), enc4, nil), 255, 0, DropAuthFailure},
		{"v2-ttl-254", goldenV2, 254, 0, DropTTL},
		{"keepalived-v3", goldenV3, 255, 1, DropNone},
		{"keepalived-v3-ip", ip(goldenV3), 0, 5, DropNone},
		{"v3-as-v2", craft(t, advertV3(), EncodeOptions{Family: IPv4, V3ChecksumAsV2: true}, nil), 255, 1 | 16, DropNone},
		{"v3-reserved-bits", craft(t, advertV3(), enc4, func(b []byte) { b[4] |= 0xf0 }), 255, 1, DropNone},
		{"v3-ipv6", craft(t, advertV3v6(), enc6, nil), 255, 2, DropNone},
		{"v3-ipv6-no-hoplimit", craft(t, advertV3v6(), enc6, nil), 0, 2, DropNone},
		{"v3-unicast", v3two, 64, 3, DropNone},
		{"v3-unicast-old-checksum", craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip4, vip4b}}, enc4, nil), 64, 3 | 32, DropNone},
		{"v3-skip-addr-check", v3twoMcast, 255, 1 | 8, DropNone},
		{"ah", ipv4Packet(src4, GroupIPv4, 255, 51, goldenV2), 255, 4, DropAuthAH},
		{"truncated", goldenV2[:7], 255, 0, DropTooShort},
		{"empty", nil, 255, 0, DropTooShort},
		{"fix-checksum-vip-missing", craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip4b}}, enc4, func(b []byte) { b[7]++ }), 255, 1 | 64, DropAddrList},
		{"fix-checksum-v2", func() []byte { b := bytes.Clone(goldenV2); b[6], b[7] = 0, 0; return b }(), 255, 64, DropNone},
		{"fix-checksum-unicast-src", craft(t, Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 100,
			Addrs: []netip.Addr{vip4, vip4b}}, EncodeOptions{Family: IPv4, Src: peer4, Dst: peer4}, nil), 64, 3 | 64, DropNone},
	}
}

type decodeSeed struct {
	name string
	data []byte
	v6   bool
}

func decodeSeeds(t testing.TB) []decodeSeed {
	return []decodeSeed{
		{"keepalived-v2", goldenV2, false},
		{"keepalived-v3", goldenV3, false},
		{"v3-ipv6", craft(t, advertV3v6(), enc6, nil), true},
		{"v3-no-addrs", craft(t, Advert{Version: 3, Type: 1, VRID: 1, AdvertInt: 1}, enc4, nil), false},
		{"count-255-short", []byte{0x31, 1, 1, 255, 0, 1, 0, 0}, false},
		{"header-only", goldenV2[:HeaderLen], false},
		{"v3-ipv6-v4mapped", craft(t, Advert{Version: 3, Type: 1, VRID: 1, AdvertInt: 1,
			Addrs: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}}, enc6, nil), true},
	}
}

// TestFuzzSeedCorpus keeps the committed seed files under testdata/fuzz in
// step with the seeds above (go test -run TestFuzzSeedCorpus -update
// rewrites them), so `go test` runs the same corpus the fuzzer starts from.
func TestFuzzSeedCorpus(t *testing.T) {
	files := map[string]string{}
	for _, s := range validateSeeds(t) {
		files[filepath.Join("FuzzValidate", s.name)] = corpusFile(s.data, fmt.Sprintf("uint8(%d)", s.ttl), fmt.Sprintf("uint8(%d)", s.flags))
	}
	for _, s := range decodeSeeds(t) {
		files[filepath.Join("FuzzDecode", s.name)] = corpusFile(s.data, fmt.Sprintf("bool(%t)", s.v6))
	}
	for _, s := range validateSeeds(t) {
		payload, meta, want, r := fuzzInput(s.data, s.ttl, s.flags)
		if r == DropNone {
			_, r = Validate(payload, meta, want)
		}
		if r != s.r {
			t.Errorf("seed %s: %v, want %v", s.name, r, s.r)
		}
	}
	for name, want := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("seed %s: %v (run with -update)", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("seed %s is stale (run with -update):\n got %s\nwant %s", name, got, want)
		}
	}
}

func corpusFile(data []byte, rest ...string) string {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	fmt.Fprintf(&b, "[]byte(%q)\n", data)
	for _, r := range rest {
		b.WriteString(r + "\n")
	}
	return b.String()
}
