package vrrpd

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/track"
	"github.com/keepvs/keepvs/internal/vrrp"
)

// A reload, as keepalived's (reload_vrrp_thread, clear_diff_vrrp,
// restore_vrrp_state), applies a new configuration to running instances
// without a failover. Instances are matched by name:
//
//   - an instance whose configuration is the same is not touched: no
//     advert skipped, no VIP moved, no notify run. Only the sync group it
//     is in may be rebuilt around it.
//   - an instance that is the same virtual router (interface, family,
//     VRID, socket, VMAC) with other settings keeps its state and takes
//     the new ones (vrrp.Instance.Reconfigure); while it holds its VIPs,
//     those the reload took away are removed and those it added are added
//     and announced.
//   - an instance the configuration no longer has — or has as another
//     virtual router under the same name — stops as at a clean stop (a
//     master sends priority 0 and removes its VIPs) and is notified as
//     keepalived notifies a deleted instance: FAULT, or DELETED with
//     notify_deleted, and nothing for one already in FAULT without it.
//   - a new instance starts as at daemon start.
//
// The work splits in three so that the VRRP thread does only what cannot
// wait: the plan (sockets opened, VMACs created, addresses compared) is
// made on the caller's goroutine; the swap runs in the loop in one step,
// between two adverts; closing what was removed and restarting the
// trackers that changed happen after, on the caller's goroutine again.

// ErrStopped is Reload's error when the node is not running.
var ErrStopped = errors.New("vrrp: not running")

