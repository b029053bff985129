package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// Reload moves the running configuration to cfg by applying only what
// differs, through the same operations the control API uses: services and
// real servers that did not change are not touched (their connections
// live on), and a real server whose checkers did not change keeps its
// check state. cfg must already have passed validation.
func (e *Engine) Reload(ctx context.Context, cfg *model.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = cfg
	defer func() { e.pending = nil }()
	next, err := e.states(cfg)
	if err != nil {
		return err
	}
	old := make(map[string]*vsState, len(e.vss))
	for _, v := range e.vss {
		old[v.id] = v
	}
	var errs []error
	for _, nv := range next {
		ov, ok := old[nv.id]
		if !ok {
			if err := e.addVS(ctx, nv, slog.LevelInfo); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		delete(old, nv.id)
		if err := e.updateVS(ctx, ov, nv); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ov := range e.vss {
		if _, gone := old[ov.id]; gone {
			e.removeVS(ctx, ov)
		}
	}
	e.vss = next
	e.cfg = cfg
	e.applySuspend(true) // a virtual server may have gained or lost ha_suspend
	return errors.Join(errs...)
}

// sameService reports whether two services differ only in what the kernel
// sets itself.
func sameService(a, b lvs.Service) bool {
	a.Flags &^= lvs.FlagHashed
	b.Flags &^= lvs.FlagHashed
	return a == b
}

// updateVS carries a virtual server's run-time state from ov to nv and
// applies the differences.
func (e *Engine) updateVS(ctx context.Context, ov, nv *vsState) error {
	var errs []error
	oldSvc := map[lvs.ServiceKey]lvs.Service{}
	for _, s := range ov.services {
		oldSvc[s.ServiceKey] = s
	}
	for _, s := range nv.services {
		o, had := oldSvc[s.ServiceKey]
		delete(oldSvc, s.ServiceKey)
		switch {
		case !had:
			// A new member of a group: it gets what the others have now.
			if err := e.dp.AddService(ctx, s); err != nil {
				errs = append(errs, fmt.Errorf("%s: virtual_server %s: %w", nv.vs.Pos, s.ServiceKey, err))
				continue
			}
			for _, ap := range sortedAddrPorts(ov.installed) {
				if err := e.dp.AddDest(ctx, s.ServiceKey, ov.installed[ap]); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w", s.ServiceKey, ap, err))
				}
			}
		case !sameService(o, s):
			if err := e.dp.EditService(ctx, s); err != nil {
				errs = append(errs, fmt.Errorf("%s: virtual_server %s: %w", nv.vs.Pos, s.ServiceKey, err))
			}
		}
	}
	for k := range oldSvc {
		if err := e.dp.DelService(ctx, k); err != nil && !errors.Is(err, lvs.ErrNoService) {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	nv.installed = ov.installed
	nv.quorumUp = ov.quorumUp
	oldRS := map[netip.AddrPort]*rsState{}
	for _, r := range ov.rss {
		oldRS[netip.AddrPortFrom(r.rs.Addr, r.rs.Port)] = r
	}
	for _, r := range nv.rss {
		ap := netip.AddrPortFrom(r.rs.Addr, r.rs.Port)
		o, had := oldRS[ap]
		delete(oldRS, ap)
		if had && o.checkSpec == r.checkSpec && o.checkID == r.checkID {
			e.carry(nv, o, r)
			continue
		}
		if had {
			e.stopChecks(o)
		}
		if err := e.startChecks(nv, r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, o := range oldRS {
		e.stopChecks(o)
	}
	e.quorum(nv, e.opt.Clock.Now())
	if err := e.reconcile(ctx, nv); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// carry keeps an unchanged real server's check state across a reload; a
// new configured weight applies unless a dynamic checker set the weight.
func (e *Engine) carry(nv *vsState, o, r *rsState) {
	r.up, r.since, r.reason = o.up, o.since, o.reason
	r.weight = o.weight
	if r.checkID == "" {
		r.weight = r.rs.Weight
		return
	}
	e.byCheck[r.checkID] = r
	e.owner[r.checkID] = nv
	if r.rs.Weight != o.rs.Weight {
		if st, ok := e.runner.SetWeight(r.checkID, r.rs.Weight); ok {
			r.weight = st.Weight
		}
	}
}

// removeVS takes a virtual server away: its checks and its services.
func (e *Engine) removeVS(ctx context.Context, v *vsState) {
	for _, r := range v.rss {
		e.stopChecks(r)
	}
	for _, s := range v.services {
		if err := e.dp.DelService(ctx, s.ServiceKey); err != nil && !errors.Is(err, lvs.ErrNoService) {
			e.log.Error("removing a virtual service", "vs", v.id, "err", err)
		}
	}
	e.log.Info("virtual service removed", "vs", v.id)
}
