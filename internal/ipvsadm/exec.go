package ipvsadm

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/lvs"
)

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }

// ipvsInfo is the version and connection table size ipvsadm prints.
type ipvsInfo struct {
	major, minor, patch int
	size                int
}

// parseInfo reads "1.2.1" into numbers; an unreadable version prints as
// 0.0.0, like a kernel reporting nothing.
func parseInfo(i lvs.Info) ipvsInfo {
	var v [3]int
	for n, f := range strings.SplitN(i.Version, ".", 3) {
		v[n], _ = strconv.Atoi(f)
	}
	return ipvsInfo{v[0], v[1], v[2], i.ConnTableSize}
}

// execute carries out a checked command: the switch at the end of
// process_options.
func (c *Cmd) execute(ctx context.Context, e *entry, argv []string, readingStdin bool) (int, error) {
	var err error
	var o op
	switch e.cmd {
	case cmdList:
		switch {
		case e.options.has(optConnection):
			return 0, c.listConns(ctx, e.format)
		case e.options.has(optService):
			return 0, c.listService(ctx, e.key(), e.format)
		case e.options.has(optTimeout):
			return 0, c.listTimeout(ctx)
		case e.options.has(optDaemon):
			return 0, c.listDaemons(ctx)
		}
		return 0, c.listAll(ctx, e.format)
	case cmdRestore:
		return c.restore(ctx, argv, readingStdin)
	case cmdSave:
		return 0, c.listAll(ctx, e.format|fmtRule)
	case cmdFlush:
		// libipvs's flush does not record itself as the call that
		// failed, so its error is worded for the previous call.
		o, err = c.lastOp, c.DP.Flush(ctx)
	case cmdAdd:
		o, err = opAddService, c.DP.AddService(ctx, e.service())
	case cmdEdit:
		o, err = opEditService, c.DP.EditService(ctx, e.service())
	case cmdDel:
		o, err = opDelService, c.DP.DelService(ctx, e.key())
	case cmdZero:
		o = opZeroService
		k := e.key()
		// libipvs names no service when nothing but zeroes was given,
		// which zeroes them all.
		if k.FWMark == 0 && (!k.Addr.IsValid() || k.Addr.IsUnspecified()) && k.Port == 0 {
			err = c.DP.Zero(ctx, nil)
		} else {
			err = c.DP.Zero(ctx, &k)
		}
	case cmdAddDest:
		o, err = opAddDest, c.DP.AddDest(ctx, e.key(), e.destination())
	case cmdEditDest:
		o, err = opEditDest, c.DP.EditDest(ctx, e.key(), e.destination())
	case cmdDelDest:
		o, err = opDelDest, c.DP.DelDest(ctx, e.key(), netip.AddrPortFrom(e.destAddr, e.destPort))
	case cmdTimeout:
		o, err = opOther, c.DP.SetTimeouts(ctx, lvs.Timeouts{
			TCP:    secs(e.timeouts[0]),
			TCPFin: secs(e.timeouts[1]),
			UDP:    secs(e.timeouts[2]),
		})
	case cmdStartDaemon:
		o = opStartDaemon
		if sd, ok := c.DP.(SyncDaemons); ok {
			err = sd.StartDaemon(ctx, e.daemon)
		} else {
			err = dataplane.ErrNotSupported
		}
	case cmdStopDaemon:
		o = opStopDaemon
		if sd, ok := c.DP.(SyncDaemons); ok {
			err = sd.StopDaemon(ctx, e.daemon.Backup)
		} else {
			err = dataplane.ErrNotSupported
		}
	}
	c.lastOp = o
	if err != nil {
		c.out.Flush()
		fmt.Fprintln(c.Stderr, errText(o, err))
		return statusFailed, nil
	}
	return 0, nil
}
