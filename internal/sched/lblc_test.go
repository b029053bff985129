package sched

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLocalityLeastConn(t *testing.T) {
	clk := clocktest.New(epoch)
	ds := servers(10, 10)
	a, b := ds[0], ds[1]
	s := newSched(t, "lblc", Config{Clock: clk}, ds)
	x := toDst("203.0.113.10")

	// wlc picks A; X sticks to it while A is within its weight, though
	// wlc alone would now pick B.
	diffSeq(t, "sticky", "A A A A A", picks(s, 5, x, connect))
	// Another destination address is scheduled on its own: B.
	diffSeq(t, "other address", "B", picks(s, 1, toDst("203.0.113.11"), nil))

	// A over its weight while some destination is under half of its own:
	// X moves to wlc's choice, B.
	a.ActiveConns, b.ActiveConns = 11, 4
	diffSeq(t, "overloaded", "B", picks(s, 1, x, nil))
	a.ActiveConns = 0
	diffSeq(t, "sticks to B", "B", picks(s, 1, x, nil))

	// B over its weight, but nobody under half: X stays.
	a.ActiveConns, b.ActiveConns = 6, 11
	diffSeq(t, "nobody under half", "B", picks(s, 1, x, nil))

	// B quiesced: X moves to A.
	b.Weight = 0
	s.Update(ds)
	diffSeq(t, "quiesced", "A", picks(s, 1, x, nil))

	// The overload flag alone does not move a cached address (the kernel
	// checks only availability, weight and is_overloaded there).
	b.Weight = 10
	s.Update(ds)
	a.Overloaded = true
	diffSeq(t, "flagged but cached", "A", picks(s, 1, x, nil))
	a.Overloaded = false

	// A removed: X moves to B; A added back does not take it back.
	s.Update([]*Dest{b})
	diffSeq(t, "removed", "B", picks(s, 1, x, nil))
	s.Update(ds)
	diffSeq(t, "added back", "B", picks(s, 1, x, nil))

	// No destination at all.
	a.Weight, b.Weight = 0, 0
	s.Update(ds)
	diffSeq(t, "none", "-", picks(s, 1, x, nil))
}

// Entries expire at the periodic full check, every 30 minutes, once unused
// for lblc_expiration (24h): not at lastuse + 24h itself.
func TestLocalityLeastConnExpiry(t *testing.T) {
	setup := func() (*clocktest.Fake, []*Dest, Scheduler) {
		clk := clocktest.New(epoch)
		ds := servers(100, 100)
		s := newSched(t, "lblc", Config{Clock: clk}, ds)
		diffSeq(t, "X and Y at 0", "A A", picks(s, 1, toDst("203.0.113.10"), nil)+" "+picks(s, 1, toDst("203.0.113.11"), nil))
		// From now on wlc prefers B, so a fresh entry shows as B.
		ds[0].ActiveConns = 1
		return clk, ds, s
	}
	x, y := toDst("203.0.113.10"), toDst("203.0.113.11")

	clk, _, s := setup()
	clk.Advance(24*time.Hour - time.Minute)
	diffSeq(t, "X used at 23:59", "A", picks(s, 1, x, nil))
	clk.Advance(time.Minute) // the full check at 24:00
	diffSeq(t, "Y expired at 24:00, X not", "B A", picks(s, 1, y, nil)+" "+picks(s, 1, x, nil))

	// Just before the 24:00 check the last full check was at 23:30.
	clk, _, s = setup()
	clk.Advance(24*time.Hour - time.Nanosecond)
	diffSeq(t, "Y before 24:00", "A", picks(s, 1, y, nil))

	// lblc_expiration 1h: Y unused since 0 goes at the 1:00 check.
	clk = clocktest.New(epoch)
	ds := servers(100, 100)
	s = newSched(t, "lblc", Config{Clock: clk, Expiration: time.Hour}, ds)
	picks(s, 1, y, nil)
	ds[0].ActiveConns = 1
	clk.Advance(59 * time.Minute)
	diffSeq(t, "1h: at 0:59", "A", picks(s, 1, y, nil))
	clk.Advance(2 * time.Hour) // checks at 1:30 and 2:00 (used at 0:59)
	diffSeq(t, "1h: at 2:59", "B", picks(s, 1, y, nil))
}

// Past max_size (1024*16 entries), each minute's check drops entries idle
// for 6 minutes, whole buckets at a time from the rover on, until 4/3 of
// the excess is gone.
func TestLocalityLeastConnCollection(t *testing.T) {
	clk := clocktest.New(epoch)
	s := newSched(t, "lblc", Config{Clock: clk}, servers(1, 1)).(*localityLeastConn)
	const n = localityMaxSize + 100
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}) }
	for i := range n {
		s.Schedule(Flow{Dst: addr(i)})
	}
	if s.table.entries != n {
		t.Fatalf("%d entries, want %d", s.table.entries, n)
	}
	perBucket := make([]int, localityTabSize)
	for i := range n {
		perBucket[localityBucket(addr(i))]++
	}

	// Minutes 1-5: over max_size, but nothing idle for 6 minutes yet; the
	// rover goes all the way round, back to 0.
	clk.Advance(5 * time.Minute)
	s.table.now()
	if s.table.entries != n || s.table.rover != 0 {
		t.Fatalf("at 5m: %d entries, rover %d; want %d, 0", s.table.entries, s.table.rover, n)
	}

	// Minute 6: goal (100*4/3 = 133) entries, whole buckets from 1 on.
	clk.Advance(time.Minute)
	s.table.now()
	goal, removed, j := 133, 0, 0
	for removed < goal {
		j++
		removed += perBucket[j]
	}
	if s.table.entries != n-removed || s.table.rover != j {
		t.Errorf("at 6m: %d entries, rover %d; want %d, %d", s.table.entries, s.table.rover, n-removed, j)
	}
	for b := 1; b <= j; b++ {
		if len(s.table.bucket[b]) != 0 {
			t.Errorf("bucket %d not collected", b)
		}
	}
	if len(s.table.bucket[j+1]) != perBucket[j+1] {
		t.Errorf("bucket %d collected past the goal", j+1)
	}
}
