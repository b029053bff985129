package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/keepvs/keepvs/internal/announce"
	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify"
	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrpd"
)

// statusWithVRRP is GET /v1/status when VRRP runs: the real servers
// under their own key, so the LVS half reads as before.
type statusWithVRRP struct {
	RealServers any                    `json:"real_servers"`
	VRRP        []vrrpd.InstanceStatus `json:"vrrp"`
}

// vrrpStateFile records the VIPs keepvs added, so the next run removes
// what a crashed one left (keepalived issue #159). KEEPVS_STATE_DIR moves
// it (tests run several daemons on one host).
func vrrpStateFile() string {
	dir := os.Getenv("KEEPVS_STATE_DIR")
	if dir == "" {
		dir = "/run/keepvs"
	}
	return filepath.Join(dir, "vrrp-vips.json")
}

// vrrpRunner is the VRRP half of the daemon: the node starts with the
// first configuration that has vrrp_instances, at start or at a reload,
// and later configurations reload it (vrrpd.Node.Reload), so an instance
// a reload leaves alone runs on without a gap.
type vrrpRunner struct {
	ctx          context.Context
	log          *slog.Logger
	onTransition func(instance string, from, to vrrp.State)
	node         atomic.Pointer[vrrpd.Node]
	stopNode     func()
	// ann is the netlink side, opened with the first configuration that
	// has VRRP; statics are the static_ipaddress, static_routes and
	// static_rules it installed, removed at stop as keepalived does.
	reloading  bool // a reload has come: no vrrp_startup_delay any more
	ann        *announce.Announcer
	statics    model.VRRP
	staticsDev string // the default_interface they were added with
}

// hasVRRP reports whether cfg has anything keepalived's VRRP process
// runs: instances, or static addresses, routes or rules.
func hasVRRP(cfg *model.Config) bool {
	return len(cfg.Instances)+len(cfg.StaticAddresses)+len(cfg.StaticRoutes)+len(cfg.StaticRules) > 0
}

// runVRRP starts the VRRP instances of cfg, if it has any, and adds them
// to srv's status; onTransition is told their state changes.
func runVRRP(ctx context.Context, cfg *model.Config, log *slog.Logger, onTransition func(instance string, from, to vrrp.State)) *vrrpRunner {
	r := &vrrpRunner{ctx: ctx, log: log, onTransition: onTransition, stopNode: func() {}}
	r.start(cfg)
	return r
}

// status is the instances' status; false while no node runs.
func (r *vrrpRunner) status() ([]vrrpd.InstanceStatus, bool) {
	node := r.node.Load()
	if node == nil {
		return nil, false
	}
	return node.Status(), true
}

// addVRRPStatus puts the VRRP instances next to the real servers in srv's
// status (GET /v1/status) while vrrp reports instances running.
func addVRRPStatus(srv *api.Server, vrrp func() ([]vrrpd.InstanceStatus, bool)) {
	lvs := srv.Status
	srv.Status = func() any {
		var rs any
		if lvs != nil {
			rs = lvs()
		}
		st, ok := vrrp()
		if !ok {
			return rs
		}
		return statusWithVRRP{RealServers: rs, VRRP: st}
	}
}

// reload applies a configuration accepted by reload(): the running node
// reloads; with none yet, one starts if cfg has vrrp_instances.
func (r *vrrpRunner) reload(cfg *model.Config) {
	if r.ann != nil {
		r.applyStatics(cfg.VRRP, cfg.Global.DefaultInterface)
	}
	node := r.node.Load()
	r.reloading = true
	if node == nil {
		r.start(cfg)
		return
	}
	switch err := node.Reload(r.ctx, cfg); {
	case errors.Is(err, vrrpd.ErrStopped):
		// It ended at start (a socket it could not open): start afresh.
		r.stopNode()
		r.node.Store(nil)
		r.start(cfg)
	case err != nil:
		r.log.Error("vrrp reload refused; the vrrp instances run as before", "err", err)
	}
}

// stop stops the instances (a master sends priority 0 and removes its
// VIPs) and waits until that is done.
func (r *vrrpRunner) stop() {
	r.stopNode()
	if r.ann != nil {
		r.applyStatics(model.VRRP{}, r.staticsDev)
		r.ann.Close()
	}
}

