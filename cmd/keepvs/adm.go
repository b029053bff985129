package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/dataplane/ipvs"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// runAdm is ipvsadm, driving the daemon on the control socket.
func runAdm(ctx context.Context, prog string, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	dp := &lazyDataplane{socket: api.DefaultSocket()}
	defer dp.Close()
	return ipvsadm.Run(ctx, prog, argv, stdin, stdout, stderr, dp)
}

// errNoTable says there is nothing to talk to.
var errNoTable = errors.New("no IP Virtual Server table to talk to")

// lazyDataplane connects on first use, so `ipvsadm -h` needs no daemon, and
// says clearly what is missing when nothing answers.
type lazyDataplane struct {
	socket string
	once   sync.Once
	dp     dataplane.Dataplane
	err    error
}

func (l *lazyDataplane) get(ctx context.Context) (dataplane.Dataplane, error) {
	l.once.Do(func() {
		c, err := api.Dial(ctx, l.socket)
		if err == nil {
			l.dp = c
			return
		}
		if kernelHasIPVS() {
			// No daemon: drive the kernel's table directly, as ipvsadm does.
			k, kerr := ipvs.Open()
			if kerr == nil {
				l.dp = k
				return
			}
			l.err = fmt.Errorf("%w: no keepvs daemon on %s (%v), and the kernel's IPVS: %v", errNoTable, l.socket, err, kerr)
		} else {
			l.err = fmt.Errorf("%w: no keepvs daemon on %s, and no IP Virtual Server in this kernel; start one with `keepvs -f keepalived.conf` (or set KEEPVS_SOCKET)", errNoTable, l.socket)
		}
	})
	return l.dp, l.err
}

func (l *lazyDataplane) Name() string { return "lazy" }

// The sync daemons are the kernel's: a data plane that has them starts
// and lists them — the kernel's, directly or through a keepvs daemon
// running it (the API client forwards them; a daemon whose data plane has
// none lists none and refuses to start one).

func (l *lazyDataplane) StartDaemon(ctx context.Context, d ipvsadm.SyncDaemon) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error {
		if sd, ok := dp.(ipvsadm.SyncDaemons); ok {
			return sd.StartDaemon(ctx, d)
		}
		return dataplane.ErrNotSupported
	})
}

func (l *lazyDataplane) StopDaemon(ctx context.Context, backup bool) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error {
		if sd, ok := dp.(ipvsadm.SyncDaemons); ok {
			return sd.StopDaemon(ctx, backup)
		}
		return dataplane.ErrNotSupported
	})
}

func (l *lazyDataplane) Daemons(ctx context.Context) ([]ipvsadm.SyncDaemon, error) {
	dp, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	if sd, ok := dp.(ipvsadm.SyncDaemons); ok {
		return sd.Daemons(ctx)
	}
	return nil, nil
}

func (l *lazyDataplane) Close() error {
	if l.dp != nil {
		return l.dp.Close()
	}
	return nil
}

func (l *lazyDataplane) Info(ctx context.Context) (lvs.Info, error) {
	dp, err := l.get(ctx)
	if err != nil {
		return lvs.Info{}, err
	}
	return dp.Info(ctx)
}

func (l *lazyDataplane) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	dp, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return dp.Services(ctx)
}

func (l *lazyDataplane) Conns(ctx context.Context) ([]lvs.Conn, error) {
	dp, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return dp.Conns(ctx)
}

func (l *lazyDataplane) Timeouts(ctx context.Context) (lvs.Timeouts, error) {
	dp, err := l.get(ctx)
	if err != nil {
		return lvs.Timeouts{}, err
	}
	return dp.Timeouts(ctx)
}

func (l *lazyDataplane) do(ctx context.Context, f func(dataplane.Dataplane) error) error {
	dp, err := l.get(ctx)
	if err != nil {
		return err
	}
	return f(dp)
}

func (l *lazyDataplane) AddService(ctx context.Context, s lvs.Service) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.AddService(ctx, s) })
}

func (l *lazyDataplane) EditService(ctx context.Context, s lvs.Service) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.EditService(ctx, s) })
}

func (l *lazyDataplane) DelService(ctx context.Context, k lvs.ServiceKey) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.DelService(ctx, k) })
}

func (l *lazyDataplane) Flush(ctx context.Context) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.Flush(ctx) })
}

func (l *lazyDataplane) AddDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.AddDest(ctx, k, d) })
}

func (l *lazyDataplane) EditDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.EditDest(ctx, k, d) })
}

func (l *lazyDataplane) DelDest(ctx context.Context, k lvs.ServiceKey, d netip.AddrPort) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.DelDest(ctx, k, d) })
}

func (l *lazyDataplane) Zero(ctx context.Context, k *lvs.ServiceKey) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.Zero(ctx, k) })
}

func (l *lazyDataplane) SetTimeouts(ctx context.Context, t lvs.Timeouts) error {
	return l.do(ctx, func(dp dataplane.Dataplane) error { return dp.SetTimeouts(ctx, t) })
}
