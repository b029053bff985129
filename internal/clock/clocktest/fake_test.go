package clocktest

import (
	"testing"
	"time"
)

func TestAdvanceRunsDueTimersInOrder(t *testing.T) {
	start := time.Unix(100, 0)
	c := New(start)
	var got []string
	var at []time.Duration
	record := func(s string) func() {
		return func() { got = append(got, s); at = append(at, c.Now().Sub(start)) }
	}
	c.AfterFunc(3*time.Second, record("c"))
	c.AfterFunc(1*time.Second, record("a"))
	stopped := c.AfterFunc(2*time.Second, record("never"))
	reset := c.AfterFunc(10*time.Second, record("b"))
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop reports whether it stopped a live timer")
	}
	reset.Reset(2 * time.Second)
	// A timer scheduled by a callback that falls due inside the same
	// Advance runs too.
	c.AfterFunc(4*time.Second, func() { c.AfterFunc(500*time.Millisecond, record("d")) })
	c.Advance(5 * time.Second)
	want := "a b c d"
	if s := join(got); s != want {
		t.Errorf("ran %q, want %q", s, want)
	}
	if at[1] != 2*time.Second || at[3] != 4500*time.Millisecond {
		t.Errorf("callbacks saw times %v", at)
	}
	if c.Now() != start.Add(5*time.Second) || c.Pending() != 0 {
		t.Errorf("now %v pending %d", c.Now(), c.Pending())
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}
