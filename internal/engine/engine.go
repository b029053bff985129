// Package engine owns keepvs's runtime state: it turns the configuration
// and health-check results into data plane operations, and it is the one
// path through which anything (the configuration and its reloads, the
// control API, checks, later VRRP) changes the virtual service table.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/check/build"
	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// Notification is something a notify script or FIFO reports: a real server
// up or down, a virtual server's quorum gained or lost.
type Notification struct {
	Kind string // "rs_up", "rs_down", "quorum_up", "quorum_down"
	VS   string
	RS   string
	// RSFIFO is the real server as keepalived's LVS FIFO writes it:
	// [1.2.3.4]:tcp:80.
	RSFIFO  string
	Script  *model.Script
	Reason  string
	Weight  int
	Quorum  int
	Time    time.Time
	Virtual *model.VirtualServer
	Real    *model.RealServer // rs_up and rs_down
}

// Options configure an Engine.
type Options struct {
	Clock clock.Clock
	// Checks runs health checks; without it real servers are taken as up.
	Checks bool
	// Runner runs the checks; nil builds one on Clock (tests pass one
	// built on a fake clock with probes run in line).
	Runner *check.Runner
	// Notify receives notifications in order; nil drops them.
	Notify func(Notification)
	// Build chooses how checkers probe (--tcp-check).
	Build build.Options
}

// Engine serializes every change to the data plane. It is itself a
// dataplane.Dataplane, which is what the control API serves.
type Engine struct {
	dp     dataplane.Dataplane
	log    *slog.Logger
	opt    Options
	runner *check.Runner

	mu      sync.Mutex
	cfg     *model.Config
	pending *model.Config // the configuration being loaded
	vss     []*vsState
	byCheck map[string]*rsState
	owner   map[string]*vsState // checkID → its virtual server
	// local: the addresses on this host, for ha_suspend (SetLocal);
	// nil until told, and then every address counts as local.
	local map[netip.Addr]bool
}

var _ dataplane.Dataplane = (*Engine)(nil)

// New wraps a data plane. With opt.Checks, Run must run for checks to
// happen.
func New(dp dataplane.Dataplane, log *slog.Logger, opt Options) *Engine {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	e := &Engine{dp: dp, log: log, opt: opt, byCheck: map[string]*rsState{}, owner: map[string]*vsState{}}
	if opt.Checks {
		e.runner = opt.Runner
		if e.runner == nil {
			e.runner = check.NewRunner(check.Config{Clock: opt.Clock, Grace: check.DefaultGrace, Slack: check.DefaultSlack, Grid: check.DefaultGrid, Logger: log})
		}
		e.runner.SetOnEvent(e.onEvent)
	}
	return e
}

// Run runs the health checks until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if e.runner == nil {
		<-ctx.Done()
		return nil
	}
	return e.runner.Run(ctx)
}

// Load installs a configuration on an empty data plane. It stops at the
// first operation the data plane refuses and says which virtual_server
// (file:line) it came from.
func (e *Engine) Load(ctx context.Context, cfg *model.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = cfg
	defer func() { e.pending = nil }()
	states, err := e.states(cfg)
	if err != nil {
		return err
	}
	if b, ok := e.dp.(bulkAdder); ok {
		if err := e.loadBulk(ctx, b, states); err != nil {
			return err
		}
		e.cfg = cfg
		return nil
	}
	for _, v := range states {
		if err := e.addVS(ctx, v, slog.LevelDebug); err != nil {
			return err
		}
		e.vss = append(e.vss, v)
	}
	e.loaded(states)
	e.cfg = cfg
	return nil
}

// loaded logs a load's sum: one line per virtual server (at Debug) is
// thousands at the start of a large configuration.
func (e *Engine) loaded(states []*vsState) {
	nsvc, nrs := 0, 0
	for _, v := range states {
		nsvc += len(v.services)
		nrs += len(v.rss)
	}
	e.log.Info("virtual services up", "virtual_servers", len(states), "services", nsvc, "real_servers", nrs)
}

// states builds the run-time state of a configuration, without touching
// anything.
func (e *Engine) states(cfg *model.Config) ([]*vsState, error) {
	desired, err := desired(cfg, false)
	if err != nil {
		return nil, err
	}
	var out []*vsState
	var v *vsState
	for _, ds := range desired {
		// A virtual_server's services (a group's several) are in a row.
		if v == nil || v.vs != ds.From {
			v = newVSState(ds.From, e.runner != nil)
			out = append(out, v)
		}
		v.services = append(v.services, ds.Service)
	}
	return out, nil
}

