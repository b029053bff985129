package sched

import (
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
)

// setOf names an lblcr entry's members, newest first.
func setOf(s Scheduler, dst string) string {
	en := s.(*localityLeastConnRepl).table.get(toDst(dst)(0).Dst)
	if en == nil {
		return "none"
	}
	out := ""
	for _, m := range en.val.members {
		out += name(m.dest)
	}
	return out
}

func TestLocalityLeastConnRepl(t *testing.T) {
	clk := clocktest.New(epoch)
	ds := servers(2, 2, 2)
	a, b, c := ds[0], ds[1], ds[2]
	s := newSched(t, "lblcr", Config{Clock: clk}, ds)
	const dst = "203.0.113.10"
	x := toDst(dst)

	diffSeq(t, "first", "A", picks(s, 1, x, nil))
	diffSeq(t, "set", "A", setOf(s, dst))

	// A over its weight with B and C idle: wlc over the service picks B,
	// which joins the set at the head.
	a.ActiveConns = 3
	diffSeq(t, "replicated", "B", picks(s, 1, x, nil))
	diffSeq(t, "set", "BA", setOf(s, dst))

	// The least loaded member serves.
	diffSeq(t, "min B", "B", picks(s, 1, x, nil))
	a.ActiveConns, b.ActiveConns = 1, 3
	diffSeq(t, "min A", "A", picks(s, 1, x, nil))

	// Both members over their weight (min is B, the first of equals) and
	// C under half: C joins.
	a.ActiveConns = 3
	diffSeq(t, "grown", "C", picks(s, 1, x, nil))
	diffSeq(t, "set", "CBA", setOf(s, dst))

	// A flagged overloaded and C quiesced: the set's min skips both.
	a.ActiveConns, b.ActiveConns, c.ActiveConns = 0, 1, 0
	a.Overloaded, c.Weight = true, 0
	s.Update(ds)
	diffSeq(t, "min skips flagged and quiesced", "B", picks(s, 1, x, nil))
	a.Overloaded, c.Weight = false, 2
	s.Update(ds)

	// A member removed from the service is skipped; added back, it counts
	// again.
	s.Update([]*Dest{b, c})
	diffSeq(t, "A removed", "C", picks(s, 1, x, nil))
	c.ActiveConns = 2
	diffSeq(t, "A removed, C busier", "B", picks(s, 1, x, nil))
	s.Update(ds)
	diffSeq(t, "A back", "A", picks(s, 1, x, nil))
	diffSeq(t, "set unchanged", "CBA", setOf(s, dst))
}

// A set of more than one that has not changed for lblcr_expiration (after
// it, strictly) loses its most loaded member.
func TestLocalityLeastConnReplShrink(t *testing.T) {
	clk := clocktest.New(epoch)
	ds := servers(2, 2)
	a, b := ds[0], ds[1]
	s := newSched(t, "lblcr", Config{Clock: clk, Expiration: time.Hour}, ds)
	const dst = "203.0.113.10"
	x := toDst(dst)

	picks(s, 1, x, nil) // {A} at 0:00
	clk.Advance(time.Minute)
	a.ActiveConns = 3
	diffSeq(t, "B joins at 0:01", "B", picks(s, 1, x, nil))

	clk.Advance(time.Hour) // 1:01, exactly lastmod + 1h: not after
	diffSeq(t, "at 1:01", "B", picks(s, 1, x, nil))
	diffSeq(t, "set at 1:01", "BA", setOf(s, dst))

	clk.Advance(time.Second) // after: the most loaded, A, goes
	diffSeq(t, "at 1:01:01", "B", picks(s, 1, x, nil))
	diffSeq(t, "set at 1:01:01", "B", setOf(s, dst))

	// The member returned is chosen before the trim, so it may be the
	// member just trimmed: {A, B}, A flagged overloaded, B the busier one.
	clk.Advance(time.Minute)
	a.ActiveConns, b.ActiveConns = 0, 1
	b.Weight = 0 // A joins: B is quiesced
	s.Update(ds)
	diffSeq(t, "A joins", "A", picks(s, 1, x, nil))
	diffSeq(t, "set", "AB", setOf(s, dst))
	b.Weight = 2
	s.Update(ds)
	a.Overloaded = true
	clk.Advance(time.Hour + time.Second)
	// min skips A (flagged): B. max ignores the flag: B (256/2 > 0/2).
	diffSeq(t, "trimmed and returned", "B", picks(s, 1, x, nil))
	diffSeq(t, "set after", "A", setOf(s, dst))
}

// lblcr entries expire like lblc's, at the full check.
func TestLocalityLeastConnReplExpiry(t *testing.T) {
	clk := clocktest.New(epoch)
	ds := servers(100, 100)
	s := newSched(t, "lblcr", Config{Clock: clk}, ds)
	picks(s, 1, toDst("203.0.113.10"), nil)
	clk.Advance(24*time.Hour - time.Nanosecond)
	diffSeq(t, "before 24:00", "A", setOf(s, "203.0.113.10"))
	// Entries are collected lazily, when the next lookup runs the checks.
	clk.Advance(time.Nanosecond)
	picks(s, 1, toDst("203.0.113.99"), nil)
	diffSeq(t, "at 24:00", "none", setOf(s, "203.0.113.10"))
}
