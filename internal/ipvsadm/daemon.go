package ipvsadm

import (
	"context"
	"errors"
	"net/netip"
)

// SyncDaemon is one of IPVS's connection synchronisation daemons, as
// ipvsadm --start-daemon configures it and --list --daemon shows it.
// Zero fields are not set (the kernel's defaults apply).
type SyncDaemon struct {
	Backup    bool // a backup daemon; a master otherwise
	Interface string
	SyncID    uint8
	MaxLen    uint16
	Group     netip.Addr
	Port      uint16
	TTL       uint8
}

// SyncDaemons is implemented by a data plane that runs sync daemons. It is
// kept here, not in dataplane.Dataplane, until a data plane needs it; a
// data plane without it answers --start-daemon and --stop-daemon with
// dataplane.ErrNotSupported and lists no daemons.
type SyncDaemons interface {
	StartDaemon(ctx context.Context, d SyncDaemon) error
	StopDaemon(ctx context.Context, backup bool) error
	Daemons(ctx context.Context) ([]SyncDaemon, error)
}

// Errors a SyncDaemons returns, as the kernel's EEXIST and ESRCH.
var (
	ErrDaemonRunning = errors.New("sync daemon already running")
	ErrNoDaemon      = errors.New("no sync daemon running")
)
