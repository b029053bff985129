package main

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/track"
)

// localAddrs tells the engine which addresses this host has, for
// ha_suspend, from the first configuration that has a virtual server with
// it: a daemon without one watches nothing.
type localAddrs struct {
	eng     *engine.Engine
	log     *slog.Logger
	started bool
}

// follow starts the watch if cfg needs it and it has not started; it
// returns once the engine knows the addresses, so checks that start next
// are suspended before they probe.
func (l *localAddrs) follow(ctx context.Context, cfg *model.Config) {
	if l.started || !slices.ContainsFunc(cfg.VirtualServers, func(vs *model.VirtualServer) bool { return vs.HASuspend }) {
		return
	}
	l.started = true
	first := make(chan struct{})
	var once sync.Once
	go func() {
		err := track.WatchAddresses(ctx, func(set map[track.AddrOn]bool) {
			local := map[netip.Addr]bool{}
			for a := range set {
				local[a.Addr] = true
			}
			l.eng.SetLocal(local)
			once.Do(func() { close(first) })
		})
		if err != nil {
			l.log.Warn("ha_suspend: the host's addresses are not watched; the last known stay (every virtual server counts as local if none were)", "err", err)
		}
		once.Do(func() { close(first) })
	}()
	<-first
}