// newVSState is a virtual server's state before anything is installed:
// every real server up at its configured weight.
func newVSState(vs *model.VirtualServer, checks bool) *vsState {
	v := &vsState{id: vsID(vs), vs: vs, quorumUp: true, installed: make(map[netip.AddrPort]lvs.Destination, len(vs.RealServers))}
	if len(vs.RealServers) == 0 {
		return v
	}
	rss := make([]rsState, len(vs.RealServers)) // one allocation for all
	v.rss = make([]*rsState, len(vs.RealServers))
	for i, rs := range vs.RealServers {
		r := &rss[i]
		*r = rsState{rs: rs, up: true, weight: rs.Weight, checkSpec: checkSpec(rs)}
		if checks && len(rs.Checks) > 0 {
			r.checkID = build.ID(vs, rs)
		}
		v.rss[i] = r
	}
	return v
}

// addVS installs a new virtual server: its services, its checks, then its
// destinations; it logs the virtual server up at level.
func (e *Engine) addVS(ctx context.Context, v *vsState, level slog.Level) error {
	for _, s := range v.services {
		if err := e.dp.AddService(ctx, s); err != nil {
			return fmt.Errorf("%s: virtual_server %s: %w", v.vs.Pos, s.ServiceKey, err)
		}
	}
	for _, r := range v.rss {
		if err := e.startChecks(v, r); err != nil {
			return err
		}
	}
	v.updateQuorum()
	if err := e.reconcile(ctx, v); err != nil {
		return err
	}
	e.log.Log(ctx, level, "virtual service up", "vs", v.id, "sched", v.vs.Scheduler, "rs", len(v.rss), "services", len(v.services))
	return nil
}

// bulkAdder is a data plane that installs many services and destinations
// in few requests (the kernel's: many netlink messages per sendmsg, where
// one each costs a round trip; ipvs.Dataplane and ipvs.Owner have it).
// For want[i], errs[i][0] is its service's error and errs[i][1+j] that of
// want[i].Dests[j]; a refused service has its destinations left out.
type bulkAdder interface {
	AddBulk(ctx context.Context, want []lvs.ServiceStatus) (errs [][]error)
}

// loadBulk is Load's loop of addVS in one AddBulk: every virtual server's
// checks started and destinations worked out first, then all of it sent
// at once. The errors name their virtual_server and real_server as
// addVS's do; Load still stops at the first virtual server that has one,
// the ones after it left out of the engine's state with their checks
// stopped (the data plane's owner removes what they installed).
func (e *Engine) loadBulk(ctx context.Context, b bulkAdder, states []*vsState) error {
	nsvc := 0
	for _, v := range states {
		nsvc += len(v.services)
	}
	want := make([]lvs.ServiceStatus, 0, nsvc)
	for _, v := range states {
		for _, r := range v.rss {
			if err := e.startChecks(v, r); err != nil {
				e.stopAll(states)
				return err
			}
		}
		v.updateQuorum()
		ds := v.desiredSorted()
		for _, s := range v.services {
			st := lvs.ServiceStatus{Service: s, Dests: make([]lvs.DestStatus, len(ds))}
			for j, d := range ds {
				st.Dests[j] = lvs.DestStatus{Destination: d}
			}
			want = append(want, st)
		}
	}
	errs := b.AddBulk(ctx, want)
	i := 0
	for n, v := range states {
		var verrs []error
		for _, s := range v.services {
			w, es := want[i], errs[i]
			i++
			if es[0] != nil {
				verrs = append(verrs, fmt.Errorf("%s: virtual_server %s: %w", v.vs.Pos, s.ServiceKey, es[0]))
				continue
			}
			for j, x := range w.Dests {
				if es[1+j] != nil {
					verrs = append(verrs, fmt.Errorf("%s: real_server %s: %w", v.vs.Pos, x.AddrPort(), es[1+j]))
				}
				v.installed[x.AddrPort()] = x.Destination
			}
		}
		if len(verrs) > 0 {
			e.stopAll(states[n:])
			return errors.Join(verrs...)
		}
		e.log.Debug("virtual service up", "vs", v.id, "sched", v.vs.Scheduler, "rs", len(v.rss), "services", len(v.services))
		e.vss = append(e.vss, v)
	}
	e.loaded(states)
	return nil
}

// stopAll stops the checks of virtual servers the engine does not keep.
func (e *Engine) stopAll(states []*vsState) {
	for _, v := range states {
		for _, r := range v.rss {
			e.stopChecks(r)
		}
	}
}

