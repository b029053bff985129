package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/keepvs/keepvs/internal/announce"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify"
	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
)

// inst is one vrrp_instance at run time.
type inst struct {
	n     *Node
	m     *model.Instance
	in    *vrrp.Instance
	cfg   vrrp.Config
	group *group
	// base is the configured interface; dev is where the VIPs go and
	// adverts are sent: the VMAC when use_vmac, else base.
	base, dev, vmac string
	conn            transport.Conn
	poll            transport.Poller // conn, when the loop can poll it
	timers          *vrrp.Timers     // with a Clock that is not clock.Real
	expect          packet.Expect
	tracked         trackedRefs
	delta           int
	fault           bool

	stats packet.Stats
	adv   packet.Advert
	out   []byte
	since time.Time

	// downLate is a master down deadline the loop found late, and
	// downRetry when it runs it after all (loop.fireDue).
	downLate, downRetry time.Time
	readErrs            int // failed reads in a row
	readErrLogged       bool
}

// open resolves the source address, creates the VMAC, opens the socket
// and builds the state machine.
func (i *inst) open(ctx context.Context) error {
	n, m := i.n, i.m
	cfg, err := vrrp.ConfigFromModel(m)
	if err != nil {
		return err
	}
	v6 := cfg.Family == packet.IPv6
	if m.VMAC != nil {
		i.vmac = m.VMAC.Name
		if i.vmac == "" {
			i.vmac = n.cfg.Global.VMACPrefix + "." + strconv.Itoa(m.VRID)
		}
		mac := announce.VMACAddr(cfg.VRID, v6)
		if m.VMAC.MAC != "" {
			s := m.VMAC.MAC
			if len(s) == 14 {
				s += fmt.Sprintf(":%02x", cfg.VRID)
			}
			if mac, err = net.ParseMAC(s); err != nil {
				return fmt.Errorf("vrrp instance %s: use_vmac %s: %w", m.Name, m.VMAC.MAC, err)
			}
		}
		if err := n.opt.Announcer.CreateVMAC(i.base, i.vmac, mac); err != nil {
			return fmt.Errorf("vrrp instance %s: %w", m.Name, err)
		}
		i.dev = i.vmac
	}
	xmit := i.dev
	if m.VMACXmitBase {
		xmit = i.base
	}
	if !cfg.Src.IsValid() {
		cfg.Src, err = i.primary(ctx, xmit, v6)
		if err != nil {
			return fmt.Errorf("vrrp instance %s: %w", m.Name, err)
		}
	}
	i.cfg = cfg
	i.in, err = vrrp.NewInstance(cfg)
	if err != nil {
		return err
	}
	i.expect = cfg.Expect()
	o := transport.Options{Interface: xmit, Family: cfg.Family, Src: cfg.Src}
	if !cfg.Unicast {
		o.Group = cfg.Dst[0]
	}
	if m.UnicastTTL != nil && cfg.Unicast {
		o.TTL = int(*m.UnicastTTL)
	}
	if i.conn, err = n.opt.Listen(ctx, o); err != nil {
		return fmt.Errorf("vrrp instance %s: %w", m.Name, err)
	}
	i.poll, _ = i.conn.(transport.Poller)
	if !n.realClock {
		i.timers = vrrp.NewTimers(n.clk, func(k vrrp.TimerKind) { n.post(event{kind: evTimer, i: i, timer: k}) })
	}
	i.since = n.clk.Now()
	return nil
}

// primary is the interface's primary address; a VMAC has no IPv4
// address of its own, so that comes from the base interface. An IPv6
// link-local address may take a moment to appear on a new VMAC.
func (i *inst) primary(ctx context.Context, dev string, v6 bool) (netip.Addr, error) {
	a := i.n.opt.Announcer
	deadline := time.Now().Add(3 * time.Second)
	for {
		ip, err := a.PrimaryAddr(dev, v6)
		if err == nil {
			return ip, nil
		}
		if !v6 && dev != i.base {
			return a.PrimaryAddr(i.base, v6)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return netip.Addr{}, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recvLoop reads adverts from a Conn that is no Poller and posts them to
// the loop until the socket closes.
func (i *inst) recvLoop() {
	buf := make([]byte, 2048)
	for {
		nb, meta, err := i.conn.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, transport.ErrClosed) {
				i.n.post(event{kind: evRecvErr, i: i, err: err})
			}
			return
		}
		i.n.post(event{kind: evAdvert, i: i, b: append([]byte(nil), buf[:nb]...), meta: meta})
	}
}

// received validates an advert, counts it and hands a good one to the
// state machine.
func (i *inst) received(b []byte, meta packet.RecvMeta) {
	e := i.expect
	e.SkipAddrCheck = i.in.SkipAddrCheck(meta.Src)
	r := packet.ValidateInto(&i.adv, b, meta, &e)
	if r == packet.DropVRID && i.n.siblingVRID(i, i.adv.VRID) {
		return // another of our instances' adverts, on the same socket kind
	}
	i.stats.Count(&i.adv, r)
	if r != packet.DropNone {
		if i.n.debug {
			i.n.work.push(job{i: i, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelDebug, Msg: "advert dropped", Peer: meta.Src}, drop: r})
		}
		return
	}
	i.n.do(i.in.Handle(i.n.clk.Now(), vrrp.AdvertReceived(i.adv, meta.Src)))
}

