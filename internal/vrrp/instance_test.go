package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// Master down intervals of the VRRPv2 instances below (advert_int 1s):
// 3s + (256-p)/256 s.
var (
	down100 = 3*time.Second + us(609375) // 156/256 s
	down150 = 3*time.Second + us(414062) // 106/256 s = 414062.5 µs
)

func TestStartBackupThenMasterWithoutAdverts(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	if got, want := kinds(s.do(in, Start())), "INIT->BACKUP(start) set(master-down,3.609375s)"; got != want {
		t.Fatalf("start: %s, want %s", got, want)
	}
	if got := s.at(down100 - time.Microsecond); len(got) != 0 || in.State() != StateBackup {
		t.Fatalf("1µs early: %s, state %v", kinds(got), in.State())
	}
	got := kinds(s.advance(time.Microsecond))
	want := "add-vips garp(5) BACKUP->MASTER(master down timer expired) set(garp-delay,5s) send(100) set(advert,1s)"
	if got != want {
		t.Fatalf("at master down:\n got %s\nwant %s", got, want)
	}
	if got, want := kinds(s.advance(time.Second)), "send(100) set(advert,1s)"; got != want {
		t.Errorf("advert timer: %s, want %s", got, want)
	}
	// garp_master_delay: the second burst 5s after becoming master.
	if got := s.advance(4 * time.Second); !has(got, ActGARP) {
		t.Errorf("no delayed GARP burst at +5s: %s", kinds(got))
	}
}

func TestInitialMasterNotOwnerStartsAsBackup(t *testing.T) {
	// keepalived 2.x: state MASTER without priority 255 starts BACKUP
	// with the full master down timer.
	s, in := newSimCfg(t, cfg("VI_1", 100, func(c *Config) { c.InitialMaster = true }))
	if got, want := kinds(s.do(in, Start())), "INIT->BACKUP(start) set(master-down,3.609375s)"; got != want {
		t.Fatalf("start: %s, want %s", got, want)
	}
}

func TestAddressOwner(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 255, func(c *Config) { c.InitialMaster = true }))
	got := kinds(s.do(in, Start()))
	want := "add-vips garp(5) INIT->MASTER(address owner) set(garp-delay,5s) send(255) set(advert,1s)"
	if got != want {
		t.Fatalf("start:\n got %s\nwant %s", got, want)
	}
	// Tracking cannot move the owner's priority.
	if got := s.do(in, PriorityChanged(-100)); has(got, ActPriority) || in.Priority() != 255 {
		t.Errorf("owner priority moved: %s, %d", kinds(got), in.Priority())
	}
	// A lower priority cannot take it over: the owner answers.
	if got, want := kinds(s.do(in, AdvertReceived(advert(in.Config(), 254), addr2))), "send(255) set(advert,1s) garp(5) set(garp-lower-prio,5s) master-rx-lower-pri"; got != want {
		t.Errorf("lower advert: %s, want %s", got, want)
	}
	// Back from a fault, the owner is master at once.
	s.do(in, FaultChanged(true))
	if got, want := transitions(s.do(in, FaultChanged(false))), "VI_1:FAULT->MASTER"; got != want {
		t.Errorf("fault cleared: %s, want %s", got, want)
	}
}

func TestOwnerConflict(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 255))
	s.do(in, Start())
	got := s.do(in, AdvertReceived(advert(in.Config(), 255), addr2))
	if in.State() != StateBackup || in.Priority() != 254 || in.Verdict() != ReasonHigherPriority {
		t.Fatalf("two owners: state %v prio %d verdict %v: %s", in.State(), in.Priority(), in.Verdict(), kinds(got))
	}
}

