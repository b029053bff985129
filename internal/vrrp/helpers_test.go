package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

var (
	t0    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	addr1 = netip.MustParseAddr("192.0.2.1")
	addr2 = netip.MustParseAddr("192.0.2.2")
	addr3 = netip.MustParseAddr("192.0.2.3")
	vip   = netip.MustParseAddr("192.0.2.100")
)

// cfg is a VRRPv2 instance on 192.0.2.1, advert_int 1s, preempting.
func cfg(name string, prio uint8, opts ...func(*Config)) Config {
	c := Config{
		Name:           name,
		VRID:           51,
		Version:        2,
		Family:         packet.IPv4,
		Priority:       prio,
		AdvertInterval: time.Second,
		Preempt:        true,
		VIPs:           []netip.Addr{vip},
		Src:            addr1,
		Dst:            []netip.Addr{packet.GroupIPv4},
		GARP:           GARP{MasterDelay: 5 * time.Second, MasterRepeat: 5, LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5, MasterRefreshRepeat: 1},
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func v3(c *Config)        { c.Version = 3 }
func noPreempt(c *Config) { c.Preempt = false }
func src(a netip.Addr) func(*Config) {
	return func(c *Config) { c.Src = a }
}
func advInt(d time.Duration) func(*Config) {
	return func(c *Config) { c.AdvertInterval = d }
}
func preemptDelay(d time.Duration) func(*Config) {
	return func(c *Config) { c.PreemptDelay = d }
}

// advert is what a peer at prio sends for an instance configured like c.
func advert(c Config, prio uint8) packet.Advert {
	a := packet.Advert{Version: c.Version, Type: packet.TypeAdvertisement, VRID: c.VRID, Priority: prio, Addrs: c.VIPs}
	a.AdvertInt, _ = packet.AdvertIntFor(c.Version, c.AdvertInterval)
	return a
}

// sim drives one instance (or a sync group's members) with a fake clock:
// timers are armed on the clock through Timers, and the clock fires them
// back into Handle.
type sim struct {
	t      *testing.T
	clk    *clocktest.Fake
	ins    map[string]*Instance
	timers map[string]*Timers
	all    []Action // every action so far
	last   []Action // the actions of the last Handle or Advance
	// before, when set, sees every event before the instance does.
	before func(*Instance, Event)
}

func newSim(t *testing.T, ins ...*Instance) *sim {
	t.Helper()
	s := &sim{t: t, clk: clocktest.New(t0), ins: map[string]*Instance{}, timers: map[string]*Timers{}}
	for _, in := range ins {
		s.ins[in.Name()] = in
		s.timers[in.Name()] = NewTimers(s.clk, func(k TimerKind) { s.handle(in, TimerFired(k)) })
	}
	return s
}

func newSimCfg(t *testing.T, c Config) (*sim, *Instance) {
	t.Helper()
	in, err := NewInstance(c)
	if err != nil {
		t.Fatal(err)
	}
	return newSim(t, in), in
}

func (s *sim) handle(in *Instance, ev Event) {
	if s.before != nil {
		s.before(in, ev)
	}
	acts := in.Handle(s.clk.Now(), ev)
	acts = append([]Action(nil), acts...)
	for _, a := range acts {
		if ts := s.timers[a.Instance]; ts != nil {
			ts.Apply(a)
		}
	}
	s.all = append(s.all, acts...)
	s.last = append(s.last, acts...)
}

// do runs ev on in now and returns its actions.
func (s *sim) do(in *Instance, ev Event) []Action {
	s.last = nil
	s.handle(in, ev)
	return s.last
}

// advance moves the clock, firing timers, and returns their actions.
func (s *sim) advance(d time.Duration) []Action {
	s.last = nil
	s.clk.Advance(d)
	return s.last
}

// at advances the clock to t0+d.
func (s *sim) at(d time.Duration) []Action {
	s.t.Helper()
	now := s.clk.Now().Sub(t0)
	if d < now {
		s.t.Fatalf("at(%v): already at %v", d, now)
	}
	return s.advance(d - now)
}

func (s *sim) elapsed() time.Duration { return s.clk.Now().Sub(t0) }

// kinds renders actions compactly for comparison, dropping logs.
func kinds(acts []Action) string {
	var out []string
	for _, a := range acts {
		switch a.Kind {
		case ActLog:
			continue
		case ActSend:
			out = append(out, fmt.Sprintf("send(%d)", a.Priority))
		case ActSetTimer:
			out = append(out, fmt.Sprintf("set(%v,%v)", a.Timer, a.After))
		case ActStopTimer:
			out = append(out, fmt.Sprintf("stop(%v)", a.Timer))
		case ActGARP:
			out = append(out, fmt.Sprintf("garp(%d)", a.Repeat))
		case ActTransition:
			out = append(out, fmt.Sprintf("%v->%v(%v)", a.From, a.To, a.Reason))
		case ActSyncTransition:
			out = append(out, fmt.Sprintf("group:%v->%v", a.From, a.To))
		case ActPriority:
			out = append(out, fmt.Sprintf("prio(%d->%d)", a.PeerPriority, a.Priority))
		default:
			out = append(out, a.Kind.String())
		}
	}
	return strings.Join(out, " ")
}

// transitions renders only the transitions, with instance names.
func transitions(acts []Action) string {
	var out []string
	for _, a := range acts {
		switch a.Kind {
		case ActTransition:
			out = append(out, fmt.Sprintf("%s:%v->%v", a.Instance, a.From, a.To))
		case ActSyncTransition:
			out = append(out, fmt.Sprintf("%s:%v->%v", a.Instance, a.From, a.To))
		}
	}
	return strings.Join(out, " ")
}

func has(acts []Action, k ActionKind) bool {
	for _, a := range acts {
		if a.Kind == k {
			return true
		}
	}
	return false
}

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
