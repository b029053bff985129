package vrrp

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// Instance is one virtual router's state machine. It is not safe for
// concurrent use: one goroutine (the engine's) owns it and calls Handle.
type Instance struct {
	cfg   Config
	state State

	base  uint8 // the base priority; an owner conflict lowers it to 254
	eff   uint8 // effective priority
	delta int   // trackers' total

	faulted bool // the instance's own fault, apart from its sync group's
	vipsSet bool

	// masterAdverInt is RFC 5798's Master_Adver_Interval: the master's
	// interval learnt from its adverts in a VRRPv3 backup, the instance's
	// own otherwise.
	masterAdverInt time.Duration
	masterAddr     netip.Addr
	masterPrio     uint8
	// preemptAt is when preempt_delay lets a takeover happen; zero when no
	// delay is running.
	preemptAt time.Time
	// wantMaster is keepalived's wantstate MASTER: the instance would be
	// master but for its sync group.
	wantMaster bool
	// nextReason is why the master down timer will make this backup
	// master (keepalived's next_master_reason).
	nextReason Reason
	verdict    Reason

	deadline [NumTimers]time.Time // zero: not armed

	group *SyncGroup
	own   []Action
	out   *[]Action // &own, or the sync group's buffer
}

// NewInstance checks cfg and returns an instance in StateInit.
func NewInstance(cfg Config) (*Instance, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.DownTimerAdverts == 0 {
		cfg.DownTimerAdverts = 3
	}
	in := &Instance{cfg: cfg, base: cfg.Priority, masterAdverInt: cfg.AdvertInterval}
	in.eff = EffectivePriority(in.base, 0)
	in.own = make([]Action, 0, 16)
	in.out = &in.own
	return in, nil
}

// Name is the instance's name.
func (in *Instance) Name() string { return in.cfg.Name }

// Config is the instance's configuration.
func (in *Instance) Config() Config { return in.cfg }

// State is the current state.
func (in *Instance) State() State { return in.state }

// Priority is the effective priority.
func (in *Instance) Priority() uint8 { return in.eff }

// MasterAdverInterval is Master_Adver_Interval.
func (in *Instance) MasterAdverInterval() time.Duration { return in.masterAdverInt }

// MasterDownInterval is the master down interval at the current priority
// and Master_Adver_Interval.
func (in *Instance) MasterDownInterval() time.Duration {
	return MasterDownInterval(in.cfg.Version, in.eff, in.masterAdverInt, in.cfg.DownTimerAdverts)
}

// Master is the address and priority of the last advert a backup took as
// its master's (zero before any).
func (in *Instance) Master() (netip.Addr, uint8) { return in.masterAddr, in.masterPrio }

// Verdict is what the last advert did (ReasonAccepted,
// ReasonLowerPriority, ...).
func (in *Instance) Verdict() Reason { return in.verdict }

// Faulted reports the instance's own fault, which its sync group may
// extend to the other members.
func (in *Instance) Faulted() bool { return in.faulted }

// VIPsSet reports whether the VIPs are added.
func (in *Instance) VIPsSet() bool { return in.vipsSet }

// Deadline is when timer k falls due, and whether it is armed.
func (in *Instance) Deadline(k TimerKind) (time.Time, bool) {
	d := in.deadline[k]
	return d, !d.IsZero()
}

// SkipAddrCheck is packet.Expect.SkipAddrCheck for an advert from src:
// keepalived's skip_check_adv_addr skips the address checks only in
// BACKUP, for adverts from the master it already follows.
func (in *Instance) SkipAddrCheck(src netip.Addr) bool {
	return in.cfg.SkipCheckAdvAddr && in.state == StateBackup &&
		in.masterAddr.IsValid() && src.Unmap().WithZone("") == in.masterAddr
}