// open opens the netlink side and removes what a crashed run left.
func (r *vrrpRunner) open() bool {
	if r.ann != nil {
		return true
	}
	ann, err := announce.New(r.log, vrrpStateFile())
	if err != nil {
		r.log.Error("vrrp not started", "err", err)
		return false
	}
	if gone, err := ann.RemoveStale(); err != nil {
		r.log.Warn("vips left by a previous run not removed", "err", err)
	} else if len(gone) > 0 {
		r.log.Warn("removed vips a previous run left behind", "vips", gone)
	}
	r.ann = ann
	return true
}

// applyStatics makes the static addresses, routes and rules want's:
// those no longer wanted are removed, new ones added (keepalived's
// reload); addresses and routes without a dev go on dev
// (default_interface).
func (r *vrrpRunner) applyStatics(want model.VRRP, dev string) {
	gone, added := model.Diff(r.statics.StaticRules, want.StaticRules)
	if err := r.ann.RemoveRules(gone); err != nil {
		r.log.Error("static rules not all removed", "err", err)
	}
	goneR, addedR := model.Diff(r.statics.StaticRoutes, want.StaticRoutes)
	if err := r.ann.RemoveRoutes(r.staticsDev, goneR); err != nil {
		r.log.Error("static routes not all removed", "err", err)
	}
	goneA, addedA := model.Diff(r.statics.StaticAddresses, want.StaticAddresses)
	if err := r.ann.RemoveVIPs(r.staticsDev, goneA); err != nil {
		r.log.Error("static addresses not all removed", "err", err)
	}
	if err := r.ann.AddVIPs(dev, addedA); err != nil {
		r.log.Error("static addresses not all added", "err", err)
	}
	if err := r.ann.AddRoutes(dev, addedR); err != nil {
		r.log.Error("static routes not all added", "err", err)
	}
	if err := r.ann.AddRules(added); err != nil {
		r.log.Error("static rules not all added", "err", err)
	}
	if n := len(gone) + len(goneR) + len(goneA) + len(added) + len(addedR) + len(addedA); n > 0 {
		r.log.Info("static addresses, routes and rules applied", "addresses", len(want.StaticAddresses), "routes", len(want.StaticRoutes), "rules", len(want.StaticRules),
			"removed", len(gone)+len(goneR)+len(goneA), "added", len(added)+len(addedR)+len(addedA))
	}
	r.statics = model.VRRP{StaticAddresses: want.StaticAddresses, StaticRoutes: want.StaticRoutes, StaticRules: want.StaticRules}
	r.staticsDev = dev
}

func (r *vrrpRunner) start(cfg *model.Config) {
	if !hasVRRP(cfg) || !r.open() {
		return
	}
	r.applyStatics(cfg.VRRP, cfg.Global.DefaultInterface)
	if len(cfg.Instances) == 0 {
		return
	}
	log, ann := r.log, r.ann
	var err error
	// An instance starts in BACKUP: its VIPs must not be here yet (a
	// keepalived or keepvs killed with -9 leaves them).
	for _, in := range cfg.Instances {
		if in.VMAC == nil {
			ann.RemoveVIPs(in.Interface, append(append([]model.VIP(nil), in.VIPs...), in.ExcludedVIPs...))
		}
	}
	var fifo *notify.FIFO
	if f := cfg.Global.VRRPNotifyFIFO; f != nil || cfg.Global.NotifyFIFO != nil {
		if f == nil {
			f = cfg.Global.NotifyFIFO
		}
		if fifo, err = notify.OpenFIFO(f.Path); err != nil {
			log.Error("vrrp notify fifo not opened; its lines are lost", "err", err)
		}
	}
	// KEEPVS_VRRP_REALTIME=off keeps the VRRP thread in normal scheduling.
	opt := vrrpd.Options{Log: log, Announcer: ann, OnTransition: r.onTransition, NoRealtime: os.Getenv("KEEPVS_VRRP_REALTIME") == "off"}
	if !r.reloading {
		// vrrp_startup_delay holds the instances at the daemon's start,
		// not when a reload brings the first ones.
		opt.StartupDelay = cfg.Global.VRRPStartupDelay.D()
	}
	if fifo != nil {
		opt.FIFO = fifo
	}
	mail := notify.NewMailer(cfg.Global, log)
	opt.Mail = mail
	node, err := vrrpd.New(cfg, opt)
	if err != nil {
		log.Error("vrrp not started", "err", err)
		mail.Close()
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := node.Run(ctx); err != nil {
			log.Error("vrrp stopped", "err", err)
		}
	}()
	r.node.Store(node)
	r.stopNode = func() {
		cancel()
		<-done
		mail.Close()
		if fifo != nil {
			fifo.Close()
		}
	}
}
