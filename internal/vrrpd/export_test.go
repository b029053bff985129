package vrrpd

import "time"

// Stall holds the node's loop until until, as a machine that stops
// running it would: the loop sleeps in small steps without ever reading
// its descriptors, so nothing it waits for is seen until then. (It
// sleeps rather than spins: a realtime loop that ran 60 ms without a
// break would meet its RLIMIT_RTTIME.)
func (n *Node) Stall(until time.Time) {
	n.call(func() {
		for time.Now().Before(until) {
			napRaw(500 * time.Microsecond)
		}
	})
}

// Settle waits until the loop has handled what was posted to it before
// and the worker has done the jobs the loop handed it.
func (n *Node) Settle() {
	var tail uint64
	n.call(func() { tail = n.work.tail.Load() })
	for n.work.head.Load() < tail {
		time.Sleep(time.Millisecond)
	}
	// The worker takes a job off the ring before it does it.
	time.Sleep(20 * time.Millisecond)
}
