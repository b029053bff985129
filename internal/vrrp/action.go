package vrrp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// ActionKind says what the caller must do.
type ActionKind uint8

const (
	// ActSend: send an advert with Priority to each of Dst (the multicast
	// group, or the unicast peers). Instance.Advert builds it.
	ActSend ActionKind = iota
	// ActSetTimer: arm Timer to fire After from now, replacing any
	// pending one of the same kind.
	ActSetTimer
	// ActStopTimer: disarm Timer.
	ActStopTimer
	// ActAddVIPs and ActRemoveVIPs: the virtual addresses (and, for the
	// engine, the excluded ones, routes and rules that go with them).
	ActAddVIPs
	ActRemoveVIPs
	// ActGARP: send Repeat rounds of gratuitous ARP (IPv4) or unsolicited
	// neighbour adverts (IPv6) for every VIP, Interval apart
	// (vrrp_garp_interval / vrrp_gna_interval; 0: back to back).
	ActGARP
	// ActTransition: the instance went From → To because of Reason; the
	// engine runs the notify scripts and writes the FIFO.
	ActTransition
	// ActSyncTransition: a sync group (named by Instance) went From → To.
	ActSyncTransition
	// ActPriority: the effective priority changed to Priority, from
	// PeerPriority (keepalived's notify_priority_changes).
	ActPriority
	// ActMasterRxLowerPri: a master received a lower-priority advert from
	// Peer (keepalived's notify_master_rx_lower_pri).
	ActMasterRxLowerPri
	// ActLog: log Msg at Level, with Reason, Peer and PeerPriority when
	// set. Msg is a constant: logging costs no allocation here.
	ActLog
)

var actionNames = [...]string{
	ActSend:             "send",
	ActSetTimer:         "set-timer",
	ActStopTimer:        "stop-timer",
	ActAddVIPs:          "add-vips",
	ActRemoveVIPs:       "remove-vips",
	ActGARP:             "garp",
	ActTransition:       "transition",
	ActSyncTransition:   "sync-transition",
	ActPriority:         "priority",
	ActMasterRxLowerPri: "master-rx-lower-pri",
	ActLog:              "log",
}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one thing Handle asks the caller to do, in order. Only the
// fields of its Kind are set.
type Action struct {
	Kind ActionKind
	// Instance is the instance's name (the group's for
	// ActSyncTransition), so the actions of a sync group can be told
	// apart.
	Instance string

	// Priority: ActSend, ActPriority. Dst: ActSend; it is the instance's
	// configuration, not a copy: do not modify it.
	Priority uint8
	Dst      []netip.Addr

	// Timer and After: ActSetTimer, ActStopTimer.
	Timer TimerKind
	After time.Duration

	// Repeat and Interval: ActGARP.
	Repeat   int
	Interval time.Duration

	// From, To, Reason: ActTransition, ActSyncTransition; Reason also on
	// ActLog.
	From, To State
	Reason   Reason

	// Level, Msg: ActLog. Peer and PeerPriority: the advert's sender, on
	// ActLog and ActMasterRxLowerPri; PeerPriority is the old priority on
	// ActPriority.
	Level        slog.Level
	Msg          string
	Peer         netip.Addr
	PeerPriority uint8
}

// String is for test failures and debugging.
func (a Action) String() string {
	switch a.Kind {
	case ActSend:
		return fmt.Sprintf("%s send prio %d", a.Instance, a.Priority)
	case ActSetTimer:
		return fmt.Sprintf("%s set %v %v", a.Instance, a.Timer, a.After)
	case ActStopTimer:
		return fmt.Sprintf("%s stop %v", a.Instance, a.Timer)
	case ActGARP:
		return fmt.Sprintf("%s garp x%d every %v", a.Instance, a.Repeat, a.Interval)
	case ActTransition, ActSyncTransition:
		return fmt.Sprintf("%s %v %v->%v (%v)", a.Instance, a.Kind, a.From, a.To, a.Reason)
	case ActPriority:
		return fmt.Sprintf("%s priority %d->%d", a.Instance, a.PeerPriority, a.Priority)
	case ActLog:
		return fmt.Sprintf("%s log %v %q %v", a.Instance, a.Level, a.Msg, a.Reason)
	}
	return fmt.Sprintf("%s %v", a.Instance, a.Kind)
}
