package vrrpd_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify"
	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
	"github.com/keepvs/keepvs/internal/vrrpd"
)

// recorder is a node's outside world, written down a line each: the
// VIP and route calls and the transitions in the order the worker made
// them; the notify scripts and gratuitous ARPs, which run on goroutines
// of their own, as sets.
type recorder struct {
	mu           sync.Mutex
	lines        []string
	notes, garps map[string]bool
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) addTo(set *map[string]bool, format string, args ...any) {
	r.mu.Lock()
	if *set == nil {
		*set = map[string]bool{}
	}
	(*set)[fmt.Sprintf(format, args...)] = true
	r.mu.Unlock()
}

// take returns the ordered lines so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lines
	r.lines = nil
	return l
}

// takeSet returns a set's lines, sorted, and forgets them.
func (r *recorder) takeSet(set *map[string]bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var l []string
	for k := range *set {
		l = append(l, k)
	}
	*set = nil
	slices.Sort(l)
	return l
}

func (r *recorder) takeNotes() []string { return r.takeSet(&r.notes) }
func (r *recorder) takeGARPs() []string { return r.takeSet(&r.garps) }

// forget drops everything recorded so far.
func (r *recorder) forget() { r.take(); r.takeNotes(); r.takeGARPs() }

func vipList(vips []model.VIP) string {
	var s []string
	for _, v := range vips {
		s = append(s, v.Prefix.String())
	}
	return strings.Join(s, ",")
}

type recAnnouncer struct {
	*recorder
	src netip.Addr
}

func (a recAnnouncer) AddVIPs(dev string, vips []model.VIP) error {
	a.add("add-vips %s %s", dev, vipList(vips))
	return nil
}

func (a recAnnouncer) RemoveVIPs(dev string, vips []model.VIP) error {
	a.add("remove-vips %s %s", dev, vipList(vips))
	return nil
}

func (a recAnnouncer) AddRoutes(dev string, rs []model.Route) error {
	if len(rs) > 0 {
		a.add("add-routes %s %d", dev, len(rs))
	}
	return nil
}

func (a recAnnouncer) RemoveRoutes(dev string, rs []model.Route) error {
	if len(rs) > 0 {
		a.add("remove-routes %s %d", dev, len(rs))
	}
	return nil
}

func (a recAnnouncer) AddRules(rs []model.Rule) error {
	if len(rs) > 0 {
		a.add("add-rules %d", len(rs))
	}
	return nil
}

func (a recAnnouncer) RemoveRules(rs []model.Rule) error {
	if len(rs) > 0 {
		a.add("remove-rules %d", len(rs))
	}
	return nil
}

func (a recAnnouncer) GARP(dev string, addrs []netip.Addr) error {
	a.addTo(&a.garps, "%s %v", dev, addrs)
	return nil
}
func (a recAnnouncer) PrimaryAddr(string, bool) (netip.Addr, error)      { return a.src, nil }
func (a recAnnouncer) CreateVMAC(string, string, net.HardwareAddr) error { return nil }
func (a recAnnouncer) DeleteVMAC(string) error                           { return nil }

// advertLog records the adverts a host on the hub hears.
type advertLog struct {
	mu  sync.Mutex
	got []string // "vrid/priority addrs"
}

func listen(t *testing.T, hub *transport.Hub) *advertLog {
	l := &advertLog{}
	c := hub.Conn(netip.MustParseAddr("10.0.0.9"), packet.GroupIPv4)
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			a, err := packet.Decode(buf[:n], packet.IPv4)
			if err != nil {
				continue
			}
			l.mu.Lock()
			l.got = append(l.got, fmt.Sprintf("%d/%d %v", a.VRID, a.Priority, a.Addrs))
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *advertLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.got
	l.got = nil
	return g
}

// reloadNode is a node on a hub with a fake clock, its world recorded.
type reloadNode struct {
	t    *testing.T
	clk  *clocktest.Fake
	rec  *recorder
	node *vrrpd.Node
	stop func()
}

