package check

import (
	"container/heap"
	"time"
)

// schedule is the min-heap of checkers waiting for their next probe, by due
// time then by the order they were queued in. One clock timer, armed for
// its head, serves every checker of the Runner. Each entry keeps its sort
// key inline (the due time as nanoseconds since the schedule's epoch, and
// the queue order), so sifting 10,000 entries reads no checkState and
// compares no time.Time.
type schedule struct {
	epoch time.Time // the first due time pushed: keys count from it
	e     []entry
}

type entry struct {
	at  int64 // due - epoch, in ns
	seq uint64
	c   *checkState
}

func (s *schedule) Len() int { return len(s.e) }

func (s *schedule) Less(i, j int) bool {
	if s.e[i].at != s.e[j].at {
		return s.e[i].at < s.e[j].at
	}
	return s.e[i].seq < s.e[j].seq
}

func (s *schedule) Swap(i, j int) {
	s.e[i], s.e[j] = s.e[j], s.e[i]
	s.e[i].c.idx, s.e[j].c.idx = i, j
}

func (s *schedule) Push(x any) {
	en := x.(entry)
	en.c.idx = len(s.e)
	s.e = append(s.e, en)
}

func (s *schedule) Pop() any {
	n := len(s.e)
	en := s.e[n-1]
	s.e[n-1] = entry{}
	en.c.idx = -1
	s.e = s.e[:n-1]
	return en
}

// push queues c for c.due, after every checker already queued for the
// same time (c.seq).
func (s *schedule) push(c *checkState) {
	if s.epoch.IsZero() {
		s.epoch = c.due
	}
	heap.Push(s, entry{at: int64(c.due.Sub(s.epoch)), seq: c.seq, c: c})
}

func (s *schedule) remove(c *checkState) {
	if c.idx >= 0 {
		heap.Remove(s, c.idx)
	}
}

func (s *schedule) pop() *checkState { return heap.Pop(s).(entry).c }

// head is the checker due first; the schedule must not be empty.
func (s *schedule) head() *checkState { return s.e[0].c }