func TestBackupReceive(t *testing.T) {
	// One advert to a backup of priority 100 that has run 1s since start.
	tests := []struct {
		name    string
		opts    []func(*Config)
		prio    uint8
		verdict Reason
		// timer is the master down timer left after the advert.
		timer time.Duration
	}{
		{"higher resets", nil, 200, ReasonAccepted, down100},
		{"equal resets", nil, 100, ReasonAccepted, down100},
		{"lower discarded when preempting", nil, 50, ReasonLowerPriority, down100 - time.Second},
		{"lower resets with nopreempt", []func(*Config){noPreempt}, 50, ReasonAccepted, down100},
		{"lower resets during preempt_delay", []func(*Config){preemptDelay(10 * time.Second)}, 50, ReasonAccepted, down100},
		{"priority 0 leaves the skew", nil, 0, ReasonPriorityZero, us(609375)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, in := newSimCfg(t, cfg("VI_1", 100, tt.opts...))
			s.do(in, Start())
			s.at(time.Second)
			s.do(in, AdvertReceived(advert(in.Config(), tt.prio), addr2))
			if in.Verdict() != tt.verdict {
				t.Errorf("verdict %v, want %v", in.Verdict(), tt.verdict)
			}
			d, ok := in.Deadline(TimerMasterDown)
			if !ok || d.Sub(s.clk.Now()) != tt.timer {
				t.Errorf("master down in %v (armed %v), want %v", d.Sub(s.clk.Now()), ok, tt.timer)
			}
			if in.State() != StateBackup {
				t.Errorf("state %v", in.State())
			}
		})
	}
}

// peer sends adverts at prio every second from `from` to `to` (inclusive,
// offsets from t0) and reports the state after each.
func peer(s *sim, in *Instance, prio uint8, src netip.Addr, from, to time.Duration) {
	for at := from; at <= to; at += time.Second {
		s.at(at)
		if in.State() != StateBackup {
			return
		}
		s.do(in, AdvertReceived(advert(in.Config(), prio), src))
	}
}

func TestHigherPriorityKeepsBackup(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	s.do(in, Start())
	peer(s, in, 200, addr2, time.Second, 30*time.Second)
	s.advance(down100 - time.Microsecond)
	if in.State() != StateBackup {
		t.Fatalf("state %v, want BACKUP while the master is heard", in.State())
	}
	if a, p := in.Master(); a != addr2 || p != 200 {
		t.Errorf("master %v/%d", a, p)
	}
	// The master goes silent: BACKUP becomes MASTER one master down
	// interval after its last advert (30s).
	s.advance(time.Microsecond)
	if in.State() != StateMaster || s.elapsed() != 30*time.Second+down100 {
		t.Errorf("state %v at %v, want MASTER at %v", in.State(), s.elapsed(), 30*time.Second+down100)
	}
}

func TestLowerPriorityPreempt(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	s.do(in, Start())
	// A lower-priority master advertises from 1s on; its adverts are
	// discarded, so the start's master down timer runs out.
	peer(s, in, 50, addr2, time.Second, 3*time.Second)
	var got []Action
	for in.State() == StateBackup && s.elapsed() < time.Minute {
		got = s.advance(time.Millisecond)
	}
	if s.elapsed() != down100.Truncate(time.Millisecond)+time.Millisecond || in.State() != StateMaster {
		t.Fatalf("MASTER at %v, want at the first master down (%v)", s.elapsed(), down100)
	}
	if got, want := transitions(got), "VI_1:BACKUP->MASTER"; got != want {
		t.Errorf("transitions %s", got)
	}
	for _, a := range got {
		if a.Kind == ActTransition && a.Reason != ReasonPreempt {
			t.Errorf("reason %v, want %v", a.Reason, ReasonPreempt)
		}
	}
}

func TestNoPreempt(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100, noPreempt))
	s.do(in, Start())
	peer(s, in, 50, addr2, time.Second, 60*time.Second)
	if in.State() != StateBackup {
		t.Fatalf("nopreempt took over a lower priority master: %v", in.State())
	}
}

