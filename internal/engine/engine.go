// Package engine owns keepvs's runtime state: it turns the configuration
// into data plane operations and is the one path through which anything
// (the configuration, the control API, later health checks and VRRP)
// changes the virtual service table.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// Engine serializes every change to the data plane. It is itself a
// dataplane.Dataplane, which is what the control API serves.
type Engine struct {
	dp  dataplane.Dataplane
	log *slog.Logger

	mu  sync.Mutex
	cfg *model.Config
}

var _ dataplane.Dataplane = (*Engine)(nil)

// New wraps a data plane.
func New(dp dataplane.Dataplane, log *slog.Logger) *Engine {
	return &Engine{dp: dp, log: log}
}

// Load installs a configuration's virtual services on an empty data plane.
// It stops at the first operation the data plane refuses and says which
// virtual_server (file:line) it came from.
func (e *Engine) Load(ctx context.Context, cfg *model.Config) error {
	desired, err := Desired(cfg)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ds := range desired {
		if err := e.dp.AddService(ctx, ds.Service); err != nil {
			return fmt.Errorf("%s: virtual_server %s: %w", ds.From.Pos, ds.Service.ServiceKey, err)
		}
		for _, d := range ds.Dests {
			if err := e.dp.AddDest(ctx, ds.Service.ServiceKey, d); err != nil {
				return fmt.Errorf("%s: real_server %s: %w", ds.From.Pos, d.AddrPort(), err)
			}
		}
		e.log.Info("virtual service up", "vs", ds.Service.ServiceKey.String(), "sched", ds.Service.Scheduler, "rs", len(ds.Dests))
	}
	e.cfg = cfg
	return nil
}

func (e *Engine) locked(f func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f()
}

func (e *Engine) Name() string                                       { return e.dp.Name() }
func (e *Engine) Info(ctx context.Context) (lvs.Info, error)         { return e.dp.Info(ctx) }
func (e *Engine) Conns(ctx context.Context) ([]lvs.Conn, error)      { return e.dp.Conns(ctx) }
func (e *Engine) Timeouts(ctx context.Context) (lvs.Timeouts, error) { return e.dp.Timeouts(ctx) }
func (e *Engine) Close() error                                       { return e.dp.Close() }

func (e *Engine) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	return e.dp.Services(ctx)
}

func (e *Engine) AddService(ctx context.Context, s lvs.Service) error {
	return e.locked(func() error { return e.dp.AddService(ctx, s) })
}

func (e *Engine) EditService(ctx context.Context, s lvs.Service) error {
	return e.locked(func() error { return e.dp.EditService(ctx, s) })
}

func (e *Engine) DelService(ctx context.Context, k lvs.ServiceKey) error {
	return e.locked(func() error { return e.dp.DelService(ctx, k) })
}

func (e *Engine) Flush(ctx context.Context) error {
	return e.locked(func() error { return e.dp.Flush(ctx) })
}

func (e *Engine) AddDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return e.locked(func() error { return e.dp.AddDest(ctx, k, d) })
}

func (e *Engine) EditDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return e.locked(func() error { return e.dp.EditDest(ctx, k, d) })
}

func (e *Engine) DelDest(ctx context.Context, k lvs.ServiceKey, d netip.AddrPort) error {
	return e.locked(func() error { return e.dp.DelDest(ctx, k, d) })
}

func (e *Engine) Zero(ctx context.Context, k *lvs.ServiceKey) error {
	return e.locked(func() error { return e.dp.Zero(ctx, k) })
}

func (e *Engine) SetTimeouts(ctx context.Context, t lvs.Timeouts) error {
	return e.locked(func() error { return e.dp.SetTimeouts(ctx, t) })
}
