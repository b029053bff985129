package vrrpd_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
)

// TestDrops sends bad adverts from the client and checks that keepvs
// drops and counts each, and stays MASTER though each claims priority 254.
func TestDrops(t *testing.T) {
	l := newLAN(t, 20)
	d := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+instanceConf("VI_1", 51, 150, "1", 2, l.vip.String()+"/24",
		"    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n"))
	eventually(t, "master", 5*time.Second, func() bool { return d.holds(l.vip) })
	src := netip.MustParseAddr(l.net + "3")
	open := func(ttl int) transport.Conn {
		var c transport.Conn
		if err := l.bed.Do("c", func() (err error) {
			c, err = transport.Listen(context.Background(), transport.Options{Interface: "eth0", Family: packet.IPv4, Src: src, TTL: ttl})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	good, bad := open(255), open(254)
	msg := func(vrid uint8, pass string) []byte {
		a := packet.Advert{Version: 2, Type: packet.TypeAdvertisement, VRID: vrid, Priority: 254, AdvertInt: 1,
			Addrs: []netip.Addr{l.vip}, CountIPAddrs: 1, AuthType: packet.AuthPass, AuthData: packet.PassAuthData(pass)}
		b, err := a.Marshal(packet.EncodeOptions{Family: packet.IPv4})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	g := packet.GroupIPv4
	good.WriteTo(msg(51, "wrong"), g)
	good.WriteTo(msg(99, "secret"), g)
	bad.WriteTo(msg(51, "secret"), g)
	ck := msg(51, "secret")
	ck[6] ^= 0xff
	good.WriteTo(ck, g)
	var s = d.instance("VI_1")
	eventually(t, "four drops counted", 3*time.Second, func() bool {
		s = d.instance("VI_1")
		st := s.Stats
		return st.AuthFailures == 1 && st.VrIdErrors == 1 && st.IPTTLErrors == 1 && st.ChecksumErrors == 1
	})
	t.Logf("drops by reason: %v", s.Stats.DropsByReason)
	if s.State != "MASTER" || !d.holds(l.vip) {
		t.Fatalf("a dropped advert moved the master: %+v", s)
	}
	// The same advert, well formed, does take over: the drops above were
	// the checks, not a deaf socket.
	good.WriteTo(msg(51, "secret"), g)
	eventually(t, "a good priority 254 advert makes keepvs BACKUP", 3*time.Second, func() bool { return !d.holds(l.vip) })
}

// TestEqualPriority: at equal priority the higher primary address wins
// (RFC 5798 6.4.3), keepvs against keepvs and against keepalived.
func TestEqualPriority(t *testing.T) {
	for k, p := range [][2]string{{"keepvs", "keepvs"}, {"keepvs", "keepalived"}, {"keepalived", "keepvs"}} {
		t.Run(p[0]+"-"+p[1], func(t *testing.T) {
			l := newLAN(t, 30+k)
			vip := l.vip.String() + "/24"
			// A backup follows whichever master it hears, at equal
			// priority: the address decides between two masters. Make
			// both master on isolated bridge ports, then join them.
			lo := startDirector(t, l.bed, "d1", p[0], globalConf("d1")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, ""))
			hi := startDirector(t, l.bed, "d2", p[1], globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, ""))
			l.bed.MustRun("", "ip", "link", "set", "dev", l.bed.Veth("d1"), "type", "bridge_slave", "isolated", "on")
			l.bed.MustRun("", "ip", "link", "set", "dev", l.bed.Veth("d2"), "type", "bridge_slave", "isolated", "on")
			eventually(t, "both master while apart", 5*time.Second, func() bool { return hi.holds(l.vip) && lo.holds(l.vip) })
			l.bed.MustRun("", "ip", "link", "set", "dev", l.bed.Veth("d1"), "type", "bridge_slave", "isolated", "off")
			eventually(t, "the higher address keeps the vip", 5*time.Second, func() bool { return hi.holds(l.vip) && !lo.holds(l.vip) })
			never(t, "the lower address took the vip", 500*time.Millisecond, func() bool { return lo.holds(l.vip) })
		})
	}
}

// TestNopreempt: a higher priority with nopreempt that starts second
// leaves the running master alone.
func TestNopreempt(t *testing.T) {
	for k, kind := range []string{"keepvs", "keepalived"} {
		t.Run(kind+"-backup", func(t *testing.T) {
			l := newLAN(t, 40+k)
			vip := l.vip.String() + "/24"
			m := startDirector(t, l.bed, "d2", "keepvs", globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, ""))
			eventually(t, "d2 master", 5*time.Second, func() bool { return m.holds(l.vip) })
			b := startDirector(t, l.bed, "d1", kind, globalConf("d1")+instanceConf("VI_1", 51, 150, "0.1", 3, vip, "    nopreempt\n"))
			never(t, "nopreempt instance preempted", 1500*time.Millisecond, func() bool { return b.holds(l.vip) })
			if !m.holds(l.vip) {
				t.Fatal("master lost the vip")
			}
		})
	}
}

