package lvs

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
	"github.com/keepvs/keepvs/internal/sched"
)

var (
	vip  = netip.MustParseAddr("10.0.0.1")
	web  = ServiceKey{Proto: TCP, Addr: vip, Port: 80}
	rs1  = netip.MustParseAddrPort("10.0.1.1:80")
	rs2  = netip.MustParseAddrPort("10.0.1.2:80")
	t0   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vip1 = netip.AddrPortFrom(vip, 80)
)

func newTable(t *testing.T) (*Table, *clocktest.Fake) {
	t.Helper()
	c := clocktest.New(t0)
	return NewTable(c, sched.Standard()), c
}

func client(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}), uint16(40000+i))
}

func mustAdd(t *testing.T, tb *Table, s Service, dests ...Destination) {
	t.Helper()
	if err := tb.AddService(s); err != nil {
		t.Fatal(err)
	}
	for _, d := range dests {
		if err := tb.AddDest(s.ServiceKey, d); err != nil {
			t.Fatal(err)
		}
	}
}

func dst(ap netip.AddrPort, w int) Destination {
	return Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: w}
}

func destStatus(t *testing.T, tb *Table, ap netip.AddrPort) DestStatus {
	t.Helper()
	for _, s := range tb.Services() {
		for _, d := range s.Dests {
			if d.AddrPort() == ap {
				return d
			}
		}
	}
	t.Fatalf("no destination %s", ap)
	return DestStatus{}
}

func TestManagementErrors(t *testing.T) {
	tb, _ := newTable(t)
	mustAdd(t, tb, Service{ServiceKey: web, Scheduler: "wlc"}, dst(rs1, 1))
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate service", tb.AddService(Service{ServiceKey: web, Scheduler: "rr"}), ErrServiceExists},
		{"unknown scheduler", tb.AddService(Service{ServiceKey: ServiceKey{Proto: TCP, Addr: vip, Port: 81}, Scheduler: "nosuch"}), ErrNoScheduler},
		{"zero port not persistent", tb.AddService(Service{ServiceKey: ServiceKey{Proto: TCP, Addr: vip}, Scheduler: "rr"}), ErrInvalid},
		{"dest of missing service", tb.AddDest(ServiceKey{Proto: UDP, Addr: vip, Port: 80}, dst(rs1, 1)), ErrNoService},
		{"duplicate dest", tb.AddDest(web, dst(rs1, 2)), ErrDestExists},
		{"edit missing dest", tb.EditDest(web, dst(rs2, 2)), ErrNoDest},
		{"delete missing dest", tb.DelDest(web, rs2), ErrNoDest},
		{"negative weight", tb.AddDest(web, dst(rs2, -1)), ErrRange},
		{"family mismatch", tb.AddDest(web, Destination{Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Weight: 1}), ErrInvalid},
		{"delete missing service", tb.DelService(ServiceKey{Proto: SCTP, Addr: vip, Port: 80}), ErrNoService},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	// Nothing above changed the table.
	svcs := tb.Services()
	if len(svcs) != 1 || len(svcs[0].Dests) != 1 || svcs[0].Dests[0].Weight != 1 {
		t.Errorf("table changed by failed operations: %+v", svcs)
	}
}

func TestStatesAndCounts(t *testing.T) {
	tb, clk := newTable(t)
	mustAdd(t, tb, Service{ServiceKey: web, Scheduler: "rr"}, dst(rs1, 1))
	s, err := tb.Open(web, client(1), vip1)
	if err != nil {
		t.Fatal(err)
	}
	d := destStatus(t, tb, rs1)
	if d.ActiveConns != 0 || d.InactConns != 1 {
		t.Fatalf("SYN_RECV: active %d inactive %d, want 0/1", d.ActiveConns, d.InactConns)
	}
	s.SetState(StateEstablished)
	if d = destStatus(t, tb, rs1); d.ActiveConns != 1 || d.InactConns != 0 {
		t.Fatalf("ESTABLISHED: active %d inactive %d, want 1/0", d.ActiveConns, d.InactConns)
	}
	s.In(100)
	s.Out(1000)
	s.Out(500)
	st := tb.Services()[0].Stats
	if st != (Stats{Conns: 1, InPkts: 1, OutPkts: 2, InBytes: 100, OutBytes: 1500}) {
		t.Errorf("stats %+v", st)
	}
	// --set tcpfin reaches a connection when it enters FIN_WAIT (the
	// kernel copies the timeout into the connection at each state change).
	tb.SetTimeouts(Timeouts{TCPFin: 30 * time.Second})
	if c := tb.Conns()[0]; c.Expires != 900*time.Second {
		t.Errorf("ESTABLISHED entry expires in %v, want the 900 s it had", c.Expires)
	}
	s.SetState(StateFinWait)
	if d = destStatus(t, tb, rs1); d.ActiveConns != 0 || d.InactConns != 1 {
		t.Fatalf("FIN_WAIT: active %d inactive %d, want 0/1", d.ActiveConns, d.InactConns)
	}
	conns := tb.Conns()
	if len(conns) != 1 || conns[0].State != "FIN_WAIT" || conns[0].Expires != 30*time.Second {
		t.Fatalf("conns %+v", conns)
	}
	clk.Advance(29 * time.Second)
	tb.Expire(clk.Now())
	if len(tb.Conns()) != 1 {
		t.Fatal("expired before --set tcpfin 30")
	}
	clk.Advance(time.Second)
	tb.Expire(clk.Now())
	if len(tb.Conns()) != 0 {
		t.Fatal("not expired after tcpfin")
	}
	if d = destStatus(t, tb, rs1); d.ActiveConns != 0 || d.InactConns != 0 {
		t.Fatalf("after expiry: active %d inactive %d", d.ActiveConns, d.InactConns)
	}
}

