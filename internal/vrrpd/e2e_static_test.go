package vrrpd_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/notify/notifytest"
)

// TestStaticAndRules: static_ipaddress, static_routes and static_rules are
// installed at start (with or without a vrrp_instance), follow a reload
// and are removed at stop, as keepalived's VRRP process does; an
// instance's virtual_rules come and go with MASTER, as its VIPs do.
func TestStaticAndRules(t *testing.T) {
	l := newLAN(t, 151)
	n := l.net
	statics := func(addr, rule string) string {
		return "static_ipaddress {\n    " + addr + " dev eth0\n}\n" +
			"static_routes {\n    198.51.100.0/24 via " + n + "3 dev eth0\n}\n" +
			"static_rules {\n    " + rule + "\n}\n"
	}
	inst := instanceConf("VI_1", 51, 150, "0.1", 3, l.vip.String()+"/24",
		"    virtual_rules {\n        from "+l.vip.String()+" table 101 priority 1101\n    }\n")
	conf := globalConf("d1") + statics(n+"200/24", "from "+n+"201 table 100 priority 1100") + inst
	d := startDirector(t, l.bed, "d1", "keepvs", conf)
	has := func(what string, args ...string) bool {
		out, _ := l.bed.Run("d1", args...)
		return strings.Contains(out, what)
	}
	addrs := func(what string) bool { return has(what, "ip", "-4", "addr", "show", "dev", "eth0") }
	routes := func(what string) bool { return has(what, "ip", "-4", "route", "show") }
	rules := func(what string) bool { return has(what, "ip", "-4", "rule", "show") }

	eventually(t, "master holds the vip", 5*time.Second, func() bool { return d.holds(l.vip) })
	eventually(t, "statics and the virtual rule installed", 3*time.Second, func() bool {
		return addrs(n+"200/24") && routes("198.51.100.0/24 via "+n+"3") && rules("1100:\tfrom "+n+"201 lookup 100") &&
			rules("1101:\tfrom "+l.vip.String()+" lookup 101")
	})

	// A reload: the static address and rule change, the route stays.
	d.reload(globalConf("d1") + statics(n+"202/24", "from "+n+"203 table 100 priority 1102") + inst)
	eventually(t, "statics follow the reload", 3*time.Second, func() bool {
		return !addrs(n+"200/24") && addrs(n+"202/24") && !rules("1100:") && rules("1102:\tfrom "+n+"203 lookup 100") &&
			routes("198.51.100.0/24 via "+n+"3")
	})
	if !rules("1101:") || !d.holds(l.vip) {
		t.Fatalf("the reload moved the master's vip or virtual rule:\n%s", l.bed.MustRun("d1", "ip", "rule", "show"))
	}

	d.stop()
	if addrs(n+"202/24") || routes("198.51.100.0/24") || rules("1102:") || rules("1101:") || d.holds(l.vip) {
		t.Fatalf("left behind at stop:\n%s%s%s", l.bed.MustRun("d1", "ip", "-4", "addr"), l.bed.MustRun("d1", "ip", "-4", "route"), l.bed.MustRun("d1", "ip", "-4", "rule"))
	}

	// Statics alone (no vrrp_instance) start the VRRP process too.
	d2 := startDirector(t, l.bed, "d2", "keepvs", globalConf("d2")+statics(n+"210/24", "from "+n+"211 table 100 priority 1110"))
	eventually(t, "statics without an instance", 5*time.Second, func() bool {
		out, _ := l.bed.Run("d2", "ip", "-4", "addr", "show", "dev", "eth0")
		rl, _ := l.bed.Run("d2", "ip", "-4", "rule", "show")
		return strings.Contains(out, n+"210/24") && strings.Contains(rl, "1110:")
	})
	d2.stop()
}

