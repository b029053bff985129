// Package ipvs is the kernel data plane: the Linux kernel's IP Virtual
// Server driven over generic netlink, as ipvsadm and keepalived drive it.
// The kernel schedules and forwards; this package only programs the table
// and reads it back (services, destinations, counters and rates, timeouts,
// sync daemons) and reads the connection table from /proc/net/ip_vs_conn.
//
// Services and destinations go through github.com/cloudflare/ipvs; what
// that client does not have (flush, zero, sync daemons, persistence
// engines) is sent here with genetlink directly. Every request the kernel
// receives is counted (Ops), so a reload can be shown to cost what it
// changes and nothing more. Loading a whole configuration (AddBulk) sends
// its requests up to batchMax per sendmsg, encoded here, instead of one
// round trip each.
package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/mdlayher/genetlink"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// Dataplane is the kernel's IPVS table of the caller's network namespace.
type Dataplane struct {
	svc    cfipvs.Client
	genl   *genetlink.Conn
	family uint16
	// procDir is where ip_vs_conn and modules are read ("/proc").
	procDir string

	// batch is a third socket, for AddBulk's many requests per sendmsg
	// (nil: one request at a time). Its acknowledgements must not mix
	// with another caller's, hence its own socket and lock.
	batchMu     sync.Mutex
	batch       batchConn
	batchSeq    uint32
	batchBroken bool // the kernel surprised a batch: no more batches
	batchBuf    []byte
	ackBuf      []byte

	ops opCounters
}

var (
	_ dataplane.Dataplane = (*Dataplane)(nil)
	_ ipvsadm.SyncDaemons = (*Dataplane)(nil)
)

// Open connects to the kernel's IPVS. When the kernel does not have it
// loaded, it asks modprobe for ip_vs first, as ipvsadm does.
func Open() (*Dataplane, error) {
	d, err := open()
	if err == nil {
		return d, nil
	}
	// ipvsadm's modprobe_ipvs: the module may just not be loaded yet.
	if exec.Command("/sbin/modprobe", "-q", "--", "ip_vs").Run() == nil {
		if d, err2 := open(); err2 == nil {
			return d, nil
		}
	}
	return nil, err
}

func open() (*Dataplane, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("ipvs: dial generic netlink: %w", err)
	}
	f, err := c.GetFamily(genlName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ipvs: generic netlink family %s: %w", genlName, err)
	}
	svc, err := cfipvs.New()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	d := New(svc, c, f.ID)
	d.batch = dialBatch() // nil: AddBulk sends one request at a time
	return d, nil
}

// New builds a Dataplane from its two connections: svc for services and
// destinations, genl (with the IPVS family's id) for the rest. Tests pass a
// fake kernel for both.
func New(svc cfipvs.Client, genl *genetlink.Conn, family uint16) *Dataplane {
	return &Dataplane{svc: svc, genl: genl, family: family, procDir: "/proc"}
}

// Available reports whether this kernel has IPVS loaded in this network
// namespace.
func Available() bool {
	_, err := os.Stat("/proc/net/ip_vs")
	return err == nil
}

func (d *Dataplane) Name() string { return "ipvs" }

// Close closes the netlink sockets.
func (d *Dataplane) Close() error {
	var errs []error
	if c, ok := d.svc.(interface{ Close() error }); ok {
		errs = append(errs, c.Close())
	}
	if d.genl != nil {
		errs = append(errs, d.genl.Close())
	}
	if d.batch != nil {
		errs = append(errs, d.batch.Close())
	}
	return errors.Join(errs...)
}

// Info is the kernel's IPVS version and connection table size.
func (d *Dataplane) Info(context.Context) (lvs.Info, error) {
	d.ops.add(&d.ops.Other)
	i, err := d.svc.Info()
	if err != nil {
		return lvs.Info{}, kernelErr("get info", err, nil)
	}
	return lvs.Info{
		Version:       fmt.Sprintf("%d.%d.%d", i.Version[0], i.Version[1], i.Version[2]),
		ConnTableSize: int(i.ConnectionTableSize),
	}, nil
}