func TestUDPIsInactive(t *testing.T) {
	tb, clk := newTable(t)
	k := ServiceKey{Proto: UDP, Addr: vip, Port: 53}
	mustAdd(t, tb, Service{ServiceKey: k, Scheduler: "rr"}, dst(netip.MustParseAddrPort("10.0.1.1:53"), 1))
	s, err := tb.Open(k, client(1), netip.AddrPortFrom(vip, 53))
	if err != nil {
		t.Fatal(err)
	}
	d := tb.Services()[0].Dests[0]
	if d.ActiveConns != 0 || d.InactConns != 1 {
		t.Errorf("UDP conn counted active=%d inactive=%d, want 0/1 as IPVS", d.ActiveConns, d.InactConns)
	}
	if c := tb.Conns()[0]; c.State != "UDP" || c.Expires != 300*time.Second {
		t.Errorf("conn %+v", c)
	}
	clk.Advance(200 * time.Second)
	s.In(10) // traffic keeps it alive
	clk.Advance(200 * time.Second)
	tb.Expire(clk.Now())
	if len(tb.Conns()) != 1 {
		t.Error("expired although traffic refreshed it")
	}
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		name         string
		upper, lower uint32
		clearBelow   int // connections at which OVERLOAD clears
	}{
		{"lower set", 4, 2, 1},
		{"lower unset: 3/4 of upper", 4, 0, 2}, // total*4 < 4*3 → total < 3... cleared at 2
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, _ := newTable(t)
			mustAdd(t, tb, Service{ServiceKey: web, Scheduler: "rr"},
				Destination{Addr: rs1.Addr(), Port: 80, Weight: 1, UThreshold: tt.upper, LThreshold: tt.lower})
			var ss []*Session
			for i := 0; i < int(tt.upper); i++ {
				s, err := tb.Open(web, client(i), vip1)
				if err != nil {
					t.Fatalf("conn %d: %v", i, err)
				}
				ss = append(ss, s)
			}
			if !destStatus(t, tb, rs1).Overloaded {
				t.Fatal("not OVERLOADED at the upper threshold")
			}
			if _, err := tb.Open(web, client(99), vip1); !errors.Is(err, ErrNoDestination) {
				t.Fatalf("overloaded destination took a connection: %v", err)
			}
			// Drop connections one by one (RST → CLOSE, then expiry).
			for n := len(ss); n > 0; n-- {
				tb.mu.Lock()
				tb.removeConn(ss[n-1].c)
				tb.mu.Unlock()
				over := destStatus(t, tb, rs1).Overloaded
				if want := n-1 > tt.clearBelow; over != want && n-1 >= tt.clearBelow-0 {
					if n-1 == tt.clearBelow && over {
						t.Fatalf("still OVERLOADED at %d connections", n-1)
					}
				}
				if n-1 < tt.clearBelow && over {
					t.Fatalf("OVERLOADED at %d connections", n-1)
				}
				if n-1 > tt.clearBelow && !over {
					t.Fatalf("OVERLOAD cleared early, at %d connections", n-1)
				}
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	tb, clk := newTable(t)
	svc := Service{ServiceKey: web, Scheduler: "rr", Flags: FlagPersistent, Timeout: 60 * time.Second, Netmask: 0xffffff00}
	mustAdd(t, tb, svc, dst(rs1, 1), dst(rs2, 1))
	first, err := tb.Open(web, netip.MustParseAddrPort("192.168.1.10:1000"), vip1)
	if err != nil {
		t.Fatal(err)
	}
	// Same /24, other ports: same real server though rr would alternate.
	for i := 0; i < 5; i++ {
		s, err := tb.Open(web, netip.AddrPortFrom(netip.MustParseAddr("192.168.1.77"), uint16(2000+i)), vip1)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dest() != first.Dest() {
			t.Fatalf("client in the same /24 went to %s, template says %s", s.Dest(), first.Dest())
		}
	}
	other, _ := tb.Open(web, netip.MustParseAddrPort("192.168.2.10:1000"), vip1)
	if other.Dest() == first.Dest() {
		t.Errorf("another /24 should be scheduled afresh (rr): got the same %s", other.Dest())
	}
	var tmpl *Conn
	for _, c := range tb.Conns() {
		if c.Template && c.Client.Addr() == netip.MustParseAddr("192.168.1.0") {
			c := c
			tmpl = &c
		}
	}
	if tmpl == nil || tmpl.Client.Port() != 0 || tmpl.State != "NONE" || tmpl.Virtual != vip1 || tmpl.Expires != 60*time.Second {
		t.Fatalf("template %+v", tmpl)
	}
	if d := destStatus(t, tb, first.Dest()); d.PersistConns != 1 {
		t.Errorf("PersistConns %d", d.PersistConns)
	}
	// Quiescing the destination keeps persistent clients on it.
	tb.EditDest(web, dst(first.Dest(), 0))
	if s, _ := tb.Open(web, netip.MustParseAddrPort("192.168.1.99:3000"), vip1); s.Dest() != first.Dest() {
		t.Errorf("persistent client moved off a weight-0 destination")
	}
	// The template outlives its timeout while it controls connections, and
	// goes once they are gone (expiry ticks every second, as Run does).
	for i := 0; i < 600; i++ {
		clk.Advance(time.Second)
		tb.Expire(clk.Now())
	}
	if n := len(tb.Conns()); n != 0 {
		t.Errorf("%d entries left after everything timed out", n)
	}
}

func TestEstimator(t *testing.T) {
	tb, clk := newTable(t)
	mustAdd(t, tb, Service{ServiceKey: web, Scheduler: "rr"}, dst(rs1, 1))
	// 100 connections and 1000 bytes/s in every 2 s sample, for a while:
	// the average converges to the true rate, as the kernel's does.
	for i := 0; i < 40; i++ {
		for j := 0; j < 100; j++ {
			s, err := tb.Open(web, client(j), vip1)
			if err != nil {
				t.Fatal(err)
			}
			s.In(10)
			s.Out(10)
		}
		clk.Advance(2 * time.Second)
		tb.Services()
	}
	r := tb.Services()[0].Rates
	if r.CPS != 50 || r.InPPS != 50 || r.InBPS != 500 || r.OutBPS != 500 {
		t.Errorf("rates %+v, want cps 50, pps 50, bps 500", r)
	}
	// One sample after the traffic stops: the average falls by a quarter.
	clk.Advance(2 * time.Second)
	// The integer average settles 3 below 50<<10 (the step (R-avg)>>2 is 0
	// from there): 51197. One idle sample: 51197 + (-51197>>2) = 38397,
	// read as (38397+0x1ff)>>10 = 37.
	if r = tb.Services()[0].Rates; r.CPS != 37 {
		t.Errorf("cps after one idle sample = %d, want 37", r.CPS)
	}
	tb.Zero(nil)
	if st := tb.Services()[0]; st.Stats != (Stats{}) || st.Rates != (Rates{}) {
		t.Errorf("after zero: %+v %+v", st.Stats, st.Rates)
	}
}

func TestDelServiceKeepsConnsUntilExpiry(t *testing.T) {
	tb, clk := newTable(t)
	mustAdd(t, tb, Service{ServiceKey: web, Scheduler: "rr"}, dst(rs1, 1))
	s, _ := tb.Open(web, client(1), vip1)
	s.SetState(StateEstablished)
	if err := tb.DelService(web); err != nil {
		t.Fatal(err)
	}
	if len(tb.Conns()) != 1 {
		t.Fatal("connection dropped with its service; IPVS lets it expire")
	}
	clk.Advance(901 * time.Second)
	tb.Expire(clk.Now())
	if len(tb.Conns()) != 0 {
		t.Fatal("not expired")
	}
}