// Advert is the advert an ActSend with priority prio asks for. Its Addrs
// are the configuration's VIPs, shared: do not modify them.
func (in *Instance) Advert(prio uint8) packet.Advert {
	a := packet.Advert{
		Version:  in.cfg.Version,
		Type:     packet.TypeAdvertisement,
		VRID:     in.cfg.VRID,
		Priority: prio,
		Addrs:    in.cfg.VIPs,
	}
	a.CountIPAddrs = uint8(len(a.Addrs))
	a.AdvertInt, _ = packet.AdvertIntFor(in.cfg.Version, in.cfg.AdvertInterval) // checked by NewInstance
	if in.cfg.Version == 2 {
		a.AuthType, a.AuthData = in.cfg.AuthType, in.cfg.AuthData
	}
	return a
}

// Handle runs one event at time now and returns the actions it calls for,
// in the order they must be done. The slice is reused by the next call
// (on any member, for a sync group). A member of a sync group returns the
// actions of every member the event moved, each naming its instance.
func (in *Instance) Handle(now time.Time, ev Event) []Action {
	if in.group != nil {
		return in.group.handle(now, in, ev)
	}
	in.own = in.own[:0]
	in.step(now, ev)
	return in.own
}

func (in *Instance) step(now time.Time, ev Event) {
	switch ev.Kind {
	case EventStart:
		in.start(now)
	case EventAdvert:
		in.advert(now, &ev.Advert, ev.Src.Unmap().WithZone(""))
	case EventTimer:
		in.timer(now, ev.Timer)
	case EventPriority:
		in.setDelta(now, ev.TrackDelta)
	case EventFault:
		in.setFault(now, ev.Fault)
	case EventStop:
		in.stop()
	}
}

func (in *Instance) emit(a Action) {
	a.Instance = in.cfg.Name
	*in.out = append(*in.out, a)
}

func (in *Instance) log(level slog.Level, msg string, r Reason, peer netip.Addr, prio uint8) {
	in.emit(Action{Kind: ActLog, Level: level, Msg: msg, Reason: r, Peer: peer, PeerPriority: prio})
}

func (in *Instance) setTimer(now time.Time, k TimerKind, d time.Duration) {
	if d < 0 {
		d = 0
	}
	in.deadline[k] = now.Add(d)
	in.emit(Action{Kind: ActSetTimer, Timer: k, After: d})
}

func (in *Instance) stopTimer(k TimerKind) {
	if in.deadline[k].IsZero() {
		return
	}
	in.deadline[k] = time.Time{}
	in.emit(Action{Kind: ActStopTimer, Timer: k})
}

func (in *Instance) stopTimers() {
	for k := range NumTimers {
		in.stopTimer(k)
	}
}

func (in *Instance) transition(to State, r Reason) {
	from := in.state
	in.state = to
	in.emit(Action{Kind: ActTransition, From: from, To: to, Reason: r})
}

func (in *Instance) send(prio uint8) {
	in.emit(Action{Kind: ActSend, Priority: prio, Dst: in.cfg.Dst})
}

func (in *Instance) garp(repeat int) {
	if repeat > 0 && in.vipsSet {
		in.emit(Action{Kind: ActGARP, Repeat: repeat, Interval: in.cfg.GARP.Interval})
	}
}

func (in *Instance) isOwner() bool { return in.base == PriorityOwner }

func (in *Instance) skew() time.Duration {
	return Skew(in.cfg.Version, in.eff, in.masterAdverInt)
}

func (in *Instance) downInterval() time.Duration {
	return MasterDownInterval(in.cfg.Version, in.eff, in.masterAdverInt, in.cfg.DownTimerAdverts)
}

// start is RFC 5798 6.4.1 as keepalived's vrrp_init_state does it.
func (in *Instance) start(now time.Time) {
	if in.state != StateInit && in.state != StateStop {
		return
	}
	in.masterAdverInt = in.cfg.AdvertInterval
	in.masterAddr, in.masterPrio = netip.Addr{}, 0
	in.preemptAt = time.Time{}
	in.nextReason = ReasonMasterDown
	in.wantMaster = in.cfg.InitialMaster || in.isOwner()
	if in.faulted || (in.group != nil && in.group.otherFaulted(in)) {
		in.wantMaster = false
		in.transition(StateFault, ReasonFault)
		return
	}
	if in.isOwner() && in.canGotoMaster() {
		in.becomeMaster(now, ReasonOwner)
		return
	}
	in.transition(StateBackup, ReasonStart)
	down := in.downInterval()
	if in.cfg.InitialMaster && in.group != nil {
		// keepalived: a member that wants MASTER in a group that is not
		// yet master waits one interval and the least skew.
		down = in.masterAdverInt + Skew(in.cfg.Version, PriorityOwner, in.masterAdverInt)
	}
	in.setTimer(now, TimerMasterDown, down)
}

