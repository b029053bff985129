package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp"
)

// fakeSyncKernel is the kernel's two sync daemons: it answers EEXIST and
// ESRCH as the kernel does and records each call.
type fakeSyncKernel struct {
	running [2]*ipvsadm.SyncDaemon // master, backup
	calls   []string
	failOn  string // a call that fails with an error of its own
}

func (f *fakeSyncKernel) slot(backup bool) **ipvsadm.SyncDaemon {
	if backup {
		return &f.running[1]
	}
	return &f.running[0]
}

func stateName(backup bool) string {
	if backup {
		return "backup"
	}
	return "master"
}

func (f *fakeSyncKernel) StartDaemon(_ context.Context, d ipvsadm.SyncDaemon) error {
	c := fmt.Sprintf("start %s %s id=%d", stateName(d.Backup), d.Interface, d.SyncID)
	if d.MaxLen != 0 || d.Port != 0 || d.TTL != 0 || d.Group.IsValid() {
		c += fmt.Sprintf(" maxlen=%d port=%d ttl=%d group=%s", d.MaxLen, d.Port, d.TTL, d.Group)
	}
	f.calls = append(f.calls, c)
	if c == f.failOn {
		return fmt.Errorf("ipvs: start daemon: no such device")
	}
	p := f.slot(d.Backup)
	if *p != nil {
		return ipvsadm.ErrDaemonRunning
	}
	*p = &d
	return nil
}

func (f *fakeSyncKernel) StopDaemon(_ context.Context, backup bool) error {
	f.calls = append(f.calls, "stop "+stateName(backup))
	p := f.slot(backup)
	if *p == nil {
		return ipvsadm.ErrNoDaemon
	}
	*p = nil
	return nil
}