func (e *Engine) startChecks(v *vsState, r *rsState) error {
	if r.checkID == "" {
		return nil
	}
	spec, err := e.opt.Build.RealServer(v.vs, r.rs, e.cfg0().TrackFiles)
	if err != nil {
		return fmt.Errorf("%s: real_server %s: %w", r.rs.Pos, r.rs.Name(), err)
	}
	st, err := e.runner.Add(spec)
	if err != nil {
		return fmt.Errorf("%s: real_server %s: %w", r.rs.Pos, r.rs.Name(), err)
	}
	r.up, r.weight, r.since = st.Up, st.Weight, e.opt.Clock.Now()
	if !st.Up {
		r.reason = "alpha: down until its first successful check"
	}
	e.byCheck[r.checkID] = r
	e.owner[r.checkID] = v
	if e.suspended(v) {
		e.runner.Suspend(r.checkID, true)
	}
	return nil
}

// SetLocal tells the engine which addresses this host has (all of them,
// replacing what it knew): a virtual server with ha_suspend has the checks
// of its real servers suspended while its address is not among them, as
// keepalived suspends its checkers. Until the first call every address
// counts as local.
func (e *Engine) SetLocal(addrs map[netip.Addr]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.local = addrs
	e.applySuspend(false)
}

// suspended reports whether v's checks are suspended by ha_suspend.
func (e *Engine) suspended(v *vsState) bool {
	return v.vs.HASuspend && v.vs.Addr.IsValid() && e.local != nil && !e.local[v.vs.Addr]
}

// applySuspend suspends or resumes the checks of the virtual servers
// with ha_suspend as the local addresses say; all resumes the others too
// (a reload may have taken ha_suspend away).
func (e *Engine) applySuspend(all bool) {
	if e.runner == nil {
		return
	}
	for _, v := range e.vss {
		if !all && !v.vs.HASuspend {
			continue
		}
		s := e.suspended(v)
		for _, r := range v.rss {
			if r.checkID != "" {
				e.runner.Suspend(r.checkID, s)
			}
		}
	}
}

func (e *Engine) stopChecks(r *rsState) {
	if r.checkID == "" {
		return
	}
	e.runner.Remove(r.checkID)
	delete(e.byCheck, r.checkID)
	delete(e.owner, r.checkID)
}

// pending holds the configuration being loaded, for startChecks to find its
// track files; cfg0 returns it or the running one.
func (e *Engine) cfg0() *model.Config {
	if e.pending != nil {
		return e.pending
	}
	if e.cfg != nil {
		return e.cfg
	}
	return &model.Config{}
}

// reconcile makes the data plane hold what the virtual server's state
// asks for: the minimal adds, edits and deletes.
func (e *Engine) reconcile(ctx context.Context, v *vsState) error {
	want := v.desired()
	var errs []error
	for _, ap := range sortedAddrPorts(v.installed) {
		if _, keep := want[ap]; keep {
			continue
		}
		for _, s := range v.services {
			if err := e.dp.DelDest(ctx, s.ServiceKey, ap); err != nil && !errors.Is(err, lvs.ErrNoDest) {
				errs = append(errs, fmt.Errorf("%s: delete %s: %w", s.ServiceKey, ap, err))
			}
		}
		delete(v.installed, ap)
	}
	for _, ap := range sortedAddrPorts(want) {
		d := want[ap]
		have, ok := v.installed[ap]
		if ok && have == d {
			continue
		}
		for _, s := range v.services {
			var err error
			if ok {
				err = e.dp.EditDest(ctx, s.ServiceKey, d)
			} else {
				err = e.dp.AddDest(ctx, s.ServiceKey, d)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: real_server %s: %w", v.vs.Pos, ap, err))
			}
		}
		v.installed[ap] = d
	}
	return errors.Join(errs...)
}