func (in *Instance) canGotoMaster() bool {
	return in.group == nil || in.group.canGotoMaster(in)
}

// gotoMaster is a backup's takeover, unless its sync group holds it back.
func (in *Instance) gotoMaster(now time.Time, r Reason) {
	if !in.canGotoMaster() {
		// keepalived's vrrp_sync_can_goto_master: stay BACKUP wanting
		// MASTER, and try again after a master down interval.
		in.wantMaster = true
		in.log(slog.LevelInfo, "sync group holds instance in BACKUP", r, netip.Addr{}, 0)
		in.setTimer(now, TimerMasterDown, in.downInterval())
		return
	}
	in.becomeMaster(now, r)
}

// becomeMaster is keepalived's vrrp_state_goto_master and
// vrrp_state_become_master: VIPs, gratuitous ARPs, notify, advert.
func (in *Instance) becomeMaster(now time.Time, r Reason) {
	in.stopTimer(TimerMasterDown)
	in.stopTimer(TimerPreempt)
	in.preemptAt = time.Time{}
	in.wantMaster = true
	in.masterAdverInt = in.cfg.AdvertInterval
	in.masterAddr, in.masterPrio = in.cfg.Src, in.eff
	if !in.vipsSet {
		in.vipsSet = true
		in.emit(Action{Kind: ActAddVIPs})
	}
	g := &in.cfg.GARP
	in.garp(g.MasterRepeat)
	if g.MasterRefresh > 0 {
		in.setTimer(now, TimerGARPRefresh, g.MasterRefresh)
	}
	in.transition(StateMaster, r)
	if g.MasterDelay > 0 && g.MasterRepeat > 0 {
		in.setTimer(now, TimerGARPDelay, g.MasterDelay)
	}
	in.send(in.eff)
	in.setTimer(now, TimerAdvert, in.cfg.AdvertInterval)
}

// leaveMaster is keepalived's vrrp_state_leave_master.
func (in *Instance) leaveMaster(now time.Time, to State, r Reason, sayGoodbye bool) {
	for _, k := range [...]TimerKind{TimerAdvert, TimerGARPDelay, TimerGARPRefresh, TimerGARPLowerPrio} {
		in.stopTimer(k)
	}
	if sayGoodbye {
		in.send(0)
	}
	in.removeVIPs()
	in.wantMaster = false
	in.transition(to, r)
	if to == StateBackup {
		in.preemptAt = time.Time{}
		in.nextReason = ReasonMasterDown
		in.setTimer(now, TimerMasterDown, in.downInterval())
	}
}

func (in *Instance) removeVIPs() {
	if in.vipsSet {
		in.vipsSet = false
		in.emit(Action{Kind: ActRemoveVIPs})
	}
}

// enterBackup moves a FAULT (or INIT) instance to BACKUP.
func (in *Instance) enterBackup(now time.Time, r Reason) {
	in.masterAdverInt = in.cfg.AdvertInterval
	in.preemptAt = time.Time{}
	in.wantMaster = false
	in.nextReason = ReasonMasterDown
	in.transition(StateBackup, r)
	in.setTimer(now, TimerMasterDown, in.downInterval())
}

// enterFault moves a BACKUP or INIT instance to FAULT; a master goes
// through leaveMaster.
func (in *Instance) enterFault(r Reason) {
	in.stopTimers()
	in.preemptAt = time.Time{}
	in.wantMaster = false
	in.transition(StateFault, r)
}