// Services lists every service with its destinations and counters.
func (d *Dataplane) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	d.ops.add(&d.ops.Other)
	svcs, err := d.svc.Services()
	if err != nil && !errors.Is(err, os.ErrNotExist) { // ErrNotExist: an empty table
		return nil, kernelErr("list services", err, nil)
	}
	var pes map[lvs.ServiceKey]string
	if d.peLoaded() {
		if pes, err = d.peNames(); err != nil {
			return nil, err
		}
	}
	out := make([]lvs.ServiceStatus, 0, len(svcs))
	for _, s := range svcs {
		st := lvs.ServiceStatus{Service: serviceFrom(s.Service)}
		st.PEName = pes[st.ServiceKey]
		st.Stats, st.Rates = statsFrom(s.Stats64)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d.ops.add(&d.ops.Other)
		dests, err := d.svc.Destinations(s.Service)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			// The service may have gone between the two calls.
			if errors.Is(err, errnoESRCH) {
				continue
			}
			return nil, kernelErr("list destinations", err, nil)
		}
		st.Dests = make([]lvs.DestStatus, 0, len(dests))
		for _, x := range dests {
			ds := lvs.DestStatus{
				Destination:  destFrom(x.Destination),
				ActiveConns:  x.ActiveConnections,
				InactConns:   x.InactiveConnections,
				PersistConns: x.PersistentConnections,
			}
			ds.Stats, ds.Rates = statsFrom(x.Stats64)
			st.Dests = append(st.Dests, ds)
		}
		out = append(out, st)
	}
	return out, nil
}

// AddService adds a service (IPVS_CMD_NEW_SERVICE).
func (d *Dataplane) AddService(_ context.Context, s lvs.Service) error {
	d.ops.add(&d.ops.AddService)
	var err error
	if s.PEName != "" {
		err = d.setServicePE(cmdNewService, s)
	} else {
		err = d.svc.CreateService(serviceTo(s))
	}
	return kernelErr("add service", err, addServiceErrs)
}

// EditService changes a service's scheduler, flags, persistence and
// persistence engine (IPVS_CMD_SET_SERVICE).
func (d *Dataplane) EditService(_ context.Context, s lvs.Service) error {
	d.ops.add(&d.ops.EditService)
	var err error
	if s.PEName != "" {
		// cloudflare/ipvs names no engine, which (as from ipvsadm -E
		// without --pe) takes the service's engine away.
		err = d.setServicePE(cmdSetService, s)
	} else {
		err = d.svc.UpdateService(serviceTo(s))
	}
	return kernelErr("edit service", err, editServiceErrs)
}

// DelService removes a service and its destinations.
func (d *Dataplane) DelService(_ context.Context, k lvs.ServiceKey) error {
	d.ops.add(&d.ops.DelService)
	return kernelErr("delete service", d.svc.RemoveService(serviceTo(lvs.Service{ServiceKey: k})), delServiceErrs)
}

// AddDest adds a destination to a service.
func (d *Dataplane) AddDest(_ context.Context, k lvs.ServiceKey, x lvs.Destination) error {
	d.ops.add(&d.ops.AddDest)
	return kernelErr("add destination", d.svc.CreateDestination(serviceTo(lvs.Service{ServiceKey: k}), destTo(x)), addDestErrs)
}

// EditDest changes a destination's weight, method and thresholds.
func (d *Dataplane) EditDest(_ context.Context, k lvs.ServiceKey, x lvs.Destination) error {
	d.ops.add(&d.ops.EditDest)
	return kernelErr("edit destination", d.svc.UpdateDestination(serviceTo(lvs.Service{ServiceKey: k}), destTo(x)), editDestErrs)
}

// DelDest removes a destination.
func (d *Dataplane) DelDest(_ context.Context, k lvs.ServiceKey, ap netip.AddrPort) error {
	d.ops.add(&d.ops.DelDest)
	x := lvs.Destination{Addr: ap.Addr(), Port: ap.Port()}
	return kernelErr("delete destination", d.svc.RemoveDestination(serviceTo(lvs.Service{ServiceKey: k}), destTo(x)), editDestErrs)
}

