package vrrp

import (
	"errors"
	"fmt"
	"time"
)

// SyncGroup is a vrrp_sync_group: instances that are MASTER, BACKUP or
// FAULT together, as keepalived's vrrp_sync.c keeps them:
//
//   - a member whose master down timer expires goes MASTER only if every
//     other running member wants MASTER too (or the group already is);
//     otherwise it stays BACKUP, wanting MASTER, and tries again a master
//     down interval later. The member that completes the set takes the
//     rest of the group to MASTER with it.
//   - a member that leaves MASTER for BACKUP takes the others to BACKUP.
//   - a member that faults takes the others to FAULT (a master among them
//     sends priority 0); the group leaves FAULT, for BACKUP, only when no
//     member has a fault of its own.
//
// Once members are grouped, Instance.Handle on any of them runs through
// the group and returns every member's actions, each naming its instance.
type SyncGroup struct {
	name    string
	members []*Instance
	state   State
	buf     []Action
}

// ErrGrouped is returned by NewSyncGroup for an instance already in a
// group.
var ErrGrouped = errors.New("instance already in a sync group")

// NewSyncGroup groups members; none may be in another group. Members
// that already run (a reload regroups them) give the group its state:
// FAULT if one is, MASTER if every running one is, BACKUP otherwise.
func NewSyncGroup(name string, members ...*Instance) (*SyncGroup, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("sync group %s: no members", name)
	}
	g := &SyncGroup{name: name, members: members, buf: make([]Action, 0, 16*len(members)), state: groupState(members)}
	for _, m := range members {
		if m.group != nil {
			return nil, fmt.Errorf("sync group %s: %s: %w", name, m.cfg.Name, ErrGrouped)
		}
	}
	for _, m := range members {
		m.group = g
		m.out = &g.buf
	}
	return g, nil
}

// Name is the group's name.
func (g *SyncGroup) Name() string { return g.name }

// State is the group's state: INIT until a member starts.
func (g *SyncGroup) State() State { return g.state }

// Members are the grouped instances.
func (g *SyncGroup) Members() []*Instance { return g.members }

// Handle runs ev on member m; it is what m.Handle does.
func (g *SyncGroup) Handle(now time.Time, m *Instance, ev Event) []Action {
	return g.handle(now, m, ev)
}

func (g *SyncGroup) handle(now time.Time, m *Instance, ev Event) []Action {
	g.buf = g.buf[:0]
	if m.group != g {
		return g.buf
	}
	prev := m.state
	m.step(now, ev)
	g.follow(now, m, prev)
	return g.buf
}

// follow is keepalived's transition matrix (VRRP_TSM) and the fault
// handling of down_instance and try_up_instance: m went from prev to its
// state; move the group and the other members.
func (g *SyncGroup) follow(now time.Time, m *Instance, prev State) {
	cur := m.state
	if cur == prev {
		return
	}
	switch cur {
	case StateMaster:
		g.syncMaster(now, m)
	case StateBackup:
		if prev == StateInit || prev == StateStop {
			if g.state == StateInit || g.state == StateStop {
				g.setState(StateBackup, ReasonStart)
			}
			return
		}
		g.syncBackup(now, m)
	case StateFault:
		g.syncFault(now, m)
	case StateStop:
		for _, o := range g.members {
			if o.state != StateStop && o.state != StateInit {
				return
			}
		}
		g.setState(StateStop, ReasonStop)
	}
}

func (g *SyncGroup) setState(s State, r Reason) {
	if g.state == s {
		return
	}
	from := g.state
	g.state = s
	g.buf = append(g.buf, Action{Kind: ActSyncTransition, Instance: g.name, From: from, To: s, Reason: r})
}

// groupState is the state a group of these members is in.
func groupState(members []*Instance) State {
	s := StateInit
	for _, m := range members {
		switch {
		case m.state == StateFault:
			return StateFault
		case !running(m.state):
		case m.state == StateMaster && s != StateBackup:
			s = StateMaster
		default:
			s = StateBackup
		}
	}
	return s
}

func running(s State) bool { return s != StateInit && s != StateStop }

// canGotoMaster is keepalived's vrrp_sync_can_goto_master: prefer BACKUP
// to thrashing, so go MASTER only when every other running member wants
// to.
func (g *SyncGroup) canGotoMaster(m *Instance) bool {
	if g.state == StateMaster {
		return true
	}
	for _, o := range g.members {
		if o != m && running(o.state) && !o.wantMaster {
			return false
		}
	}
	return true
}

// otherFaulted reports whether a member other than m has a fault of its
// own, which keeps the group in FAULT.
func (g *SyncGroup) otherFaulted(m *Instance) bool {
	for _, o := range g.members {
		if o != m && o.faulted {
			return true
		}
	}
	return false
}

func (g *SyncGroup) syncMaster(now time.Time, m *Instance) {
	if g.state == StateMaster {
		return
	}
	for _, o := range g.members {
		if o != m && o.state == StateBackup {
			o.becomeMaster(now, ReasonSync)
		}
	}
	g.setState(StateMaster, ReasonSync)
}

func (g *SyncGroup) syncBackup(now time.Time, m *Instance) {
	if g.state == StateBackup {
		return
	}
	for _, o := range g.members {
		if o == m {
			continue
		}
		switch o.state {
		case StateMaster:
			o.masterAdverInt = o.cfg.AdvertInterval
			o.leaveMaster(now, StateBackup, ReasonSync, false)
		case StateFault:
			if !o.faulted {
				o.enterBackup(now, ReasonSync)
			}
		}
	}
	g.setState(StateBackup, ReasonSync)
}

func (g *SyncGroup) syncFault(now time.Time, m *Instance) {
	if g.state == StateFault {
		return
	}
	for _, o := range g.members {
		if o == m {
			continue
		}
		switch o.state {
		case StateMaster:
			o.leaveMaster(now, StateFault, ReasonSync, true)
		case StateBackup:
			o.enterFault(ReasonSync)
		}
	}
	g.setState(StateFault, ReasonFault)
}