// Reload applies cfg's vrrp_instances, sync groups and trackers. An
// instance it cannot open (an interface missing, say) refuses the whole
// reload: the running configuration stays as it was.
func (n *Node) Reload(ctx context.Context, cfg *model.Config) error {
	if err := checkInstances(cfg); err != nil {
		return err
	}
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	select {
	case <-n.running:
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	p, err := n.plan(ctx, cfg)
	if err != nil {
		return err
	}
	if !n.callLoop(func() { n.apply(p) }) {
		p.abandon()
		return ErrStopped
	}
	for _, i := range p.removed {
		i.conn.Close()
		if i.timers != nil {
			i.timers.StopAll()
		}
	}
	for _, i := range p.added {
		if i.poll == nil {
			go i.recvLoop(i.conn)
		}
	}
	n.trk.reconcile(cfg, p.ins)
	n.log.Info("vrrp reloaded", "unchanged", p.unchanged, "changed", names(p.changed), "added", instNames(p.added), "removed", instNames(p.removed))
	return nil
}

// plan is what a reload does, prepared off the loop.
type plan struct {
	cfg  *model.Config
	ins  []*inst // the instances after the reload, in the configuration's order
	byNm map[string]*inst
	grps []*group
	// tracked is what each instance tracks under the new configuration.
	tracked   map[*inst]track.Tracked
	changed   []change
	added     []*inst // open, not started
	removed   []*inst
	unchanged int
	// keep are the sync groups that stay as they are; vmacs the VMACs the
	// new configuration uses.
	keep  map[*group]bool
	vmacs map[string]bool
}

// change is a kept instance's new configuration.
type change struct {
	i     *inst
	m     *model.Instance
	cfg   vrrp.Config
	addrs *addrChange // nil: its VIPs and routes are the same
}

// addrChange is what a reload changes of a master's VIPs and routes.
type addrChange struct {
	removeVIPs, addVIPs     []model.VIP
	removeRoutes, addRoutes []model.Route
	removeRules, addRules   []model.Rule
	garpRepeat              int
	garpInterval            time.Duration
}

func (n *Node) plan(ctx context.Context, cfg *model.Config) (*plan, error) {
	p := &plan{cfg: cfg, byNm: map[string]*inst{}, tracked: map[*inst]track.Tracked{}, keep: map[*group]bool{}, vmacs: map[string]bool{}}
	kept := map[*inst]bool{}
	same := map[*inst]bool{}
	for _, m := range cfg.Instances {
		if v := vmacName(m, &cfg.Global); v != "" {
			p.vmacs[v] = true
		}
		i := n.byNm[m.Name]
		switch {
		case i == nil:
		case definition(m) == definition(i.m) && vmacName(m, &cfg.Global) == i.vmac:
			p.unchanged++
			kept[i], same[i] = true, true
		default:
			c, ok := i.reconfigured(m, &cfg.Global)
			if !ok {
				i = nil // another virtual router under the same name
				break
			}
			p.changed = append(p.changed, c)
			kept[i] = true
		}
		if i == nil {
			i = n.newInst(cfg, m)
			if err := i.open(ctx, &cfg.Global); err != nil {
				p.abandon()
				return nil, err
			}
			p.added = append(p.added, i)
		}
		p.ins = append(p.ins, i)
		p.byNm[m.Name] = i
		p.tracked[i] = track.Resolve(&cfg.VRRP, m.TrackScript, m.TrackInterface, m.TrackFile)
	}
	for _, i := range n.ins {
		if !kept[i] {
			p.removed = append(p.removed, i)
		}
	}
	old := map[string]*group{}
	for _, g := range n.grps {
		old[g.m.Name] = g
	}
	for _, m := range cfg.SyncGroups {
		g := old[m.Name]
		if g == nil || definition(g.m) != definition(m) || !sameMembers(g, m, p.byNm, same) {
			p.grps = append(p.grps, newGroup(cfg, m))
			continue
		}
		p.keep[g] = true
		g.tracked = track.Resolve(&cfg.VRRP, m.TrackScript, m.TrackInterface, m.TrackFile)
		p.grps = append(p.grps, g)
	}
	return p, nil
}

// sameMembers reports whether the members of g are those m names, each
// the same instance with the same configuration.
func sameMembers(g *group, m *model.SyncGroup, byNm map[string]*inst, same map[*inst]bool) bool {
	if g.g == nil || len(g.g.Members()) != len(m.Members) {
		return false
	}
	for k, r := range m.Members {
		i := byNm[r.Name]
		if i == nil || !same[i] || i.in != g.g.Members()[k] {
			return false
		}
	}
	return true
}

// reconfigured is i under configuration m, when m is still the same
// virtual router on the same socket and VMAC.
func (i *inst) reconfigured(m *model.Instance, g *model.Global) (change, bool) {
	if m.Interface != i.m.Interface || m.VRID != i.m.VRID || m.Family != i.m.Family || vmacName(m, g) != i.vmac ||
		definition(m.VMAC, m.UseVMACAddr) != definition(i.m.VMAC, i.m.UseVMACAddr) {
		return change{}, false
	}
	cfg, err := vrrp.ConfigFromModel(m)
	if err != nil {
		return change{}, false // checkInstances took it
	}
	if !cfg.Src.IsValid() {
		if configuredSrc(i.m).IsValid() {
			return change{}, false // the source was configured and is no more
		}
		cfg.Src = i.cfg.Src // the interface's primary address, found at start
	}
	if listenOptions(m, i.dev, cfg) != listenOptions(i.m, i.dev, i.cfg) {
		return change{}, false
	}
	c := change{i: i, m: m, cfg: cfg}
	a := &addrChange{garpRepeat: cfg.GARP.MasterRepeat, garpInterval: cfg.GARP.Interval}
	a.removeVIPs, a.addVIPs = model.Diff(allVIPs(i.m), allVIPs(m))
	a.removeRoutes, a.addRoutes = model.Diff(i.m.Routes, m.Routes)
	a.removeRules, a.addRules = model.Diff(i.m.Rules, m.Rules)
	if len(a.removeVIPs)+len(a.addVIPs)+len(a.removeRoutes)+len(a.addRoutes)+len(a.removeRules)+len(a.addRules) > 0 {
		c.addrs = a
	}
	return c, true
}

// configuredSrc is unicast_src_ip or mcast_src_ip, as ConfigFromModel
// takes them.
func configuredSrc(m *model.Instance) netip.Addr {
	if len(m.UnicastPeers) > 0 && m.UnicastSrcIP.IsValid() {
		return m.UnicastSrcIP
	}
	return m.McastSrcIP
}

// apply is the swap, in the loop: it runs between two passes, so no
// advert of an unchanged instance waits for more than it.
func (n *Node) apply(p *plan) {
	now := n.clk.Now()
	// Sync groups that change let go of their members first, so that
	// each step below moves one instance and no group follows it.
	for _, g := range n.grps {
		if p.keep[g] || g.g == nil {
			continue
		}
		g.g.Ungroup()
		for _, i := range n.ins {
			if i.group == g {
				i.group = nil
			}
		}
	}
	for _, i := range p.removed {
		i.removed = true
		n.do(i.in.Handle(now, vrrp.Stop()))
		n.lp.unregister(i)
		if i.vmac != "" && !p.vmacs[i.vmac] {
			n.work.push(job{deleteVMAC: i.vmac})
		}
	}
	n.cfg, n.ins, n.byNm, n.grps = p.cfg, p.ins, p.byNm, p.grps
	if err := n.lp.register(); err != nil {
		n.work.push(job{a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelError, Msg: "vrrp reload: socket not watched; the instance hears no adverts"}, err: err})
	}
	for _, c := range p.changed {
		i := c.i
		acts, err := i.in.Reconfigure(now, c.cfg)
		if err != nil {
			n.work.push(job{i: i, m: i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelError, Msg: "vrrp reload: instance keeps its old configuration"}, err: err})
			continue
		}
		i.m, i.cfg, i.expect = c.m, c.cfg, c.cfg.Expect()
		n.do(acts)
		if c.addrs != nil && i.in.VIPsSet() {
			n.work.push(job{i: i, m: i.m, addrs: c.addrs})
		}
	}
	for i, t := range p.tracked {
		i.tracked = t
	}
	for _, g := range n.grps {
		if !p.keep[g] {
			if err := n.groupUp(g); err != nil {
				n.work.push(job{a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelError, Msg: "vrrp reload: sync group not formed"}, err: err})
			}
		}
	}
	n.retrack()
	if !n.startAt.IsZero() {
		return // vrrp_startup_delay: they start with the others
	}
	for _, i := range p.added {
		n.do(i.in.Handle(now, vrrp.Start()))
	}
}

