// Package vrrpd runs keepalived's VRRP on the wire: it owns the
// vrrp.Instance state machines of a configuration and feeds them adverts
// from transport, timers from clock, and tracker updates from track, and
// does what they ask through transport (adverts), announce (VIPs, routes,
// gratuitous ARP / NA, VMACs) and notify (scripts, the FIFO).
//
// One OS thread, the loop's, owns every instance (a sync group's step
// moves several at once): it waits in epoll_wait for the sockets, a
// timerfd and an eventfd, in realtime scheduling where permitted (see
// loop.go and realtime.go). Trackers and Status post events to it; what
// may block (netlink, ARP, scripts, logs) it hands to a worker goroutine.
package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify"
	"github.com/keepvs/keepvs/internal/track"
	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
)

// Announcer is what the node needs of announce.Announcer.
type Announcer interface {
	AddVIPs(dev string, vips []model.VIP) error
	RemoveVIPs(dev string, vips []model.VIP) error
	AddRoutes(dev string, routes []model.Route) error
	RemoveRoutes(dev string, routes []model.Route) error
	AddRules(rules []model.Rule) error
	RemoveRules(rules []model.Rule) error
	GARP(dev string, addrs []netip.Addr) error
	PrimaryAddr(dev string, v6 bool) (netip.Addr, error)
	CreateVMAC(parent, name string, mac net.HardwareAddr) error
	DeleteVMAC(name string) error
}

// Options are the node's dependencies; the zero value of each is the
// real thing where there is one.
type Options struct {
	Log   *slog.Logger
	Clock clock.Clock
	// Listen opens an instance's socket (default transport.Listen).
	Listen func(context.Context, transport.Options) (transport.Conn, error)
	// Announcer is required.
	Announcer Announcer
	// Notify runs notify scripts and vrrp_script's (default: a Runner
	// with global_defs' script_user and enable_script_security).
	Notify *notify.Runner
	// FIFO, when set, gets a line per state change.
	FIFO *notify.FIFO
	// Mail, when set, sends smtp_alert mail for the instances and sync
	// groups that ask for it.
	Mail *notify.Mailer
	// NoInterfaceTracking turns off the netlink link watcher (tests on a
	// transport.Hub have no interfaces).
	NoInterfaceTracking bool
	// ScriptExec runs vrrp_scripts (default notify.ExecCommand).
	ScriptExec notify.Exec
	// OnTransition, when set, is told every instance's state change, in
	// order, on the node's worker goroutine (never the VRRP thread, so
	// it may block briefly: lvs_sync_daemon follows one instance). An
	// instance a reload removes goes to STOP.
	OnTransition func(instance string, from, to vrrp.State)
	// NoRealtime keeps the VRRP thread in normal scheduling even where
	// realtime is permitted.
	NoRealtime bool
	// StartupDelay holds the instances in INIT that long after Run
	// starts (vrrp_startup_delay; the daemon gives it at its start only,
	// not to a node a reload starts). It needs the real clock.
	StartupDelay time.Duration
}

// Node runs the VRRP instances of one configuration.
type Node struct {
	cfg  *model.Config
	opt  Options
	log  *slog.Logger
	clk  clock.Clock
	ins  []*inst
	byNm map[string]*inst
	grps []*group

	realClock bool
	// startAt: the instances start then (vrrp_startup_delay); zero once
	// they have started. Owned by the loop.
	startAt time.Time
	debug   bool // the log takes debug lines (asked once: the loop may not call the handler)

	// inbox carries other goroutines' events to the loop; they write
	// wakeFd (the loop's eventfd, -1 when there is none) after each.
	inbox    chan event
	wakeMu   sync.Mutex
	wakeFd   int
	done     chan struct{} // closed when the loop has ended
	doneOnce sync.Once
	work     *worker
	state    *track.State

	// lp is the loop, and running is closed once it runs; reloadMu
	// keeps reloads one at a time.
	lp       *loop
	running  chan struct{}
	reloadMu sync.Mutex
	trk      *trackers
}

type group struct {
	m       *model.SyncGroup
	g       *vrrp.SyncGroup
	tracked track.Tracked
}

type evKind uint8