func TestPreemptDelay(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100, preemptDelay(10*time.Second)))
	s.do(in, Start())
	// The first lower advert (1s) starts the delay; adverts keep coming.
	s.at(time.Second)
	if got := kinds(s.do(in, AdvertReceived(advert(in.Config(), 50), addr2))); got != "set(master-down,3.609375s) set(preempt-delay,10s)" {
		t.Fatalf("first lower advert: %s", got)
	}
	peer(s, in, 50, addr2, 2*time.Second, 10*time.Second)
	s.at(11*time.Second - time.Microsecond)
	if in.State() != StateBackup {
		t.Fatalf("took over before preempt_delay: %v at %v", in.State(), s.elapsed())
	}
	got := s.advance(time.Microsecond)
	if in.State() != StateMaster {
		t.Fatalf("no takeover when preempt_delay ran out: %s", kinds(got))
	}
	if got, want := transitions(got), "VI_1:BACKUP->MASTER"; got != want {
		t.Errorf("transitions %s", got)
	}
}

func TestPreemptDelayStoppedByHigherMaster(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100, preemptDelay(10*time.Second)))
	s.do(in, Start())
	s.at(time.Second)
	s.do(in, AdvertReceived(advert(in.Config(), 50), addr2))
	s.at(2 * time.Second)
	if got := kinds(s.do(in, AdvertReceived(advert(in.Config(), 150), addr3))); got != "set(master-down,3.609375s) stop(preempt-delay)" {
		t.Fatalf("higher advert: %s", got)
	}
	peer(s, in, 150, addr3, 3*time.Second, 20*time.Second)
	if in.State() != StateBackup {
		t.Fatalf("state %v", in.State())
	}
}

func TestPriorityZeroTakeoverAfterSkew(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	s.do(in, Start())
	peer(s, in, 200, addr2, time.Second, 5*time.Second)
	s.at(5*time.Second + 500*time.Millisecond)
	s.do(in, AdvertReceived(advert(in.Config(), 0), addr2))
	// Skew_Time for 100 is 609375 µs.
	s.advance(us(609374))
	if in.State() != StateBackup {
		t.Fatalf("took over before the skew: %v", in.State())
	}
	got := s.advance(time.Microsecond)
	if in.State() != StateMaster {
		t.Fatalf("no takeover after the skew: %s", kinds(got))
	}
	for _, a := range got {
		if a.Kind == ActTransition && a.Reason != ReasonPriorityZero {
			t.Errorf("reason %v", a.Reason)
		}
	}
}

// master returns a sim whose instance is MASTER at 0s (owner-free: it
// starts, times out, and we rebase the clock).
func master(t *testing.T, c Config) (*sim, *Instance) {
	t.Helper()
	s, in := newSimCfg(t, c)
	s.do(in, Start())
	s.advance(MasterDownInterval(c.Version, c.Priority, c.AdvertInterval, 3))
	if in.State() != StateMaster {
		t.Fatalf("not master: %v", in.State())
	}
	return s, in
}

