package vrrpd_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
	"github.com/keepvs/keepvs/internal/vrrpd"
)

// fakeAnnouncer records the VIPs a node holds.
type fakeAnnouncer struct {
	src   netip.Addr
	mu    sync.Mutex
	vips  map[netip.Addr]bool
	garp  int
	added int // AddVIPs calls
}

func (f *fakeAnnouncer) AddVIPs(dev string, vips []model.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added++
	for _, v := range vips {
		f.vips[v.Prefix.Addr()] = true
	}
	return nil
}

func (f *fakeAnnouncer) RemoveVIPs(dev string, vips []model.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range vips {
		delete(f.vips, v.Prefix.Addr())
	}
	return nil
}

func (f *fakeAnnouncer) holds(a netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vips[a]
}

func (f *fakeAnnouncer) AddRoutes(string, []model.Route) error    { return nil }
func (f *fakeAnnouncer) RemoveRoutes(string, []model.Route) error { return nil }
func (f *fakeAnnouncer) AddRules([]model.Rule) error              { return nil }
func (f *fakeAnnouncer) RemoveRules([]model.Rule) error           { return nil }
func (f *fakeAnnouncer) GARP(string, []netip.Addr) error {
	f.mu.Lock()
	f.garp++
	f.mu.Unlock()
	return nil
}
func (f *fakeAnnouncer) PrimaryAddr(string, bool) (netip.Addr, error)      { return f.src, nil }
func (f *fakeAnnouncer) CreateVMAC(string, string, net.HardwareAddr) error { return nil }
func (f *fakeAnnouncer) DeleteVMAC(string) error                           { return nil }

func load(t *testing.T, src string) *model.Config {
	t.Helper()
	f, diags := conf.Parse("test.conf", []byte(src), conf.Options{})
	c, more := model.Build(f)
	if diags = append(diags, more...); diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return c
}

type hubNode struct {
	ann    *fakeAnnouncer
	conn   *transport.HubConn
	node   *vrrpd.Node
	cancel context.CancelFunc
	done   chan error
}

func startHubNode(t *testing.T, hub *transport.Hub, addr string, prio int) *hubNode {
	t.Helper()
	return runNode(t, addr, prio, "0.05", vrrpd.Options{}, func(src netip.Addr, o transport.Options) transport.Conn {
		return hub.Conn(src, o.Group)
	})
}

// runNode starts a node with one instance, VI_1 (VRID 51, VIP
// 10.0.0.100), at prio and advert_int advert, on the connection listen
// gives it and a fake announcer, and stops it when the test ends.
func runNode(t *testing.T, addr string, prio int, advert string, opt vrrpd.Options, listen func(src netip.Addr, o transport.Options) transport.Conn) *hubNode {
	t.Helper()
	src := netip.MustParseAddr(addr)
	h := &hubNode{ann: &fakeAnnouncer{src: src, vips: map[netip.Addr]bool{}}, done: make(chan error, 1)}
	cfg := load(t, fmt.Sprintf(`
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %d
    version 3
    advert_int %s
    virtual_ipaddress {
        10.0.0.100/24
    }
}`, prio, advert))
	opt.Announcer = h.ann
	opt.NoInterfaceTracking = true
	opt.Listen = func(_ context.Context, o transport.Options) (transport.Conn, error) {
		c := listen(src, o)
		if hc, ok := c.(*transport.HubConn); ok {
			h.conn = hc
		}
		return c, nil
	}
	var err error
	if h.node, err = vrrpd.New(cfg, opt); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.node.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *hubNode) stop() {
	h.cancel()
	<-h.done
	h.done <- nil
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestNodeOnHub runs two nodes on an in-memory LAN: election, failover
// when the master's link is cut, preemption back, and the priority 0
// goodbye at stop.
func TestNodeOnHub(t *testing.T) {
	hub := transport.NewHub()
	vip := netip.MustParseAddr("10.0.0.100")
	a := startHubNode(t, hub, "10.0.0.1", 150)
	b := startHubNode(t, hub, "10.0.0.2", 100)
	waitFor(t, "a master", 2*time.Second, func() bool { return a.ann.holds(vip) })
	time.Sleep(300 * time.Millisecond)
	if b.ann.holds(vip) {
		t.Fatal("both hold the vip")
	}
	st := b.node.Status()
	if st[0].State != "BACKUP" || st[0].Master != "10.0.0.1" || st[0].Stats.RcvdAdvertisements == 0 {
		t.Fatalf("b status %+v", st[0])
	}
	// Cut a's link: b takes over after its master down interval
	// (3*50ms + skew 30ms).
	a.conn.SetDown(true)
	took := waitFor(t, "b takes over", 2*time.Second, func() bool { return b.ann.holds(vip) })
	t.Logf("takeover after link cut: %v (master down interval 180ms)", took)
	a.conn.SetDown(false)
	waitFor(t, "b yields to a (preempt)", 2*time.Second, func() bool { return !b.ann.holds(vip) && a.ann.holds(vip) })
	// Stop a: its priority 0 advert makes b take over after the skew
	// time, well before a master down interval.
	start := time.Now()
	a.stop()
	if a.ann.holds(vip) {
		t.Fatal("a kept the vip after stop")
	}
	waitFor(t, "b takes over after priority 0", time.Second, func() bool { return b.ann.holds(vip) })
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("takeover after priority 0 took %v, want about the skew (30ms)", d)
	}
	if st := b.node.Status(); st[0].Stats.RcvdPriZeroPackets == 0 {
		t.Errorf("priority 0 not counted: %+v", st[0].Stats)
	}
}

func (f *fakeAnnouncer) adds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added
}
