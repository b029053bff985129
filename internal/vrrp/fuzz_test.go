package vrrp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// actFired marks, in a test's action stream, a timer that fell due.
const actFired ActionKind = 200

// track is what the actions say an instance's state is; the checker
// replays them and compares with the instance.
type track struct {
	state State
	vips  bool
	armed [NumTimers]bool
}

type checker struct {
	s     *sim
	g     *SyncGroup
	ins   []*Instance
	track map[string]*track
}

func (c *checker) fail(format string, args ...any) {
	c.s.t.Helper()
	c.s.t.Fatalf("at %v: %s\nlast actions:\n%s", c.s.elapsed(), fmt.Sprintf(format, args...), kinds(c.s.last))
}

// check replays acts and asserts the invariants.
func (c *checker) check(acts []Action) {
	c.s.t.Helper()
	for _, a := range acts {
		if a.Kind == ActSyncTransition {
			continue
		}
		tr := c.track[a.Instance]
		if tr == nil {
			c.fail("action for unknown instance %q", a.Instance)
		}
		switch a.Kind {
		case actFired:
			tr.armed[a.Timer] = false
		case ActTransition:
			if a.From != tr.state {
				c.fail("%s: transition from %v, tracked %v", a.Instance, a.From, tr.state)
			}
			if a.To == StateMaster && !tr.vips {
				c.fail("%s: MASTER before its VIPs", a.Instance)
			}
			if a.From == StateMaster && tr.vips {
				c.fail("%s: left MASTER with its VIPs", a.Instance)
			}
			tr.state = a.To
		case ActAddVIPs:
			if tr.vips {
				c.fail("%s: VIPs added twice", a.Instance)
			}
			tr.vips = true
		case ActRemoveVIPs:
			if !tr.vips {
				c.fail("%s: VIPs removed while not set", a.Instance)
			}
			tr.vips = false
		case ActSetTimer:
			tr.armed[a.Timer] = true
		case ActStopTimer:
			if !tr.armed[a.Timer] {
				c.fail("%s: stop of unarmed %v", a.Instance, a.Timer)
			}
			tr.armed[a.Timer] = false
		case ActSend:
			if tr.state != StateMaster {
				c.fail("%s: advert (priority %d) sent in %v", a.Instance, a.Priority, tr.state)
			}
		case ActGARP:
			if !tr.vips {
				c.fail("%s: GARP without VIPs", a.Instance)
			}
		}
	}
	anyMaster, anyFault, anyFaulted := false, false, false
	for _, in := range c.ins {
		tr := c.track[in.Name()]
		st := in.State()
		if tr.state != st || tr.vips != in.VIPsSet() {
			c.fail("%s: state %v vips %v, actions say %v %v", in.Name(), st, in.VIPsSet(), tr.state, tr.vips)
		}
		if in.VIPsSet() != (st == StateMaster) {
			c.fail("%s: VIPs %v in %v", in.Name(), in.VIPsSet(), st)
		}
		if st == StateMaster && in.Faulted() {
			c.fail("%s: MASTER while faulted", in.Name())
		}
		for k := range NumTimers {
			_, armed := in.Deadline(k)
			if armed != tr.armed[k] {
				c.fail("%s: timer %v armed %v, actions say %v", in.Name(), k, armed, tr.armed[k])
			}
		}
		md, adv := tr.armed[TimerMasterDown], tr.armed[TimerAdvert]
		switch st {
		case StateBackup:
			if !md || adv {
				c.fail("%s: BACKUP with master-down %v advert %v", in.Name(), md, adv)
			}
		case StateMaster:
			if md || !adv || tr.armed[TimerPreempt] {
				c.fail("%s: MASTER with master-down %v advert %v", in.Name(), md, adv)
			}
		default:
			for k := range NumTimers {
				if tr.armed[k] {
					c.fail("%s: timer %v armed in %v", in.Name(), k, st)
				}
			}
		}
		anyMaster = anyMaster || st == StateMaster
		anyFault = anyFault || st == StateFault
		// A member that is not running does not move its group.
		anyFaulted = anyFaulted || (in.Faulted() && running(st))
	}
	if c.g != nil && anyMaster && (anyFault || anyFaulted) {
		c.fail("sync group with a MASTER beside a fault")
	}
}