func TestMasterReceive(t *testing.T) {
	tests := []struct {
		name    string
		opts    []func(*Config)
		prio    uint8
		from    netip.Addr
		verdict Reason
		acts    string
	}{
		{"higher priority", nil, 150, addr2, ReasonHigherPriority,
			"stop(advert) stop(garp-delay) remove-vips MASTER->BACKUP(higher priority) set(master-down,3.609375s)"},
		{"higher priority, higher_prio_send_advert", []func(*Config){func(c *Config) { c.HigherPrioSendAdvert = true }}, 150, addr2, ReasonHigherPriority,
			"send(100) set(advert,1s) stop(advert) stop(garp-delay) remove-vips MASTER->BACKUP(higher priority) set(master-down,3.609375s)"},
		{"equal priority, higher address", nil, 100, addr2, ReasonEqualPriorityHigherAddr,
			"stop(advert) stop(garp-delay) remove-vips MASTER->BACKUP(equal priority, higher address) set(master-down,3.609375s)"},
		{"equal priority, lower address", []func(*Config){src(addr2)}, 100, addr1, ReasonLowerPriority,
			"send(100) set(advert,1s) garp(5) set(garp-lower-prio,5s) master-rx-lower-pri"},
		{"lower priority", nil, 50, addr2, ReasonLowerPriority,
			"send(100) set(advert,1s) garp(5) set(garp-lower-prio,5s) master-rx-lower-pri"},
		{"lower priority, lower_prio_no_advert", []func(*Config){func(c *Config) { c.LowerPrioNoAdvert = true; c.GARP.LowerPrioRepeat = 0 }}, 50, addr2, ReasonLowerPriority,
			"master-rx-lower-pri"},
		{"priority 0", nil, 0, addr2, ReasonPriorityZero, "send(100) set(advert,1s)"},
		{"own address", nil, 100, addr1, ReasonOwnAddress, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, in := master(t, cfg("VI_1", 100, tt.opts...))
			s.advance(100 * time.Millisecond)
			got := kinds(s.do(in, AdvertReceived(advert(in.Config(), tt.prio), tt.from)))
			if in.Verdict() != tt.verdict {
				t.Errorf("verdict %v, want %v", in.Verdict(), tt.verdict)
			}
			if got != tt.acts {
				t.Errorf("actions\n got %s\nwant %s", got, tt.acts)
			}
		})
	}
}

func TestEqualPriorityBothWays(t *testing.T) {
	// Two routers both became master (a split that healed): each gets the
	// other's advert. The higher primary address stays master.
	lo, inLo := master(t, cfg("LO", 100, src(addr1)))
	hi, inHi := master(t, cfg("HI", 100, src(addr2)))
	lo.do(inLo, AdvertReceived(advert(inLo.Config(), 100), addr2))
	hi.do(inHi, AdvertReceived(advert(inHi.Config(), 100), addr1))
	if inLo.State() != StateBackup || inHi.State() != StateMaster {
		t.Fatalf("lower address %v, higher address %v; want BACKUP, MASTER", inLo.State(), inHi.State())
	}
}

func TestV3AdoptsMasterInterval(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100, v3))
	s.do(in, Start())
	s.at(time.Second)
	a := advert(in.Config(), 200)
	a.AdvertInt = 50 // the master advertises every 500 ms
	s.do(in, AdvertReceived(a, addr2))
	if in.MasterAdverInterval() != 500*time.Millisecond {
		t.Fatalf("Master_Adver_Interval %v, want 500ms", in.MasterAdverInterval())
	}
	// 3*500ms + (256-100)*50cs*10000/256 µs = 1.5s + 304687.5 -> 304687 µs.
	want := 1500*time.Millisecond + us(304687)
	if d, _ := in.Deadline(TimerMasterDown); d.Sub(s.clk.Now()) != want {
		t.Errorf("master down in %v, want %v", d.Sub(s.clk.Now()), want)
	}
	// Taking over, it advertises its own interval again.
	s.advance(want)
	if in.State() != StateMaster || in.MasterAdverInterval() != time.Second {
		t.Fatalf("state %v interval %v", in.State(), in.MasterAdverInterval())
	}
	if d, _ := in.Deadline(TimerAdvert); d.Sub(s.clk.Now()) != time.Second {
		t.Errorf("advert timer %v", d.Sub(s.clk.Now()))
	}
}

func TestV3MasterAdoptsIntervalWhenYielding(t *testing.T) {
	s, in := master(t, cfg("VI_1", 100, v3))
	a := advert(in.Config(), 200)
	a.AdvertInt = 20
	s.do(in, AdvertReceived(a, addr2))
	// RFC 5798 6.4.3: 3*200ms + 156*20*10000/256 µs (121875) .
	want := 600*time.Millisecond + us(121875)
	if d, _ := in.Deadline(TimerMasterDown); in.State() != StateBackup || d.Sub(s.clk.Now()) != want {
		t.Errorf("state %v, master down in %v, want %v", in.State(), d.Sub(s.clk.Now()), want)
	}
}

