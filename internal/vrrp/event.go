package vrrp

import (
	"fmt"
	"net/netip"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// EventKind says what happened to an instance.
type EventKind uint8

const (
	EventStart EventKind = iota
	// EventAdvert: an advert that packet.ValidateInto accepted.
	EventAdvert
	// EventTimer: a timer the instance armed fell due. A timer that was
	// stopped or re-armed since is recognised and ignored, so a driver
	// need not win the race between a firing timer and Stop.
	EventTimer
	// EventPriority: the trackers' total weight changed.
	EventPriority
	// EventFault: the instance's fault condition changed.
	EventFault
	EventStop
)

var eventNames = [...]string{
	EventStart:    "start",
	EventAdvert:   "advert",
	EventTimer:    "timer",
	EventPriority: "priority",
	EventFault:    "fault",
	EventStop:     "stop",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one input to Handle. Build it with the constructors below;
// only the fields of its Kind are read.
type Event struct {
	Kind EventKind
	// Advert and Src: EventAdvert. Src is the IP source address, the
	// sender's primary address.
	Advert packet.Advert
	Src    netip.Addr
	// Timer: EventTimer.
	Timer TimerKind
	// TrackDelta: EventPriority. The sum of what the tracked scripts,
	// interfaces and files add to the base priority now (see
	// ScriptWeight and FileWeight); the instance clamps base+delta.
	TrackDelta int
	// Fault: EventFault. True while any tracked object with weight 0, or
	// the instance's interface, is down; the caller counts them.
	Fault bool
}

// Start starts (or restarts after Stop) the instance.
func Start() Event { return Event{Kind: EventStart} }

// AdvertReceived is an advert packet.ValidateInto accepted, from src.
func AdvertReceived(a packet.Advert, src netip.Addr) Event {
	return Event{Kind: EventAdvert, Advert: a, Src: src}
}

// TimerFired is a timer the instance armed with a SetTimer action.
func TimerFired(k TimerKind) Event { return Event{Kind: EventTimer, Timer: k} }

// PriorityChanged carries the trackers' total weight.
func PriorityChanged(delta int) Event { return Event{Kind: EventPriority, TrackDelta: delta} }

// FaultChanged reports that the instance is (true) or is no longer
// (false) in fault.
func FaultChanged(fault bool) Event { return Event{Kind: EventFault, Fault: fault} }

// Stop stops the instance: a master says goodbye with priority 0.
func Stop() Event { return Event{Kind: EventStop} }
