package check

import (
	"time"

	"github.com/keepvs/keepvs/internal/fifo"
)

// schedule is the queue of checkers waiting for their next probe, by due
// time then by the order they were queued in. One clock timer, armed for
// its head, serves every checker of the Runner.
//
// It is built for 10,000 checkers probing every second, where a heap's
// sifts were cache misses a pop (each checker's turn comes once a second,
// long after its entries left the cache). A checker is queued again at
// the end of its probe plus its delay_loop (or delay_before_retry): for
// one delay, in the order probes end — an ordered stream. So entries go
// to runs, FIFOs each in order, appended at the tail that fits best
// (patience sorting: each delay settles into its own run) and taken from
// the least head; only an entry no run can take (a random warmup, a probe
// timed from its start) goes to a 4-ary heap. In a steady state pops and
// pushes are sequential reads and appends, O(runs).
//
// Entries carry their sort key inline (the due time as nanoseconds since
// the schedule's epoch, and the queue order), so ordering reads no
// checkState; removal is lazy — a removed or re-queued checker's entry is
// dead (its seq no longer the checker's) and dropped when it surfaces.
// Whether it is live is in one dense array (words, by the checker's
// slot), not in the checkState: at 10,000 checkers the array stays in
// the cache, and the checkStates, touched once a second, do not.
type schedule struct {
	epoch time.Time // the first due time pushed: keys count from it
	runs  []*fifo.Queue[entry]
	heap  []entry
	stale int // dead entries still held

	// words has each slot's state: seq<<1 while its checker is queued
	// as seq, seq<<1|1 from its pop (its probe in flight) until it is
	// queued again or removed, 0 otherwise. Slot 0 is no checker's.
	words []uint64
	free  []int32 // released slots
}

// maxRuns bounds the runs: one per distinct delay in use, and a few for
// the streams that interleave while the warmup's random order settles.
const maxRuns = 8

type entry struct {
	at   int64  // due - epoch, in ns
	seq  uint64 // the checker's seq when queued: the entry is live while they match
	c    *checkState
	slot int32 // c's
}

func (a entry) less(b entry) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (s *schedule) live(e entry) bool { return s.words[e.slot] == e.seq<<1 }

// queued reports whether c is in the schedule.
func (s *schedule) queued(c *checkState) bool {
	return c.slot != 0 && s.words[c.slot]&1 == 0 && s.words[c.slot] != 0
}

// launched reports whether c's probe popped as seq is still in flight:
// c was neither queued again nor removed since.
func (s *schedule) launched(slot int32, seq uint64) bool { return s.words[slot] == seq<<1|1 }

// push queues c for c.due, after every checker already queued for the
// same time (c.seq, which the caller set afresh). An entry c had in the
// schedule goes dead.
func (s *schedule) push(c *checkState) {
	if s.epoch.IsZero() {
		s.epoch = c.due
	}
	if c.slot == 0 {
		s.assign(c)
	}
	if s.queued(c) {
		s.stale++
	}
	s.words[c.slot] = c.seq << 1
	e := entry{at: int64(c.due.Sub(s.epoch)), seq: c.seq, c: c, slot: c.slot}
	// The run whose tail is the latest not after e; else an empty one.
	var best, spare *fifo.Queue[entry]
	for _, r := range s.runs {
		if r.Len() == 0 {
			if spare == nil {
				spare = r
			}
			continue
		}
		if t := r.Back(); !e.less(t) && (best == nil || best.Back().less(t)) {
			best = r
		}
	}
	switch {
	case best != nil:
		best.Push(e)
	case spare != nil:
		spare.Push(e)
	case len(s.runs) < maxRuns:
		r := &fifo.Queue[entry]{}
		r.Push(e)
		s.runs = append(s.runs, r)
	default:
		s.heap = append(s.heap, e)
		s.up(len(s.heap) - 1)
	}
}

// assign gives c a slot.
func (s *schedule) assign(c *checkState) {
	if len(s.words) == 0 {
		s.words = append(s.words, 0) // slot 0: none
	}
	if n := len(s.free); n > 0 {
		c.slot, s.free = s.free[n-1], s.free[:n-1]
		return
	}
	c.slot = int32(len(s.words))
	s.words = append(s.words, 0)
}

// release takes c off the schedule for good and frees its slot.
func (s *schedule) release(c *checkState) {
	s.remove(c)
	if c.slot != 0 {
		s.free = append(s.free, c.slot)
		c.slot = 0
	}
}

