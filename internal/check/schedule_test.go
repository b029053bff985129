package check

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// head is the checker due first, nil when none is queued.
func (s *schedule) head() *checkState {
	e, _, ok := s.top()
	if !ok {
		return nil
	}
	return e.c
}

// pop takes the checker due first off the schedule (launched, as
// popUntil does); there must be one.
func (s *schedule) pop() *checkState {
	e, from, _ := s.top()
	s.take(e, from)
	return e.c
}

// TestScheduleOrder: random pushes, re-queues and removes (enough of them
// to compact) against a plain list sorted by due time then queue order.
func TestScheduleOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Unix(1000, 0)
	var s schedule
	var seq uint64
	cs := make([]*checkState, 3000)
	for i := range cs {
		cs[i] = &checkState{}
	}
	want := map[*checkState]bool{}
	queue := func(c *checkState) {
		seq++
		c.due, c.seq = base.Add(time.Duration(rng.IntN(50))*time.Millisecond), seq
		s.push(c)
		want[c] = true
	}
	for round := range 20 {
		for range 2000 {
			c := cs[rng.IntN(len(cs))]
			if rng.IntN(3) == 0 {
				s.remove(c)
				delete(want, c)
			} else {
				queue(c) // a second push re-queues
			}
		}
		var ref []*checkState
		for c := range want {
			ref = append(ref, c)
		}
		slices.SortFunc(ref, func(a, b *checkState) int {
			if c := a.due.Compare(b.due); c != 0 {
				return c
			}
			return int(a.seq) - int(b.seq)
		})
		// Pop half, then queue the popped again.
		for i, c := range ref[:len(ref)/2] {
			if h := s.head(); h != c {
				t.Fatalf("round %d: pop %d: head is %p, want %p", round, i, h, c)
			}
			if s.pop() != c || s.queued(c) {
				t.Fatalf("round %d: pop %d: wrong checker or still queued", round, i)
			}
			delete(want, c)
		}
		for _, c := range ref[:len(ref)/2] {
			queue(c)
		}
		all := append([]entry(nil), s.heap...)
		for _, r := range s.runs {
			all = append(all, r.All()...)
		}
		live := 0
		for _, e := range all {
			if s.live(e) {
				live++
			}
		}
		if live != len(want) || len(all)-live != s.stale {
			t.Fatalf("round %d: %d live entries for %d queued, %d stale counted of %d", round, live, len(want), s.stale, len(all)-live)
		}
	}
	// Removing nearly all compacts (runs and an empty heap included).
	n := 0
	for c := range want {
		if n++; n > 10 {
			s.remove(c)
			delete(want, c)
		}
	}
	for len(want) > 0 {
		c := s.pop()
		if !want[c] {
			t.Fatal("popped a checker not queued")
		}
		delete(want, c)
	}
	if s.head() != nil {
		t.Fatal("schedule not empty at the end")
	}
}

// TestScheduleStreams: as in the Runner, checkers due in a 10 ms tick
// are popped together and queued again as their probes end (in the order
// they end), each one of three delays after its end, after a random start
// (a warmup): pops come in order, and once the start has passed every
// entry is in a run, none in the heap.
func TestScheduleStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Unix(1000, 0)
	delays := []time.Duration{time.Second, 2 * time.Second, 300 * time.Millisecond}
	var s schedule
	var seq uint64
	delay := map[*checkState]time.Duration{}
	for i := range 3000 {
		c := &checkState{}
		delay[c] = delays[i%len(delays)]
		seq++
		c.due, c.seq = base.Add(time.Duration(rng.Int64N(int64(time.Second)))), seq
		s.push(c)
	}
	type end struct {
		at time.Time
		c  *checkState
	}
	var last entry
	popped := 0
	for tick := base; tick.Before(base.Add(20 * time.Second)); tick = tick.Add(10 * time.Millisecond) {
		var ends []end
		for h := s.head(); h != nil && !h.due.After(tick); h = s.head() {
			e, _, _ := s.top()
			if popped > 0 && e.less(last) {
				t.Fatalf("pop %d out of order: %+v after %+v", popped, e, last)
			}
			last = e
			popped++
			c := s.pop()
			ends = append(ends, end{tick.Add(time.Duration(rng.IntN(5000)) * time.Microsecond), c})
		}
		slices.SortFunc(ends, func(a, b end) int { return a.at.Compare(b.at) })
		for _, e := range ends {
			seq++
			e.c.due, e.c.seq = e.at.Add(delay[e.c]), seq
			s.push(e.c)
		}
		if tick.After(base.Add(3*time.Second)) && len(s.heap) > 0 {
			t.Fatalf("%v: %d entries in the heap in a steady state", tick.Sub(base), len(s.heap))
		}
	}
	if popped < 30000 {
		t.Fatalf("only %d pops", popped)
	}
}