func (f *fakeSyncKernel) Daemons(context.Context) ([]ipvsadm.SyncDaemon, error) {
	var out []ipvsadm.SyncDaemon
	for _, d := range f.running {
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, nil
}

// take returns the calls since the last take.
func (f *fakeSyncKernel) take() []string {
	c := f.calls
	f.calls = nil
	return c
}

func syncdConfig(t *testing.T, src string) *model.Config {
	t.Helper()
	f, diags := conf.Parse("keepalived.conf", []byte(src), conf.Options{ConfigID: "t"})
	c, more := model.Build(f)
	if d := append(diags, more...); d.HasErrors() {
		t.Fatalf("config: %v", d)
	}
	return c
}

const syncdTestInstances = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.101
    }
}
`

const syncdTestVS = `virtual_server 10.0.0.200 80 {
    real_server 10.0.0.3 80 {
    }
}
`

func syncdConf(t *testing.T, line, rest string) *model.Config {
	return syncdConfig(t, "global_defs {\n    "+line+"\n}\n"+rest)
}

type syncdHarness struct {
	k   *fakeSyncKernel
	s   *syncDaemons
	log *bytes.Buffer
}

func newSyncdHarness(vrrpRuns, checkRuns bool) *syncdHarness {
	k := &fakeSyncKernel{}
	var log bytes.Buffer
	s := newSyncDaemons(nil, slog.New(slog.NewTextHandler(&log, nil)), vrrpRuns, checkRuns)
	s.kernel = k
	return &syncdHarness{k: k, s: s, log: &log}
}

func (h *syncdHarness) expect(t *testing.T, step string, want ...string) {
	t.Helper()
	if got := h.k.take(); !slices.Equal(got, want) {
		t.Errorf("%s: kernel calls\n got: %q\nwant: %q", step, got, want)
	}
}

// The daemon follows the named instance as keepalived's vrrp_init_state,
// vrrp_state_become_master and vrrp_state_leave_master do.
func TestSyncdFollowsInstance(t *testing.T) {
	ctx := context.Background()
	h := newSyncdHarness(true, true)
	h.s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances))
	h.expect(t, "start")
	steps := []struct {
		inst     string
		from, to vrrp.State
		want     []string
	}{
		{"VI_2", vrrp.StateInit, vrrp.StateBackup, nil},
		{"VI_1", vrrp.StateInit, vrrp.StateBackup, []string{"start backup eth0 id=7"}},
		{"VI_2", vrrp.StateBackup, vrrp.StateMaster, nil},
		{"VI_1", vrrp.StateBackup, vrrp.StateMaster, []string{"stop backup", "start master eth0 id=7"}},
		{"VI_1", vrrp.StateMaster, vrrp.StateFault, []string{"stop master", "start backup eth0 id=7"}},
		{"VI_1", vrrp.StateFault, vrrp.StateBackup, nil},
		{"VI_1", vrrp.StateBackup, vrrp.StateFault, nil},
		{"VI_1", vrrp.StateFault, vrrp.StateMaster, []string{"stop backup", "start master eth0 id=7"}},
		{"VI_1", vrrp.StateMaster, vrrp.StateBackup, []string{"stop master", "start backup eth0 id=7"}},
		{"VI_1", vrrp.StateBackup, vrrp.StateMaster, []string{"stop backup", "start master eth0 id=7"}},
	}
	for _, s := range steps {
		h.s.transition(s.inst, s.from, s.to)
		h.expect(t, fmt.Sprintf("%s %s→%s", s.inst, s.from, s.to), s.want...)
	}
	h.s.stop(ctx)
	h.expect(t, "stop", "stop master")
	// The node stops after: its STOP transitions change nothing.
	h.s.transition("VI_1", vrrp.StateMaster, vrrp.StateStop)
	h.s.transition("VI_1", vrrp.StateStop, vrrp.StateBackup)
	h.expect(t, "after stop")
	if h.k.running != [2]*ipvsadm.SyncDaemon{} {
		t.Errorf("daemons left running: %+v", h.k.running)
	}
}

// An instance that starts in FAULT (its interface down) gets the backup
// daemon, as keepalived's vrrp_init_state starts it for any state but
// MASTER; the address owner goes INIT → MASTER.
func TestSyncdInitialStates(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		to   vrrp.State
		want []string
	}{
		{vrrp.StateFault, []string{"start backup eth0 id=7"}},
		{vrrp.StateMaster, []string{"start master eth0 id=7"}},
	} {
		h := newSyncdHarness(true, true)
		h.s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances))
		h.s.transition("VI_1", vrrp.StateInit, c.to)
		h.expect(t, "INIT→"+c.to.String(), c.want...)
	}
}

// The syncid defaults to the instance's VRID (0 with no instance); the
// other parameters go to the kernel only when given.
func TestSyncdParameters(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		line, rest string
		to         vrrp.State
		want       []string
	}{
		{"lvs_sync_daemon eth0 VI_2", syncdTestInstances, vrrp.StateMaster, []string{"start master eth0 id=52"}},
		{"lvs_sync_daemon eth0 inst VI_1 id 0", syncdTestInstances, vrrp.StateBackup, []string{"start backup eth0 id=0"}},
		{"lvs_sync_daemon eth1 inst VI_1 id 12 maxlen 1400 port 8850 ttl 3 group 224.0.0.99", syncdTestInstances, vrrp.StateBackup,
			[]string{"start backup eth1 id=12 maxlen=1400 port=8850 ttl=3 group=224.0.0.99"}},
		{"lvs_sync_daemon eth0", syncdTestInstances + syncdTestVS, vrrp.StateBackup,
			[]string{"start master eth0 id=0", "start backup eth0 id=0"}},
	} {
		h := newSyncdHarness(true, true)
		h.s.start(ctx, syncdConf(t, c.line, c.rest))
		h.s.transition("VI_1", vrrp.StateInit, c.to)
		h.s.transition("VI_2", vrrp.StateInit, c.to)
		h.expect(t, c.line, c.want...)
	}
}

// With no instance named, both daemons run from start to stop, whatever
// the instances do.
func TestSyncdNoInstance(t *testing.T) {
	ctx := context.Background()
	h := newSyncdHarness(true, true)
	h.s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 id 7", syncdTestInstances+syncdTestVS))
	h.expect(t, "start", "start master eth0 id=7", "start backup eth0 id=7")
	h.s.transition("VI_1", vrrp.StateInit, vrrp.StateBackup)
	h.s.transition("VI_1", vrrp.StateBackup, vrrp.StateMaster)
	h.expect(t, "transitions")
	h.s.stop(ctx)
	h.expect(t, "stop", "stop master", "stop backup")
}

// keepalived's subsystems: the VRRP process owns a daemon that follows an
// instance, the checker process (which runs only with virtual servers)
// one that does not.
func TestSyncdSubsystems(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name                string
		vrrpRuns, checkRuns bool
		line, rest          string
		want                []string
		why                 string
	}{
		{"instance, -C", false, true, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances + syncdTestVS, nil, "-C leaves out"},
		{"instance, -P", true, false, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances + syncdTestVS, []string{"start backup eth0 id=7"}, ""},
		{"no instance, -P", true, false, "lvs_sync_daemon eth0 id 7", syncdTestInstances + syncdTestVS, nil, "-P leaves out"},
		{"no instance, -C", false, true, "lvs_sync_daemon eth0 id 7", syncdTestVS, []string{"start master eth0 id=7", "start backup eth0 id=7"}, ""},
		{"no instance, no virtual server", true, true, "lvs_sync_daemon eth0 id 7", syncdTestInstances, nil, "only with virtual servers"},
	} {
		h := newSyncdHarness(c.vrrpRuns, c.checkRuns)
		cfg := syncdConf(t, c.line, c.rest)
		if !c.vrrpRuns {
			cfg.Instances = nil // what -C does to the configuration
		}
		h.s.start(ctx, cfg)
		h.s.transition("VI_1", vrrp.StateInit, vrrp.StateBackup)
		h.expect(t, c.name, c.want...)
		if c.why != "" && !strings.Contains(h.log.String(), c.why) {
			t.Errorf("%s: log does not say %q:\n%s", c.name, c.why, h.log)
		}
	}
}

// Daemons keepvs finds running when it takes charge are stopped first.
func TestSyncdStaleDaemons(t *testing.T) {
	ctx := context.Background()
	h := newSyncdHarness(true, true)
	h.k.running[0] = &ipvsadm.SyncDaemon{Interface: "eth1", SyncID: 99}
	h.k.running[1] = &ipvsadm.SyncDaemon{Interface: "eth1", SyncID: 98, Backup: true}
	h.s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances))
	h.expect(t, "start", "stop master", "stop backup")
	if !strings.Contains(h.log.String(), "syncid=99") || !strings.Contains(h.log.String(), "syncid=98") {
		t.Errorf("the stale daemons are not logged:\n%s", h.log)
	}
	h.s.transition("VI_1", vrrp.StateInit, vrrp.StateBackup)
	h.expect(t, "backup", "start backup eth0 id=7")
}

// A kernel error is logged with its reason and the daemon goes on; the
// next transition tries again.
func TestSyncdKernelErrors(t *testing.T) {
	ctx := context.Background()
	h := newSyncdHarness(true, true)
	h.k.failOn = "start master eth0 id=7"
	h.s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances))
	h.s.transition("VI_1", vrrp.StateInit, vrrp.StateBackup)
	h.s.transition("VI_1", vrrp.StateBackup, vrrp.StateMaster)
	h.expect(t, "master fails", "start backup eth0 id=7", "stop backup", "start master eth0 id=7")
	if !strings.Contains(h.log.String(), `level=ERROR msg="lvs_sync_daemon: sync daemon not started" state=master interface=eth0 syncid=7 err="ipvs: start daemon: no such device"`) {
		t.Errorf("error not logged with its reason:\n%s", h.log)
	}
	h.k.failOn = ""
	h.s.transition("VI_1", vrrp.StateMaster, vrrp.StateBackup)
	h.expect(t, "back to backup", "start backup eth0 id=7")
	h.s.stop(ctx)
	h.expect(t, "stop", "stop backup")
}

// A reload restarts the running daemon when its parameters change, stops
// it when lvs_sync_daemon goes, starts it in the instance's current state
// when it comes.
func TestSyncdReload(t *testing.T) {
	ctx := context.Background()
	h := newSyncdHarness(true, true)
	h.s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances))
	h.s.transition("VI_1", vrrp.StateInit, vrrp.StateBackup)
	h.s.transition("VI_2", vrrp.StateInit, vrrp.StateBackup)
	h.s.transition("VI_1", vrrp.StateBackup, vrrp.StateMaster)
	h.k.take()
	steps := []struct {
		line string
		want []string
	}{
		{"lvs_sync_daemon eth0 VI_1 id 7", nil},
		{"lvs_sync_daemon eth0 VI_1 id 9", []string{"stop master", "start master eth0 id=9"}},
		{"lvs_sync_daemon eth0 VI_2 id 9", []string{"stop master", "start backup eth0 id=9"}},
		{"router_id x", []string{"stop backup"}},
		{"lvs_sync_daemon eth0 VI_1", []string{"start master eth0 id=51"}},
		{"lvs_sync_daemon eth0", []string{"stop master"}}, // no virtual server: nothing runs
	}
	for _, s := range steps {
		h.s.reload(ctx, syncdConf(t, s.line, syncdTestInstances))
		h.expect(t, "reload to "+s.line, s.want...)
	}
}

// With a data plane that has no sync daemons (the userspace proxy), it is
// said once and nothing else happens.
func TestSyncdNotAvailable(t *testing.T) {
	ctx := context.Background()
	var log bytes.Buffer
	s := newSyncDaemons(nil, slog.New(slog.NewTextHandler(&log, nil)), true, true)
	s.start(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 7", syncdTestInstances))
	s.transition("VI_1", vrrp.StateInit, vrrp.StateBackup)
	s.transition("VI_1", vrrp.StateBackup, vrrp.StateMaster)
	s.reload(ctx, syncdConf(t, "lvs_sync_daemon eth0 VI_1 id 8", syncdTestInstances))
	s.stop(ctx)
	if n := strings.Count(log.String(), "not available"); n != 1 {
		t.Errorf("said %d times:\n%s", n, log.String())
	}
}

// The daemon on the userspace proxy (this host has no IPVS) runs with
// lvs_sync_daemon and says once that there is no connection sync.
func TestSyncdOnProxyDaemon(t *testing.T) {
	port := freePort(t)
	conf := func(id int) string {
		return fmt.Sprintf("global_defs {\n    lvs_sync_daemon lo id %d\n}\nvirtual_server 127.0.0.1 %d {\n    protocol TCP\n    real_server 127.0.0.2 %d {\n    }\n}\n", id, port, port)
	}
	d := startDaemonD(t, conf(3))
	d.waitLog(t, "keepvs running")
	if err := os.WriteFile(d.config, []byte(conf(4)), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	d.waitLog(t, "reload done")
	if n := strings.Count(d.logs.String(), "connection synchronisation is not available"); n != 1 {
		t.Errorf("said %d times:\n%s", n, d.logs.String())
	}
}
