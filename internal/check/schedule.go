package check

import "container/heap"

// schedule is the min-heap of checkers waiting for their next probe, by due
// time then by the order they were queued in. One clock timer, armed for
// its head, serves every checker of the Runner.
type schedule []*checkState

func (s schedule) Len() int { return len(s) }

func (s schedule) Less(i, j int) bool {
	if !s[i].due.Equal(s[j].due) {
		return s[i].due.Before(s[j].due)
	}
	return s[i].seq < s[j].seq
}

func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].idx, s[j].idx = i, j
}

func (s *schedule) Push(x any) {
	c := x.(*checkState)
	c.idx = len(*s)
	*s = append(*s, c)
}

func (s *schedule) Pop() any {
	old := *s
	n := len(old)
	c := old[n-1]
	old[n-1] = nil
	c.idx = -1
	*s = old[:n-1]
	return c
}

func (s *schedule) push(c *checkState) { heap.Push(s, c) }

func (s *schedule) remove(c *checkState) {
	if c.idx >= 0 {
		heap.Remove(s, c.idx)
	}
}

func (s *schedule) pop() *checkState { return heap.Pop(s).(*checkState) }
