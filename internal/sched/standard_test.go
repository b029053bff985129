package sched

import (
	"slices"
	"testing"
)

func TestStandard(t *testing.T) {
	want := []string{"dh", "fo", "lblc", "lblcr", "lc", "mh", "nq", "ovf", "rr", "sed", "sh", "twos", "wlc", "wrr"}
	r := Standard()
	if got := r.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() (-want +got):\n-%v\n+%v", want, got)
	}
	for _, n := range want {
		s, err := r.New(n, Config{})
		if err != nil {
			t.Fatalf("New(%q): %v", n, err)
		}
		if s.Name() != n {
			t.Errorf("New(%q).Name() = %q", n, s.Name())
		}
		// No destinations: no scheduler may pick one, or panic.
		if d := s.Schedule(clientFlow(1)); d != nil {
			t.Errorf("%s with no destinations picked %v", n, d)
		}
		s.Update(nil)
		if d := s.Schedule(clientFlow(1)); d != nil {
			t.Errorf("%s after Update(nil) picked %v", n, d)
		}
	}
	if _, err := r.New("nope", Config{}); err == nil {
		t.Error(`New("nope") succeeded`)
	}
}

// Every scheduler skips weight-0 and overloaded destinations, whatever the
// flow (lblc being the documented exception for a cached overloaded
// destination, which this test never creates since C and D are never
// eligible).
func TestNeverQuiescedOrOverloaded(t *testing.T) {
	for _, n := range Standard().Names() {
		t.Run(n, func(t *testing.T) {
			ds := servers(3, 2, 0, 5)
			ds[3].Overloaded = true
			s := newSched(t, n, Config{Flags: SHFallback}, ds)
			for i := range 2000 {
				d := s.Schedule(clientFlow(i))
				if d == ds[2] || d == ds[3] {
					t.Fatalf("flow %d went to %s (weight %d, overloaded %v)", i, name(d), d.Weight, d.Overloaded)
				}
			}
		})
	}
}