// TestTracking: a failing vrrp_script with weight moves the VIP; a
// tracked interface going down puts the instance in FAULT.
func TestTracking(t *testing.T) {
	for k, peer := range []string{"keepvs", "keepalived"} {
		t.Run("peer-"+peer, func(t *testing.T) {
			l := newLAN(t, 50+k)
			dir := t.TempDir()
			flag := filepath.Join(dir, "fail")
			sh := filepath.Join(dir, "chk.sh")
			os.WriteFile(sh, []byte("#!/bin/sh\n[ ! -e "+flag+" ]\n"), 0o755)
			// x0 is a veth inside d1 whose peer x1 we can take down.
			l.bed.MustRun("d1", "ip", "link", "add", "x0", "type", "veth", "peer", "name", "x1")
			l.bed.MustRun("d1", "ip", "link", "set", "x0", "up")
			l.bed.MustRun("d1", "ip", "link", "set", "x1", "up")
			vip := l.vip.String() + "/24"
			conf := globalConf("d1") + fmt.Sprintf(`
vrrp_script chk {
    script "%s"
    interval 1
    weight -100
    fall 1
    rise 1
}
`, sh) + instanceConf("VI_1", 51, 150, "0.1", 3, vip, "    track_script {\n        chk\n    }\n    track_interface {\n        x0\n    }\n")
			m := startDirector(t, l.bed, "d1", "keepvs", conf)
			b := startDirector(t, l.bed, "d2", peer, globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, ""))
			eventually(t, "d1 master", 5*time.Second, func() bool { return m.holds(l.vip) && !b.holds(l.vip) })

			os.WriteFile(flag, nil, 0o644)
			took := eventually(t, "script failure (weight -100) moves the vip", 5*time.Second, func() bool { return b.holds(l.vip) && !m.holds(l.vip) })
			t.Logf("script failed → vip moved in %v (script interval 1s)", took)
			if s := m.instance("VI_1"); s.Priority != 50 || s.State != "BACKUP" {
				t.Fatalf("after script failure: %+v", s)
			}
			os.Remove(flag)
			eventually(t, "script ok again: d1 preempts", 5*time.Second, func() bool { return m.holds(l.vip) && !b.holds(l.vip) })

			l.bed.MustRun("d1", "ip", "link", "set", "x1", "down")
			eventually(t, "track_interface down: FAULT", 3*time.Second, func() bool { return m.instance("VI_1").State == "FAULT" })
			eventually(t, "backup takes the vip", 3*time.Second, func() bool { return b.holds(l.vip) && !m.holds(l.vip) })
			l.bed.MustRun("d1", "ip", "link", "set", "x1", "up")
			eventually(t, "interface up: d1 master again", 5*time.Second, func() bool { return m.holds(l.vip) && !b.holds(l.vip) })
		})
	}
}

// TestSyncGroup: an instance that faults takes its group's other
// instance with it.
func TestSyncGroup(t *testing.T) {
	for k, peer := range []string{"keepvs", "keepalived"} {
		t.Run("peer-"+peer, func(t *testing.T) {
			l := newLAN(t, 60+k)
			vip2 := netip.MustParseAddr(l.net + "101")
			dir := t.TempDir()
			flag := filepath.Join(dir, "fail")
			sh := filepath.Join(dir, "chk.sh")
			os.WriteFile(sh, []byte("#!/bin/sh\n[ ! -e "+flag+" ]\n"), 0o755)
			group := "\nvrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
			conf := func(id string, prio int, track string) string {
				return globalConf(id) + group +
					instanceConf("VI_1", 51, prio, "0.1", 3, l.vip.String()+"/24", "") +
					instanceConf("VI_2", 52, prio, "0.1", 3, vip2.String()+"/24", track)
			}
			script := fmt.Sprintf("\nvrrp_script chk {\n    script \"%s\"\n    interval 1\n}\n", sh)
			m := startDirector(t, l.bed, "d1", "keepvs", script+conf("d1", 150, "    track_script {\n        chk\n    }\n"))
			b := startDirector(t, l.bed, "d2", peer, conf("d2", 100, ""))
			eventually(t, "d1 holds both", 5*time.Second, func() bool { return m.holds(l.vip) && m.holds(vip2) })
			os.WriteFile(flag, nil, 0o644)
			eventually(t, "VI_2's fault moves both", 5*time.Second, func() bool {
				return b.holds(l.vip) && b.holds(vip2) && !m.holds(l.vip) && !m.holds(vip2)
			})
			if s := m.instance("VI_1"); s.State != "FAULT" {
				t.Errorf("VI_1 is %s, want FAULT with its group", s.State)
			}
			os.Remove(flag)
			eventually(t, "group back on d1", 5*time.Second, func() bool { return m.holds(l.vip) && m.holds(vip2) && !b.holds(l.vip) })
		})
	}
}