// remove takes c off the schedule, if it is there; its probe in flight,
// if any, is no longer (launched).
func (s *schedule) remove(c *checkState) {
	if c.slot == 0 {
		return
	}
	queued := s.queued(c)
	s.words[c.slot] = 0
	if !queued {
		return
	}
	s.stale++
	if s.stale > 1024 && s.stale > s.size()/2 {
		s.compact()
	}
}

func (s *schedule) size() int {
	n := len(s.heap)
	for _, r := range s.runs {
		n += r.Len()
	}
	return n
}

// top finds the first live entry, dropping the dead ones before it: the
// run it heads, or nil for the heap's top.
func (s *schedule) top() (entry, *fifo.Queue[entry], bool) {
	var best entry
	var from *fifo.Queue[entry]
	ok := false
	for _, r := range s.runs {
		for r.Len() > 0 && !s.live(r.Front()) {
			s.stale--
			r.Pop()
		}
		if r.Len() > 0 && (!ok || r.Front().less(best)) {
			best, from, ok = r.Front(), r, true
		}
	}
	for len(s.heap) > 0 && !s.live(s.heap[0]) {
		s.stale--
		s.popHeap()
	}
	if len(s.heap) > 0 && (!ok || s.heap[0].less(best)) {
		best, from, ok = s.heap[0], nil, true
	}
	return best, from, ok
}

// next is when the checker due first is due, read from its entry: no
// checkState is touched.
func (s *schedule) next() (time.Time, bool) {
	e, _, ok := s.top()
	if !ok {
		return time.Time{}, false
	}
	return s.epoch.Add(time.Duration(e.at)), true
}

// popUntil pops every checker due by t onto out, its probe in flight
// from here (launched) — reading only the entries and the slots.
func (s *schedule) popUntil(t time.Time, out []*checkState) []*checkState {
	if s.epoch.IsZero() {
		return out
	}
	until := int64(t.Sub(s.epoch))
	for {
		e, from, ok := s.top()
		if !ok || e.at > until {
			return out
		}
		s.take(e, from)
		out = append(out, e.c)
	}
}

func (s *schedule) take(e entry, from *fifo.Queue[entry]) {
	s.words[e.slot] = e.seq<<1 | 1
	if from != nil {
		from.Pop()
	} else {
		s.popHeap()
	}
}

func (s *schedule) popHeap() {
	n := len(s.heap) - 1
	s.heap[0] = s.heap[n]
	s.heap[n] = entry{}
	s.heap = s.heap[:n]
	if n > 0 {
		s.down(0)
	}
}

// compact drops the dead entries: runs stay in order, the heap is made
// again.
func (s *schedule) compact() {
	for _, r := range s.runs {
		r.Keep(s.live)
	}
	live := s.heap[:0]
	for _, e := range s.heap {
		if s.live(e) {
			live = append(live, e)
		}
	}
	clear(s.heap[len(live):])
	s.heap, s.stale = live, 0
	for i := (len(s.heap) - 2) / 4; i >= 0 && len(s.heap) > 1; i-- {
		s.down(i)
	}
}

func (s *schedule) up(i int) {
	e := s.heap[i]
	for i > 0 {
		p := (i - 1) / 4
		if !e.less(s.heap[p]) {
			break
		}
		s.heap[i] = s.heap[p]
		i = p
	}
	s.heap[i] = e
}

func (s *schedule) down(i int) {
	n := len(s.heap)
	e := s.heap[i]
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		m := first
		for k := first + 1; k < first+4 && k < n; k++ {
			if s.heap[k].less(s.heap[m]) {
				m = k
			}
		}
		if !s.heap[m].less(e) {
			break
		}
		s.heap[i] = s.heap[m]
		i = m
	}
	s.heap[i] = e
}

// expiry is the Runner's own deadline of a probe in flight (Timeout +
// Grace after its start), kept in fifo.Lanes by that length: no timer per
// probe. It is dead once its checker was queued again or removed: the
// schedule's slot says (launched), and its checkState, cold 3 s after
// the probe's start, is not read.
type expiry struct {
	at   time.Time
	c    *checkState
	seq  uint64 // the seq c was popped as
	slot int32
}

func (e expiry) before(f expiry) bool { return e.at.Before(f.at) }