// TestStartupDelayAndNoPeer: vrrp_startup_delay holds the instances in
// INIT for that long after the daemon starts; unicast_fault_no_peer puts
// an instance with no unicast peer in FAULT instead of letting it fall
// back to multicast.
func TestStartupDelayAndNoPeer(t *testing.T) {
	l := newLAN(t, 152)
	delayed := strings.Replace(globalConf("d1"), "global_defs {", "global_defs {\n    vrrp_startup_delay 1.5", 1)
	start := time.Now()
	d := startDirector(t, l.bed, "d1", "keepvs", delayed+instanceConf("VI_1", 51, 150, "0.1", 3, l.vip.String()+"/24", ""))
	if s := d.instance("VI_1"); s.State != "INIT" {
		t.Errorf("during vrrp_startup_delay the instance is %s, want INIT", s.State)
	}
	took := eventually(t, "master after the delay", 6*time.Second, func() bool { return d.holds(l.vip) })
	if since := time.Since(start); since < 1500*time.Millisecond {
		t.Errorf("master %v after the start, before vrrp_startup_delay 1.5 s", since)
	}
	t.Logf("master %v after the daemon's socket appeared (delay 1.5 s + master down 0.36 s)", took.Round(time.Millisecond))

	nopeer := startDirector(t, l.bed, "d2", "keepvs", globalConf("d2")+instanceConf("VI_2", 52, 150, "0.1", 3, l.net+"101/24",
		"    unicast_fault_no_peer\n    unicast_src_ip "+l.net+"2\n"))
	eventually(t, "instance without unicast peers in FAULT", 3*time.Second, func() bool { return nopeer.instance("VI_2").State == "FAULT" })
	never(t, "the instance without peers takes its vip", 500*time.Millisecond, func() bool { return nopeer.holds(netip.MustParseAddr(l.net + "101")) })
}

// TestTrackSrcIP: with track_src_ip, an instance whose mcast_src_ip is
// removed from its interface goes to FAULT (its backup takes the VIP),
// and comes back when the address does.
func TestTrackSrcIP(t *testing.T) {
	l := newLAN(t, 153)
	src := l.net + "11"
	l.bed.MustRun("d1", "ip", "addr", "add", src+"/24", "dev", "eth0")
	vip := l.vip.String() + "/24"
	m := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+instanceConf("VI_1", 51, 150, "0.1", 3, vip,
		"    mcast_src_ip "+src+"\n    track_src_ip\n"))
	b := startDirector(t, l.bed, "d2", "keepvs", globalConf("d2")+instanceConf("VI_1", 51, 100, "0.1", 3, vip, ""))
	eventually(t, "d1 master", 5*time.Second, func() bool { return m.holds(l.vip) })
	l.bed.MustRun("d1", "ip", "addr", "del", src+"/24", "dev", "eth0")
	eventually(t, "d1 in FAULT, d2 holds the vip", 3*time.Second, func() bool {
		return m.instance("VI_1").State == "FAULT" && b.holds(l.vip) && !m.holds(l.vip)
	})
	l.bed.MustRun("d1", "ip", "addr", "add", src+"/24", "dev", "eth0")
	eventually(t, "d1 master again", 5*time.Second, func() bool { return m.holds(l.vip) && !b.holds(l.vip) })
}

// TestSMTPAlert: an instance with smtp_alert mails its state changes in
// keepalived's format to global_defs' smtp_server, from the VRRP process.
func TestSMTPAlert(t *testing.T) {
	l := newLAN(t, 154)
	var ln net.Listener
	if err := l.bed.Do("d1", func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sink := notifytest.NewSMTP(t, ln)
	port := ln.Addr().(*net.TCPAddr).Port
	g := strings.Replace(globalConf("d1"), "global_defs {", fmt.Sprintf(
		"global_defs {\n    notification_email {\n        ops@example.com\n    }\n    notification_email_from lb@example.com\n    smtp_server 127.0.0.1 %d\n    smtp_connect_timeout 5", port), 1)
	d := startDirector(t, l.bed, "d1", "keepvs", g+instanceConf("VI_1", 51, 150, "0.1", 3, l.vip.String()+"/24", "    smtp_alert\n"))
	for _, state := range []string{"BACKUP", "MASTER"} {
		got := sink.Next(t)
		if len(got) < 6 || !strings.Contains(got[len(got)-2], "Subject: [d1] VRRP Instance VI_1 - Entering "+state+" state\r\n") {
			t.Fatalf("mail for %s: %q", state, got)
		}
	}
	if !d.holds(l.vip) {
		t.Error("master without its vip")
	}
}
