package vrrp

import "fmt"

// State is an instance's (or a sync group's) VRRP state. The names are
// keepalived's, as its notify scripts and FIFO print them.
type State uint8

const (
	// StateInit is before Start (RFC 5798's Initialize).
	StateInit State = iota
	StateBackup
	StateMaster
	// StateFault is keepalived's: an interface or a tracked object with
	// weight 0 is down, so the instance neither sends nor listens.
	StateFault
	// StateStop is after Stop; Start leaves it as it leaves StateInit.
	StateStop
)

var stateNames = [...]string{
	StateInit:   "INIT",
	StateBackup: "BACKUP",
	StateMaster: "MASTER",
	StateFault:  "FAULT",
	StateStop:   "STOP",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Reason says why a step did what it did: why a transition happened (in a
// Transition action) and what became of the last advert (Instance.Verdict).
type Reason uint8

const (
	ReasonNone Reason = iota

	// Transitions.

	// ReasonStart: Start put the instance in BACKUP (or FAULT).
	ReasonStart
	// ReasonOwner: priority 255, the address owner, goes to MASTER at
	// once.
	ReasonOwner
	// ReasonMasterDown: the master down timer expired with no advert.
	ReasonMasterDown
	// ReasonPreempt: the master down timer expired while the backup was
	// discarding a lower-priority master's adverts, or the preempt_delay
	// timer fired with that master still lower.
	ReasonPreempt
	// ReasonFault and ReasonFaultCleared: Fault(true), Fault(false).
	ReasonFault
	ReasonFaultCleared
	// ReasonStop: Stop.
	ReasonStop
	// ReasonSync: a sync group moved the instance along with another.
	ReasonSync

	// Verdicts on an advert; the last three are transitions too.

	// ReasonAccepted: a backup took the advert as from its master and
	// reset the master down timer.
	ReasonAccepted
	// ReasonNotRunning: the instance is INIT, FAULT or STOP and ignores
	// adverts, as keepalived does.
	ReasonNotRunning
	// ReasonLowerPriority: a preempting backup discarded a lower-priority
	// advert, or a master answered one.
	ReasonLowerPriority
	// ReasonOwnAddress: a master got an advert of its own priority from
	// its own address (a loop, or a duplicate address).
	ReasonOwnAddress
	// ReasonPriorityZero: the master is leaving; a backup takes over after
	// Skew_Time, a master answers with an advert. As a transition: the
	// takeover that followed.
	ReasonPriorityZero
	// ReasonHigherPriority: a master met a higher priority and went
	// BACKUP.
	ReasonHigherPriority
	// ReasonEqualPriorityHigherAddr: a master met its own priority from a
	// higher primary address and went BACKUP (RFC 5798 6.4.3).
	ReasonEqualPriorityHigherAddr

	numReasonValues
)

var reasonNames = [...]string{
	ReasonNone:                    "none",
	ReasonStart:                   "start",
	ReasonOwner:                   "address owner",
	ReasonMasterDown:              "master down timer expired",
	ReasonPreempt:                 "preempted lower priority master",
	ReasonFault:                   "fault",
	ReasonFaultCleared:            "fault cleared",
	ReasonStop:                    "stop",
	ReasonSync:                    "sync group",
	ReasonAccepted:                "accepted",
	ReasonNotRunning:              "not running",
	ReasonLowerPriority:           "lower priority",
	ReasonOwnAddress:              "own address",
	ReasonPriorityZero:            "priority 0",
	ReasonHigherPriority:          "higher priority",
	ReasonEqualPriorityHigherAddr: "equal priority, higher address",
}

func (r Reason) String() string {
	if r < numReasonValues {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// TimerKind names one of an instance's timers. Each kind is one timer:
// setting it again replaces the pending one.
type TimerKind uint8

const (
	// TimerMasterDown runs in BACKUP: Master_Down_Timer.
	TimerMasterDown TimerKind = iota
	// TimerAdvert runs in MASTER: Adver_Timer.
	TimerAdvert
	// TimerPreempt runs in BACKUP while preempt_delay holds back a
	// takeover from a lower-priority master.
	TimerPreempt
	// TimerGARPDelay runs in MASTER: the second burst of gratuitous ARPs
	// garp_master_delay after becoming master.
	TimerGARPDelay
	// TimerGARPRefresh runs in MASTER: garp_master_refresh.
	TimerGARPRefresh
	// TimerGARPLowerPrio runs in MASTER: the second burst
	// garp_lower_prio_delay after a lower-priority advert.
	TimerGARPLowerPrio

	NumTimers
)

var timerNames = [...]string{
	TimerMasterDown:    "master-down",
	TimerAdvert:        "advert",
	TimerPreempt:       "preempt-delay",
	TimerGARPDelay:     "garp-delay",
	TimerGARPRefresh:   "garp-refresh",
	TimerGARPLowerPrio: "garp-lower-prio",
}

func (k TimerKind) String() string {
	if k < NumTimers {
		return timerNames[k]
	}
	return fmt.Sprintf("TimerKind(%d)", uint8(k))
}
