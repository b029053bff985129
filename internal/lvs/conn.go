package lvs

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/keepvs/keepvs/internal/sched"
)

// State is an IPVS connection state.
type State uint8

const (
	StateNone State = iota
	StateEstablished
	StateSynSent
	StateSynRecv
	StateFinWait
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateSynAck
	StateUDP
)

var stateNames = [...]string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "ERR!"
}

// timeout is how long a connection in state s lives without traffic: the
// kernel's tcp_timeouts, with ESTABLISHED, FIN_WAIT and UDP from --set.
func (t Timeouts) timeout(s State) time.Duration {
	switch s {
	case StateEstablished:
		return t.TCP
	case StateFinWait:
		return t.TCPFin
	case StateUDP:
		return t.UDP
	case StateSynRecv, StateCloseWait:
		return 60 * time.Second
	case StateClose:
		return 10 * time.Second
	case StateLastAck:
		return 30 * time.Second
	}
	return 120 * time.Second // NONE, SYN_SENT, TIME_WAIT, LISTEN, SYNACK
}

type connKey struct {
	template bool
	proto    Protocol
	client   netip.AddrPort
	virtual  netip.AddrPort
	fwmark   uint32
}

// conn is a connection entry or a persistence template.
type conn struct {
	key   connKey
	seq   uint64 // creation order, for listing
	d     *dest
	state State
	// inactive mirrors IP_VS_CONN_F_INACTIVE: counted in InactConns.
	inactive bool
	// lastActive is unix nanoseconds of the last packet (atomic): the
	// expiry is lastActive + the state's timeout (+ the service's
	// persistence timeout for templates).
	lastActive atomic.Int64
	// ttl is the timeout in force: the service's for a template, else the
	// state's, read from the timeout table when the state was set (as the
	// kernel copies it into the connection), so --set reaches existing
	// connections at their next state change.
	ttl      time.Duration
	ctl      *conn // the template controlling this connection
	nControl int   // connections a template controls
	gone     bool  // expired or replaced
	// bucket is the wheel second the entry is filed under; entries filed
	// again under an earlier second leave stale copies that are skipped.
	bucket int64
}

// connTable is the connection table and a timing wheel of one-second
// buckets: expiry looks only at the entries whose time may have come, as
// the kernel's per-connection timers do, instead of scanning a table that
// holds every connection of the last two minutes (TIME_WAIT).
type connTable struct {
	m     map[connKey]*conn
	seq   uint64
	wheel map[int64][]*conn
	// next is the first wheel second not yet looked at.
	next int64
}

func newConnTable() connTable { return connTable{m: map[connKey]*conn{}, wheel: map[int64][]*conn{}} }

// file puts c in the bucket of the second its deadline falls in.
func (t *Table) file(c *conn) {
	d := t.deadline(c)
	sec := d.Unix()
	if d.Nanosecond() > 0 {
		sec++ // the bucket is looked at once its whole second has passed
	}
	if sec < t.conns.next {
		sec = t.conns.next
	}
	if c.bucket != 0 && c.bucket <= sec {
		return // already filed no later than that: looked at in time
	}
	c.bucket = sec
	t.conns.wheel[sec] = append(t.conns.wheel[sec], c)
}

func (t *Table) deadline(c *conn) time.Time {
	return time.Unix(0, c.lastActive.Load()).Add(c.ttl)
}

// bind counts a new entry against its destination, as ip_vs_bind_dest.
func (c *conn) bind() {
	d := c.d
	if c.key.template {
		d.sd.PersistConns++
		return
	}
	c.inactive = true
	d.sd.InactConns++
	d.updateOverload()
}

// unbind releases the entry's hold on its destination (ip_vs_unbind_dest).
func (c *conn) unbind() {
	d := c.d
	switch {
	case c.key.template:
		d.sd.PersistConns--
	case c.inactive:
		d.sd.InactConns--
	default:
		d.sd.ActiveConns--
	}
	d.updateOverload()
	if c.ctl != nil {
		c.ctl.nControl--
		c.ctl = nil
	}
}

func (t *Table) removeConn(c *conn) {
	if c.gone {
		return
	}
	c.gone = true
	delete(t.conns.m, c.key)
	c.unbind()
}

