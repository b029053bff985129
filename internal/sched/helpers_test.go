package sched

import (
	"net/netip"
	"strings"
	"testing"
)

// servers builds destinations A, B, C, ... (192.0.2.1, .2, .3, ... port 80)
// with the given weights, in list order.
func servers(weights ...int) []*Dest {
	ds := make([]*Dest, len(weights))
	for i, w := range weights {
		ds[i] = &Dest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Port: 80, Weight: w}
	}
	return ds
}

// server builds the destination servers would call name.
func server(name byte, w int) *Dest {
	return &Dest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, name - 'A' + 1}), Port: 80, Weight: w}
}

// name is a destination's letter, "-" for none.
func name(d *Dest) string {
	if d == nil {
		return "-"
	}
	return string(rune('A' + d.Addr.As4()[3] - 1))
}

// newSched builds a scheduler from Standard and hands it dests.
func newSched(t testing.TB, sched string, cfg Config, dests []*Dest) Scheduler {
	t.Helper()
	s, err := Standard().New(sched, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(dests)
	return s
}

// picks schedules n flows and names the picks, space separated. flow may
// be nil (one fixed flow); after, if set, sees each pick (to count
// connections, as the owner would).
func picks(s Scheduler, n int, flow func(i int) Flow, after func(*Dest)) string {
	out := make([]string, n)
	for i := range n {
		f := Flow{Proto: protoTCP, Src: netip.MustParseAddr("198.51.100.1"), SrcPort: 40000, Dst: netip.MustParseAddr("203.0.113.1"), DstPort: 80}
		if flow != nil {
			f = flow(i)
		}
		d := s.Schedule(f)
		out[i] = name(d)
		if after != nil && d != nil {
			after(d)
		}
	}
	return strings.Join(out, " ")
}

// connect counts a new active connection, as the owner does after a pick.
func connect(d *Dest) { d.ActiveConns++ }

// repeat joins n copies of seq.
func repeat(seq string, n int) string {
	return strings.TrimSpace(strings.Repeat(seq+" ", n))
}

// count tallies picks by destination name.
func count(s Scheduler, n int, flow func(i int) Flow) map[string]int {
	got := map[string]int{}
	for i := range n {
		f := Flow{Proto: protoTCP, Src: netip.MustParseAddr("198.51.100.1"), SrcPort: 40000}
		if flow != nil {
			f = flow(i)
		}
		got[name(s.Schedule(f))]++
	}
	return got
}

// clientFlow is the i-th of many clients (source addresses), to one
// virtual service.
func clientFlow(i int) Flow {
	return Flow{
		Proto:   protoTCP,
		Src:     netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		SrcPort: uint16(1024 + i%60000),
		Dst:     netip.MustParseAddr("203.0.113.1"),
		DstPort: 80,
	}
}

func diffSeq(t *testing.T, what, want, got string) {
	t.Helper()
	if want != got {
		t.Errorf("%s (-want +got):\n-%s\n+%s", what, want, got)
	}
}
