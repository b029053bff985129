package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp"
)

// syncDaemons runs global_defs lvs_sync_daemon on the kernel's IPVS
// connection synchronisation daemons, as keepalived 2.2.7 does:
//
//   - with a vrrp_instance named, the daemon follows it: the backup daemon
//     from the instance's start (BACKUP or FAULT), the master daemon alone
//     while it is MASTER (the backup stopped first), the backup again when
//     it leaves MASTER for BACKUP or FAULT. keepalived's VRRP process owns
//     it, so it runs when the VRRP subsystem does (not with -C).
//   - with no instance, the master and the backup daemon run as long as
//     the daemon does. keepalived's health-checker process owns them, and
//     that process runs only when there are virtual servers (not with -P).
//   - the sync id defaults to the instance's virtual_router_id, else 0;
//     maxlen, port, ttl and group, when not given, are left to the kernel
//     (its defaults: from the MTU, 8848, 1, 224.0.0.81).
//   - a reload that changes the parameters restarts the running daemon with
//     the new ones; one that adds lvs_sync_daemon starts it in the
//     instance's current state.
//   - a clean stop stops the daemons keepvs started.
//
// Two deliberate differences, both where keepalived 2.2.7 leaves a stale
// daemon running: daemons already running in the kernel when keepvs takes
// charge (a crashed run, ipvsadm) are stopped first, as keepalived does
// only when no instance is named (with one, its start fails with "Daemon
// has already run" and the old daemon stays); and a reload that removes
// lvs_sync_daemon stops the daemons (keepalived leaves them running, even
// after it stops).
//
// Kernel errors are logged with their reason and never stop keepvs.
// Transition is called from the VRRP node's worker goroutine, the rest
// from serve's; a mutex orders them.
type syncDaemons struct {
	kernel ipvsadm.SyncDaemons // nil: the data plane has no sync daemons
	log    *slog.Logger
	// vrrpRuns and checkRuns are the subsystems -P and -C leave running.
	vrrpRuns, checkRuns bool

	mu      sync.Mutex
	want    syncdWant
	states  map[string]vrrp.State // every instance's last state
	master  bool                  // the daemons keepvs started and runs
	backup  bool
	params  ipvsadm.SyncDaemon // what the running daemons were given
	stopped bool
	warned  bool
}

// syncdWant is what a configuration asks for.
type syncdWant struct {
	on bool
	// inst is the instance the daemon follows; "" runs both daemons.
	inst string
	d    ipvsadm.SyncDaemon
}

func newSyncDaemons(dp dataplane.Dataplane, log *slog.Logger, vrrpRuns, checkRuns bool) *syncDaemons {
	s := &syncDaemons{log: log, vrrpRuns: vrrpRuns, checkRuns: checkRuns, states: map[string]vrrp.State{}}
	if k, ok := dp.(ipvsadm.SyncDaemons); ok {
		s.kernel = k
	}
	return s
}

// wantOf reads lvs_sync_daemon from cfg (after -P/-C took their half
// away) and says why nothing runs when nothing does.
func (s *syncDaemons) wantOf(cfg *model.Config) (syncdWant, string) {
	m := cfg.Global.LVSSyncDaemon
	if m == nil {
		return syncdWant{}, ""
	}
	w := syncdWant{inst: m.Instance, d: ipvsadm.SyncDaemon{
		Interface: m.Interface, MaxLen: uint16(m.MaxLen), Port: m.Port, TTL: uint8(m.TTL), Group: m.Group,
	}}
	if m.SyncID != nil {
		w.d.SyncID = uint8(*m.SyncID)
	}
	if w.inst == "" {
		switch {
		case !s.checkRuns:
			return syncdWant{}, "lvs_sync_daemon not run: with no vrrp_instance named it runs with the health checkers, which -P leaves out (as in keepalived)"
		case len(cfg.VirtualServers) == 0:
			return syncdWant{}, "lvs_sync_daemon not run: with no vrrp_instance named it runs with the health checkers, which run only with virtual servers (as in keepalived)"
		}
		w.on = true
		return w, ""
	}
	var in *model.Instance
	for _, i := range cfg.Instances {
		if i.Name == w.inst {
			in = i
		}
	}
	if !s.vrrpRuns || in == nil {
		return syncdWant{}, "lvs_sync_daemon not run: it follows a vrrp_instance and the VRRP subsystem runs it, which -C leaves out (as in keepalived)"
	}
	if m.SyncID == nil {
		w.d.SyncID = uint8(in.VRID)
	}
	w.on = true
	return w, ""
}

// notAvailable says, once, that this data plane has no sync daemons.
func (s *syncDaemons) notAvailable() bool {
	if s.kernel != nil {
		return false
	}
	if !s.warned {
		s.warned = true
		s.log.Warn("lvs_sync_daemon: connection synchronisation is not available with this data plane (only the kernel's IPVS has it); not started")
	}
	return true
}

// start takes charge of cfg's lvs_sync_daemon when keepvs starts: with no
// instance named both daemons start now; with one, the instance's first
// transition starts the backup.
func (s *syncDaemons) start(ctx context.Context, cfg *model.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, why := s.wantOf(cfg)
	if why != "" {
		s.log.Info(why, "instance", cfg.Global.LVSSyncDaemon.Instance)
	}
	if !w.on || s.notAvailable() {
		return
	}
	s.want = w
	s.begin(ctx)
}

