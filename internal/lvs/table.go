package lvs

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/sched"
)

// Table is a virtual service table with its connection table. It is safe
// for concurrent use: the data plane opens connections from many
// goroutines while the control side edits services.
type Table struct {
	mu       sync.Mutex
	clock    clock.Clock
	scheds   sched.Registry
	services []*service // in the order they were added, as listed
	byKey    map[ServiceKey]*service
	conns    connTable
	timeouts Timeouts
	// lastEst is when the rate estimator last sampled.
	lastEst time.Time
}

// service is a virtual service and its runtime state.
type service struct {
	Service
	// dests is newest first, as the kernel keeps its list (schedulers
	// depend on that order).
	dests []*dest
	sched sched.Scheduler
	stats counters
	est   estimator
}

// dest is a destination and its runtime state.
type dest struct {
	Destination
	svc *service
	// sd is the scheduler's view: weight, counts, overload flag.
	sd    sched.Dest
	stats counters
	est   estimator
	// removed is set when the destination leaves its service; its
	// connections keep a pointer and stop counting it.
	removed bool
}

// NewTable returns an empty table. scheds names the schedulers services may
// use (sched.Standard() in production).
func NewTable(c clock.Clock, scheds sched.Registry) *Table {
	return &Table{
		clock:    c,
		scheds:   scheds,
		byKey:    map[ServiceKey]*service{},
		conns:    newConnTable(),
		timeouts: DefaultTimeouts,
		lastEst:  c.Now(),
	}
}

// Info is the table's identity, as IPVS reports it.
func (t *Table) Info() Info { return Info{Version: "1.2.1", ConnTableSize: 4096} }

func normalizeKey(k ServiceKey) ServiceKey {
	if k.FWMark != 0 {
		k.Proto, k.Addr, k.Port = 0, netip.Addr{}, 0
	} else {
		k.Addr = k.Addr.Unmap()
		k.IPv6 = false
	}
	return k
}

func (t *Table) validService(s *Service) error {
	if s.FWMark == 0 {
		if !s.Addr.IsValid() {
			return fmt.Errorf("%w: service has neither address nor fwmark", ErrInvalid)
		}
		if s.Proto != TCP && s.Proto != UDP && s.Proto != SCTP {
			return fmt.Errorf("%w: protocol %d", ErrInvalid, s.Proto)
		}
		if s.Port == 0 && !s.Persistent() {
			return fmt.Errorf("%w: zero port specified for non-persistent service", ErrInvalid)
		}
	}
	if _, ok := t.scheds[s.Scheduler]; !ok {
		return fmt.Errorf("%w: %q", ErrNoScheduler, s.Scheduler)
	}
	if s.PEName != "" && s.PEName != "sip" {
		return fmt.Errorf("%w: %q", ErrNoPE, s.PEName)
	}
	if s.Netmask == 0 {
		s.Netmask = defaultNetmask(s.Is6())
	}
	if s.Is6() && s.Netmask > 128 {
		return fmt.Errorf("%w: IPv6 netmask /%d", ErrInvalid, s.Netmask)
	}
	if s.Persistent() && s.Timeout <= 0 {
		s.Timeout = 360 * time.Second
	}
	return nil
}

func defaultNetmask(v6 bool) uint32 {
	if v6 {
		return 128
	}
	return 0xffffffff
}

// AddService adds a virtual service.
func (t *Table) AddService(s Service) error {
	s.ServiceKey = normalizeKey(s.ServiceKey)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.validService(&s); err != nil {
		return err
	}
	if _, dup := t.byKey[s.ServiceKey]; dup {
		return ErrServiceExists
	}
	sc, err := t.scheds.New(s.Scheduler, sched.Config{Flags: sched.Flags(s.Flags), Clock: t.clock})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoScheduler, err)
	}
	s.Flags |= FlagHashed
	svc := &service{Service: s, sched: sc}
	t.services = append(t.services, svc)
	t.byKey[s.ServiceKey] = svc
	return nil
}

