package main

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/keepvs/keepvs/internal/engine"
)

// watchLocalAddrs tells eng which addresses this host has, at once and
// after every change netlink reports, until ctx ends: ha_suspend
// suspends the checks of a virtual server whose address is not here.
func watchLocalAddrs(ctx context.Context, eng *engine.Engine, log *slog.Logger) {
	type onLink struct {
		index int
		addr  netip.Addr
	}
	ch := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	failed := make(chan error, 1)
	// Subscribe, then list: a change between the two comes as an update,
	// and setting an address present twice changes nothing.
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case failed <- err:
			default:
			}
		},
	}); err != nil {
		log.Warn("ha_suspend: the host's addresses are not watched; every virtual server counts as local", "err", err)
		return
	}
	present := map[onLink]bool{}
	tell := func() {
		local := map[netip.Addr]bool{}
		for k, up := range present {
			if up {
				local[k.addr] = true
			}
		}
		eng.SetLocal(local)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		close(done)
		log.Warn("ha_suspend: the host's addresses not listed; every virtual server counts as local", "err", err)
		return
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			present[onLink{a.LinkIndex, ip.Unmap()}] = true
		}
	}
	tell() // before the checks start: a suspended one never probes
	go func() {
		defer close(done)
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					return
				}
				if ip, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok {
					present[onLink{u.LinkIndex, ip.Unmap()}] = u.NewAddr
					tell()
				}
			case err := <-failed:
				log.Warn("ha_suspend: address watch stopped; the last known addresses stay", "err", err)
				return
			case <-ctx.Done():
				return
			}
		}
	}()
}
