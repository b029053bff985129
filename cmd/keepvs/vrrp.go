package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

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

// runVRRP starts the VRRP instances of cfg, if it has any, and adds them
// to srv's status; onTransition is told their state changes. The function
// it returns stops them (a master sends priority 0 and removes its VIPs)
// and waits until that is done.
func runVRRP(ctx context.Context, cfg *model.Config, log *slog.Logger, srv *api.Server, onTransition func(instance string, from, to vrrp.State)) (stop func()) {
	if len(cfg.Instances) == 0 {
		return func() {}
	}
	ann, err := announce.New(log, vrrpStateFile())
	if err != nil {
		log.Error("vrrp not started", "err", err)
		return func() {}
	}
	if gone, err := ann.RemoveStale(); err != nil {
		log.Warn("vips left by a previous run not removed", "err", err)
	} else if len(gone) > 0 {
		log.Warn("removed vips a previous run left behind", "vips", gone)
	}
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
	opt := vrrpd.Options{Log: log, Announcer: ann, OnTransition: onTransition, NoRealtime: os.Getenv("KEEPVS_VRRP_REALTIME") == "off"}
	if fifo != nil {
		opt.FIFO = fifo
	}
	node, err := vrrpd.New(cfg, opt)
	if err != nil {
		log.Error("vrrp not started", "err", err)
		ann.Close()
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := node.Run(ctx); err != nil {
			log.Error("vrrp stopped", "err", err)
		}
	}()
	lvs := srv.Status
	srv.Status = func() any {
		st := statusWithVRRP{VRRP: node.Status()}
		if lvs != nil {
			st.RealServers = lvs()
		}
		return st
	}
	return func() {
		cancel()
		<-done
		ann.Close()
		if fifo != nil {
			fifo.Close()
		}
	}
}
