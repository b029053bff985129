package vrrpd_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVRRPProcess checks the daemon's VRRP child process (cmd/keepvs
// vrrpchild.go): it runs the instance, a child killed with -9 is started
// again and takes the VIP back, and a parent killed with -9 takes its
// child with it, which removes the VIP as on a clean stop.
func TestVRRPProcess(t *testing.T) {
	l := newLAN(t, 150)
	d := startDirector(t, l.bed, "d1", "keepvs", globalConf("d1")+instanceConf("VI_1", 51, 150, "0.1", 3, l.vip.String()+"/24", ""))
	eventually(t, "master holds the vip", 5*time.Second, func() bool { return d.holds(l.vip) })
	parent := d.pid()
	child := childOf(t, parent)
	if child == 0 {
		t.Fatalf("keepvs %d has no vrrp process", parent)
	}
	if s := d.instance("VI_1"); s.State != "MASTER" {
		t.Fatalf("status through the parent: %+v", s)
	}

	syscall.Kill(child, syscall.SIGKILL)
	var again int
	took := eventually(t, "a new vrrp process", 5*time.Second, func() bool {
		again = childOf(t, parent)
		return again != 0 && again != child
	})
	eventually(t, "the new vrrp process is master again", 5*time.Second, func() bool {
		return d.holds(l.vip) && d.instance("VI_1").State == "MASTER"
	})
	t.Logf("vrrp process %d killed; %d started %v later", child, again, took.Round(time.Millisecond))

	syscall.Kill(parent, syscall.SIGKILL)
	eventually(t, "the vrrp process ends with its parent and removes the vip", 5*time.Second, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(again))
		return err != nil && !d.holds(l.vip)
	})
}

// pid is the daemon's process id, from its pid file.
func (d *director) pid() int {
	b, err := os.ReadFile(filepath.Join(d.dir, "pid"))
	if err != nil {
		d.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		d.t.Fatal(err)
	}
	return pid
}

// childOf is a child process of pid, or 0.
func childOf(t *testing.T, pid int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read
		// after the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			return p
		}
	}
	return 0
}
