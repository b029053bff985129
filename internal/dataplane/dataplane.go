// Package dataplane is the boundary between keepvs and whatever forwards
// packets: the kernel's IPVS, an XDP program, or the userspace proxy. Each
// implements Dataplane, the operations ipvsadm has; the engine, the control
// API and `keepvs adm` use nothing else.
package dataplane

import (
	"context"
	"errors"
	"net/netip"

	"github.com/keepvs/keepvs/internal/lvs"
)

// Dataplane is a virtual service table that forwards traffic.
type Dataplane interface {
	// Name is "proxy", "ipvs", "xdp" or "fake".
	Name() string
	Info(ctx context.Context) (lvs.Info, error)

	Services(ctx context.Context) ([]lvs.ServiceStatus, error)
	AddService(ctx context.Context, s lvs.Service) error
	EditService(ctx context.Context, s lvs.Service) error
	DelService(ctx context.Context, k lvs.ServiceKey) error
	// Flush removes every service (ipvsadm -C).
	Flush(ctx context.Context) error

	AddDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error
	EditDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error
	DelDest(ctx context.Context, k lvs.ServiceKey, d netip.AddrPort) error

	Conns(ctx context.Context) ([]lvs.Conn, error)
	// Zero clears the counters of one service, or of all when k is nil.
	Zero(ctx context.Context, k *lvs.ServiceKey) error
	Timeouts(ctx context.Context) (lvs.Timeouts, error)
	// SetTimeouts changes the non-zero fields of t (ipvsadm --set).
	SetTimeouts(ctx context.Context, t lvs.Timeouts) error

	Close() error
}

// ErrNotSupported is returned by a data plane for an operation it cannot do
// on this host.
var ErrNotSupported = errors.New("not supported by this data plane")
