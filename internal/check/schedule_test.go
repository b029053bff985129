package check

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

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
			if s.pop() != c || c.queued {
				t.Fatalf("round %d: pop %d: wrong checker or still queued", round, i)
			}
			delete(want, c)
		}
		for _, c := range ref[:len(ref)/2] {
			queue(c)
		}
		live := 0
		for _, e := range s.e {
			if e.live() {
				live++
			}
		}
		if live != len(want) || len(s.e)-live != s.stale {
			t.Fatalf("round %d: %d live entries for %d queued, %d stale counted of %d", round, live, len(want), s.stale, len(s.e)-live)
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
