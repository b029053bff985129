package udp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// server answers each datagram with answer(datagram), or not at all when
// answer returns nil.
func server(t *testing.T, answer func([]byte) []byte) check.Target {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:n]); a != nil {
				pc.WriteTo(a, from)
			}
		}
	}()
	return check.Target{Addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
}

func TestCheck(t *testing.T) {
	echo := server(t, func(b []byte) []byte { return append([]byte(nil), b...) })
	silent := server(t, func([]byte) []byte { return nil })
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := check.Target{Addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	pc.Close()

	tests := []struct {
		name   string
		c      Checker
		ok     bool
		reason string
	}{
		{"echo", Checker{Target: echo}, true, ""},
		{"silence is success", Checker{Target: silent}, true, ""},
		{"closed port: ICMP port unreachable", Checker{Target: closed}, false, "connection refused"},
		{"require_reply, silence", Checker{Target: silent, RequireReply: true}, false, "no reply from"},
		{"require_reply, any reply", Checker{Target: echo, RequireReply: true}, true, ""},
		{"reply matches", Checker{Target: echo, Payload: []byte{0xde, 0xad, 0xbe, 0xef}, RequireReply: true, Reply: []byte{0xde, 0xad}}, true, ""},
		{"reply differs", Checker{Target: echo, Payload: []byte{0xde, 0xad, 0xbe, 0xef}, RequireReply: true, Reply: []byte{0xde, 0xaf}}, false, "differs at byte 1"},
		{"mask ignores nibbles", Checker{Target: echo, Payload: []byte{0xde, 0xad}, RequireReply: true, Reply: []byte{0xd0, 0xa0}, ReplyMask: []byte{0xf0, 0xf0}}, true, ""},
		{"reply too short", Checker{Target: echo, Payload: []byte{1, 2}, RequireReply: true, Reply: []byte{1}, MinReplyLength: 3}, false, "is 2 bytes, want 3 to 255"},
		{"reply too long", Checker{Target: echo, Payload: make([]byte, 300), RequireReply: true, Reply: []byte{0}}, false, "is 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			res := tt.c.Check(ctx)
			if res.OK != tt.ok || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Check = %+v, want ok=%v reason containing %q", res, tt.ok, tt.reason)
			}
		})
	}
}
