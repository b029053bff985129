package engine

import (
	"context"
	"net/netip"

	"github.com/keepvs/keepvs/internal/lvs"
)

// The Dataplane methods: the control API's calls (ipvsadm's operations),
// serialized with everything else that changes the table.

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
