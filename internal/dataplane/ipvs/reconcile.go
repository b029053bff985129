package ipvs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/lvs"
)

// OpKind is one kind of change to the table.
type OpKind int

const (
	OpAddService OpKind = iota
	OpEditService
	OpDelService
	OpAddDest
	OpEditDest
	OpDelDest
)

func (k OpKind) String() string {
	return [...]string{"AddService", "EditService", "DelService", "AddDest", "EditDest", "DelDest"}[k]
}

// Op is one change: a netlink request.
type Op struct {
	Kind    OpKind
	Service lvs.Service
	Dest    lvs.Destination // the destination ops'
}

func (o Op) String() string {
	switch o.Kind {
	case OpAddDest, OpEditDest, OpDelDest:
		return fmt.Sprintf("%s %s %s w%d", o.Kind, o.Service.ServiceKey, o.Dest.AddrPort(), o.Dest.Weight)
	}
	return fmt.Sprintf("%s %s", o.Kind, o.Service.ServiceKey)
}

// sameService reports whether the kernel's service a is the configured b,
// ignoring the flag the kernel sets itself.
func sameService(a, b lvs.Service) bool {
	a.Flags &^= lvs.FlagHashed
	b.Flags &^= lvs.FlagHashed
	return a == b
}

// Plan is the fewest requests that turn the table have into want:
// services only in have are deleted (with their destinations, by the
// kernel), services only in want are added with their destinations, and a
// service in both is edited only if it differs, its destinations added,
// edited or deleted one by one. The order is deterministic.
func Plan(have, want []lvs.ServiceStatus) []Op {
	byKey := make(map[lvs.ServiceKey]*lvs.ServiceStatus, len(have))
	for i := range have {
		byKey[have[i].ServiceKey] = &have[i]
	}
	wanted := make(map[lvs.ServiceKey]bool, len(want))
	var ops []Op
	for i := range want {
		w := &want[i]
		wanted[w.ServiceKey] = true
		h, ok := byKey[w.ServiceKey]
		if !ok {
			ops = append(ops, Op{Kind: OpAddService, Service: w.Service})
			for _, d := range sortedDests(w.Dests) {
				ops = append(ops, Op{Kind: OpAddDest, Service: w.Service, Dest: d.Destination})
			}
			continue
		}
		if !sameService(h.Service, w.Service) {
			ops = append(ops, Op{Kind: OpEditService, Service: w.Service})
		}
		ops = append(ops, planDests(w.Service, h.Dests, w.Dests)...)
	}
	var gone []lvs.Service
	for i := range have {
		if !wanted[have[i].ServiceKey] {
			gone = append(gone, have[i].Service)
		}
	}
	slices.SortFunc(gone, func(a, b lvs.Service) int { return cmpKey(a.ServiceKey, b.ServiceKey) })
	for _, s := range gone {
		ops = append(ops, Op{Kind: OpDelService, Service: s})
	}
	return ops
}

func planDests(s lvs.Service, have, want []lvs.DestStatus) []Op {
	hd := make(map[netip.AddrPort]lvs.Destination, len(have))
	for _, d := range have {
		hd[d.AddrPort()] = d.Destination
	}
	var ops []Op
	for _, d := range sortedDests(want) {
		h, ok := hd[d.AddrPort()]
		delete(hd, d.AddrPort())
		switch {
		case !ok:
			ops = append(ops, Op{Kind: OpAddDest, Service: s, Dest: d.Destination})
		case h != d.Destination:
			ops = append(ops, Op{Kind: OpEditDest, Service: s, Dest: d.Destination})
		}
	}
	var gone []lvs.Destination
	for _, d := range hd {
		gone = append(gone, d)
	}
	slices.SortFunc(gone, func(a, b lvs.Destination) int { return a.AddrPort().Compare(b.AddrPort()) })
	for _, d := range gone {
		ops = append(ops, Op{Kind: OpDelDest, Service: s, Dest: d})
	}
	return ops
}

func sortedDests(ds []lvs.DestStatus) []lvs.DestStatus {
	out := slices.Clone(ds)
	slices.SortFunc(out, func(a, b lvs.DestStatus) int { return a.AddrPort().Compare(b.AddrPort()) })
	return out
}

func cmpKey(a, b lvs.ServiceKey) int {
	return cmp.Or(
		cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Proto, b.Proto),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
		cmpBool(a.IPv6, b.IPv6),
	)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Apply sends the ops in order and returns every error, each naming its op.
func Apply(ctx context.Context, dp dataplane.Dataplane, ops []Op) error {
	var errs []error
	for _, o := range ops {
		var err error
		switch o.Kind {
		case OpAddService:
			err = dp.AddService(ctx, o.Service)
		case OpEditService:
			err = dp.EditService(ctx, o.Service)
		case OpDelService:
			err = dp.DelService(ctx, o.Service.ServiceKey)
		case OpAddDest:
			err = dp.AddDest(ctx, o.Service.ServiceKey, o.Dest)
		case OpEditDest:
			err = dp.EditDest(ctx, o.Service.ServiceKey, o.Dest)
		case OpDelDest:
			err = dp.DelDest(ctx, o.Service.ServiceKey, o.Dest.AddrPort())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// Reconcile makes dp hold exactly want with the fewest requests, and
// returns the ops it sent.
func Reconcile(ctx context.Context, dp dataplane.Dataplane, want []lvs.ServiceStatus) ([]Op, error) {
	have, err := dp.Services(ctx)
	if err != nil {
		return nil, err
	}
	ops := Plan(have, want)
	return ops, Apply(ctx, dp, ops)
}