// siblingVRID reports whether another instance on i's interface and
// family has vrid.
func (n *Node) siblingVRID(i *inst, vrid uint8) bool {
	for _, o := range n.ins {
		if o != i && o.cfg.VRID == vrid && o.base == i.base && o.cfg.Family == i.cfg.Family {
			return true
		}
	}
	return false
}

// do runs the actions of one step, in order.
func (n *Node) do(acts []vrrp.Action) {
	for _, a := range acts {
		if a.Kind == vrrp.ActSyncTransition {
			n.work.push(job{a: a})
			continue
		}
		i := n.byNm[a.Instance]
		if i == nil {
			continue
		}
		if a.Kind == vrrp.ActSetTimer || a.Kind == vrrp.ActStopTimer {
			// With clock.Real the loop reads the deadlines from the
			// instances themselves.
			if i.timers != nil {
				i.timers.Apply(a)
			}
			continue
		}
		i.act(a)
	}
}

// act does one action in the loop: an advert is sent at once; the rest
// goes to the worker.
func (i *inst) act(a vrrp.Action) {
	switch a.Kind {
	case vrrp.ActSend:
		i.send(a.Priority, a.Dst)
		return
	case vrrp.ActTransition:
		i.since = i.n.clk.Now()
	}
	i.n.work.push(job{i: i, a: a, prio: i.in.Priority(), state: i.in.State()})
}

// doJob does, on the worker, what act handed over.
func (n *Node) doJob(j job) {
	i, a, log := j.i, j.a, n.log
	if i == nil {
		switch a.Kind {
		case vrrp.ActSyncTransition:
			n.syncTransition(a)
		case vrrp.ActLog:
			attrs := []any{}
			if j.err != nil {
				attrs = append(attrs, "err", j.err)
			}
			if j.late > 0 {
				attrs = append(attrs, "worst", j.late)
			}
			if j.count > 0 {
				attrs = append(attrs, "times", j.count)
			}
			log.Log(context.Background(), a.Level, a.Msg, attrs...)
		}
		return
	}
	switch a.Kind {
	case vrrp.ActAddVIPs:
		vips := append(append([]model.VIP(nil), i.m.VIPs...), i.m.ExcludedVIPs...)
		if err := n.opt.Announcer.AddVIPs(i.dev, vips); err != nil {
			log.Error("vips not all added", "instance", i.m.Name, "err", err)
		}
		if err := n.opt.Announcer.AddRoutes(i.dev, i.m.Routes); err != nil {
			log.Error("virtual routes not all added", "instance", i.m.Name, "err", err)
		}
	case vrrp.ActRemoveVIPs:
		if err := n.opt.Announcer.RemoveRoutes(i.dev, i.m.Routes); err != nil {
			log.Error("virtual routes not all removed", "instance", i.m.Name, "err", err)
		}
		vips := append(append([]model.VIP(nil), i.m.VIPs...), i.m.ExcludedVIPs...)
		if err := n.opt.Announcer.RemoveVIPs(i.dev, vips); err != nil {
			log.Error("vips not all removed", "instance", i.m.Name, "err", err)
		}
	case vrrp.ActGARP:
		i.garp(a.Repeat, a.Interval)
	case vrrp.ActTransition:
		log.Info("vrrp state changed", "instance", i.m.Name, "vrid", i.cfg.VRID, "from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String(), "priority", j.prio)
		i.notifyState(a.To, j.prio)
		if n.opt.OnTransition != nil {
			n.opt.OnTransition(i.m.Name, a.From, a.To)
		}
	case vrrp.ActPriority:
		log.Info("vrrp priority changed", "instance", i.m.Name, "vrid", i.cfg.VRID, "from", a.PeerPriority, "to", a.Priority)
		if i.m.Notify.PriorityChanges || n.cfg.Global.VRRPNotifyPriorityChanges {
			i.notifyState(j.state, j.prio)
		}
	case vrrp.ActMasterRxLowerPri:
		if s := i.m.Notify.MasterRxLowerPri; s != nil {
			n.opt.Notify.Run("vrrp "+i.m.Name, *s, "INSTANCE", i.m.Name, "MASTER_RX_LOWER_PRI", strconv.Itoa(int(a.PeerPriority)))
		}
	case vrrp.ActLog:
		attrs := []any{"instance", i.m.Name, "vrid", i.cfg.VRID}
		if a.Reason != vrrp.ReasonNone {
			attrs = append(attrs, "reason", a.Reason.String())
		}
		switch {
		case a.Level == slog.LevelDebug && a.Peer.IsValid():
			attrs = append(attrs, "addr", a.Peer)
		case a.Peer.IsValid():
			attrs = append(attrs, "peer", a.Peer, "peer_priority", a.PeerPriority)
		}
		if j.drop != packet.DropNone {
			attrs = append(attrs, "reason", j.drop.String())
		}
		if j.err != nil {
			attrs = append(attrs, "err", j.err)
		}
		if j.late > 0 {
			attrs = append(attrs, "late", j.late)
		}
		if j.grace > 0 {
			attrs = append(attrs, "grace", j.grace)
		}
		if j.count > 0 {
			attrs = append(attrs, "times", j.count)
		}
		log.Log(context.Background(), a.Level, a.Msg, attrs...)
	}
}

func (i *inst) send(prio uint8, dsts []netip.Addr) {
	adv := i.in.Advert(prio)
	for _, dst := range dsts {
		var err error
		i.out, err = adv.AppendTo(i.out[:0], packet.EncodeOptions{Family: i.cfg.Family, Src: i.cfg.Src, Dst: dst})
		if err == nil {
			err = i.conn.WriteTo(i.out, dst)
		}
		if err != nil {
			if i.n.debug {
				i.n.work.push(job{i: i, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelDebug, Msg: "advert not sent", Peer: dst}, err: err})
			}
			continue
		}
		i.stats.CountSent(&adv)
	}
}