// TestUnicastIPv6VMAC: unicast peers, VRRPv3 over IPv6, and use_vmac,
// each with a failover, keepvs as master and both kinds as backup.
func TestUnicastIPv6VMAC(t *testing.T) {
	for k, peer := range []string{"keepvs", "keepalived"} {
		t.Run("unicast-peer-"+peer, func(t *testing.T) {
			l := newLAN(t, 70+k)
			uc := func(self, other string) string {
				return fmt.Sprintf("    unicast_src_ip %s%s\n    unicast_peer {\n        %s%s\n    }\n", l.net, self, l.net, other)
			}
			vip := l.vip.String() + "/24"
			m := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+instanceConf("VI_1", 51, 150, "0.1", 3, vip, uc("1", "2")))
			b := startDirector(t, l.bed, "d2", peer, globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, uc("2", "1")))
			eventually(t, "d1 master", 5*time.Second, func() bool { return m.holds(l.vip) })
			never(t, "both master", 500*time.Millisecond, func() bool { return b.holds(l.vip) })
			m.link(false)
			eventually(t, "unicast failover", 3*time.Second, func() bool { return b.holds(l.vip) })
			l.bed.MustPing("c", l.vip, 2*time.Second)
		})
		t.Run("ipv6-peer-"+peer, func(t *testing.T) {
			l := newLAN(t, 80+k)
			vip6 := netip.MustParseAddr(fmt.Sprintf("fd77:%d::100", 80+k))
			m := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+instanceConf("VI_6", 61, 150, "0.1", 3, vip6.String()+"/64", ""))
			b := startDirector(t, l.bed, "d2", peer, globalConf("d2")+instanceConf("VI_6", 61, 100, "0.1", 3, vip6.String()+"/64", ""))
			eventually(t, "d1 master", 5*time.Second, func() bool { return m.holds(vip6) })
			never(t, "both master", 500*time.Millisecond, func() bool { return b.holds(vip6) })
			l.bed.MustPing("c", vip6, 3*time.Second)
			m.link(false)
			eventually(t, "ipv6 failover", 3*time.Second, func() bool { return b.holds(vip6) })
			bmac := b.mac("eth0")
			eventually(t, "unsolicited NA moves the client's entry", 2*time.Second, func() bool { return neighMAC(l.bed, "c", vip6) == bmac })
			l.bed.MustPing("c", vip6, 2*time.Second)
		})
		t.Run("vmac-peer-"+peer, func(t *testing.T) {
			l := newLAN(t, 90+k)
			vip := l.vip.String() + "/24"
			m := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+instanceConf("VI_1", 51, 150, "0.1", 3, vip, "    use_vmac\n"))
			b := startDirector(t, l.bed, "d2", peer, globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, "    use_vmac\n"))
			eventually(t, "d1 master", 5*time.Second, func() bool { return m.holds(l.vip) })
			never(t, "both master", 500*time.Millisecond, func() bool { return b.holds(l.vip) })
			if got := m.mac("vrrp.51"); got != "00:00:5e:00:01:33" {
				t.Fatalf("vmac %s", got)
			}
			l.bed.MustPing("c", l.vip, 3*time.Second)
			// The client reaches the VIP at the virtual router MAC (the
			// parent's arp_announce 2 keeps its own ARP requests from
			// claiming the VIP with the parent's MAC).
			if got := neighMAC(l.bed, "c", l.vip); got != "00:00:5e:00:01:33" {
				t.Errorf("client reaches the vip at %s, not the virtual router MAC", got)
			}
			m.link(false)
			eventually(t, "vmac failover", 3*time.Second, func() bool { return b.holds(l.vip) })
			l.bed.MustPing("c", l.vip, 3*time.Second)
			m.stop()
			if _, err := l.bed.Run("d1", "ip", "link", "show", "vrrp.51"); err == nil {
				t.Error("vmac left after stop")
			}
		})
	}
}