func (in *Instance) timer(now time.Time, k TimerKind) {
	if k >= NumTimers {
		return
	}
	d := in.deadline[k]
	if d.IsZero() || now.Before(d) {
		return // stopped or re-armed since: a stale fire
	}
	in.deadline[k] = time.Time{}
	switch in.state {
	case StateBackup:
		switch k {
		case TimerMasterDown:
			in.gotoMaster(now, in.nextReason)
		case TimerPreempt:
			// The delay is over and the master we hear is still lower:
			// take over now. keepalived instead starts discarding the
			// lower adverts and lets the master down timer run out,
			// up to one master down interval later.
			if in.cfg.Preempt && in.masterPrio != 0 && in.masterPrio < in.eff {
				in.gotoMaster(now, ReasonPreempt)
			}
		}
	case StateMaster:
		g := &in.cfg.GARP
		switch k {
		case TimerAdvert:
			in.send(in.eff)
			in.setTimer(now, TimerAdvert, in.cfg.AdvertInterval)
		case TimerGARPDelay:
			in.garp(g.MasterRepeat)
		case TimerGARPRefresh:
			in.garp(g.MasterRefreshRepeat)
			in.setTimer(now, TimerGARPRefresh, g.MasterRefresh)
		case TimerGARPLowerPrio:
			in.garp(g.LowerPrioRepeat)
		}
	}
}

func (in *Instance) advert(now time.Time, a *packet.Advert, src netip.Addr) {
	switch in.state {
	case StateBackup:
		in.verdict = in.backupRx(now, a, src)
	case StateMaster:
		in.verdict = in.masterRx(now, a, src)
	default:
		in.verdict = ReasonNotRunning
	}
}

// backupRx is RFC 5798 6.4.2 as keepalived's vrrp_state_backup does it.
func (in *Instance) backupRx(now time.Time, a *packet.Advert, src netip.Addr) Reason {
	p := a.Priority
	if p == 0 {
		// The master is leaving: take over after Skew_Time.
		in.nextReason = ReasonPriorityZero
		in.log(slog.LevelInfo, "backup received priority 0 advert", ReasonPriorityZero, src, p)
		in.setTimer(now, TimerMasterDown, in.skew())
		return ReasonPriorityZero
	}
	delaying := in.cfg.PreemptDelay > 0 && (in.preemptAt.IsZero() || in.preemptAt.After(now))
	if !in.cfg.Preempt || p >= in.eff || delaying {
		if in.cfg.Version == 3 && a.AdvertInt != 0 {
			// RFC 5798 6.4.2: Master_Adver_Interval is the master's.
			in.masterAdverInt = a.AdvertInterval()
		}
		in.masterAddr, in.masterPrio = src, p
		in.nextReason = ReasonMasterDown
		in.wantMaster = false
		in.setTimer(now, TimerMasterDown, in.downInterval())
		if in.cfg.PreemptDelay > 0 {
			if p >= in.eff {
				in.preemptAt = time.Time{}
				in.stopTimer(TimerPreempt)
			} else if in.preemptAt.IsZero() {
				in.preemptAt = now.Add(in.cfg.PreemptDelay)
				in.log(slog.LevelInfo, "start preempt delay", ReasonLowerPriority, src, p)
				in.setTimer(now, TimerPreempt, in.cfg.PreemptDelay)
			}
		}
		return ReasonAccepted
	}
	// Preempting a lower priority: let the master down timer run out.
	in.masterAddr, in.masterPrio = src, p
	in.nextReason = ReasonPreempt
	in.log(slog.LevelDebug, "received lower priority advert, discarding", ReasonLowerPriority, src, p)
	return ReasonLowerPriority
}

