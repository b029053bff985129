package vrrpd_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReloadE2E: a keepvs master at advert_int 0.05 is sent SIGHUP 20
// times with its instance unchanged and other things changing (a new
// instance, then gone again): its backup, keepvs or keepalived, never
// advertises and the VIP stays on the master. Then a reload that adds a
// VIP adds it on the master, and one that removes the instance hands
// the VIP to the backup.
func TestReloadE2E(t *testing.T) {
	for k, backup := range []string{"keepvs", "keepalived"} {
		t.Run("backup-"+backup, func(t *testing.T) {
			l := newLAN(t, 160+k)
			vip := l.vip.String() + "/24"
			vip2 := netip.MustParseAddr(l.net + "101")
			inst := instanceConf("VI_1", 51, 150, "0.05", 3, vip, "")
			m := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+inst)
			b := startDirector(t, l.bed, "d2", backup, globalConf("d2")+instanceConf("VI_1", 51, 100, "0.05", 3, vip, ""))
			eventually(t, "master holds the vip", 5*time.Second, func() bool { return m.holds(l.vip) })
			never(t, "backup holds the vip too", 300*time.Millisecond, func() bool { return b.holds(l.vip) })

			sn := sniff(t, l.bed, "c")
			start := time.Now()
			backupAddr := netip.MustParseAddr(l.net + "2")
			masterAddr := netip.MustParseAddr(l.net + "1")
			for n := range 20 {
				conf := globalConf("d1") + inst
				if n%2 == 0 {
					conf += instanceConf("VI_2", 52, 100, "0.05", 3, l.net+"120/24", "")
				}
				m.reload(conf)
				time.Sleep(100 * time.Millisecond)
				if !m.holds(l.vip) {
					t.Fatalf("reload %d: the master lost the vip", n+1)
				}
			}
			time.Sleep(200 * time.Millisecond)
			recs := sn.Stop()
			end := time.Now()
			for _, r := range recs {
				if r.src == backupAddr && r.prio > 0 {
					t.Fatalf("the backup advertised during the reloads (priority %d at %v)", r.prio, r.at.Sub(start))
				}
			}
			st := statsOf(recs, masterAddr, start, end, 50*time.Millisecond)
			t.Logf("master over 20 reloads: %v", st)
			// The backup's master down interval is 3 adverts and its skew.
			if st.count == 0 || st.maxGap >= 150*time.Millisecond {
				t.Fatalf("the master's adverts during the reloads: %v", st)
			}
			if b.holds(l.vip) {
				t.Fatal("the backup holds the vip")
			}
			if s := m.instance("VI_1"); s.State != "MASTER" {
				t.Fatalf("master: %+v", s)
			}

			// A VIP added to the instance appears on the master.
			m.reload(globalConf("d1") + instanceConf("VI_1", 51, 150, "0.05", 3, vip+"\n        "+vip2.String()+"/24", ""))
			eventually(t, "the added vip on the master", 3*time.Second, func() bool { return m.holds(vip2) })
			if !m.holds(l.vip) || b.holds(l.vip) {
				t.Fatal("the vip moved when another was added")
			}

			// The instance removed: priority 0, the backup takes over.
			m.reload(globalConf("d1") + instanceConf("VI_9", 59, 100, "0.05", 3, l.net+"130/24", ""))
			eventually(t, "the backup takes over from the removed instance", 3*time.Second, func() bool { return b.holds(l.vip) })
			eventually(t, "the removed instance's vips leave the master", 3*time.Second, func() bool { return !m.holds(l.vip) && !m.holds(vip2) })
			if m.stopped() {
				t.Fatal("keepvs exited")
			}
		})
	}
}

// reload rewrites the director's configuration and sends it SIGHUP.
func (d *director) reload(conf string) {
	d.t.Helper()
	if err := os.WriteFile(filepath.Join(d.dir, "keepalived.conf"), []byte(conf), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		d.t.Fatal(err)
	}
}