// EditService changes a service's scheduler, flags, persistence or netmask.
// Its destinations and connections stay.
func (t *Table) EditService(s Service) error {
	s.ServiceKey = normalizeKey(s.ServiceKey)
	t.mu.Lock()
	defer t.mu.Unlock()
	svc, ok := t.byKey[s.ServiceKey]
	if !ok {
		return ErrNoService
	}
	if err := t.validService(&s); err != nil {
		return err
	}
	s.Flags |= FlagHashed
	if s.Scheduler != svc.Scheduler || s.Flags&(FlagSched1|FlagSched2|FlagSched3) != svc.Flags&(FlagSched1|FlagSched2|FlagSched3) {
		sc, err := t.scheds.New(s.Scheduler, sched.Config{Flags: sched.Flags(s.Flags), Clock: t.clock})
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoScheduler, err)
		}
		svc.sched = sc
		sc.Update(svc.schedDests())
	}
	svc.Service = s
	return nil
}

// DelService removes a service. Its connections stay in the table until
// they expire, as in IPVS, but no longer count against anything.
func (t *Table) DelService(k ServiceKey) error {
	k = normalizeKey(k)
	t.mu.Lock()
	defer t.mu.Unlock()
	svc, ok := t.byKey[k]
	if !ok {
		return ErrNoService
	}
	t.removeService(svc)
	return nil
}

func (t *Table) removeService(svc *service) {
	delete(t.byKey, svc.ServiceKey)
	t.services = slices.DeleteFunc(t.services, func(s *service) bool { return s == svc })
	for _, d := range svc.dests {
		d.removed = true
	}
}

// Flush removes every service.
func (t *Table) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, svc := range slices.Clone(t.services) {
		t.removeService(svc)
	}
}

func (svc *service) schedDests() []*sched.Dest {
	out := make([]*sched.Dest, len(svc.dests))
	for i, d := range svc.dests {
		out[i] = &d.sd
	}
	return out
}

func (svc *service) find(ap netip.AddrPort) (int, *dest) {
	for i, d := range svc.dests {
		if d.Addr == ap.Addr() && d.Port == ap.Port() {
			return i, d
		}
	}
	return -1, nil
}

func (t *Table) validDest(svc *service, d *Destination) error {
	if !d.Addr.IsValid() {
		return fmt.Errorf("%w: destination without address", ErrInvalid)
	}
	d.Addr = d.Addr.Unmap()
	if d.Weight < 0 {
		return ErrRange
	}
	if d.LThreshold > d.UThreshold && d.UThreshold != 0 {
		return fmt.Errorf("%w: lower threshold above upper", ErrInvalid)
	}
	if d.Forward != Tunnel && d.Addr.Is6() != svc.Is6() {
		return fmt.Errorf("%w: destination family differs from the service's", ErrInvalid)
	}
	if d.Port == 0 && svc.FWMark == 0 {
		d.Port = svc.Port
	}
	if d.Forward == Route || d.Forward == Tunnel {
		// The kernel forwards DR/TUN packets unchanged: the port is the
		// service's.
		if svc.FWMark == 0 {
			d.Port = svc.Port
		}
	}
	return nil
}

// AddDest adds a destination to a service.
func (t *Table) AddDest(k ServiceKey, d Destination) error {
	return t.withDest(k, &d, func(svc *service, cur *dest) error {
		if cur != nil {
			return ErrDestExists
		}
		nd := &dest{Destination: d, svc: svc}
		nd.sd = sched.Dest{Addr: d.Addr, Port: d.Port, Weight: d.Weight}
		// New destinations go to the head of the list, as in the kernel.
		svc.dests = append([]*dest{nd}, svc.dests...)
		return nil
	})
}

// EditDest changes a destination's weight, method or thresholds.
func (t *Table) EditDest(k ServiceKey, d Destination) error {
	return t.withDest(k, &d, func(svc *service, cur *dest) error {
		if cur == nil {
			return ErrNoDest
		}
		cur.Destination = d
		cur.sd.Weight = d.Weight
		cur.updateOverload()
		return nil
	})
}

