package fifo

import (
	"slices"
	"testing"
	"time"
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

// TestLanes: items of two lengths, some dead, come out by deadline:
// Next is the earliest live one, PopDue takes exactly the live ones due.
func TestLanes(t *testing.T) {
	type item struct {
		at   int
		dead bool
	}
	l := NewLanes(func(v *item) bool { return v.dead }, func(a, b *item) bool { return a.at < b.at })
	if _, ok := l.Next(); ok {
		t.Fatal("empty lanes have a next item")
	}
	var items []*item
	for start := range 10 {
		for _, length := range []int{3, 10} {
			v := &item{at: start + length, dead: start%4 == 0}
			items = append(items, v)
			l.Push(time.Duration(length), v)
		}
	}
	if v, ok := l.Next(); !ok || v.at != 4 {
		t.Fatalf("next = %+v, want the live item due at 4 (the one at 3 is dead)", v)
	}
	var got []int
	l.PopDue(func(v *item) bool { return v.at <= 11 }, func(v *item) { got = append(got, v.at) })
	if want := []int{4, 5, 6, 8, 9, 10, 11}; !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	items[len(items)-1].dead = true // the last one pushed (at 19)
	got = nil
	l.PopDue(func(*item) bool { return true }, func(v *item) { got = append(got, v.at) })
	if want := []int{12, 12, 13, 15, 16, 17}; !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	if _, ok := l.Next(); ok {
		t.Fatal("lanes not empty at the end")
	}
}