// masterRx is RFC 5798 6.4.3 as keepalived's vrrp_state_master_rx does
// it.
func (in *Instance) masterRx(now time.Time, a *packet.Advert, src netip.Addr) Reason {
	p := a.Priority
	cmp := src.Compare(in.cfg.Src) // > 0: the sender's address is higher
	higher := p > in.eff || (p == in.eff && cmp > 0)
	if p == 0 || (in.cfg.HigherPrioSendAdvert && higher) {
		in.send(in.eff)
		in.setTimer(now, TimerAdvert, in.cfg.AdvertInterval)
		if p == 0 {
			return ReasonPriorityZero
		}
	}
	if p == in.eff {
		switch {
		case cmp == 0:
			in.log(slog.LevelWarn, "equal priority advert from our own address", ReasonOwnAddress, src, p)
			return ReasonOwnAddress
		case in.eff == PriorityOwner:
			// Two address owners: keepalived reports the configuration
			// error and steps down to 254 so one of them wins.
			in.log(slog.LevelError, "another address owner (priority 255) on the link; lowering priority to 254", ReasonOwnAddress, src, p)
			in.base = PriorityOwner - 1
			in.setEff(EffectivePriority(in.base, in.delta))
		}
		higher = p > in.eff || (p == in.eff && cmp > 0)
	}
	if !higher {
		if !in.cfg.LowerPrioNoAdvert {
			in.send(in.eff)
			in.setTimer(now, TimerAdvert, in.cfg.AdvertInterval)
		}
		if g := &in.cfg.GARP; g.LowerPrioRepeat > 0 {
			in.garp(g.LowerPrioRepeat)
			if g.LowerPrioDelay > 0 {
				in.setTimer(now, TimerGARPLowerPrio, g.LowerPrioDelay)
			}
		}
		in.log(slog.LevelInfo, "master received lower priority advert", ReasonLowerPriority, src, p)
		in.emit(Action{Kind: ActMasterRxLowerPri, Peer: src, PeerPriority: p})
		return ReasonLowerPriority
	}
	r := ReasonHigherPriority
	if p == in.eff {
		r = ReasonEqualPriorityHigherAddr
	}
	if in.cfg.Version == 3 && a.AdvertInt != 0 {
		// RFC 5798 6.4.3. keepalived sets it and then resets it to its
		// own interval as it leaves MASTER (a TODO in its code); we keep
		// the master's, as the RFC says.
		in.masterAdverInt = a.AdvertInterval()
	}
	in.masterAddr, in.masterPrio = src, p
	in.log(slog.LevelInfo, "master received higher priority advert", r, src, p)
	in.leaveMaster(now, StateBackup, r, false)
	return r
}

func (in *Instance) setEff(p uint8) {
	if p == in.eff {
		return
	}
	old := in.eff
	in.eff = p
	in.emit(Action{Kind: ActPriority, Priority: p, PeerPriority: old})
}

// setDelta is keepalived's vrrp_set_effective_priority.
func (in *Instance) setDelta(now time.Time, delta int) {
	in.delta = delta
	old := in.eff
	oldDown := in.downInterval()
	in.setEff(EffectivePriority(in.base, delta))
	if in.eff <= old || in.state != StateBackup || in.deadline[TimerMasterDown].IsZero() {
		return
	}
	// A higher priority has a shorter skew: bring the running master
	// down timer forward by the difference, as keepalived does.
	at := in.deadline[TimerMasterDown].Add(in.downInterval() - oldDown)
	in.setTimer(now, TimerMasterDown, at.Sub(now))
}

func (in *Instance) setFault(now time.Time, fault bool) {
	if fault == in.faulted {
		return
	}
	in.faulted = fault
	if fault {
		switch in.state {
		case StateMaster:
			// keepalived's down_instance: priority 0 so a backup takes
			// over after its skew, not its master down interval.
			in.leaveMaster(now, StateFault, ReasonFault, true)
		case StateBackup:
			in.enterFault(ReasonFault)
		}
		return
	}
	if in.state != StateFault {
		return
	}
	if in.group != nil && in.group.otherFaulted(in) {
		return // the group stays in FAULT until every member is up
	}
	in.leaveFault(now, ReasonFaultCleared)
}

// leaveFault is keepalived's try_up_instance: to BACKUP, or at once to
// MASTER for the address owner.
func (in *Instance) leaveFault(now time.Time, r Reason) {
	in.masterAdverInt = in.cfg.AdvertInterval
	if in.isOwner() && in.canGotoMaster() {
		in.becomeMaster(now, r)
		return
	}
	in.enterBackup(now, r)
}

func (in *Instance) stop() {
	switch in.state {
	case StateInit, StateStop:
		return
	case StateMaster:
		in.stopTimers()
		in.send(0)
	default:
		in.stopTimers()
	}
	in.removeVIPs()
	in.wantMaster = false
	in.preemptAt = time.Time{}
	in.transition(StateStop, ReasonStop)
}
