package check

import "time"

// schedule is the min-heap of checkers waiting for their next probe, by due
// time then by the order they were queued in. One clock timer, armed for
// its head, serves every checker of the Runner.
//
// It is built for 10,000 checkers probing every second: a 4-ary heap of
// entries that carry their sort key inline (the due time as nanoseconds
// since the schedule's epoch, and the queue order), so sifting reads no
// checkState; and removal is lazy — a removed checker is only marked, and
// its entry dropped when it reaches the top — so sifting writes no
// checkState either (a heap index kept in each checker cost a cache miss
// per swap: a third of the Runner's CPU at 10,000 probes a second).
type schedule struct {
	epoch time.Time // the first due time pushed: keys count from it
	e     []entry
	stale int // entries of removed or re-queued checkers still in e
}

type entry struct {
	at  int64  // due - epoch, in ns
	seq uint64 // the checker's seq when queued: the entry is live while they match
	c   *checkState
}

func (a entry) less(b entry) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (a entry) live() bool { return a.c.queued && a.c.seq == a.seq }

// push queues c for c.due, after every checker already queued for the
// same time (c.seq, which the caller set afresh). An entry c had in the
// schedule goes stale.
func (s *schedule) push(c *checkState) {
	if s.epoch.IsZero() {
		s.epoch = c.due
	}
	if c.queued {
		s.stale++
	}
	c.queued = true
	s.e = append(s.e, entry{at: int64(c.due.Sub(s.epoch)), seq: c.seq, c: c})
	s.up(len(s.e) - 1)
}

// remove takes c off the schedule, if it is there.
func (s *schedule) remove(c *checkState) {
	if !c.queued {
		return
	}
	c.queued = false
	s.stale++
	if s.stale > 1024 && s.stale > len(s.e)/2 {
		s.compact()
	}
}

// head is the checker due first, nil when none is queued.
func (s *schedule) head() *checkState {
	for len(s.e) > 0 {
		if s.e[0].live() {
			return s.e[0].c
		}
		s.stale--
		s.popTop()
	}
	return nil
}

// pop takes the checker due first off the schedule; head must have
// returned it.
func (s *schedule) pop() *checkState {
	c := s.head()
	c.queued = false
	s.popTop()
	return c
}

func (s *schedule) popTop() {
	n := len(s.e) - 1
	s.e[0] = s.e[n]
	s.e[n] = entry{}
	s.e = s.e[:n]
	if n > 0 {
		s.down(0)
	}
}

// compact drops the stale entries and heapifies the rest.
func (s *schedule) compact() {
	live := s.e[:0]
	for _, e := range s.e {
		if e.live() {
			live = append(live, e)
		}
	}
	clear(s.e[len(live):])
	s.e, s.stale = live, 0
	for i := (len(s.e) - 2) / 4; i >= 0; i-- {
		s.down(i)
	}
}

func (s *schedule) up(i int) {
	e := s.e[i]
	for i > 0 {
		p := (i - 1) / 4
		if !e.less(s.e[p]) {
			break
		}
		s.e[i] = s.e[p]
		i = p
	}
	s.e[i] = e
}

func (s *schedule) down(i int) {
	n := len(s.e)
	e := s.e[i]
	for {
		first := 4*i + 1
		if first >= n {
			break
		}
		m := first
		for k := first + 1; k < first+4 && k < n; k++ {
			if s.e[k].less(s.e[m]) {
				m = k
			}
		}
		if !s.e[m].less(e) {
			break
		}
		s.e[i] = s.e[m]
		i = m
	}
	s.e[i] = e
}

// deadlines are the Runner's own deadlines of the probes in flight
// (Timeout + Grace after each start), a FIFO per distinct length: a probe
// started later with the same length ends later, so each FIFO is in
// order without sorting, and a push or pop costs O(1) — no timer per
// probe. An entry whose probe ended (or was restarted: gen) is dead, and
// dropped when it reaches its FIFO's head.
type deadlines struct {
	fifos []*fifo
}

type expiry struct {
	at  time.Time
	c   *checkState
	gen uint64
}

func (e expiry) dead() bool { return !e.c.inflight || e.c.gen != e.gen }

type fifo struct {
	d    time.Duration
	e    []expiry
	head int
}

func (q *fifo) pop() {
	q.e[q.head] = expiry{}
	q.head++
	if q.head == len(q.e) {
		q.e, q.head = q.e[:0], 0
	} else if q.head >= 1024 && q.head > len(q.e)/2 {
		n := copy(q.e, q.e[q.head:])
		clear(q.e[n:])
		q.e, q.head = q.e[:n], 0
	}
}

// dropDead pops the dead entries at the head.
func (q *fifo) dropDead() {
	for q.head < len(q.e) && q.e[q.head].dead() {
		q.pop()
	}
}

// push adds e, of length d (e.at is its start + d).
func (h *deadlines) push(d time.Duration, e expiry) {
	for _, q := range h.fifos {
		if q.d == d {
			q.e = append(q.e, e)
			return
		}
	}
	h.fifos = append(h.fifos, &fifo{d: d, e: []expiry{e}})
}

// expire calls f for each live probe whose deadline is not after now, in
// the order of their deadlines within each length.
func (h *deadlines) expire(now time.Time, f func(*checkState)) {
	for _, q := range h.fifos {
		for q.dropDead(); q.head < len(q.e) && !q.e[q.head].at.After(now); q.dropDead() {
			c := q.e[q.head].c
			q.pop()
			f(c)
		}
	}
}

// next is the earliest deadline of a probe in flight.
func (h *deadlines) next() (time.Time, bool) {
	var at time.Time
	ok := false
	for _, q := range h.fifos {
		q.dropDead()
		if q.head < len(q.e) && (!ok || q.e[q.head].at.Before(at)) {
			at, ok = q.e[q.head].at, true
		}
	}
	return at, ok
}
