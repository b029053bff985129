package announce_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/announce"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrpd/netnstest"
)

func TestVMACAddr(t *testing.T) {
	if got := announce.VMACAddr(51, false).String(); got != "00:00:5e:00:01:33" {
		t.Errorf("v4 %s", got)
	}
	if got := announce.VMACAddr(51, true).String(); got != "00:00:5e:00:02:33" {
		t.Errorf("v6 %s", got)
	}
}

func neigh(bed *netnstest.Bed, h, ip string) string {
	out, _ := bed.Run(h, "ip", "neigh", "show", ip, "dev", "eth0")
	return out
}

func mac(t *testing.T, bed *netnstest.Bed, h, dev string) string {
	out := bed.MustRun(h, "cat", "/sys/class/net/"+dev+"/address")
	return strings.TrimSpace(out)
}

func waitNeigh(t *testing.T, bed *netnstest.Bed, h, ip, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(neigh(bed, h, ip), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: neighbour %s is %q, want lladdr %s", h, ip, neigh(bed, h, ip), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAnnounce(t *testing.T) {
	bed := netnstest.New(t)
	bed.Host("a", "10.77.2.1/24", "fd77:2::1/64")
	bed.Host("b", "10.77.2.2/24", "fd77:2::2/64")
	bed.Host("c", "10.77.2.3/24", "fd77:2::3/64")
	dir := t.TempDir()
	open := func(h, state string) *announce.Announcer {
		var a *announce.Announcer
		if err := bed.Do(h, func() (err error) { a, err = announce.New(nil, state); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}
	aa, ab := open("a", filepath.Join(dir, "a.state")), open("b", filepath.Join(dir, "b.state"))
	vips := []model.VIP{
		{Prefix: netip.MustParsePrefix("10.77.2.100/24"), Label: "eth0:vip", Brd: "+"},
		{Prefix: netip.MustParsePrefix("fd77:2::100/64")},
	}
	addrs := []netip.Addr{vips[0].Prefix.Addr(), vips[1].Prefix.Addr()}
	if err := aa.AddVIPs("eth0", vips); err != nil {
		t.Fatal(err)
	}
	if err := aa.AddVIPs("eth0", vips); err != nil {
		t.Fatalf("adding again: %v", err)
	}
	out := bed.MustRun("a", "ip", "addr", "show", "dev", "eth0")
	if !strings.Contains(out, "10.77.2.100/24 brd 10.77.2.255 scope global secondary eth0:vip") || !strings.Contains(out, "fd77:2::100/64") {
		t.Fatalf("vips not as configured:\n%s", out)
	}
	if err := bed.Do("a", func() error { return aa.GARP("eth0", addrs) }); err != nil {
		t.Fatal(err)
	}
	bed.MustPing("c", addrs[0], 2*time.Second)
	bed.MustPing("c", addrs[1], 2*time.Second)
	waitNeigh(t, bed, "c", "10.77.2.100", mac(t, bed, "a", "eth0"))

	// The VIPs move to b: one round of GARP / NA moves c's neighbour
	// entries without c asking.
	if err := aa.RemoveVIPs("eth0", vips); err != nil {
		t.Fatal(err)
	}
	if err := ab.AddVIPs("eth0", vips); err != nil {
		t.Fatal(err)
	}
	if err := bed.Do("b", func() error { return ab.GARP("eth0", addrs) }); err != nil {
		t.Fatal(err)
	}
	bmac := mac(t, bed, "b", "eth0")
	waitNeigh(t, bed, "c", "10.77.2.100", bmac)
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(neigh(bed, "c", "fd77:2::100"), bmac) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := neigh(bed, "c", "fd77:2::100"); !strings.Contains(got, bmac) {
		t.Errorf("unsolicited NA did not move c's entry: %q, want %s", got, bmac)
	}

	// A crash leaves b's VIPs and its state file: the next run removes
	// them.
	ab2 := open("b", filepath.Join(dir, "b.state"))
	gone, err := ab2.RemoveStale()
	if err != nil || len(gone) != 2 {
		t.Fatalf("RemoveStale: %v %v", gone, err)
	}
	if out := bed.MustRun("b", "ip", "addr"); strings.Contains(out, "10.77.2.100") || strings.Contains(out, "fd77:2::100") {
		t.Fatalf("stale vips left:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.state")); string(b) != "[]" {
		t.Errorf("state file after RemoveStale: %q", b)
	}

	// Virtual routes.
	routes := []model.Route{{To: netip.MustParsePrefix("192.168.77.0/24"), Via: netip.MustParseAddr("10.77.2.3")},
		{To: netip.MustParsePrefix("192.168.78.0/24"), Type: "blackhole"}}
	if err := aa.AddRoutes("eth0", routes); err != nil {
		t.Fatal(err)
	}
	out = bed.MustRun("a", "ip", "route")
	if !strings.Contains(out, "192.168.77.0/24 via 10.77.2.3 dev eth0") || !strings.Contains(out, "blackhole 192.168.78.0/24") {
		t.Fatalf("routes:\n%s", out)
	}
	if err := aa.RemoveRoutes("eth0", routes); err != nil {
		t.Fatal(err)
	}
	if out := bed.MustRun("a", "ip", "route"); strings.Contains(out, "192.168.7") {
		t.Fatalf("routes left:\n%s", out)
	}

	// use_vmac: a private macvlan with the virtual router MAC; the VIP on
	// it and its GARP make c see the VMAC.
	vm := announce.VMACAddr(9, false)
	if err := aa.CreateVMAC("eth0", "vrrp.9", vm); err != nil {
		t.Fatal(err)
	}
	if out := bed.MustRun("a", "ip", "-d", "link", "show", "vrrp.9"); !strings.Contains(out, "macvlan mode private") || !strings.Contains(out, vm.String()) {
		t.Fatalf("vmac:\n%s", out)
	}
	v4 := vips[:1]
	if err := aa.AddVIPs("vrrp.9", v4); err != nil {
		t.Fatal(err)
	}
	if err := bed.Do("a", func() error { return aa.GARP("vrrp.9", addrs[:1]) }); err != nil {
		t.Fatal(err)
	}
	waitNeigh(t, bed, "c", "10.77.2.100", vm.String())
	bed.MustPing("c", addrs[0], 2*time.Second)
	if err := aa.DeleteVMAC("vrrp.9"); err != nil {
		t.Fatal(err)
	}
	if err := aa.DeleteVMAC("vrrp.9"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}