func TestTrackerPriority(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	s.do(in, Start())
	s.at(time.Second)
	// +50: priority 150; the master down timer comes forward by the skew
	// difference, 609375 - 414062 µs: from 2.609375s left to 2.414062s,
	// which is down150 - 1s (keepalived's relative requeue).
	got := kinds(s.do(in, PriorityChanged(50)))
	if want := "prio(100->150) set(master-down,2.414062s)"; got != want || down150-time.Second != 2414062*time.Microsecond {
		t.Errorf("priority up: %s, want %s", got, want)
	}
	// Clamped at 254 (skew 7812 µs): forward again by 414062 - 7812 µs.
	if got := kinds(s.do(in, PriorityChanged(500))); got != "prio(150->254) set(master-down,2.007812s)" {
		t.Errorf("clamp high: %s", got)
	}
	if got := kinds(s.do(in, PriorityChanged(-500))); got != "prio(254->1)" {
		t.Errorf("clamp low: %s", got)
	}
	if got := kinds(s.do(in, PriorityChanged(-600))); got != "" {
		t.Errorf("no change: %s", got)
	}
	// A master at 120 is lower than 100+30: discarded, so we preempt.
	s.do(in, PriorityChanged(30))
	s.do(in, AdvertReceived(advert(in.Config(), 120), addr2))
	if in.Verdict() != ReasonLowerPriority {
		t.Errorf("verdict %v, want lower priority", in.Verdict())
	}
	s.do(in, PriorityChanged(0))
	s.do(in, AdvertReceived(advert(in.Config(), 120), addr2))
	if in.Verdict() != ReasonAccepted {
		t.Errorf("verdict %v, want accepted", in.Verdict())
	}
	// The master's adverts carry the effective priority.
	s2, m := master(t, cfg("VI_2", 100))
	s2.do(m, PriorityChanged(-20))
	if got := kinds(s2.advance(time.Second)); got != "send(80) set(advert,1s)" {
		t.Errorf("master advert after -20: %s", got)
	}
}

func TestFault(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	s.do(in, Start())
	if got := kinds(s.do(in, FaultChanged(true))); got != "stop(master-down) BACKUP->FAULT(fault)" {
		t.Errorf("backup fault: %s", got)
	}
	s.do(in, AdvertReceived(advert(in.Config(), 200), addr2))
	if in.Verdict() != ReasonNotRunning {
		t.Errorf("advert in FAULT: %v", in.Verdict())
	}
	s.advance(time.Minute)
	if in.State() != StateFault {
		t.Fatalf("left FAULT on its own: %v", in.State())
	}
	if got := kinds(s.do(in, FaultChanged(false))); got != "FAULT->BACKUP(fault cleared) set(master-down,3.609375s)" {
		t.Errorf("fault cleared: %s", got)
	}
	// A master says goodbye with priority 0 and drops the VIPs.
	s.advance(down100)
	if in.State() != StateMaster {
		t.Fatalf("state %v", in.State())
	}
	got := kinds(s.do(in, FaultChanged(true)))
	if want := "stop(advert) stop(garp-delay) send(0) remove-vips MASTER->FAULT(fault)"; got != want {
		t.Errorf("master fault:\n got %s\nwant %s", got, want)
	}
	// Faulted at start.
	s3, f := newSimCfg(t, cfg("VI_3", 100))
	s3.do(f, FaultChanged(true))
	if got := kinds(s3.do(f, Start())); got != "INIT->FAULT(fault)" {
		t.Errorf("start faulted: %s", got)
	}
}

