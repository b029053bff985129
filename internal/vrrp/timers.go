package vrrp

import (
	"time"

	"github.com/keepvs/keepvs/internal/clock"
)

// Timers runs one instance's SetTimer and StopTimer actions on a
// clock.Clock. fire is called from the clock's goroutine (synchronously
// inside clocktest.Fake.Advance) with the kind that fell due; it should
// hand TimerFired(kind) to the goroutine that owns the instance. A fire
// that loses a race with a later Stop or re-arm is harmless: the
// instance knows its deadlines and ignores it.
//
// Apply and StopAll belong to the owning goroutine.
type Timers struct {
	clk  clock.Clock
	fire func(TimerKind)
	t    [NumTimers]clock.Timer
}

// NewTimers returns Timers on clk that report to fire.
func NewTimers(clk clock.Clock, fire func(TimerKind)) *Timers {
	return &Timers{clk: clk, fire: fire}
}

// Apply runs a if it is an ActSetTimer or ActStopTimer and reports
// whether it was.
func (ts *Timers) Apply(a Action) bool {
	if a.Timer >= NumTimers {
		return false
	}
	switch a.Kind {
	case ActSetTimer:
		ts.set(a.Timer, a.After)
	case ActStopTimer:
		if t := ts.t[a.Timer]; t != nil {
			t.Stop()
		}
	default:
		return false
	}
	return true
}

func (ts *Timers) set(k TimerKind, d time.Duration) {
	if t := ts.t[k]; t != nil {
		t.Reset(d)
		return
	}
	ts.t[k] = ts.clk.AfterFunc(d, func() { ts.fire(k) })
}

// StopAll stops every timer.
func (ts *Timers) StopAll() {
	for _, t := range ts.t {
		if t != nil {
			t.Stop()
		}
	}
}