// abandon closes what the plan opened, when it is not applied.
func (p *plan) abandon() {
	for _, i := range p.added {
		if i.conn != nil {
			i.conn.Close()
		}
		if i.timers != nil {
			i.timers.StopAll()
		}
		if i.vmac != "" {
			i.n.opt.Announcer.DeleteVMAC(i.vmac)
		}
	}
}

// changeAddrs does, on the worker, a reload's change to the VIPs and
// routes of an instance that holds them: the ones taken away go, the new
// ones come and are announced.
func (i *inst) changeAddrs(m *model.Instance, a *addrChange) {
	ann, log := i.n.opt.Announcer, i.n.log
	if len(a.removeRules) > 0 {
		if err := ann.RemoveRules(a.removeRules); err != nil {
			log.Error("virtual rules not all removed", "instance", m.Name, "err", err)
		}
	}
	if len(a.removeRoutes) > 0 {
		if err := ann.RemoveRoutes(i.dev, a.removeRoutes); err != nil {
			log.Error("virtual routes not all removed", "instance", m.Name, "err", err)
		}
	}
	if len(a.removeVIPs) > 0 {
		if err := ann.RemoveVIPs(i.dev, a.removeVIPs); err != nil {
			log.Error("vips not all removed", "instance", m.Name, "err", err)
		}
	}
	if len(a.addVIPs) > 0 {
		if err := ann.AddVIPs(i.dev, a.addVIPs); err != nil {
			log.Error("vips not all added", "instance", m.Name, "err", err)
		}
	}
	if len(a.addRoutes) > 0 {
		if err := ann.AddRoutes(i.dev, a.addRoutes); err != nil {
			log.Error("virtual routes not all added", "instance", m.Name, "err", err)
		}
	}
	if len(a.addRules) > 0 {
		if err := ann.AddRules(a.addRules); err != nil {
			log.Error("virtual rules not all added", "instance", m.Name, "err", err)
		}
	}
	log.Info("vrrp reload changed the vips of a master", "instance", m.Name, "vrid", m.VRID,
		"vips_removed", len(a.removeVIPs), "vips_added", len(a.addVIPs), "routes_removed", len(a.removeRoutes), "routes_added", len(a.addRoutes),
		"rules_removed", len(a.removeRules), "rules_added", len(a.addRules))
	if len(a.addVIPs) > 0 {
		i.garp(a.addVIPs, max(a.garpRepeat, 1), a.garpInterval)
	}
}

// removed notifies, on the worker, an instance a reload took away, as
// keepalived does: DELETED with notify_deleted, else FAULT (what it sent
// before notify_deleted existed), and nothing for an instance that was in
// FAULT already unless notify_deleted asks.
func (n *Node) removed(m *model.Instance, from vrrp.State, prio uint8) {
	n.log.Info("vrrp instance removed by reload", "instance", m.Name, "vrid", m.VRID, "state", from.String())
	switch {
	case m.Notify.DeletedState:
		n.notifyState(m, "DELETED", prio)
	case from != vrrp.StateFault:
		n.notifyState(m, "FAULT", prio)
	}
	if n.opt.OnTransition != nil {
		n.opt.OnTransition(m.Name, from, vrrp.StateStop)
	}
}

func names(cs []change) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.m.Name)
	}
	return s
}

func instNames(is []*inst) []string {
	var s []string
	for _, i := range is {
		s = append(s, i.name)
	}
	return s
}
