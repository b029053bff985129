// Package fake is an in-memory data plane for tests: an lvs.Table that
// forwards nothing and records every call that changed it.
package fake

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/lvs"
)

// Dataplane is the fake.
type Dataplane struct {
	T *lvs.Table

	mu    sync.Mutex
	calls []string
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// New wraps a table.
func New(t *lvs.Table) *Dataplane { return &Dataplane{T: t} }

// Calls returns the changing calls made so far ("AddService TCP
// 10.0.0.1:80", ...) and forgets them.
func (d *Dataplane) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

func (d *Dataplane) record(err error, format string, args ...any) error {
	if err == nil {
		d.mu.Lock()
		d.calls = append(d.calls, fmt.Sprintf(format, args...))
		d.mu.Unlock()
	}
	return err
}

func (d *Dataplane) Name() string                                   { return "fake" }
func (d *Dataplane) Info(context.Context) (lvs.Info, error)         { return d.T.Info(), nil }
func (d *Dataplane) Conns(context.Context) ([]lvs.Conn, error)      { return d.T.Conns(), nil }
func (d *Dataplane) Timeouts(context.Context) (lvs.Timeouts, error) { return d.T.Timeouts(), nil }
func (d *Dataplane) Close() error                                   { return nil }

func (d *Dataplane) Services(context.Context) ([]lvs.ServiceStatus, error) {
	return d.T.Services(), nil
}

func (d *Dataplane) AddService(_ context.Context, s lvs.Service) error {
	return d.record(d.T.AddService(s), "AddService %s", s.ServiceKey)
}

func (d *Dataplane) EditService(_ context.Context, s lvs.Service) error {
	return d.record(d.T.EditService(s), "EditService %s", s.ServiceKey)
}

func (d *Dataplane) DelService(_ context.Context, k lvs.ServiceKey) error {
	return d.record(d.T.DelService(k), "DelService %s", k)
}

func (d *Dataplane) Flush(context.Context) error {
	d.T.Flush()
	return d.record(nil, "Flush")
}

func (d *Dataplane) AddDest(_ context.Context, k lvs.ServiceKey, x lvs.Destination) error {
	return d.record(d.T.AddDest(k, x), "AddDest %s %s w%d", k, x.AddrPort(), x.Weight)
}

func (d *Dataplane) EditDest(_ context.Context, k lvs.ServiceKey, x lvs.Destination) error {
	return d.record(d.T.EditDest(k, x), "EditDest %s %s w%d", k, x.AddrPort(), x.Weight)
}

func (d *Dataplane) DelDest(_ context.Context, k lvs.ServiceKey, x netip.AddrPort) error {
	return d.record(d.T.DelDest(k, x), "DelDest %s %s", k, x)
}

func (d *Dataplane) Zero(_ context.Context, k *lvs.ServiceKey) error {
	return d.record(d.T.Zero(k), "Zero")
}

func (d *Dataplane) SetTimeouts(_ context.Context, t lvs.Timeouts) error {
	return d.record(d.T.SetTimeouts(t), "SetTimeouts")
}
