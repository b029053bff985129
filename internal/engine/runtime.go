package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/keepvs/keepvs/internal/check/build"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// Errors of the run-time real server calls.
var (
	ErrNoVirtualServer = errors.New("no such virtual server")
	ErrNoRealServer    = errors.New("no such real server")
	ErrRealServerTaken = errors.New("real server already in this virtual server")
)

// The control API's run-time changes to real servers (keepalived #2609:
// no reload needed). They last until the next reload, which makes the
// configuration file the truth again.

func (e *Engine) findVS(id string) (*vsState, error) {
	for _, v := range e.vss {
		if v.id == id {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoVirtualServer, id)
}

// AddRealServer adds a real server, written as a keepalived real_server
// block, to the virtual server vsID ("TCP 10.0.0.1:80"), with its checks.
func (e *Engine) AddRealServer(ctx context.Context, vsID, block string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.findVS(vsID)
	if err != nil {
		return err
	}
	rs, diags := model.RealServerFor(v.vs, "real_server", []byte(block))
	if diags.HasErrors() {
		return fmt.Errorf("%w: %v", lvs.ErrInvalid, diags.Errors())
	}
	ap := netip.AddrPortFrom(rs.Addr, rs.Port)
	for _, r := range v.rss {
		if netip.AddrPortFrom(r.rs.Addr, r.rs.Port) == ap {
			return fmt.Errorf("%w: %s", ErrRealServerTaken, ap)
		}
	}
	r := &rsState{rs: rs, up: true, weight: rs.Weight, checkSpec: checkSpec(rs), since: e.opt.Clock.Now()}
	if e.runner != nil && len(rs.Checks) > 0 {
		r.checkID = build.ID(v.vs, rs)
	}
	if err := e.startChecks(v, r); err != nil {
		return err
	}
	v.rss = append(v.rss, r)
	e.log.Info("real server added through the API", "vs", v.id, "rs", rs.Name(), "checks", len(rs.Checks))
	e.quorum(v, e.opt.Clock.Now())
	return e.reconcile(ctx, v)
}

// RemoveRealServer takes a real server out of a virtual server.
func (e *Engine) RemoveRealServer(ctx context.Context, vsID string, ap netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.findVS(vsID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(v.rss, func(r *rsState) bool { return netip.AddrPortFrom(r.rs.Addr, r.rs.Port) == ap })
	if i < 0 {
		return fmt.Errorf("%w: %s in %s", ErrNoRealServer, ap, vsID)
	}
	e.stopChecks(v.rss[i])
	v.rss = slices.Delete(v.rss, i, i+1)
	e.log.Info("real server removed through the API", "vs", v.id, "rs", ap.String())
	e.quorum(v, e.opt.Clock.Now())
	return e.reconcile(ctx, v)
}

// SetRealServerWeight changes a real server's configured weight.
func (e *Engine) SetRealServerWeight(ctx context.Context, vsID string, ap netip.AddrPort, weight int) error {
	if weight < 0 {
		return lvs.ErrRange
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := e.findVS(vsID)
	if err != nil {
		return err
	}
	for _, r := range v.rss {
		if netip.AddrPortFrom(r.rs.Addr, r.rs.Port) != ap {
			continue
		}
		rs := *r.rs
		rs.Weight = weight
		r.rs = &rs
		r.weight = weight
		if r.checkID != "" {
			if st, ok := e.runner.SetWeight(r.checkID, weight); ok {
				r.weight = st.Weight
			}
		}
		e.quorum(v, e.opt.Clock.Now())
		return e.reconcile(ctx, v)
	}
	return fmt.Errorf("%w: %s in %s", ErrNoRealServer, ap, vsID)
}