func (t *Table) insertConn(c *conn, now time.Time) {
	if old, ok := t.conns.m[c.key]; ok {
		// A client port reused while the old entry lingers in TIME_WAIT:
		// the old entry goes, as IPVS expires it on a new SYN.
		t.removeConn(old)
	}
	t.conns.seq++
	c.seq = t.conns.seq
	c.lastActive.Store(now.UnixNano())
	if !c.key.template {
		c.ttl = t.timeouts.timeout(c.state)
	}
	t.conns.m[c.key] = c
	c.bind()
	if t.conns.next == 0 {
		t.conns.next = now.Unix()
	}
	t.file(c)
}

// setState moves a connection to state s, moving it between the active and
// inactive counts as set_tcp_state does.
func (c *conn) setState(s State) {
	if c.gone || c.key.template {
		c.state = s
		return
	}
	d := c.d
	switch {
	case !c.inactive && s != StateEstablished:
		d.sd.ActiveConns--
		d.sd.InactConns++
		c.inactive = true
	case c.inactive && s == StateEstablished:
		d.sd.ActiveConns++
		d.sd.InactConns--
		c.inactive = false
	}
	c.state = s
}

// Session is one connection through the table, as the userspace data plane
// sees it: where it goes, and hooks to report its state and traffic.
type Session struct {
	t    *Table
	c    *conn
	dest netip.AddrPort
}

// Dest is the real server the connection was scheduled to.
func (s *Session) Dest() netip.AddrPort { return s.dest }

// Forward is the destination's forwarding method.
func (s *Session) Forward() Forward { return s.c.d.Forward }

// Open schedules a new connection from client to virtual on the service k,
// with persistence when the service has it, and enters it in the
// connection table (TCP in SYN_RECV, UDP in UDP state). virtual is the
// address the client reached (for fwmark services, any address).
func (t *Table) Open(k ServiceKey, client, virtual netip.AddrPort) (*Session, error) {
	k = normalizeKey(k)
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	virtual = netip.AddrPortFrom(virtual.Addr().Unmap(), virtual.Port())
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	svc, ok := t.byKey[k]
	if !ok {
		return nil, ErrNoService
	}
	proto := k.Proto
	if proto == 0 {
		proto = TCP
	}
	var tmpl *conn
	var d *dest
	if svc.Persistent() {
		tk := svc.templateKey(client.Addr(), virtual)
		if ct, ok := t.conns.m[tk]; ok && !ct.d.removed {
			tmpl, d = ct, ct.d
		} else {
			d = svc.schedule(proto, client, virtual)
			if d == nil {
				return nil, ErrNoDestination
			}
			if ok {
				t.removeConn(ct)
			}
			tmpl = &conn{key: tk, d: d, ttl: svc.Timeout}
			t.insertConn(tmpl, now)
		}
		tmpl.lastActive.Store(now.UnixNano())
	} else if d = svc.schedule(proto, client, virtual); d == nil {
		return nil, ErrNoDestination
	}
	c := &conn{key: connKey{proto: proto, client: client, virtual: virtual}, d: d, state: StateSynRecv}
	if proto == UDP {
		c.state = StateUDP
	}
	t.insertConn(c, now)
	if tmpl != nil {
		c.ctl = tmpl
		tmpl.nControl++
	}
	d.stats.conns.Add(1)
	svc.stats.conns.Add(1)
	dst := d.AddrPort()
	if svc.FWMark != 0 && d.Port == 0 {
		dst = netip.AddrPortFrom(d.Addr, virtual.Port())
	}
	return &Session{t: t, c: c, dest: dst}, nil
}

// templateKey is the persistence template for a client: its address under
// the service's netmask, client port 0, and the virtual port (0 when the
// service is port-less or a fwmark service, which keys on the mark).
func (svc *service) templateKey(client netip.Addr, virtual netip.AddrPort) connKey {
	masked := maskAddr(client, svc.Netmask)
	k := connKey{template: true, proto: svc.Proto, client: netip.AddrPortFrom(masked, 0)}
	switch {
	case svc.FWMark != 0:
		k.proto = 0
		k.fwmark = svc.FWMark
	case svc.Port == 0:
		k.virtual = netip.AddrPortFrom(svc.Addr, 0)
	default:
		k.virtual = netip.AddrPortFrom(svc.Addr, svc.Port)
	}
	return k
}

func maskAddr(a netip.Addr, mask uint32) netip.Addr {
	if a.Is4() {
		b := a.As4()
		v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) & mask
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	p, err := a.Prefix(int(mask))
	if err != nil {
		return a
	}
	return p.Addr()
}

