package dns

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

func TestQuery(t *testing.T) {
	tests := []struct {
		name string
		want []byte
	}{
		{".", []byte{0}},
		{"", []byte{0}},
		{"example.com", []byte("\x07example\x03com\x00")},
		{"example.com.", []byte("\x07example\x03com\x00")},
	}
	for _, tt := range tests {
		q, err := Query(0x1234, tt.name, Types["MX"])
		if err != nil {
			t.Fatal(err)
		}
		head := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
		want := append(append(head, tt.want...), 0, 15, 0, 1)
		if !bytes.Equal(q, want) {
			t.Errorf("Query(%q) = % x, want % x", tt.name, q, want)
		}
	}
	if _, err := Query(1, "a..b", 1); err == nil {
		t.Error("empty label accepted")
	}
}

// responder answers each query with a scripted header: first a foreign
// datagram (wrong ID), then the reply with rcode.
func responder(t *testing.T, rcode byte, gotType *atomic.Uint32) check.Target {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			gotType.Store(uint32(binary.BigEndian.Uint16(q[n-4:])))
			wrong := append([]byte(nil), q...)
			wrong[0] ^= 0xff
			wrong[2] |= 0x80
			pc.WriteTo(wrong, from)
			q[2] |= 0x80 // QR
			q[3] = 0x80 | rcode
			pc.WriteTo(q, from)
		}
	}()
	return check.Target{Addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		rcode  byte
		ok     bool
		reason string
	}{
		{0, true, ""},
		{3, false, "answered example.com A with rcode 3 (NXDOMAIN)"},
		{2, false, "rcode 2 (SERVFAIL)"},
	} {
		var typ atomic.Uint32
		tg := responder(t, tt.rcode, &typ)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		res := (&Checker{Target: tg, Type: "A", Name: "example.com"}).Check(ctx)
		cancel()
		if res.OK != tt.ok || !strings.Contains(res.Reason, tt.reason) {
			t.Errorf("rcode %d: Check = %+v, want ok=%v reason %q", tt.rcode, res, tt.ok, tt.reason)
		}
		if typ.Load() != 1 {
			t.Errorf("query type %d, want 1", typ.Load())
		}
	}
}

func TestClosedPortFails(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res := (&Checker{Target: check.Target{Addr: addr}}).Check(ctx)
	if res.OK || !strings.Contains(res.Reason, "connection refused") {
		t.Errorf("Check = %+v, want connection refused", res)
	}
}

func FuzzVerdict(f *testing.F) {
	f.Add(uint16(7), []byte{0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add(uint16(7), []byte{0, 7, 0x01})
	f.Fuzz(func(t *testing.T, id uint16, msg []byte) {
		rc, err := Verdict(id, msg)
		if err == nil && (rc < 0 || rc > 15 || len(msg) < 12) {
			t.Fatalf("Verdict = %d for % x", rc, msg)
		}
	})
}
