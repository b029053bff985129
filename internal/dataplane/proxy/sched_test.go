package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
)

// accepts are the connections each backend accepted.
func accepts(bs []*backend) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.accepts.Load()
	}
	return out
}

// TestSchedulingSplit counts, at the backends, where sequential
// connections went: the table's scheduler decides, the proxy only follows.
func TestSchedulingSplit(t *testing.T) {
	for _, tc := range []struct {
		sched   string
		weights []int
		conns   int
		want    []int64
	}{
		{"rr", []int{1, 1, 1, 1}, 1000, []int64{250, 250, 250, 250}},
		{"wrr", []int{10, 5}, 300, []int64{200, 100}},
		{"rr", []int{1, 0, 1}, 100, []int64{50, 0, 50}},
		{"wrr", []int{3, 0}, 30, []int64{30, 0}},
	} {
		t.Run(fmt.Sprintf("%s%v", tc.sched, tc.weights), func(t *testing.T) {
			p := startProxy(t, Options{})
			bs := startBackends(t, len(tc.weights))
			vip := freePort(t, "127.0.0.1")
			addService(t, p, tcpService(vip, tc.sched), bs, tc.weights...)
			for range tc.conns {
				dialID(t, vip, netip.Addr{})
			}
			if got := accepts(bs); !slices.Equal(got, tc.want) {
				t.Errorf("connections per backend = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAffinity: persistence keeps a client address on one real server
// across connections; sh hashes the client to one server; dh hashes the
// VIP to one server. Two client addresses, each checked on its own.
func TestAffinity(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  func(vip netip.AddrPort) lvs.Service
	}{
		{"persistent rr", func(vip netip.AddrPort) lvs.Service {
			s := tcpService(vip, "rr")
			s.Flags, s.Timeout = lvs.FlagPersistent, time.Minute
			return s
		}},
		{"sh", func(vip netip.AddrPort) lvs.Service { return tcpService(vip, "sh") }},
		{"dh", func(vip netip.AddrPort) lvs.Service { return tcpService(vip, "dh") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, Options{})
			bs := startBackends(t, 4)
			vip := freePort(t, "127.0.0.1")
			addService(t, p, tc.svc(vip), bs)
			for _, from := range []string{"127.0.0.1", "127.0.0.9"} {
				src := netip.MustParseAddr(from)
				first := dialID(t, vip, src)
				for i := range 20 {
					if id := dialID(t, vip, src); id != first {
						t.Fatalf("client %s: connection %d went to %d, the first to %d", from, i+2, id, first)
					}
				}
			}
		})
	}
}

// TestLeastConnection: lc and wlc follow the active connections the proxy
// holds open: new connections go where fewest (per weight) are open.
func TestLeastConnection(t *testing.T) {
	for _, tc := range []struct {
		sched   string
		weights []int
		hold    int
		want    []int64
	}{
		{"lc", []int{1, 1, 1}, 9, []int64{3, 3, 3}},
		{"wlc", []int{2, 1}, 6, []int64{4, 2}},
		{"wlc", []int{1, 3}, 8, []int64{2, 6}},
	} {
		t.Run(fmt.Sprintf("%s%v", tc.sched, tc.weights), func(t *testing.T) {
			p := startProxy(t, Options{})
			bs := startBackends(t, len(tc.weights))
			vip := freePort(t, "127.0.0.1")
			addService(t, p, tcpService(vip, tc.sched), bs, tc.weights...)
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for range tc.hold {
				// The id byte arrives once the proxy has connected, so
				// the connection is ESTABLISHED (active) before the
				// next one is scheduled.
				c, _ := dial(t, vip, netip.Addr{})
				held = append(held, c)
			}
			if got := accepts(bs); !slices.Equal(got, tc.want) {
				t.Errorf("held connections per backend = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLeastConnectionAvoidsBusy: with connections held open on one
// backend, the next ones go to the others.
func TestLeastConnectionAvoidsBusy(t *testing.T) {
	p := startProxy(t, Options{})
	bs := startBackends(t, 3)
	vip := freePort(t, "127.0.0.1")
	s := tcpService(vip, "lc")
	// Only backend 0 first: everything lands there.
	addService(t, p, s, bs[:1])
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 4 {
		c, _ := dial(t, vip, netip.Addr{})
		held = append(held, c)
	}
	for _, b := range bs[1:] {
		if err := p.AddDest(t.Context(), s.ServiceKey, lvs.Destination{Addr: b.addr.Addr(), Port: b.addr.Port(), Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Eight more, closed at once: backend 0 holds 4 active, the others
	// take turns with no more than inactive connections.
	for range 8 {
		dialID(t, vip, netip.Addr{})
		// Wait for the closed one to leave ESTABLISHED, so that the
		// counts the scheduler sees are settled.
		eventually(t, "only held connections active", func() bool {
			ss, _ := p.Services(t.Context())
			active := 0
			for _, d := range ss[0].Dests {
				active += int(d.ActiveConns)
			}
			return active == 4
		})
	}
	if got := accepts(bs); !slices.Equal(got, []int64{4, 4, 4}) {
		t.Errorf("connections per backend = %v, want %v", got, []int64{4, 4, 4})
	}
}