func sortedAddrPorts[V any](m map[netip.AddrPort]V) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(m))
	for ap := range m {
		out = append(out, ap)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

// onEvent applies a health-check result.
func (e *Engine) onEvent(ev check.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.byCheck[ev.RealServer]
	if !ok {
		return // removed by a reload while the probe ran
	}
	v := e.owner[ev.RealServer]
	r.weight = ev.Weight
	if ev.UpChanged {
		r.up, r.since, r.reason = ev.Up, ev.At, ev.Reason
		kind, script, lvl := "rs_up", r.rs.NotifyUp, slog.LevelInfo
		if !ev.Up {
			kind, script, lvl = "rs_down", r.rs.NotifyDown, slog.LevelWarn
		}
		e.log.Log(context.Background(), lvl, "real server "+map[bool]string{true: "up", false: "down"}[ev.Up],
			"vs", v.id, "rs", r.rs.Name(), "check", ev.Check, "reason", ev.Reason)
		e.notify(Notification{Kind: kind, VS: v.id, RS: r.rs.Name(), RSFIFO: rsFIFOName(v.vs, r.rs), Script: script, Reason: ev.Reason, Weight: r.weight, Time: ev.At, Virtual: v.vs, Real: r.rs})
	} else if ev.WeightChanged {
		e.log.Info("real server weight", "vs", v.id, "rs", r.rs.Name(), "weight", ev.Weight)
	}
	e.quorum(v, ev.At)
	if err := e.reconcile(context.Background(), v); err != nil {
		e.log.Error("applying a check result", "vs", v.id, "err", err)
	}
}

// quorum re-evaluates a virtual server's quorum and reports a change.
func (e *Engine) quorum(v *vsState, at time.Time) {
	if !v.updateQuorum() {
		return
	}
	kind, script := "quorum_up", v.vs.QuorumUp
	if !v.quorumUp {
		kind, script = "quorum_down", v.vs.QuorumDown
	}
	e.log.Warn("virtual server "+kind, "vs", v.id, "alive_weight", v.aliveWeight(), "quorum", v.vs.Quorum, "hysteresis", v.vs.Hysteresis,
		"sorry_server", v.vs.SorryServer != nil)
	e.notify(Notification{Kind: kind, VS: v.id, Script: script, Quorum: v.vs.Quorum, Time: at, Virtual: v.vs})
}

func (e *Engine) notify(n Notification) {
	if e.opt.Notify != nil {
		e.opt.Notify(n)
	}
}

// RSStatus is a real server as `keepvs status` shows it.
type RSStatus struct {
	VS       string    `json:"vs"`
	RS       string    `json:"rs"`
	Up       bool      `json:"up"`
	Weight   int       `json:"weight"`
	Checked  bool      `json:"checked"`
	Since    time.Time `json:"since,omitzero"`
	Reason   string    `json:"reason,omitempty"`
	QuorumUp bool      `json:"quorum_up"`
	Sorry    bool      `json:"sorry_server,omitempty"`
}

// CheckStats counts the probes the checks started so far and how late
// they started; false when the engine runs no checks.
func (e *Engine) CheckStats() (check.Stats, bool) {
	if e.runner == nil {
		return check.Stats{}, false
	}
	return e.runner.Stats(), true
}

// Status lists every real server's check state.
func (e *Engine) Status() []RSStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []RSStatus
	for _, v := range e.vss {
		for _, r := range v.rss {
			out = append(out, RSStatus{VS: v.id, RS: r.rs.Name(), Up: r.up, Weight: r.weight, Checked: r.checkID != "",
				Since: r.since, Reason: r.reason, QuorumUp: v.quorumUp})
		}
		if s := v.vs.SorryServer; s != nil {
			out = append(out, RSStatus{VS: v.id, RS: s.Name(), Up: !v.quorumUp, Weight: s.Weight, QuorumUp: v.quorumUp, Sorry: true})
		}
	}
	return out
}

func rsFIFOName(vs *model.VirtualServer, rs *model.RealServer) string {
	return "[" + rs.Addr.String() + "]:" + strings.ToLower(vs.Protocol.String()) + ":" + strconv.Itoa(int(rs.Port))
}

// Shutdown is called when the daemon stops: with omega, a virtual server
// reports its live real servers down and its quorum lost, so their
// notify_down and quorum_down scripts run, as keepalived does.
func (e *Engine) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opt.Clock.Now()
	for _, v := range e.vss {
		if !v.vs.Omega {
			continue
		}
		for _, r := range v.rss {
			if r.up {
				e.notify(Notification{Kind: "rs_down", VS: v.id, RS: r.rs.Name(), RSFIFO: rsFIFOName(v.vs, r.rs), Script: r.rs.NotifyDown,
					Reason: "shutdown (omega)", Weight: r.weight, Time: now, Virtual: v.vs, Real: r.rs})
			}
		}
		if v.quorumUp {
			e.notify(Notification{Kind: "quorum_down", VS: v.id, Script: v.vs.QuorumDown, Quorum: v.vs.Quorum, Time: now, Virtual: v.vs})
		}
	}
}
