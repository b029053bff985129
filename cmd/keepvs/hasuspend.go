package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/track"
)

// watchLocalAddrs tells eng which addresses this host has, before it
// returns and after every change, until ctx ends: ha_suspend suspends the
// checks of a virtual server whose address is not here.
func watchLocalAddrs(ctx context.Context, eng *engine.Engine, log *slog.Logger) {
	first := make(chan struct{})
	var once sync.Once
	go func() {
		err := track.WatchAddresses(ctx, func(set map[track.AddrOn]bool) {
			local := map[netip.Addr]bool{}
			for a := range set {
				local[a.Addr] = true
			}
			eng.SetLocal(local)
			once.Do(func() { close(first) })
		})
		if err != nil {
			log.Warn("ha_suspend: the host's addresses are not watched; the last known stay (every virtual server counts as local if none were)", "err", err)
		}
		once.Do(func() { close(first) })
	}()
	<-first // before the checks start: a suspended one never probes
}