// Timeouts are the TCP, TCP FIN_WAIT and UDP timeouts.
func (d *Dataplane) Timeouts(context.Context) (lvs.Timeouts, error) {
	d.ops.add(&d.ops.Other)
	c, err := d.svc.Config()
	if err != nil {
		return lvs.Timeouts{}, kernelErr("get timeouts", err, nil)
	}
	sec := func(n uint32) time.Duration { return time.Duration(n) * time.Second }
	return lvs.Timeouts{TCP: sec(c.TCPTimeout), TCPFin: sec(c.TCPFinTimeout), UDP: sec(c.UDPTimeout)}, nil
}

// SetTimeouts changes the non-zero timeouts; the kernel leaves a zero one
// as it is.
func (d *Dataplane) SetTimeouts(_ context.Context, t lvs.Timeouts) error {
	d.ops.add(&d.ops.Other)
	sec := func(v time.Duration) uint32 { return uint32(v / time.Second) }
	err := d.svc.SetConfig(cfipvs.Config{TCPTimeout: sec(t.TCP), TCPFinTimeout: sec(t.TCPFin), UDPTimeout: sec(t.UDP)})
	return kernelErr("set timeouts", err, nil)
}

// peLoaded reports whether a persistence engine module is loaded: without
// one no service can have an engine, and listing skips asking for them.
func (d *Dataplane) peLoaded() bool {
	b, err := os.ReadFile(d.procDir + "/modules")
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "ip_vs_pe_")
}

// OpCounts are the requests sent to the kernel, by kind.
type OpCounts struct {
	AddService, EditService, DelService int64
	AddDest, EditDest, DelDest          int64
	Flush, Zero, Daemon                 int64
	// Other are reads: listings, info, timeouts.
	Other int64
	// Batches are the sendmsg calls that carried many of the requests
	// above at once (AddBulk); every other request is a sendmsg of its own.
	Batches int64
}

// Changes is the number of requests that change the table.
func (c OpCounts) Changes() int64 {
	return c.AddService + c.EditService + c.DelService + c.AddDest + c.EditDest + c.DelDest + c.Flush + c.Zero + c.Daemon
}

func (c OpCounts) String() string {
	return "add_service=" + strconv.FormatInt(c.AddService, 10) +
		" edit_service=" + strconv.FormatInt(c.EditService, 10) +
		" del_service=" + strconv.FormatInt(c.DelService, 10) +
		" add_dest=" + strconv.FormatInt(c.AddDest, 10) +
		" edit_dest=" + strconv.FormatInt(c.EditDest, 10) +
		" del_dest=" + strconv.FormatInt(c.DelDest, 10) +
		" flush=" + strconv.FormatInt(c.Flush, 10) +
		" zero=" + strconv.FormatInt(c.Zero, 10) +
		" daemon=" + strconv.FormatInt(c.Daemon, 10) +
		" reads=" + strconv.FormatInt(c.Other, 10) +
		" batches=" + strconv.FormatInt(c.Batches, 10)
}

type opCounters struct {
	AddService, EditService, DelService atomic.Int64
	AddDest, EditDest, DelDest          atomic.Int64
	Flush, Zero, Daemon, Other          atomic.Int64
	Batches                             atomic.Int64
}

func (o *opCounters) add(c *atomic.Int64) { c.Add(1) }

// Ops returns the requests sent so far.
func (d *Dataplane) Ops() OpCounts {
	o := &d.ops
	return OpCounts{
		AddService: o.AddService.Load(), EditService: o.EditService.Load(), DelService: o.DelService.Load(),
		AddDest: o.AddDest.Load(), EditDest: o.EditDest.Load(), DelDest: o.DelDest.Load(),
		Flush: o.Flush.Load(), Zero: o.Zero.Load(), Daemon: o.Daemon.Load(), Other: o.Other.Load(),
		Batches: o.Batches.Load(),
	}
}