func FuzzInstance(f *testing.F) {
	f.Add([]byte{0x00, 0, 0, 2, 200, 2, 200, 1, 150, 6, 0, 4, 1, 4, 0, 6, 0, 5, 0})
	f.Add([]byte{0x04, 0, 0, 1, 50, 6, 0, 1, 50, 6, 0, 6, 0, 3, 60, 6, 0})
	f.Add([]byte{0x08, 0, 0, 1, 255, 9, 255, 3, 200, 4, 1, 4, 0, 5, 0, 0, 0})
	f.Add([]byte{0x41, 0, 0, 32, 0, 6, 0, 38, 0, 1, 0, 33, 200, 36, 1, 4, 1, 36, 0, 4, 0, 6, 0, 6, 0})
	f.Add([]byte{0xb3, 0, 0, 6, 0, 1, 100, 17, 100, 1, 0, 6, 0, 7, 1, 7, 0, 2, 255, 2, 255})
	// Inputs that once failed: a timer that fell due inside an Advance,
	// and a fault on a group member that was not running.
	f.Add([]byte("0002\xf60"))
	f.Add([]byte("AX020$1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		flags := data[0]
		data = data[1:]
		opts := func(c *Config) {
			if flags&0x01 != 0 {
				c.Version = 3
				c.AdvertInterval = 100 * time.Millisecond
			}
			c.Preempt = flags&0x02 == 0
			if flags&0x04 != 0 {
				c.Preempt = true
				c.PreemptDelay = 2 * time.Second
			}
			if flags&0x08 != 0 {
				c.Priority = PriorityOwner
			}
			c.LowerPrioNoAdvert = flags&0x10 != 0
			c.HigherPrioSendAdvert = flags&0x20 != 0
			if flags&0x80 != 0 {
				c.GARP.MasterRefresh = 700 * time.Millisecond
			}
		}
		a, _ := NewInstance(cfg("A", 100, opts))
		ins := []*Instance{a}
		var g *SyncGroup
		if flags&0x40 != 0 {
			b, _ := NewInstance(cfg("B", 120, opts, func(c *Config) { c.VRID = 52; c.Src = addr3 }))
			ins = append(ins, b)
			var err error
			if g, err = NewSyncGroup("G", a, b); err != nil {
				t.Fatal(err)
			}
		}
		s := newSim(t, ins...)
		c := &checker{s: s, g: g, ins: ins, track: map[string]*track{}}
		for _, in := range ins {
			c.track[in.Name()] = &track{}
		}
		// A timer that falls due disarms itself, with no action: mark it
		// in the action stream for the replay.
		s.before = func(in *Instance, ev Event) {
			if ev.Kind != EventTimer || ev.Timer >= NumTimers {
				return
			}
			if d, ok := in.Deadline(ev.Timer); ok && !s.clk.Now().Before(d) {
				s.last = append(s.last, Action{Kind: actFired, Instance: in.Name(), Timer: ev.Timer})
			}
		}
		srcs := [...]netip.Addr{addr2, addr1, addr3, addr2}
		for len(data) >= 2 {
			op, arg := data[0], data[1]
			data = data[2:]
			in := ins[int(op>>5)%len(ins)]
			switch op & 7 {
			case 0:
				c.check(s.do(in, Start()))
			case 1:
				ad := advert(in.Config(), arg)
				if in.Config().Version == 3 && op&0x10 != 0 {
					ad.AdvertInt = uint16(arg%50) + 1
				}
				c.check(s.do(in, AdvertReceived(ad, srcs[(op>>3)&3])))
			case 2:
				c.check(s.advance(time.Duration(arg) * 37 * time.Millisecond))
			case 3:
				c.check(s.do(in, PriorityChanged(int(int8(arg)))))
			case 4:
				c.check(s.do(in, FaultChanged(arg&1 != 0)))
			case 5:
				c.check(s.do(in, Stop()))
			case 6:
				// Jump to the earliest armed deadline.
				next := time.Time{}
				for _, x := range ins {
					for k := range NumTimers {
						if d, ok := x.Deadline(k); ok && (next.IsZero() || d.Before(next)) {
							next = d
						}
					}
				}
				if !next.IsZero() {
					c.check(s.advance(next.Sub(s.clk.Now())))
				}
			case 7:
				// A fire that arrives whenever: stale fires must be ignored.
				c.check(s.do(in, TimerFired(TimerKind(arg%uint8(NumTimers+1)))))
			}
		}
	})
}