func startReloadNode(t *testing.T, hub *transport.Hub, conf string) *reloadNode {
	t.Helper()
	src := netip.MustParseAddr("10.0.0.1")
	r := &reloadNode{t: t, clk: clocktest.New(time.Unix(1e9, 0)), rec: &recorder{}}
	exec := func(_ context.Context, argv []string, _, _ int) error {
		r.rec.addTo(&r.rec.notes, "%s", strings.Join(argv, " "))
		return nil
	}
	var err error
	r.node, err = vrrpd.New(load(t, conf), vrrpd.Options{
		Clock:               r.clk,
		Announcer:           recAnnouncer{recorder: r.rec, src: src},
		Notify:              notify.New(notify.Options{Exec: exec}),
		NoInterfaceTracking: true,
		Listen: func(_ context.Context, o transport.Options) (transport.Conn, error) {
			return hub.Conn(src, o.Group), nil
		},
		OnTransition: func(name string, from, to vrrp.State) { r.rec.add("transition %s %s>%s", name, from, to) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.node.Run(ctx) }()
	r.stop = func() { cancel(); <-done }
	t.Cleanup(r.stop)
	r.node.Settle()
	return r
}

// advance moves the clock by d and lets the node do what falls due.
func (r *reloadNode) advance(d time.Duration) {
	r.clk.Advance(d)
	r.node.Settle()
}

func (r *reloadNode) reload(conf string) {
	r.t.Helper()
	if err := r.node.Reload(context.Background(), load(r.t, conf)); err != nil {
		r.t.Fatal(err)
	}
	r.node.Settle()
}

func (r *reloadNode) status(name string) vrrpd.InstanceStatus {
	r.t.Helper()
	for _, s := range r.node.Status() {
		if s.Name == name {
			return s
		}
	}
	r.t.Fatalf("no instance %s", name)
	return vrrpd.InstanceStatus{}
}

// vi is a vrrp_instance on eth0 at advert_int 1 with a notify script.
func vi(name string, vrid, prio int, extra string, vips ...string) string {
	return fmt.Sprintf(`
vrrp_instance %s {
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int 1
    notify /bin/notify-%s
%s
    virtual_ipaddress {
        %s
    }
}
`, name, vrid, prio, name, extra, strings.Join(vips, "\n        "))
}

// master starts a node with conf and brings VI_1 to MASTER: alone on
// the hub, it takes over after its master down interval.
func master(t *testing.T, conf string) (*reloadNode, *advertLog) {
	t.Helper()
	hub := transport.NewHub()
	adverts := listen(t, hub)
	r := startReloadNode(t, hub, conf)
	r.advance(4 * time.Second)
	if s := r.status("VI_1"); s.State != "MASTER" {
		t.Fatalf("VI_1 %s, want MASTER", s.State)
	}
	r.node.Settle()
	r.rec.forget()
	adverts.take()
	return r, adverts
}

func check(t *testing.T, what string, want, got []string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// TestReloadUnchanged: a reload that adds an instance leaves the master
// it does not change alone — no announce call, no notify, no
// transition, its adverts on their schedule — and starts the new one.
func TestReloadUnchanged(t *testing.T) {
	one := vi("VI_1", 51, 150, "", "10.0.0.100/24")
	r, adverts := master(t, one)
	since := r.status("VI_1").Since
	// Step to just after an advert, to know when the next one is due.
	for k := 0; len(adverts.take()) == 0; k++ {
		if k > 200 {
			t.Fatal("no advert in 2s")
		}
		r.advance(10 * time.Millisecond)
	}
	r.reload(one + vi("VI_2", 52, 100, "", "10.0.0.102/24"))
	check(t, "what the reload did", []string{"transition VI_2 INIT>BACKUP"}, r.rec.take())
	check(t, "notify", []string{"/bin/notify-VI_2 INSTANCE VI_2 BACKUP 100"}, r.rec.takeNotes())
	s := r.status("VI_1")
	if s.State != "MASTER" || !s.Since.Equal(since) || s.Stats.SentAdvertisements == 0 {
		t.Errorf("VI_1 after the reload: %+v (since %v before)", s, since)
	}
	// The next advert falls due 1 s after the last, as if nothing
	// happened.
	r.advance(980 * time.Millisecond)
	check(t, "adverts before the interval is over", nil, adverts.take())
	r.advance(20 * time.Millisecond)
	check(t, "adverts at the interval", []string{"51/150 [10.0.0.100]"}, adverts.take())
	if got := append(r.rec.take(), r.rec.takeNotes()...); len(got) > 0 {
		t.Errorf("VI_1 touched after the reload: %q", got)
	}
	// The new instance runs: alone, it takes over in its turn.
	r.advance(4 * time.Second)
	if s := r.status("VI_2"); s.State != "MASTER" {
		t.Errorf("VI_2 %s, want MASTER", s.State)
	}
	check(t, "VI_2 becomes master", []string{"add-vips eth0 10.0.0.102/24", "transition VI_2 BACKUP>MASTER"}, r.rec.take())
	check(t, "notify", []string{"/bin/notify-VI_2 INSTANCE VI_2 MASTER 100"}, r.rec.takeNotes())
	if g := r.rec.takeGARPs(); !slices.Contains(g, "eth0 [10.0.0.102]") {
		t.Errorf("no gratuitous arp for VI_2's vip: %q", g)
	}
}

// TestReloadPriority: a master given a lower priority stays MASTER and
// advertises the new one; "state BACKUP" written in does not move it.
func TestReloadPriority(t *testing.T) {
	r, adverts := master(t, vi("VI_1", 51, 150, "", "10.0.0.100/24"))
	r.reload(vi("VI_1", 51, 120, "    state BACKUP\n    nopreempt", "10.0.0.100/24"))
	if s := r.status("VI_1"); s.State != "MASTER" || s.Priority != 120 || s.BasePriority != 120 {
		t.Errorf("VI_1 after the reload: %s priority %d base %d, want MASTER 120 120", s.State, s.Priority, s.BasePriority)
	}
	check(t, "what the reload did", nil, append(r.rec.take(), r.rec.takeNotes()...))
	r.advance(time.Second)
	check(t, "adverts", []string{"51/120 [10.0.0.100]"}, adverts.take())
}

// TestReloadVIPs: a master whose VIP list changes removes the VIP taken
// away, adds and announces the new one, and advertises the new list.
func TestReloadVIPs(t *testing.T) {
	r, adverts := master(t, vi("VI_1", 51, 150, "", "10.0.0.100/24", "10.0.0.101/24"))
	r.reload(vi("VI_1", 51, 150, "", "10.0.0.101/24", "10.0.0.102/24"))
	check(t, "announce calls", []string{
		"remove-vips eth0 10.0.0.100/24",
		"add-vips eth0 10.0.0.102/24",
	}, r.rec.take())
	if g := r.rec.takeGARPs(); !slices.Contains(g, "eth0 [10.0.0.102]") || slices.Contains(g, "eth0 [10.0.0.101]") {
		t.Errorf("gratuitous arps %q, want the new vip's", g)
	}
	check(t, "notify", nil, r.rec.takeNotes())
	r.advance(time.Second)
	check(t, "adverts", []string{"51/150 [10.0.0.101 10.0.0.102]"}, adverts.take())
	// And at stop it removes the new list.
	r.stop()
	check(t, "at stop", []string{"remove-vips eth0 10.0.0.101/24,10.0.0.102/24", "transition VI_1 MASTER>STOP"}, r.rec.take())
}

// TestReloadVIPsBackup: a backup's VIP list changes without a call: it
// holds none.
func TestReloadVIPsBackup(t *testing.T) {
	hub := transport.NewHub()
	r := startReloadNode(t, hub, vi("VI_1", 51, 150, "", "10.0.0.100/24"))
	r.rec.forget()
	r.reload(vi("VI_1", 51, 150, "", "10.0.0.101/24"))
	check(t, "what the reload did", nil, append(r.rec.take(), r.rec.takeNotes()...))
	r.advance(4 * time.Second)
	check(t, "becoming master", []string{"add-vips eth0 10.0.0.101/24", "transition VI_1 BACKUP>MASTER"}, r.rec.take())
	check(t, "garp", []string{"eth0 [10.0.0.101]"}, r.rec.takeGARPs())
}

// TestReloadRemoved: a master the reload takes away says goodbye with
// priority 0, removes its VIPs and is notified FAULT, as keepalived
// notifies a deleted instance; with notify_deleted, DELETED.
func TestReloadRemoved(t *testing.T) {
	for _, tc := range []struct {
		extra, state string
	}{
		{"", "FAULT"},
		{"    notify_deleted", "DELETED"},
	} {
		t.Run(tc.state, func(t *testing.T) {
			r, adverts := master(t, vi("VI_1", 51, 150, tc.extra, "10.0.0.100/24"))
			r.reload(vi("VI_2", 52, 100, "", "10.0.0.102/24"))
			check(t, "adverts", []string{"51/0 [10.0.0.100]"}, adverts.take())
			got := r.rec.take()
			var vi1 []string
			for _, l := range got {
				if !strings.Contains(l, "VI_2") {
					vi1 = append(vi1, l)
				}
			}
			check(t, "VI_1's removal", []string{
				"remove-vips eth0 10.0.0.100/24",
				"transition VI_1 MASTER>STOP",
			}, vi1)
			check(t, "notify", []string{
				"/bin/notify-VI_1 INSTANCE VI_1 " + tc.state + " 150",
				"/bin/notify-VI_2 INSTANCE VI_2 BACKUP 100",
			}, r.rec.takeNotes())
			if st := r.node.Status(); len(st) != 1 || st[0].Name != "VI_2" {
				t.Errorf("status after the reload: %+v", st)
			}
			r.advance(10 * time.Second)
			for _, a := range adverts.take() {
				if strings.HasPrefix(a, "51/") {
					t.Errorf("VI_1 advert after its removal: %s", a)
				}
			}
		})
	}
}

// TestReloadReplaced: the same name with another VRID is another
// virtual router: the old one is removed, the new one starts.
func TestReloadReplaced(t *testing.T) {
	r, adverts := master(t, vi("VI_1", 51, 150, "", "10.0.0.100/24"))
	r.reload(vi("VI_1", 61, 150, "", "10.0.0.100/24"))
	check(t, "adverts", []string{"51/0 [10.0.0.100]"}, adverts.take())
	check(t, "what the reload did", []string{
		"remove-vips eth0 10.0.0.100/24",
		"transition VI_1 MASTER>STOP",
		"transition VI_1 INIT>BACKUP",
	}, r.rec.take())
	check(t, "notify", []string{
		"/bin/notify-VI_1 INSTANCE VI_1 BACKUP 150",
		"/bin/notify-VI_1 INSTANCE VI_1 FAULT 150",
	}, r.rec.takeNotes())
	r.advance(4 * time.Second)
	if s := r.status("VI_1"); s.State != "MASTER" || s.VRID != 61 {
		t.Errorf("VI_1 after the reload: %s vrid %d", s.State, s.VRID)
	}
}

// TestReloadSyncGroup: a sync group formed by a reload around a master
// and a new instance keeps the master as it is.
func TestReloadSyncGroup(t *testing.T) {
	one := vi("VI_1", 51, 150, "", "10.0.0.100/24")
	r, adverts := master(t, one)
	r.reload(one + vi("VI_2", 52, 150, "", "10.0.0.102/24") + `
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
}`)
	if s := r.status("VI_1"); s.State != "MASTER" || s.SyncGroup != "G" {
		t.Errorf("VI_1: %s in %q", s.State, s.SyncGroup)
	}
	r.advance(time.Second)
	if got := adverts.take(); !slices.Contains(got, "51/150 [10.0.0.100]") {
		t.Errorf("VI_1 stopped advertising: %q", got)
	}
	// The group is MASTER: the new member follows when its timer runs out.
	r.advance(4 * time.Second)
	if s := r.status("VI_2"); s.State != "MASTER" {
		t.Errorf("VI_2 %s, want MASTER", s.State)
	}
}
