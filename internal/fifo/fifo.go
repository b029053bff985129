// Package fifo is a first-in first-out queue on one slice: the check
// Runner's runs and deadlines and the TCP probers' deadlines, each in
// order by construction, are FIFOs of this kind.
package fifo

import "time"

// Queue is a FIFO of T. The zero value is empty and ready.
type Queue[T any] struct {
	e    []T
	head int
}

// Len is how many items are queued.
func (q *Queue[T]) Len() int { return len(q.e) - q.head }

// Push appends v.
func (q *Queue[T]) Push(v T) { q.e = append(q.e, v) }

// Front is the first item; the queue must not be empty.
func (q *Queue[T]) Front() T { return q.e[q.head] }

// Back is the last item; the queue must not be empty.
func (q *Queue[T]) Back() T { return q.e[len(q.e)-1] }

// Pop takes the first item off; the queue must not be empty. The slice
// is reused: emptied, it starts over, and once more than half of it (and
// 1,024 items) has been popped, the rest moves to its start.
func (q *Queue[T]) Pop() T {
	v := q.e[q.head]
	var zero T
	q.e[q.head] = zero
	q.head++
	if q.head == len(q.e) {
		q.e, q.head = q.e[:0], 0
	} else if q.head >= 1024 && q.head > len(q.e)/2 {
		n := copy(q.e, q.e[q.head:])
		clear(q.e[n:])
		q.e, q.head = q.e[:n], 0
	}
	return v
}

// Keep drops, in place and in order, the items keep refuses.
func (q *Queue[T]) Keep(keep func(T) bool) {
	kept := q.e[:0]
	for _, v := range q.e[q.head:] {
		if keep(v) {
			kept = append(kept, v)
		}
	}
	clear(q.e[len(kept):])
	q.e, q.head = kept, 0
}

// All is the items in order, valid until the next change.
func (q *Queue[T]) All() []T { return q.e[q.head:] }

// Lanes are FIFOs of T, one per length: items of one length pushed in the
// order they start end in that order, so each lane stays sorted by
// deadline with no heap — a push or pop is O(1). An item Dead reports
// (its probe ended) is dropped when it reaches its lane's head.
type Lanes[T any] struct {
	dead   func(T) bool
	before func(a, b T) bool
	lanes  []*lane[T]
}

type lane[T any] struct {
	length time.Duration
	Queue[T]
}

// NewLanes returns empty lanes; dead tells an item to drop, before
// whether a's deadline comes before b's.
func NewLanes[T any](dead func(T) bool, before func(a, b T) bool) Lanes[T] {
	return Lanes[T]{dead: dead, before: before}
}

func (l *Lanes[T]) dropDead(q *lane[T]) {
	for q.Len() > 0 && l.dead(q.Front()) {
		q.Pop()
	}
}

// Push adds v to the lane of its length.
func (l *Lanes[T]) Push(length time.Duration, v T) {
	for _, q := range l.lanes {
		if q.length == length {
			q.Push(v)
			return
		}
	}
	q := &lane[T]{length: length}
	q.Push(v)
	l.lanes = append(l.lanes, q)
}

// Next is the live item due first.
func (l *Lanes[T]) Next() (T, bool) {
	var first T
	ok := false
	for _, q := range l.lanes {
		l.dropDead(q)
		if q.Len() > 0 && (!ok || l.before(q.Front(), first)) {
			first, ok = q.Front(), true
		}
	}
	return first, ok
}

// PopDue pops, lane by lane and in order within each, every live item
// due says has come, and calls f with it.
func (l *Lanes[T]) PopDue(due func(T) bool, f func(T)) {
	for _, q := range l.lanes {
		for l.dropDead(q); q.Len() > 0 && due(q.Front()); l.dropDead(q) {
			f(q.Pop())
		}
	}
}