// withDest runs f under the lock with the service k, the validated d and
// the destination d names (nil if the service has none), then tells the
// scheduler about the change when f made one.
func (t *Table) withDest(k ServiceKey, d *Destination, f func(svc *service, cur *dest) error) error {
	k = normalizeKey(k)
	t.mu.Lock()
	defer t.mu.Unlock()
	svc, ok := t.byKey[k]
	if !ok {
		return ErrNoService
	}
	if err := t.validDest(svc, d); err != nil {
		return err
	}
	_, cur := svc.find(d.AddrPort())
	if err := f(svc, cur); err != nil {
		return err
	}
	svc.sched.Update(svc.schedDests())
	return nil
}

// DelDest removes a destination. Its connections stay until they expire.
func (t *Table) DelDest(k ServiceKey, ap netip.AddrPort) error {
	k = normalizeKey(k)
	t.mu.Lock()
	defer t.mu.Unlock()
	svc, ok := t.byKey[k]
	if !ok {
		return ErrNoService
	}
	i, d := svc.find(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	if d == nil && ap.Port() == 0 {
		i, d = svc.find(netip.AddrPortFrom(ap.Addr().Unmap(), svc.Port))
	}
	if d == nil {
		return ErrNoDest
	}
	d.removed = true
	svc.dests = slices.Delete(svc.dests, i, i+1)
	svc.sched.Update(svc.schedDests())
	return nil
}

// updateOverload sets and clears OVERLOAD as the kernel does when a
// connection is bound to or unbound from the destination.
func (d *dest) updateOverload() {
	total := uint32(d.sd.ActiveConns + d.sd.InactConns)
	switch {
	case d.UThreshold != 0 && total >= d.UThreshold:
		d.sd.Overloaded = true
	case d.LThreshold != 0:
		if total < d.LThreshold {
			d.sd.Overloaded = false
		}
	case d.UThreshold != 0:
		if total*4 < d.UThreshold*3 {
			d.sd.Overloaded = false
		}
	default:
		d.sd.Overloaded = false
	}
}

// Services lists the services with their destinations and counters.
func (t *Table) Services() []ServiceStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.estimateLocked(t.clock.Now())
	out := make([]ServiceStatus, 0, len(t.services))
	for _, svc := range t.services {
		st := ServiceStatus{Service: svc.Service, Stats: svc.stats.snapshot(), Rates: svc.est.rates()}
		for _, d := range svc.dests {
			st.Dests = append(st.Dests, DestStatus{
				Destination:  d.Destination,
				ActiveConns:  uint32(d.sd.ActiveConns),
				InactConns:   uint32(d.sd.InactConns),
				PersistConns: uint32(d.sd.PersistConns),
				Overloaded:   d.sd.Overloaded,
				Stats:        d.stats.snapshot(),
				Rates:        d.est.rates(),
			})
		}
		out = append(out, st)
	}
	return out
}

// Zero clears the counters (and rates) of one service and its
// destinations, or of every service when k is nil.
func (t *Table) Zero(k *ServiceKey) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var svcs []*service
	if k == nil {
		svcs = t.services
	} else {
		svc, ok := t.byKey[normalizeKey(*k)]
		if !ok {
			return ErrNoService
		}
		svcs = []*service{svc}
	}
	for _, svc := range svcs {
		svc.stats.zero()
		svc.est = estimator{}
		for _, d := range svc.dests {
			d.stats.zero()
			d.est = estimator{}
		}
	}
	return nil
}

// Timeouts returns the connection timeouts.
func (t *Table) Timeouts() Timeouts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timeouts
}

// SetTimeouts changes the non-zero timeouts of to.
func (t *Table) SetTimeouts(to Timeouts) error {
	if to.TCP < 0 || to.TCPFin < 0 || to.UDP < 0 {
		return ErrInvalid
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if to.TCP > 0 {
		t.timeouts.TCP = to.TCP
	}
	if to.TCPFin > 0 {
		t.timeouts.TCPFin = to.TCPFin
	}
	if to.UDP > 0 {
		t.timeouts.UDP = to.UDP
	}
	return nil
}