func (svc *service) schedule(proto Protocol, client, virtual netip.AddrPort) *dest {
	sd := svc.sched.Schedule(sched.Flow{Proto: uint8(proto), Src: client.Addr(), SrcPort: client.Port(), Dst: virtual.Addr(), DstPort: virtual.Port()})
	if sd == nil {
		return nil
	}
	for _, d := range svc.dests {
		if &d.sd == sd {
			return d
		}
	}
	return nil
}

// SetState reports a TCP state change (the proxy's view of the handshake
// and of FIN/RST in each direction).
func (s *Session) SetState(st State) {
	s.c.lastActive.Store(s.t.clock.Now().UnixNano())
	s.t.mu.Lock()
	s.c.setState(st)
	s.c.ttl = s.t.timeouts.timeout(st)
	if !s.c.gone {
		s.t.file(s.c) // a shorter timeout (CLOSE) may bring the deadline forward
	}
	s.t.mu.Unlock()
}

// In counts one packet of n bytes from the client; Out one from the real
// server. Either keeps the connection (and its template) alive.
func (s *Session) In(n int) {
	s.c.d.stats.add(&s.c.d.svc.stats, true, n)
	s.touch()
}

// Out counts one packet of n bytes from the real server to the client.
func (s *Session) Out(n int) {
	s.c.d.stats.add(&s.c.d.svc.stats, false, n)
	s.touch()
}

func (s *Session) touch() {
	now := s.t.clock.Now().UnixNano()
	s.c.lastActive.Store(now)
	if ct := s.c.ctl; ct != nil {
		ct.lastActive.Store(now)
	}
}

// Expire removes entries whose time is up. A template outlives its timeout
// while it still controls connections, as in the kernel.
func (t *Table) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(now)
}

func (t *Table) expireLocked(now time.Time) {
	end := now.Unix()
	if t.conns.next == 0 || t.conns.next > end {
		return
	}
	if end-t.conns.next > int64(len(t.conns.wheel))+3600 {
		// A long jump of the clock: visit the buckets that exist rather
		// than every second in between.
		for sec := range t.conns.wheel {
			if sec <= end {
				t.expireBucket(sec, now)
			}
		}
	} else {
		for sec := t.conns.next; sec <= end; sec++ {
			t.expireBucket(sec, now)
		}
	}
	t.conns.next = end + 1
}

// expireBucket looks at the entries filed under second sec: those whose
// time is up go (a template outlives its timeout while it still controls
// connections, as in the kernel); the others are filed again.
func (t *Table) expireBucket(sec int64, now time.Time) {
	list, ok := t.conns.wheel[sec]
	if !ok {
		return
	}
	delete(t.conns.wheel, sec)
	// Connections before templates, so a template whose last connection
	// goes in this same second goes too.
	slices.SortStableFunc(list, func(a, b *conn) int {
		switch {
		case a.key.template == b.key.template:
			return 0
		case b.key.template:
			return -1
		}
		return 1
	})
	for _, c := range list {
		if c.gone || c.bucket != sec {
			continue
		}
		c.bucket = 0
		if now.Before(t.deadline(c)) {
			t.file(c)
			continue
		}
		if c.key.template && c.nControl > 0 {
			c.lastActive.Store(now.UnixNano())
			t.file(c)
			continue
		}
		t.removeConn(c)
	}
}

// Conns lists the connection table, oldest first.
func (t *Table) Conns() []Conn {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(now)
	list := make([]*conn, 0, len(t.conns.m))
	for _, c := range t.conns.m {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	out := make([]Conn, 0, len(list))
	for _, c := range list {
		e := Conn{Proto: c.key.proto, Client: c.key.client, Virtual: c.key.virtual, State: c.state.String(),
			Expires: t.deadline(c).Sub(now), Template: c.key.template, FWMark: c.key.fwmark,
			Dest: netip.AddrPortFrom(c.d.Addr, c.d.Port)}
		if e.Expires < 0 {
			e.Expires = 0
		}
		out = append(out, e)
	}
	return out
}

// Run expires connections every second and samples the rate estimator
// every two, until ctx ends.
func (t *Table) Run(ctx context.Context) {
	tick := make(chan struct{}, 1)
	var arm func()
	arm = func() {
		t.clock.AfterFunc(time.Second, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			now := t.clock.Now()
			t.mu.Lock()
			t.expireLocked(now)
			t.estimateLocked(now)
			t.mu.Unlock()
			arm()
		}
	}
}
