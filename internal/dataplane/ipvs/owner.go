package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// Owner is the kernel table as the daemon uses it: the kernel is shared
// with whatever else programs IPVS (an administrator's ipvsadm, a keepvs
// that crashed), so Owner remembers which services keepvs installed and, on
// start, adopts the services keepvs is asked to install that are already
// there instead of failing on them.
//
// Start either flushes the table (global_defs lvs_flush) or takes a
// snapshot of it. Until Settle, adding a service or destination that the
// snapshot has costs nothing when it is the same, and one edit when it
// differs; Settle then deletes the destinations of adopted services that
// the configuration no longer has. Services keepvs was not asked for are
// left alone. Release, on stop, removes the services keepvs installed
// (lvs_flush_on_stop: "" and "VS"), or flushes the table ("RS", the bare
// keyword, which keepalived treats as a full flush).
type Owner struct {
	dp dataplane.Dataplane

	mu      sync.Mutex
	owned   map[lvs.ServiceKey]bool
	adopt   map[lvs.ServiceKey]*lvs.ServiceStatus // the snapshot, until Settle
	claimed map[lvs.ServiceKey]map[netip.AddrPort]bool
}

var _ dataplane.Dataplane = (*Owner)(nil)

// NewOwner wraps a data plane; it touches nothing until Start.
func NewOwner(dp dataplane.Dataplane) *Owner {
	return &Owner{dp: dp, owned: map[lvs.ServiceKey]bool{}}
}

// Start readies the table for the configuration to be loaded: flush it,
// or adopt what it has.
func (o *Owner) Start(ctx context.Context, flush bool) error {
	if flush {
		return o.dp.Flush(ctx)
	}
	have, err := o.dp.Services(ctx)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.adopt = make(map[lvs.ServiceKey]*lvs.ServiceStatus, len(have))
	o.claimed = map[lvs.ServiceKey]map[netip.AddrPort]bool{}
	for i := range have {
		o.adopt[have[i].ServiceKey] = &have[i]
	}
	return nil
}

// Settle ends adoption: destinations of adopted services that were not
// asked for are deleted. It returns how many services were adopted.
func (o *Owner) Settle(ctx context.Context) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	n := 0
	for k, claimed := range o.claimed {
		n++
		for _, d := range o.adopt[k].Dests {
			if claimed[d.AddrPort()] {
				continue
			}
			if err := o.dp.DelDest(ctx, k, d.AddrPort()); err != nil && !errors.Is(err, lvs.ErrNoDest) {
				errs = append(errs, err)
			}
		}
	}
	o.adopt, o.claimed = nil, nil
	return n, errors.Join(errs...)
}

// Release removes what keepvs installed, as lvs_flush_on_stop says.
func (o *Owner) Release(ctx context.Context, flushOnStop string) error {
	if flushOnStop == "RS" {
		return o.Flush(ctx)
	}
	o.mu.Lock()
	keys := make([]lvs.ServiceKey, 0, len(o.owned))
	for k := range o.owned {
		keys = append(keys, k)
	}
	o.mu.Unlock()
	var errs []error
	for _, k := range keys {
		if err := o.DelService(ctx, k); err != nil && !errors.Is(err, lvs.ErrNoService) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Owned reports how many services keepvs has installed.
func (o *Owner) Owned() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.owned)
}

func (o *Owner) Name() string                                       { return o.dp.Name() }
func (o *Owner) Info(ctx context.Context) (lvs.Info, error)         { return o.dp.Info(ctx) }
func (o *Owner) Conns(ctx context.Context) ([]lvs.Conn, error)      { return o.dp.Conns(ctx) }
func (o *Owner) Timeouts(ctx context.Context) (lvs.Timeouts, error) { return o.dp.Timeouts(ctx) }
func (o *Owner) Close() error                                       { return o.dp.Close() }
func (o *Owner) Zero(ctx context.Context, k *lvs.ServiceKey) error  { return o.dp.Zero(ctx, k) }
func (o *Owner) SetTimeouts(ctx context.Context, t lvs.Timeouts) error {
	return o.dp.SetTimeouts(ctx, t)
}

func (o *Owner) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	return o.dp.Services(ctx)
}

