package tcp

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/fifo"
)

// probe is what both probers — the connect poller (poller.go) and the
// half-open SynProber (syn.go) — keep of each probe: what it is for, when
// it times out, and where it waits.
type probe struct {
	// What starting, expiring and finishing it read first.
	deadline int64 // monotonic ns since pollBase
	timeout  time.Duration
	finished bool   // its deadline's entry is dead
	tag      uint64 // done's first argument
	done     check.Done

	res    check.Result
	target check.Target
}

func (p *probe) base() *probe { return p }

// started is when the probe started, by mono: its deadline less its
// timeout.
func (p *probe) started() int64 { return p.deadline - int64(p.timeout) }

// since is how long ago the probe started.
func (p *probe) since() time.Duration { return time.Duration(mono() - p.started()) }

// failed is the probe's failure for why, timed from its start.
func (p *probe) failed(why string) check.Result {
	return check.Result{Reason: "connect " + p.target.Addr.String() + ": " + why, Duration: p.since()}
}

// prober is a probe type of one of the probers (*op, synRef): what
// their shared bookkeeping holds.
type prober interface {
	comparable
	base() *probe
	// stale reports that the probe this refers to has ended and its
	// memory serves a later one (a SynChecker's own synOp): this
	// reference is dead, whatever the probe's fields say.
	stale() bool
}

func (*op) stale() bool { return false }

// doneOf adapts a callback without a tag.
func doneOf(done func(check.Result)) check.Done {
	return func(_ uint64, r check.Result) { done(r) }
}

// core is the bookkeeping both probers share, guarded by the prober's
// lock: the deadlines, the probes waiting for a slot and the ones
// finished without their loop (immediate errors), and the eventfd or
// channel that wakes the loop.
type core[O prober] struct {
	evfd     int           // the poller's loop waits in epoll with it
	kick     chan struct{} // or the SynProber's, on a channel
	timers   fifo.Lanes[O]
	queued   waiting[O]
	ready    []O
	waitTill int64 // when the loop's wait ends; -1: no timeout
}

// wake makes the loop look again (results to deliver, an earlier
// deadline).
func (c *core[O]) wake() {
	if c.kick != nil {
		select {
		case c.kick <- struct{}{}:
		default:
		}
		return
	}
	var one = [8]byte{1}
	unix.Write(c.evfd, one[:])
}

// wakeBy wakes the loop if it would sleep past at (mono).
func (c *core[O]) wakeBy(at int64) {
	if c.waitTill < 0 || at < c.waitTill {
		c.wake()
	}
}

// admitLocked starts o's clock and arms its deadline (waking the loop if
// it would sleep past it), then launches it when room says a slot is
// free, else queues it (the wait counts against its timeout).
func (c *core[O]) admitLocked(o O, room bool, launch func(O)) {
	b := o.base()
	b.deadline = mono() + int64(b.timeout)
	c.timers.Push(b.timeout, o)
	c.wakeBy(b.deadline)
	if !room {
		c.queued = append(c.queued, o)
		return
	}
	launch(o)
}

// readyLocked finishes o (its res set) for the loop to deliver.
func (c *core[O]) readyLocked(o O) {
	o.base().finished = true
	c.ready = append(c.ready, o)
	c.wake()
}

// takeReadyLocked appends the probes readyLocked finished to out.
func (c *core[O]) takeReadyLocked(out []O) []O {
	out = append(out, c.ready...)
	clear(c.ready)
	c.ready = c.ready[:0]
	return out
}

// cancelLocked drops o: finished without a callback, off the heap, and
// out of flight (drop, which reports whether it was in flight: a slot
// is then free for a waiting probe, launch) or out of the queue.
func (c *core[O]) cancelLocked(o O, drop func(O) bool, launch func()) {
	if o.stale() {
		return
	}
	b := o.base()
	if b.finished {
		b.done = nil
		return
	}
	b.finished, b.done = true, nil
	if drop(o) {
		launch()
		return
	}
	c.queued.remove(o)
}

// expireLocked finishes, timed out, every probe whose deadline is not
// after now, taking it out of flight (drop) or out of the queue, and
// appends them to out.
func (c *core[O]) expireLocked(now int64, out []O, drop func(O) bool) []O {
	c.timers.PopDue(func(o O) bool { return o.base().deadline <= now }, func(o O) {
		if !drop(o) {
			c.queued.remove(o)
		}
		b := o.base()
		b.res = b.failed("timeout")
		b.finished = true
		out = append(out, o)
	})
	return out
}

// newDeadlines are the probes' deadlines, in fifo.Lanes by timeout: a
// probe admitted later with the same timeout ends later, so no heap to
// sift (a binary heap of 10,000 probes was a tenth of the half-open
// prober's user time). A finished probe's entry is dead.
func newDeadlines[O prober]() fifo.Lanes[O] {
	return fifo.NewLanes(
		func(o O) bool { return o.stale() || o.base().finished },
		func(a, b O) bool { return a.base().deadline < b.base().deadline })
}

// nextDeadline is the earliest deadline of a probe not finished.
func (c *core[O]) nextDeadline() (int64, bool) {
	o, ok := c.timers.Next()
	if !ok {
		return 0, false
	}
	return o.base().deadline, true
}

// waiting is the probes started while the most allowed were in flight,
// in the order they came.
type waiting[O prober] []O

// remove takes o off the queue (a cancel).
func (w *waiting[O]) remove(o O) {
	for i, q := range *w {
		if q == o {
			*w = append((*w)[:i], (*w)[i+1:]...)
			return
		}
	}
}

// launch starts waiting probes, first come first, while room says there
// is a slot; each keeps the deadline it was admitted with.
func (w *waiting[O]) launch(room func() bool, start func(O)) {
	for len(*w) > 0 && room() {
		o := (*w)[0]
		var zero O
		(*w)[0] = zero
		*w = (*w)[1:]
		start(o)
	}
}

// delivery is a finished probe's callback with what it is called with,
// taken under the prober's lock: the probe's memory may serve another
// probe once the lock is let go.
type delivery struct {
	done check.Done
	tag  uint64
	res  check.Result
}

// deliver hands out the results of the finished probes out: it takes each
// callback and result under mu, the prober's lock, which the caller holds
// (a cancel after this finds the probe finished, and the callback is
// deliver's to call), unlocks mu, calls the callbacks in order, and
// returns both slices emptied for reuse. A stale reference (its probe
// canceled, its memory started again) is skipped.
func deliver[O prober](mu *sync.Mutex, out []O, ds []delivery) ([]O, []delivery) {
	for _, o := range out {
		if o.stale() {
			continue
		}
		b := o.base()
		if b.done != nil {
			ds = append(ds, delivery{b.done, b.tag, b.res})
			b.done = nil
		}
	}
	mu.Unlock()
	for _, d := range ds {
		d.done(d.tag, d.res)
	}
	clear(out)
	clear(ds)
	return out[:0], ds[:0]
}