func TestStop(t *testing.T) {
	s, in := master(t, cfg("VI_1", 100))
	got := kinds(s.do(in, Stop()))
	if want := "stop(advert) stop(garp-delay) send(0) remove-vips MASTER->STOP(stop)"; got != want {
		t.Errorf("stop master:\n got %s\nwant %s", got, want)
	}
	for k := range NumTimers {
		if _, ok := in.Deadline(k); ok {
			t.Errorf("timer %v still armed", k)
		}
	}
	if got := s.advance(time.Minute); len(got) != 0 {
		t.Errorf("actions after stop: %s", kinds(got))
	}
	if got := kinds(s.do(in, Start())); got != "STOP->BACKUP(start) set(master-down,3.609375s)" {
		t.Errorf("restart: %s", got)
	}
	if got := kinds(s.do(in, Stop())); got != "stop(master-down) BACKUP->STOP(stop)" {
		t.Errorf("stop backup: %s", got)
	}
}

func TestStaleTimerIgnored(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100))
	s.do(in, Start())
	s.at(time.Second)
	// A fire from before the timer was re-armed arrives late.
	if got := in.Handle(s.clk.Now(), TimerFired(TimerMasterDown)); len(got) != 0 {
		t.Errorf("early fire acted: %s", kinds(got))
	}
	if got := in.Handle(s.clk.Now(), TimerFired(TimerAdvert)); len(got) != 0 {
		t.Errorf("unarmed fire acted: %s", kinds(got))
	}
}

func TestGARPRefresh(t *testing.T) {
	s, in := master(t, cfg("VI_1", 100, func(c *Config) {
		c.GARP = GARP{MasterRepeat: 2, MasterRefresh: 10 * time.Second, MasterRefreshRepeat: 3, Interval: 10 * time.Millisecond}
	}))
	var garps []Action
	for range 25 {
		for _, a := range s.advance(time.Second) {
			if a.Kind == ActGARP {
				garps = append(garps, a)
			}
		}
	}
	if len(garps) != 2 || garps[0].Repeat != 3 || garps[0].Interval != 10*time.Millisecond {
		t.Errorf("refresh GARPs over 25s: %v", garps)
	}
	// No garp-delay timer with garp_master_delay 0.
	if _, ok := in.Deadline(TimerGARPDelay); ok {
		t.Errorf("garp delay armed")
	}
}

func TestSkipAddrCheck(t *testing.T) {
	s, in := newSimCfg(t, cfg("VI_1", 100, func(c *Config) { c.SkipCheckAdvAddr = true }))
	s.do(in, Start())
	if in.SkipAddrCheck(addr2) {
		t.Error("skips before any master")
	}
	s.do(in, AdvertReceived(advert(in.Config(), 200), addr2))
	if !in.SkipAddrCheck(addr2) || in.SkipAddrCheck(addr3) {
		t.Error("skip only for the followed master")
	}
}

func TestAdvertMarshals(t *testing.T) {
	for _, c := range []Config{cfg("v2", 100), cfg("v3", 100, v3, advInt(250*time.Millisecond))} {
		in, err := NewInstance(c)
		if err != nil {
			t.Fatal(err)
		}
		a := in.Advert(100)
		b, err := a.Marshal(packet.EncodeOptions{Family: c.Family, Src: c.Src, Dst: c.Dst[0]})
		if err != nil {
			t.Fatal(err)
		}
		e := c.Expect()
		got, r := packet.Validate(b, packet.RecvMeta{Src: c.Src, Dst: c.Dst[0], TTL: 255}, &e)
		if r != packet.DropNone || got.Priority != 100 {
			t.Errorf("%s: own advert %v, priority %d", c.Name, r, got.Priority)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.VRID = 0 },
		func(c *Config) { c.Priority = 0 },
		func(c *Config) { c.AdvertInterval = 1500 * time.Millisecond }, // v2: whole seconds
		func(c *Config) { c.Family = packet.IPv6 },                     // v2 over IPv6
		func(c *Config) { c.DownTimerAdverts = -1 },
	}
	for i, f := range bad {
		if _, err := NewInstance(cfg("x", 100, f)); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}
