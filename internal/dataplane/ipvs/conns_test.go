package ipvs

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
)

// Lines as ip_vs_conn_seq_show prints them.
const procConns = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000001 9C40 0A000064 0050 0A0A0001 1F90 ESTABLISHED     899
UDP C0A80001 D431 0A000064 0035 0A0A0002 0035 UDP             299
TCP 0A000001 0000 0A000064 0050 0A0A0001 1F90 NONE            359
IP  0A000002 0000 00000007 0000 0A0A0003 0000 NONE             59
TCP 2001:0db8:0000:0000:0000:0000:0000:0001 A000 2001:0db8:0000:0000:0000:0000:0000:0064 01BB 0A0A0009 01BB SYN_RECV         59
IP  2001:0db8:0000:0000:0000:0000:0000:0002 0000 0000:0007:0000:0000:0000:0000:0000:0000 0000 2001:0db8:0000:0000:0000:0000:0000:0009 0000 NONE            100
UDP 0A000003 13C4 0A000064 13C4 0A0A0004 13C4 UDP              10 sip 1234@example
`

func TestParseConns(t *testing.T) {
	got, err := ParseConns(strings.NewReader(procConns))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	want := []lvs.Conn{
		{Proto: lvs.TCP, Client: ap("10.0.0.1:40000"), Virtual: ap("10.0.0.100:80"), Dest: ap("10.10.0.1:8080"), State: "ESTABLISHED", Expires: 899 * time.Second},
		{Proto: lvs.UDP, Client: ap("192.168.0.1:54321"), Virtual: ap("10.0.0.100:53"), Dest: ap("10.10.0.2:53"), State: "UDP", Expires: 299 * time.Second},
		{Proto: lvs.TCP, Client: ap("10.0.0.1:0"), Virtual: ap("10.0.0.100:80"), Dest: ap("10.10.0.1:8080"), State: "NONE", Expires: 359 * time.Second, Template: true},
		{Proto: 0, Client: ap("10.0.0.2:0"), Virtual: ap("0.0.0.0:0"), Dest: ap("10.10.0.3:0"), State: "NONE", Expires: 59 * time.Second, Template: true, FWMark: 7},
		{Proto: lvs.TCP, Client: ap("[2001:db8::1]:40960"), Virtual: ap("[2001:db8::64]:443"), Dest: ap("10.10.0.9:443"), State: "SYN_RECV", Expires: 59 * time.Second},
		{Proto: 0, Client: ap("[2001:db8::2]:0"), Virtual: ap("[::]:0"), Dest: ap("[2001:db8::9]:0"), State: "NONE", Expires: 100 * time.Second, Template: true, FWMark: 7},
		{Proto: lvs.UDP, Client: ap("10.0.0.3:5060"), Virtual: ap("10.0.0.100:5060"), Dest: ap("10.10.0.4:5060"), State: "UDP", Expires: 10 * time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("%d conns, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+2, got[i], want[i])
		}
	}
}

func TestParseConnsErrors(t *testing.T) {
	for _, line := range []string{
		"TCP 0A000001 9C40 0A000064 0050 0A0A0001 1F90 ESTABLISHED",
		"XXX 0A000001 9C40 0A000064 0050 0A0A0001 1F90 ESTABLISHED 1",
		"TCP 0A00001 9C40 0A000064 0050 0A0A0001 1F90 ESTABLISHED 1",
		"TCP 0A000001 9C4G0 0A000064 0050 0A0A0001 1F90 ESTABLISHED 1",
		"TCP 0A000001 9C40 0A000064 0050 0A0A0001 1F90 ESTABLISHED -1",
	} {
		if _, err := ParseConns(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func FuzzParseConns(f *testing.F) {
	for _, l := range strings.Split(procConns, "\n") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseConns(strings.NewReader(s))
	})
}