const (
	evAdvert evKind = iota // from a Conn that is no Poller
	evTimer                // from vrrp.Timers, with a Clock that is not clock.Real
	evTrack
	evRecvErr
	evCall
	evStop
)

type event struct {
	kind  evKind
	i     *inst
	b     []byte
	meta  packet.RecvMeta
	timer vrrp.TimerKind
	upd   track.Update
	err   error
	f     func()
}

// New checks the configuration's instances; it opens nothing and starts
// nothing.
func New(cfg *model.Config, opt Options) (*Node, error) {
	if opt.Announcer == nil {
		return nil, errors.New("vrrpd: no announcer")
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Listen == nil {
		opt.Listen = transport.Listen
	}
	if opt.Notify == nil {
		g := cfg.Global
		opt.Notify = notify.New(notify.Options{User: g.ScriptUser, Group: g.ScriptGroup, Security: g.EnableScriptSecurity, Log: opt.Log})
	}
	_, realClock := opt.Clock.(clock.Real)
	n := &Node{cfg: cfg, opt: opt, log: opt.Log, clk: opt.Clock, byNm: map[string]*inst{}, realClock: realClock,
		debug: opt.Log.Enabled(context.Background(), slog.LevelDebug),
		inbox: make(chan event, 1024), wakeFd: -1, done: make(chan struct{}), work: newWorker(), state: track.NewState(),
		running: make(chan struct{})}
	if err := checkInstances(cfg); err != nil {
		return nil, err
	}
	for _, m := range cfg.Instances {
		i := n.newInst(cfg, m)
		n.ins = append(n.ins, i)
		n.byNm[m.Name] = i
	}
	for _, g := range cfg.SyncGroups {
		n.grps = append(n.grps, newGroup(cfg, g))
	}
	return n, nil
}

// checkInstances refuses instances the node cannot run.
func checkInstances(cfg *model.Config) error {
	for _, m := range cfg.Instances {
		if _, err := vrrp.ConfigFromModel(m); err != nil {
			return err
		}
		if m.Interface == "" {
			return fmt.Errorf("vrrp instance %s: no interface", m.Name)
		}
	}
	return nil
}

// newInst is instance m of cfg, not yet open.
func (n *Node) newInst(cfg *model.Config, m *model.Instance) *inst {
	i := &inst{n: n, name: m.Name, m: m, base: m.Interface, dev: m.Interface}
	i.tracked = track.Resolve(&cfg.VRRP, m.TrackScript, m.TrackInterface, m.TrackFile)
	return i
}

func newGroup(cfg *model.Config, g *model.SyncGroup) *group {
	return &group{m: g, tracked: track.Resolve(&cfg.VRRP, g.TrackScript, g.TrackInterface, g.TrackFile)}
}

// groupUp makes g's state machine of its members that n has.
func (n *Node) groupUp(g *group) error {
	var members []*vrrp.Instance
	for _, r := range g.m.Members {
		if i := n.byNm[r.Name]; i != nil {
			members = append(members, i.in)
			i.group = g
		}
	}
	sg, err := vrrp.NewSyncGroup(g.m.Name, members...)
	if err != nil {
		return err
	}
	g.g = sg
	return nil
}

// Run opens the sockets, starts the instances and trackers, and runs
// until ctx ends; then it stops every instance (a master sends priority 0
// and removes its VIPs), removes the VMACs and returns.
func (n *Node) Run(ctx context.Context) error {
	defer n.closeDone()
	for _, i := range n.ins {
		if err := i.open(ctx, &n.cfg.Global); err != nil {
			n.closeConns()
			n.deleteVMACs()
			return err
		}
	}
	for _, g := range n.grps {
		if err := n.groupUp(g); err != nil {
			n.closeConns()
			n.deleteVMACs()
			return err
		}
	}
	l, err := n.newLoop()
	if err != nil {
		n.closeConns()
		n.deleteVMACs()
		return err
	}
	n.lp = l
	go n.work.run(n.doJob, n.log)
	n.trk = newTrackers(ctx, n)
	n.trk.reconcile(n.cfg, n.ins)
	for _, i := range n.ins {
		if i.poll == nil {
			go i.recvLoop(i.conn)
		}
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		l.run(ctx)
	}()
	close(n.running)
	<-loopDone
	n.reloadMu.Lock() // a reload under way has finished
	defer n.reloadMu.Unlock()
	n.trk.stop()
	n.work.stop() // the VIPs are gone, the last scripts queued
	n.deleteVMACs()
	waited := make(chan struct{})
	go func() { n.opt.Notify.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		n.log.Warn("notify scripts still running at stop")
	}
	n.log.Info("vrrp stopped")
	return nil
}

func (n *Node) closeDone() { n.doneOnce.Do(func() { close(n.done) }) }

// post hands ev to the loop and wakes it; once the loop has ended it
// drops ev.
func (n *Node) post(ev event) {
	select {
	case n.inbox <- ev:
	case <-n.done:
		return
	}
	n.wakeMu.Lock()
	if n.wakeFd >= 0 {
		one := uint64(1)
		unix.Write(n.wakeFd, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
	n.wakeMu.Unlock()
}

func (n *Node) handle(ev event) {
	switch ev.kind {
	case evAdvert:
		ev.i.received(ev.b, ev.meta)
	case evTimer:
		n.do(ev.i.in.Handle(n.clk.Now(), vrrp.TimerFired(ev.timer)))
	case evTrack:
		if n.state.Apply(ev.upd) {
			n.retrack()
		}
	case evRecvErr:
		n.work.push(job{i: ev.i, m: ev.i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelError, Msg: "vrrp socket read failed; the instance hears no adverts"}, err: ev.err})
	case evCall:
		ev.f()
	}
}

// retrack recomputes every instance's delta and fault after a tracker
// changed: its own tracked objects, its interface (unless
// dont_track_primary), and its sync group's.
func (n *Node) retrack() {
	for _, i := range n.ins {
		delta, fault := n.state.Sum(i.tracked)
		if !i.m.DontTrackPrimary && n.state.Interface(i.base) == track.Down {
			fault = true
		}
		if i.vmac != "" && n.state.Interface(i.vmac) == track.Down {
			fault = true
		}
		if i.group != nil {
			d, f := n.state.Sum(i.group.tracked)
			delta, fault = delta+d, fault || f
		}
		if delta != i.delta {
			i.delta = delta
			n.do(i.in.Handle(n.clk.Now(), vrrp.PriorityChanged(delta)))
		}
		if a, ok := i.trackedSrc(); ok && n.state.Address(a) == track.Down {
			// track_src_ip: the configured source address is gone.
			fault = true
		}
		if i.m.UnicastFaultNoPeer && len(i.m.UnicastPeers) == 0 {
			// unicast_fault_no_peer: unicast without peers is a fault,
			// not a fall back to multicast.
			fault = true
		}
		if fault != i.fault {
			i.fault = fault
			n.do(i.in.Handle(n.clk.Now(), vrrp.FaultChanged(fault)))
		}
	}
}

// closeConns closes the sockets and stops the clock's timers.
func (n *Node) closeConns() {
	for _, i := range n.ins {
		if i.conn != nil {
			i.conn.Close()
		}
		if i.timers != nil {
			i.timers.StopAll()
		}
	}
}

func (n *Node) deleteVMACs() {
	for _, i := range n.ins {
		if i.vmac != "" {
			if err := n.opt.Announcer.DeleteVMAC(i.vmac); err != nil {
				n.log.Warn("vmac not removed", "instance", i.m.Name, "vmac", i.vmac, "err", err)
			}
		}
	}
}

// callLoop runs f in the loop and reports whether it did: once the loop
// has ended it does not run f.
func (n *Node) callLoop(f func()) bool {
	ran := make(chan struct{})
	n.post(event{kind: evCall, f: func() { f(); close(ran) }})
	select {
	case <-ran:
		return true
	case <-n.done:
		select {
		case <-ran:
			return true
		default:
			return false
		}
	}
}

// call runs f in the loop, or directly once the loop has ended.
func (n *Node) call(f func()) {
	ran := make(chan struct{})
	n.post(event{kind: evCall, f: func() { f(); close(ran) }})
	select {
	case <-ran:
	case <-n.done:
		select {
		case <-ran:
		default:
			f() // the loop ended before it got to f, and never will
		}
	}
}