// garp sends repeat rounds of gratuitous ARP / NA for the VIPs, interval
// apart, in the background: the jobs that follow must not wait.
func (i *inst) garp(repeat int, interval time.Duration) {
	byDev := map[string][]netip.Addr{}
	for _, v := range append(append([]model.VIP(nil), i.m.VIPs...), i.m.ExcludedVIPs...) {
		d := i.dev
		if v.Dev != "" && !v.UseVMAC {
			d = v.Dev
		}
		byDev[d] = append(byDev[d], v.Prefix.Addr())
	}
	a, log, name := i.n.opt.Announcer, i.n.log, i.m.Name
	go func() {
		for r := range repeat {
			if r > 0 && interval > 0 {
				time.Sleep(interval)
			}
			for dev, addrs := range byDev {
				if err := a.GARP(dev, addrs); err != nil {
					log.Warn("gratuitous arp / na not sent", "instance", name, "dev", dev, "err", err)
				}
			}
		}
	}()
}

// notifyState runs notify_<state> and notify, and writes the FIFO line,
// as keepalived: the generic notify gets "INSTANCE" NAME STATE PRIORITY.
func (i *inst) notifyState(s vrrp.State, priority uint8) {
	n := i.n
	name, prio := i.m.Name, int(priority)
	if n.opt.FIFO != nil {
		n.opt.FIFO.Write(notify.InstanceLine("INSTANCE", name, s.String(), prio))
	}
	nt := i.m.Notify
	var sc *model.Script
	switch s {
	case vrrp.StateMaster:
		sc = nt.Master
	case vrrp.StateBackup:
		sc = nt.Backup
	case vrrp.StateFault:
		sc = nt.Fault
	case vrrp.StateStop:
		sc = nt.Stop
	}
	subject := "vrrp " + name
	if sc != nil {
		n.opt.Notify.Run(subject, *sc)
	}
	if nt.Any != nil {
		n.opt.Notify.Run(subject, *nt.Any, "INSTANCE", name, s.String(), strconv.Itoa(prio))
	}
}

func (n *Node) syncTransition(a vrrp.Action) {
	n.log.Info("vrrp sync group state changed", "group", a.Instance, "from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String())
	var g *group
	for _, x := range n.grps {
		if x.m.Name == a.Instance {
			g = x
		}
	}
	if n.opt.FIFO != nil {
		n.opt.FIFO.Write(fmt.Sprintf("GROUP %q %s", a.Instance, a.To))
	}
	if g == nil {
		return
	}
	nt := g.m.Notify
	var sc *model.Script
	switch a.To {
	case vrrp.StateMaster:
		sc = nt.Master
	case vrrp.StateBackup:
		sc = nt.Backup
	case vrrp.StateFault:
		sc = nt.Fault
	case vrrp.StateStop:
		sc = nt.Stop
	}
	subject := "vrrp group " + a.Instance
	if sc != nil {
		n.opt.Notify.Run(subject, *sc)
	}
	if nt.Any != nil {
		n.opt.Notify.Run(subject, *nt.Any, "GROUP", a.Instance, a.To.String(), "0")
	}
}
