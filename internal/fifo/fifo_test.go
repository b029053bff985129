package fifo

import (
	"slices"
	"testing"
)

// TestQueue: pushes and pops interleaved across the compaction threshold
// keep the order, Keep filters in order, and an emptied queue starts over.
func TestQueue(t *testing.T) {
	var q Queue[int]
	next, want := 0, 0
	for round := range 50 {
		for range 300 {
			q.Push(next)
			next++
		}
		for range 200 + round%3 {
			if got := q.Pop(); got != want {
				t.Fatalf("round %d: popped %d, want %d", round, got, want)
			}
			want++
		}
		if q.Len() != next-want || q.Front() != want || q.Back() != next-1 {
			t.Fatalf("round %d: len %d front %d back %d, want %d %d %d", round, q.Len(), q.Front(), q.Back(), next-want, want, next-1)
		}
	}
	if cap(q.e) > 4*q.Len()+2048 {
		t.Errorf("the slice grew to %d for %d items", cap(q.e), q.Len())
	}
	q.Keep(func(v int) bool { return v%2 == 0 })
	all := q.All()
	if !slices.IsSorted(all) || len(all) == 0 || all[0]%2 != 0 {
		t.Fatalf("after Keep: %v...", all[:min(len(all), 5)])
	}
	for q.Len() > 0 {
		q.Pop()
	}
	if q.head != 0 || len(q.e) != 0 {
		t.Fatalf("an emptied queue keeps head %d, len %d", q.head, len(q.e))
	}
}
