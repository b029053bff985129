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
	n *Node
	// name is m.Name: a reload gives an instance a new m only under the
	// same name.
	name  string
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
	// polled: the socket is in the loop's epoll set; removed: a reload
	// took the instance out of the configuration.
	polled, removed bool
}

// open resolves the source address, creates the VMAC, opens the socket
// and builds the state machine; g is the configuration's global_defs.
func (i *inst) open(ctx context.Context, g *model.Global) error {
	n, m := i.n, i.m
	cfg, err := vrrp.ConfigFromModel(m)
	if err != nil {
		return err
	}
	v6 := cfg.Family == packet.IPv6
	if m.VMAC != nil {
		i.vmac = vmacName(m, g)
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
	if !cfg.Src.IsValid() {
		cfg.Src, err = i.primary(ctx, xmitDev(m, i.dev), v6)
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
	if i.conn, err = n.opt.Listen(ctx, listenOptions(m, i.dev, cfg)); err != nil {
		return fmt.Errorf("vrrp instance %s: %w", m.Name, err)
	}
	i.poll, _ = i.conn.(transport.Poller)
	if !n.realClock {
		i.timers = vrrp.NewTimers(n.clk, func(k vrrp.TimerKind) { n.post(event{kind: evTimer, i: i, timer: k}) })
	}
	i.since = n.clk.Now()
	return nil
}

// vmacName is the VMAC device of an instance with use_vmac.
func vmacName(m *model.Instance, g *model.Global) string {
	if m.VMAC == nil {
		return ""
	}
	if m.VMAC.Name != "" {
		return m.VMAC.Name
	}
	return g.VMACPrefix + "." + strconv.Itoa(m.VRID)
}

// xmitDev is where adverts go out: dev (the VMAC, when there is one),
// or the base interface with vmac_xmit_base.
func xmitDev(m *model.Instance, dev string) string {
	if m.VMACXmitBase {
		return m.Interface
	}
	return dev
}

// listenOptions are the socket an instance needs.
func listenOptions(m *model.Instance, dev string, cfg vrrp.Config) transport.Options {
	o := transport.Options{Interface: xmitDev(m, dev), Family: cfg.Family, Src: cfg.Src}
	if !cfg.Unicast {
		o.Group = cfg.Dst[0]
	}
	if m.UnicastTTL != nil && cfg.Unicast {
		o.TTL = int(*m.UnicastTTL)
	}
	return o
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

// recvLoop reads adverts from c, a Conn that is no Poller, and posts
// them to the loop until the socket closes.
func (i *inst) recvLoop(c transport.Conn) {
	buf := make([]byte, 2048)
	for {
		nb, meta, err := c.ReadFrom(buf)
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
			i.n.work.push(job{i: i, m: i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelDebug, Msg: "advert dropped", Peer: meta.Src}, drop: r})
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
			j := job{a: a}
			for _, g := range n.grps {
				if g.m.Name == a.Instance {
					j.g = g.m
				}
			}
			n.work.push(j)
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
	i.n.work.push(job{i: i, m: i.m, a: a, prio: i.in.Priority(), state: i.in.State(), removed: i.removed})
}

// doJob does, on the worker, what act handed over.
func (n *Node) doJob(j job) {
	i, m, a, log := j.i, j.m, j.a, n.log
	switch {
	case j.deleteVMAC != "":
		if err := n.opt.Announcer.DeleteVMAC(j.deleteVMAC); err != nil {
			log.Warn("vmac not removed", "vmac", j.deleteVMAC, "err", err)
		}
		return
	case j.addrs != nil:
		i.changeAddrs(m, j.addrs)
		return
	}
	if i == nil {
		switch a.Kind {
		case vrrp.ActSyncTransition:
			n.syncTransition(a, j.g)
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
		if err := n.opt.Announcer.AddVIPs(i.dev, allVIPs(m)); err != nil {
			log.Error("vips not all added", "instance", m.Name, "err", err)
		}
		if err := n.opt.Announcer.AddRoutes(i.dev, m.Routes); err != nil {
			log.Error("virtual routes not all added", "instance", m.Name, "err", err)
		}
		if err := n.opt.Announcer.AddRules(m.Rules); err != nil {
			log.Error("virtual rules not all added", "instance", m.Name, "err", err)
		}
	case vrrp.ActRemoveVIPs:
		if err := n.opt.Announcer.RemoveRules(m.Rules); err != nil {
			log.Error("virtual rules not all removed", "instance", m.Name, "err", err)
		}
		if err := n.opt.Announcer.RemoveRoutes(i.dev, m.Routes); err != nil {
			log.Error("virtual routes not all removed", "instance", m.Name, "err", err)
		}
		if err := n.opt.Announcer.RemoveVIPs(i.dev, allVIPs(m)); err != nil {
			log.Error("vips not all removed", "instance", m.Name, "err", err)
		}
	case vrrp.ActGARP:
		i.garp(allVIPs(m), a.Repeat, a.Interval)
	case vrrp.ActTransition:
		if j.removed {
			n.removed(m, a.From, j.prio)
			return
		}
		log.Info("vrrp state changed", "instance", m.Name, "vrid", m.VRID, "from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String(), "priority", j.prio)
		n.notifyState(m, a.To.String(), j.prio)
		if n.opt.OnTransition != nil {
			n.opt.OnTransition(m.Name, a.From, a.To)
		}
	case vrrp.ActPriority:
		log.Info("vrrp priority changed", "instance", m.Name, "vrid", m.VRID, "from", a.PeerPriority, "to", a.Priority)
		if m.Notify.PriorityChanges || n.cfg.Global.VRRPNotifyPriorityChanges {
			n.notifyState(m, j.state.String(), j.prio)
		}
	case vrrp.ActMasterRxLowerPri:
		if s := m.Notify.MasterRxLowerPri; s != nil {
			n.opt.Notify.Run("vrrp "+m.Name, *s, "INSTANCE", m.Name, "MASTER_RX_LOWER_PRI", strconv.Itoa(int(a.PeerPriority)))
		}
	case vrrp.ActLog:
		attrs := []any{"instance", m.Name, "vrid", m.VRID}
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
				i.n.work.push(job{i: i, m: i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelDebug, Msg: "advert not sent", Peer: dst}, err: err})
			}
			continue
		}
		i.stats.CountSent(&adv)
	}
}

// allVIPs are an instance's VIPs and excluded VIPs.
func allVIPs(m *model.Instance) []model.VIP {
	return append(append([]model.VIP(nil), m.VIPs...), m.ExcludedVIPs...)
}

// garp sends repeat rounds of gratuitous ARP / NA for vips, interval
// apart, in the background: the jobs that follow must not wait.
func (i *inst) garp(vips []model.VIP, repeat int, interval time.Duration) {
	byDev := map[string][]netip.Addr{}
	for _, v := range vips {
		d := i.dev
		if v.Dev != "" && !v.UseVMAC {
			d = v.Dev
		}
		byDev[d] = append(byDev[d], v.Prefix.Addr())
	}
	a, log, name := i.n.opt.Announcer, i.n.log, i.name
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
// state is a vrrp.State's name, or DELETED.
func (n *Node) notifyState(m *model.Instance, state string, priority uint8) {
	name, prio := m.Name, int(priority)
	if n.opt.FIFO != nil {
		n.opt.FIFO.Write(notify.InstanceLine("INSTANCE", name, state, prio))
	}
	nt := m.Notify
	var sc *model.Script
	switch state {
	case "MASTER":
		sc = nt.Master
	case "BACKUP":
		sc = nt.Backup
	case "FAULT":
		sc = nt.Fault
	case "STOP":
		sc = nt.Stop
	case "DELETED":
		sc = nt.Deleted
	}
	subject := "vrrp " + name
	if n.opt.Mail != nil && n.alerting(m.SMTPAlert, state) {
		n.opt.Mail.Instance(name, state)
	}
	if sc != nil {
		n.opt.Notify.Run(subject, *sc)
	}
	if nt.Any != nil {
		n.opt.Notify.Run(subject, *nt.Any, "INSTANCE", name, state, strconv.Itoa(prio))
	}
}

func (n *Node) syncTransition(a vrrp.Action, g *model.SyncGroup) {
	n.log.Info("vrrp sync group state changed", "group", a.Instance, "from", a.From.String(), "to", a.To.String(), "reason", a.Reason.String())
	if n.opt.FIFO != nil {
		n.opt.FIFO.Write(fmt.Sprintf("GROUP %q %s", a.Instance, a.To))
	}
	if g == nil {
		return
	}
	nt := g.Notify
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
	if n.opt.Mail != nil && n.alerting(g.SMTPAlert, a.To.String()) {
		n.opt.Mail.Group(a.Instance, a.To.String())
	}
	if sc != nil {
		n.opt.Notify.Run(subject, *sc)
	}
	if nt.Any != nil {
		n.opt.Notify.Run(subject, *nt.Any, "GROUP", a.Instance, a.To.String(), "0")
	}
}

// alerting says whether a change to state of an instance or group whose
// smtp_alert is own sends mail: smtp_alert, else global smtp_alert_vrrp,
// else smtp_alert (off by default); never for FAULT with no_email_faults.
func (n *Node) alerting(own *bool, state string) bool {
	g := n.cfg.Global
	if state == "FAULT" && g.NoEmailFaults {
		return false
	}
	return notify.Alerting(own, g.SMTPAlertVRRP, g.SMTPAlert, false)
}
