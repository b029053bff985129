package vrrpd_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/vrrpd/netnstest"
)

// lan is two directors and a client on one bridge.
type lan struct {
	bed    *netnstest.Bed
	net    string // "10.77.N."
	vip    netip.Addr
	d1, d2 string // host names
}

func newLAN(t *testing.T, n int) *lan {
	bed := netnstest.New(t)
	l := &lan{bed: bed, net: fmt.Sprintf("10.77.%d.", n), d1: "d1", d2: "d2"}
	bed.Host("d1", l.net+"1/24", fmt.Sprintf("fd77:%d::1/64", n))
	bed.Host("d2", l.net+"2/24", fmt.Sprintf("fd77:%d::2/64", n))
	bed.Host("c", l.net+"3/24", fmt.Sprintf("fd77:%d::3/64", n))
	l.vip = netip.MustParseAddr(l.net + "100")
	return l
}

var pairs = [][2]string{{"keepvs", "keepvs"}, {"keepvs", "keepalived"}, {"keepalived", "keepvs"}}

// TestFailover is the core of interoperation, for each pair (the first
// the master): election, master link cut, preemption back, and the
// priority 0 goodbye of a clean stop.
func TestFailover(t *testing.T) {
	for k, p := range pairs {
		t.Run(p[0]+"-master-"+p[1]+"-backup", func(t *testing.T) {
			l := newLAN(t, 10+k)
			vip := l.vip.String() + "/24"
			m := startDirector(t, l.bed, "d1", p[0], globalConf("d1")+instanceConf("VI_1", 51, 150, "0.1", 3, vip, ""))
			b := startDirector(t, l.bed, "d2", p[1], globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, ""))

			eventually(t, "master holds the vip", 5*time.Second, func() bool { return m.holds(l.vip) })
			never(t, "backup holds the vip too", 500*time.Millisecond, func() bool { return b.holds(l.vip) })
			l.bed.MustPing("c", l.vip, 3*time.Second)
			if got, want := neighMAC(l.bed, "c", l.vip), m.mac("eth0"); got != want {
				t.Fatalf("client's neighbour entry %s, want the master's %s", got, want)
			}
			if b.kind == "keepvs" {
				if s := b.instance("VI_1"); s.State != "BACKUP" || s.Master != l.net+"1" {
					t.Fatalf("backup status %+v", s)
				}
			}

			// Master link cut: master down interval 3*0.1 + skew
			// (156*10cs/256 = 61 ms) = 361 ms, plus one advert.
			m.link(false)
			took := eventually(t, "backup takes the vip after the master's link went down", 3*time.Second, func() bool { return b.holds(l.vip) })
			t.Logf("link cut → backup holds the vip: %v (bound 461 ms)", took)
			if took > 900*time.Millisecond {
				t.Errorf("takeover took %v, want about master_down_interval + one advert (461 ms)", took)
			}
			bmac := b.mac("eth0")
			eventually(t, "gratuitous ARP moves the client's neighbour entry", 2*time.Second, func() bool { return neighMAC(l.bed, "c", l.vip) == bmac })
			l.bed.MustPing("c", l.vip, 2*time.Second)

			// Link back: the higher priority preempts.
			m.link(true)
			eventually(t, "master preempts back", 5*time.Second, func() bool { return m.holds(l.vip) && !b.holds(l.vip) })
			eventually(t, "client follows back", 2*time.Second, func() bool { return neighMAC(l.bed, "c", l.vip) == m.mac("eth0") })

			// Clean stop: priority 0, takeover after the skew (61 ms).
			start := time.Now()
			m.stop()
			took = eventually(t, "backup takes over after the master's priority 0", 3*time.Second, func() bool { return b.holds(l.vip) })
			t.Logf("stop → backup holds the vip %v after the master exited (%v after SIGTERM)", took, time.Since(start))
			if took > 300*time.Millisecond {
				t.Errorf("takeover after priority 0 took %v, want about the skew time (61 ms), far below master_down_interval", took)
			}
			if m.holds(l.vip) {
				t.Error("stopped master left its vip")
			}
			if b.kind == "keepvs" {
				if s := b.instance("VI_1"); s.Stats.RcvdPriZeroPackets == 0 {
					t.Errorf("priority 0 advert not counted: %+v", s.Stats)
				}
			}
		})
	}
}
