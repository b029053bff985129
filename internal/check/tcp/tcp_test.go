package tcp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

func TestCheck(t *testing.T) {
	open := netip.MustParseAddrPort(acceptAndClose(t, "127.0.0.1:0").Addr().String())

	// A port nothing listens on: bind one, note it, close it.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(l2.Addr().String())
	l2.Close()

	tests := []struct {
		name   string
		target check.Target
		ok     bool
		reason string
	}{
		{"open", check.Target{Addr: open}, true, ""},
		{"bound to loopback", check.Target{Addr: open, BindTo: netip.MustParseAddr("127.0.0.1")}, true, ""},
		{"closed", check.Target{Addr: closed}, false, "connect " + closed.String() + ": connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			res := New(tt.target).Check(ctx)
			if res.OK != tt.ok || !strings.HasPrefix(res.Reason, tt.reason) {
				t.Errorf("Check = %+v, want ok=%v reason %q", res, tt.ok, tt.reason)
			}
		})
	}
}
