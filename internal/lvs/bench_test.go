package lvs

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkConnLifecycle is what each proxied connection costs the table:
// Open (schedule + enter), ESTABLISHED, TIME_WAIT, then expiry two minutes
// later, with the clock moving 50 µs per connection (20k connections/s, so
// about 2.4 M entries live in TIME_WAIT at a time) and expiry ticking every
// second as Run does.
//
//	go test -run XXX -bench ConnLifecycle -benchmem ./internal/lvs/
func BenchmarkConnLifecycle(b *testing.B) {
	tb, clk := newTable(&testing.T{})
	if err := tb.AddService(Service{ServiceKey: web, Scheduler: "wlc"}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		tb.AddDest(web, Destination{Addr: netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), Port: 80, Weight: 1})
	}
	b.ReportAllocs()
	b.ResetTimer()
	last := clk.Now()
	for i := 0; i < b.N; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(i >> 16), byte(i >> 8)}), uint16(i))
		s, err := tb.Open(web, c, vip1)
		if err != nil {
			b.Fatal(err)
		}
		s.SetState(StateEstablished)
		s.In(100)
		s.Out(1000)
		s.SetState(StateTimeWait)
		clk.Advance(50 * time.Microsecond)
		if now := clk.Now(); now.Sub(last) >= time.Second {
			tb.Expire(now)
			last = now
		}
	}
}

func TestWheelLongJump(t *testing.T) {
	tb, clk := newTable(t)
	mustAdd(t, tb, Service{ServiceKey: web, Scheduler: "rr"}, dst(rs1, 1))
	for i := 0; i < 1000; i++ {
		s, _ := tb.Open(web, client(i), vip1)
		if i%2 == 0 {
			s.SetState(StateEstablished) // 900 s
		}
	}
	clk.Advance(61 * time.Second)
	tb.Expire(clk.Now())
	if n := len(tb.Conns()); n != 500 {
		t.Fatalf("%d left after the SYN_RECV minute, want the 500 established", n)
	}
	clk.Advance(30 * 24 * time.Hour) // the clock jumps (a suspended host)
	tb.Expire(clk.Now())
	if n := len(tb.Conns()); n != 0 {
		t.Fatalf("%d left after a month", n)
	}
	if d := destStatus(t, tb, rs1); d.ActiveConns != 0 || d.InactConns != 0 {
		t.Errorf("counts after expiry %+v", d)
	}
}
