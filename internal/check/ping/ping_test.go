package ping

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPingLoopback(t *testing.T) {
	for _, tt := range []struct {
		name         string
		addr         string
		unprivileged bool
	}{
		{"raw or datagram socket", "127.0.0.1", false},
		{"datagram socket", "127.0.0.1", true},
		{"IPv6", "::1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			res := (&Checker{Addr: netip.MustParseAddr(tt.addr), Unprivileged: tt.unprivileged}).Check(ctx)
			if !res.OK && strings.HasPrefix(res.Reason, "open ICMP socket") {
				t.Skipf("ICMP sockets not permitted here (uid %d; see net.ipv4.ping_group_range): %s", os.Geteuid(), res.Reason)
			}
			if !res.OK && tt.addr == "::1" && strings.Contains(res.Reason, "address not available") {
				t.Skipf("no IPv6 loopback: %s", res.Reason)
			}
			if !res.OK {
				t.Errorf("ping %s: %s", tt.addr, res.Reason)
			}
		})
	}
}
