// Package clocktest provides a Clock that moves only when a test says so.
package clocktest

import (
	"sort"
	"sync"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
)

// Fake is a manual clock. Functions scheduled with AfterFunc run
// synchronously, in time order, inside Advance.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

// New returns a Fake set to start.
func New(start time.Time) *Fake { return &Fake{now: start} }

var _ clock.Clock = (*Fake)(nil)

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

type fakeTimer struct {
	f      *Fake
	when   time.Time
	seq    int
	fn     func()
	live   bool
	queued bool // in f.timers
}

func (f *Fake) AfterFunc(d time.Duration, fn func()) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, fn: fn}
	f.schedule(t, d)
	return t
}

func (f *Fake) schedule(t *fakeTimer, d time.Duration) {
	f.seq++
	t.when, t.seq, t.live = f.now.Add(d), f.seq, true
	if !t.queued {
		t.queued = true
		f.timers = append(f.timers, t)
	}
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.live
	t.live = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.live
	t.f.schedule(t, d)
	return was
}

// Advance moves the clock forward by d, running every timer that falls due,
// earliest first, with the clock set to its due time while it runs.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	end := f.now.Add(d)
	for {
		var next *fakeTimer
		live := f.timers[:0]
		for _, t := range f.timers {
			if !t.live {
				t.queued = false
				continue
			}
			live = append(live, t)
		}
		f.timers = live
		sort.SliceStable(f.timers, func(i, j int) bool {
			if !f.timers[i].when.Equal(f.timers[j].when) {
				return f.timers[i].when.Before(f.timers[j].when)
			}
			return f.timers[i].seq < f.timers[j].seq
		})
		for _, t := range f.timers {
			if !t.when.After(end) {
				next = t
				break
			}
		}
		if next == nil {
			break
		}
		next.live = false
		f.now = next.when
		fn := next.fn
		f.mu.Unlock()
		fn()
		f.mu.Lock()
	}
	f.now = end
	f.mu.Unlock()
}

// Pending is the number of timers still waiting.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if t.live {
			n++
		}
	}
	return n
}