// begin starts what s.want asks for now: both daemons with no instance
// named, else the one for the instance's state. It reports false when the
// instance has no state yet (its daemon starts with its first one).
func (s *syncDaemons) begin(ctx context.Context) bool {
	s.clearStale(ctx)
	if s.want.inst == "" {
		s.run(ctx, false)
		s.run(ctx, true)
		return true
	}
	st, ok := s.states[s.want.inst]
	if ok {
		s.follow(ctx, st)
	}
	return ok
}

// clearStale stops the sync daemons the kernel runs that keepvs did not
// start: they hold the interface and sync id keepvs is about to use.
func (s *syncDaemons) clearStale(ctx context.Context) {
	ds, err := s.kernel.Daemons(ctx)
	if err != nil {
		s.log.Error("lvs_sync_daemon: listing the kernel's sync daemons", "err", err)
		return
	}
	for _, d := range ds {
		if err := s.kernel.StopDaemon(ctx, d.Backup); err != nil {
			s.log.Error("lvs_sync_daemon: a sync daemon keepvs did not start is running and could not be stopped", daemonAttrs(d, err)...)
			continue
		}
		s.log.Warn("lvs_sync_daemon: stopped a sync daemon keepvs did not start (a previous run or ipvsadm left it)", daemonAttrs(d, nil)...)
	}
}

// transition is an instance's state change, from the VRRP node.
func (s *syncDaemons) transition(instance string, _, to vrrp.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[instance] = to
	if s.stopped || !s.want.on || s.want.inst != instance {
		return
	}
	s.follow(context.Background(), to)
}

// follow puts the daemons where state st wants them: the master daemon
// alone for MASTER, the backup alone otherwise (keepalived's
// ipvs_syncd_master and ipvs_syncd_backup: stop the other one first).
// STOP is the daemon stopping, which stop handles.
func (s *syncDaemons) follow(ctx context.Context, st vrrp.State) {
	switch st {
	case vrrp.StateStop:
		return
	case vrrp.StateMaster:
		if s.master {
			return
		}
		if s.backup {
			s.halt(ctx, true)
		}
		s.run(ctx, false)
	default:
		if s.backup {
			return
		}
		if s.master {
			s.halt(ctx, false)
		}
		s.run(ctx, true)
	}
}

// run starts the master or the backup daemon with the wanted parameters.
func (s *syncDaemons) run(ctx context.Context, backup bool) {
	d := s.want.d
	d.Backup = backup
	if err := s.kernel.StartDaemon(ctx, d); err != nil {
		s.log.Error("lvs_sync_daemon: sync daemon not started", daemonAttrs(d, err)...)
		return
	}
	if backup {
		s.backup = true
	} else {
		s.master = true
	}
	s.params = s.want.d
	s.log.Info("lvs_sync_daemon: sync daemon started", daemonAttrs(d, nil)...)
}

// halt stops the master or the backup daemon keepvs started.
func (s *syncDaemons) halt(ctx context.Context, backup bool) {
	d := s.params
	d.Backup = backup
	if backup {
		s.backup = false
	} else {
		s.master = false
	}
	if err := s.kernel.StopDaemon(ctx, backup); err != nil {
		s.log.Error("lvs_sync_daemon: sync daemon not stopped", daemonAttrs(d, err)...)
		return
	}
	s.log.Info("lvs_sync_daemon: sync daemon stopped", daemonAttrs(d, nil)...)
}

// reload applies a new configuration's lvs_sync_daemon: nothing when it
// is unchanged; otherwise the running daemons stop and the new ones start
// where the instance they follow is now (after any daemon keepvs did not
// start is stopped, as at start).
func (s *syncDaemons) reload(ctx context.Context, cfg *model.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	w, why := s.wantOf(cfg)
	if w == s.want {
		return
	}
	if why != "" {
		s.log.Info(why, "instance", cfg.Global.LVSSyncDaemon.Instance)
	}
	if w.on && s.notAvailable() {
		return
	}
	s.haltAll(ctx)
	s.want = w
	if w.on && !s.begin(ctx) {
		s.log.Info("lvs_sync_daemon: its vrrp_instance has not started; the sync daemon starts with it", "instance", w.inst)
	}
}

// haltAll stops the daemons keepvs runs.
func (s *syncDaemons) haltAll(ctx context.Context) {
	if s.master {
		s.halt(ctx, false)
	}
	if s.backup {
		s.halt(ctx, true)
	}
}

// stop stops the daemons keepvs started; transitions after it are
// ignored.
func (s *syncDaemons) stop(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.kernel == nil {
		return
	}
	s.haltAll(ctx)
}

func daemonAttrs(d ipvsadm.SyncDaemon, err error) []any {
	state := "master"
	if d.Backup {
		state = "backup"
	}
	a := []any{"state", state, "interface", d.Interface, "syncid", d.SyncID}
	if err != nil {
		a = append(a, "err", err)
	}
	return a
}