func (o *Owner) AddService(ctx context.Context, s lvs.Service) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if h, ok := o.adopt[s.ServiceKey]; ok && o.claimed[s.ServiceKey] == nil {
		o.claimed[s.ServiceKey] = map[netip.AddrPort]bool{}
		o.owned[s.ServiceKey] = true
		if sameService(h.Service, s) {
			return nil
		}
		return o.dp.EditService(ctx, s)
	}
	if err := o.dp.AddService(ctx, s); err != nil {
		return err
	}
	o.owned[s.ServiceKey] = true
	return nil
}

// bulkAdder is a data plane that adds many services and destinations at
// once (Dataplane.AddBulk).
type bulkAdder interface {
	AddBulk(ctx context.Context, want []lvs.ServiceStatus) [][]error
}

// AddBulk is AddService then AddDest for each of want, with the same
// errors in the same places as Dataplane.AddBulk: adopted services one
// request at a time as AddService and AddDest do, the new ones in batches
// when the wrapped data plane has them.
func (o *Owner) AddBulk(ctx context.Context, want []lvs.ServiceStatus) [][]error {
	errs := make([][]error, len(want))
	var fresh []lvs.ServiceStatus
	var at []int
	o.mu.Lock()
	for i, s := range want {
		if _, ok := o.adopt[s.ServiceKey]; ok {
			continue
		}
		fresh, at = append(fresh, s), append(at, i)
	}
	o.mu.Unlock()
	b, ok := o.dp.(bulkAdder)
	if !ok || len(fresh) == 0 {
		fresh, at = nil, nil
	}
	var ferrs [][]error
	if len(fresh) > 0 {
		ferrs = b.AddBulk(ctx, fresh)
		o.mu.Lock()
		for j, i := range at {
			errs[i] = ferrs[j]
			if ferrs[j][0] == nil {
				o.owned[want[i].ServiceKey] = true
			}
		}
		o.mu.Unlock()
	}
	for i, s := range want {
		if errs[i] != nil {
			continue
		}
		errs[i] = make([]error, 1+len(s.Dests))
		if errs[i][0] = o.AddService(ctx, s.Service); errs[i][0] != nil {
			continue
		}
		for j, x := range s.Dests {
			errs[i][1+j] = o.AddDest(ctx, s.ServiceKey, x.Destination)
		}
	}
	return errs
}

func (o *Owner) EditService(ctx context.Context, s lvs.Service) error {
	return o.dp.EditService(ctx, s)
}

func (o *Owner) DelService(ctx context.Context, k lvs.ServiceKey) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.owned, k)
	delete(o.claimed, k)
	delete(o.adopt, k)
	return o.dp.DelService(ctx, k)
}

func (o *Owner) Flush(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.owned)
	o.adopt, o.claimed = nil, nil
	return o.dp.Flush(ctx)
}

func (o *Owner) AddDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if claimed := o.claimed[k]; claimed != nil && !claimed[d.AddrPort()] {
		for _, h := range o.adopt[k].Dests {
			if h.AddrPort() != d.AddrPort() {
				continue
			}
			claimed[d.AddrPort()] = true
			if h.Destination == d {
				return nil
			}
			return o.dp.EditDest(ctx, k, d)
		}
	}
	return o.dp.AddDest(ctx, k, d)
}

func (o *Owner) EditDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return o.dp.EditDest(ctx, k, d)
}

func (o *Owner) DelDest(ctx context.Context, k lvs.ServiceKey, ap netip.AddrPort) error {
	o.mu.Lock()
	if claimed := o.claimed[k]; claimed != nil {
		// Deleted on purpose: Settle need not look at it again.
		claimed[ap] = true
	}
	o.mu.Unlock()
	return o.dp.DelDest(ctx, k, ap)
}

// The sync daemons pass through when the wrapped data plane has them.

func (o *Owner) StartDaemon(ctx context.Context, d ipvsadm.SyncDaemon) error {
	if sd, ok := o.dp.(ipvsadm.SyncDaemons); ok {
		return sd.StartDaemon(ctx, d)
	}
	return dataplane.ErrNotSupported
}

func (o *Owner) StopDaemon(ctx context.Context, backup bool) error {
	if sd, ok := o.dp.(ipvsadm.SyncDaemons); ok {
		return sd.StopDaemon(ctx, backup)
	}
	return dataplane.ErrNotSupported
}

func (o *Owner) Daemons(ctx context.Context) ([]ipvsadm.SyncDaemon, error) {
	if sd, ok := o.dp.(ipvsadm.SyncDaemons); ok {
		return sd.Daemons(ctx)
	}
	return nil, nil
}
