package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
)

// benchService builds n destinations with mixed weights and connection
// counts (some quiesced, some overloaded) and a scheduler over them, plus
// 1024 flows from different clients to 256 destination addresses, already
// scheduled once so lblc and lblcr have their entries.
func benchService(tb testing.TB, sched string, n int) (Scheduler, []Flow) {
	ds := make([]*Dest, n)
	for i := range ds {
		ds[i] = &Dest{
			Addr:        netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}),
			Port:        80,
			Weight:      1 + i%7*3,
			ActiveConns: (i * 37) % 50,
			InactConns:  (i * 91) % 200,
		}
		if i%13 == 5 {
			ds[i].Weight = 0
		}
		if i%17 == 3 {
			ds[i].Overloaded = true
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := Config{
		Flags: SHFallback | SHPort,
		Clock: clocktest.New(epoch),
		Rand:  rng.Uint32N,
	}
	s := newSched(tb, sched, cfg, ds)
	flows := make([]Flow, 1024)
	for i := range flows {
		flows[i] = Flow{
			Proto:   protoTCP,
			Src:     netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}),
			SrcPort: uint16(30000 + i),
			Dst:     netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
			DstPort: 80,
		}
		s.Schedule(flows[i])
	}
	return s, flows
}

func BenchmarkSchedule(b *testing.B) {
	for _, sched := range Standard().Names() {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", sched, n), func(b *testing.B) {
				s, flows := benchService(b, sched, n)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					s.Schedule(flows[i&1023])
					i++
				}
			})
		}
	}
}

func TestScheduleDoesNotAllocate(t *testing.T) {
	for _, sched := range Standard().Names() {
		s, flows := benchService(t, sched, 100)
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			s.Schedule(flows[i&1023])
			i++
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Schedule", sched, allocs)
		}
	}
}
