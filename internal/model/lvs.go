package model

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// LVS is the load-balancer half of a configuration: virtual_server_group,
// virtual_server and SSL blocks.
type LVS struct {
	VSGroups       []*VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	VirtualServers []*VirtualServer      `json:"virtual_servers,omitempty"`
	SSL            *SSL                  `json:"ssl,omitempty"`
}

// Protocol is a virtual service's L4 protocol.
type Protocol uint8

const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return ""
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p *Protocol) UnmarshalText(b []byte) error {
	switch string(b) {
	case "TCP":
		*p = TCP
	case "UDP":
		*p = UDP
	case "SCTP":
		*p = SCTP
	case "":
		*p = 0
	default:
		return fmt.Errorf("unknown protocol %q", b)
	}
	return nil
}

// Method is an LVS forwarding method.
type Method string

const (
	NAT Method = "NAT"
	DR  Method = "DR"
	TUN Method = "TUN"
)

// Forward is a forwarding method with its tunnel options (TUN only).
type Forward struct {
	Method  Method `json:"method"`
	TunType string `json:"tun_type,omitempty"` // ipip (default), gue, gre
	TunPort uint16 `json:"tun_port,omitempty"` // gue only
	TunCsum string `json:"tun_csum,omitempty"` // nocsum, csum, remcsum
}

// Schedulers are the LVS schedulers keepvs knows, as lvs_sched accepts them.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

// Scheduler flags (ipvsadm -b); the kernel's IP_VS_SVC_F_SCHED1..3 and
// the one-packet flag.
const (
	FlagSched1 = "flag-1"
	FlagSched2 = "flag-2"
	FlagSched3 = "flag-3"
)

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos     conf.Pos        `json:"-"`
	Name    string          `json:"name"`
	Members []VSGroupMember `json:"members"`
}

// VSGroupMember is one line of a group: an address range with a port, or a
// fwmark.
type VSGroupMember struct {
	Pos    conf.Pos   `json:"-"`
	First  netip.Addr `json:"first,omitzero"`
	Last   netip.Addr `json:"last,omitzero"` // == First for a single address
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	Family string     `json:"family,omitempty"` // inet or inet6, fwmark only
}

// Timing holds the checker timing options that cascade from virtual_server
// to real_server to checker; nil fields were not set at that level.
type Timing struct {
	ConnectTimeout   *Duration `json:"connect_timeout,omitempty"`
	Retry            *int      `json:"retry,omitempty"`
	DelayBeforeRetry *Duration `json:"delay_before_retry,omitempty"`
	Warmup           *Duration `json:"warmup,omitempty"`
	DelayLoop        *Duration `json:"delay_loop,omitempty"`
	Alpha            *bool     `json:"alpha,omitempty"`
}

// VirtualServer is a virtual_server block. Exactly one of Addr (with Port),
// FWMark or Group says what it serves.
type VirtualServer struct {
	Pos    conf.Pos   `json:"-"`
	Addr   netip.Addr `json:"addr,omitzero"`
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	Group  string     `json:"group,omitempty"`
	Family string     `json:"ip_family,omitempty"` // inet or inet6 for fwmark/group

	Protocol  Protocol `json:"protocol"`
	Scheduler string   `json:"lvs_sched"`
	// SchedFlags are the -b flags in ipvsadm's names: flag-1, flag-2,
	// flag-3 (sh-fallback/mh-fallback are flag-1, sh-port/mh-port flag-2).
	SchedFlags []string `json:"sched_flags,omitempty"`
	OnePacket  bool     `json:"ops,omitempty"`
	Forward    Forward  `json:"lvs_method"`

	// PersistenceTimeout is 0 when the service is not persistent.
	PersistenceTimeout Duration `json:"persistence_timeout,omitempty"`
	// PersistenceGranularity is the persistence netmask (ipvsadm -M): a
	// dotted IPv4 mask ("255.255.255.0") or an IPv6 prefix length ("64");
	// "" means the default (/32 or /128).
	PersistenceGranularity string `json:"persistence_granularity,omitempty"`
	PersistenceEngine      string `json:"persistence_engine,omitempty"`

	DelayLoop Duration `json:"delay_loop"`
	Timing    Timing   `json:"timing,omitzero"`

	HASuspend        bool    `json:"ha_suspend,omitempty"`
	Alpha            bool    `json:"alpha,omitempty"`
	Omega            bool    `json:"omega,omitempty"`
	Quorum           int     `json:"quorum"`
	Hysteresis       int     `json:"hysteresis,omitempty"`
	QuorumUp         *Script `json:"quorum_up,omitempty"`
	QuorumDown       *Script `json:"quorum_down,omitempty"`
	InhibitOnFailure bool    `json:"inhibit_on_failure,omitempty"`
	Virtualhost      string  `json:"virtualhost,omitempty"`
	SMTPAlert        *bool   `json:"smtp_alert,omitempty"`

	SorryServer        *RealServer `json:"sorry_server,omitempty"`
	SorryServerInhibit bool        `json:"sorry_server_inhibit,omitempty"`

	RealServers []*RealServer `json:"real_servers,omitempty"`

	protoSet bool
	sorryFwd *Forward
}

// Name renders the service the way keepalived logs it: "10.0.0.1:80",
// "[2001:db8::1]:80", "fwmark 7" or "group NAME".
func (vs *VirtualServer) Name() string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	}
	return netip.AddrPortFrom(vs.Addr, vs.Port).String()
}

// RealServer is a real_server block (or a sorry_server line).
type RealServer struct {
	Pos              conf.Pos   `json:"-"`
	Addr             netip.Addr `json:"addr"`
	Port             uint16     `json:"port,omitempty"`
	Weight           int        `json:"weight"`
	Forward          Forward    `json:"lvs_method"`
	InhibitOnFailure bool       `json:"inhibit_on_failure,omitempty"`
	UThreshold       uint32     `json:"uthreshold,omitempty"`
	LThreshold       uint32     `json:"lthreshold,omitempty"`
	NotifyUp         *Script    `json:"notify_up,omitempty"`
	NotifyDown       *Script    `json:"notify_down,omitempty"`
	Virtualhost      string     `json:"virtualhost,omitempty"`
	SMTPAlert        *bool      `json:"smtp_alert,omitempty"`
	Timing           Timing     `json:"timing,omitzero"`
	Checks           []*Check   `json:"checks,omitempty"`

	fwdSet     bool
	inhibitSet bool
}

// Name renders "ADDR:PORT".
func (rs *RealServer) Name() string { return netip.AddrPortFrom(rs.Addr, rs.Port).String() }

// SSL is the top-level SSL block used by SSL_GET.
type SSL struct {
	Password    string `json:"password,omitempty"`
	CA          string `json:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
}

// keepalived's defaults for virtual servers (check_data.c, keepalived.conf(5)).
const (
	defaultDelayLoop          = 60 * time.Second
	defaultPersistenceTimeout = 360 * time.Second // "default 6 minutes", as ipvsadm -p
	defaultScheduler          = "wlc"
	maxPersistenceTimeout     = 2678400 // 31 days: keepalived's and the kernel's limit
	maxTimer                  = 24 * 365 * time.Hour
	maxConnectTimeout         = 4294967295 * time.Microsecond // keepalived's limit
)

func defaultLVS() LVS { return LVS{} }

func addLVSKeywords(t table[Config]) {
	t["virtual_server_group"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if g := b.vsGroup(n); g != nil {
			c.VSGroups = append(c.VSGroups, g)
		}
	}}
	t["virtual_server"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if vs := b.virtualServer(n); vs != nil {
			c.VirtualServers = append(c.VirtualServers, vs)
		}
	}}
	t["SSL"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if c.SSL == nil {
			c.SSL = &SSL{}
		}
		walk(b, c.SSL, cached(b, "SSL", sslTable), "SSL", n.Block)
	}}
}

func lvsBlocks(m map[string][]string) {
	m["virtual_server"] = keys(vsTable())
	m["real_server"] = keys(rsTable())
	m["SSL"] = keys(sslTable())
	checkBlocks(m)
}

func sslTable() table[SSL] {
	strField := func(f func(*SSL) *string) kw[SSL] {
		return kw[SSL]{fn: func(b *builder, s *SSL, n *conf.Node) {
			if v, ok := b.str(n); ok {
				*f(s) = v
			}
		}}
	}
	return table[SSL]{
		"password":    strField(func(s *SSL) *string { return &s.Password }),
		"ca":          strField(func(s *SSL) *string { return &s.CA }),
		"certificate": strField(func(s *SSL) *string { return &s.Certificate }),
		"key":         strField(func(s *SSL) *string { return &s.Key }),
	}
}

// vsGroup reads a virtual_server_group block.
func (b *builder) vsGroup(n *conf.Node) *VirtualServerGroup {
	name, ok := b.str(n)
	if !ok {
		return nil
	}
	g := &VirtualServerGroup{Pos: n.Pos(), Name: name}
	for _, m := range n.Block {
		if m.HasBlock {
			b.errorf(m.Open, m.Keyword(), "takes no { ... } block")
			continue
		}
		if m.Keyword() == "fwmark" {
			if !b.nargs(m, 1, 2) {
				continue
			}
			v, ok := b.integer(m, m.Args()[0], 1, 1<<32-1)
			if !ok {
				continue
			}
			mem := VSGroupMember{Pos: m.Pos(), FWMark: uint32(v)}
			if len(m.Args()) == 2 {
				if mem.Family, ok = b.choice(m, m.Args()[1], "inet", "inet6"); !ok {
					continue
				}
			}
			g.Members = append(g.Members, mem)
			continue
		}
		if mem, ok := b.vsGroupRange(m); ok {
			g.Members = append(g.Members, mem)
		}
	}
	return g
}

// vsGroupRange reads "ADDR[-LAST] [PORT]" or "ADDR/LEN [PORT]": the range
// forms of keepalived.conf(5).
func (b *builder) vsGroupRange(m *conf.Node) (VSGroupMember, bool) {
	if len(m.Args()) > 1 {
		b.errorf(m.Args()[1].Pos, m.Keyword(), "a group member is ADDRESS[-RANGE] [PORT]; %q is one word too many", m.Args()[1].Text)
		return VSGroupMember{}, false
	}
	w := m.Words[0]
	mem := VSGroupMember{Pos: m.Pos()}
	text := w.Text
	switch {
	case strings.Contains(text, "/"):
		p, err := netip.ParsePrefix(text)
		if err != nil {
			b.errorf(w.Pos, "virtual_server_group", "%q is not an address, range or prefix", text)
			return mem, false
		}
		p = p.Masked()
		mem.First = p.Addr()
		mem.Last = lastInPrefix(p)
	case strings.Contains(text, "-"):
		first, last, _ := strings.Cut(text, "-")
		a, err := netip.ParseAddr(first)
		if err != nil {
			b.errorf(w.Pos, "virtual_server_group", "%q is not an address range: %q is not an address", text, first)
			return mem, false
		}
		end, ok := rangeEnd(a, last)
		if !ok || end.Less(a) {
			b.errorf(w.Pos, "virtual_server_group", "%q is not an address range (want e.g. 192.168.200.1-10 or 192.168.200.250-192.168.201.10)", text)
			return mem, false
		}
		mem.First, mem.Last = a, end
	default:
		a, err := netip.ParseAddr(text)
		if err != nil {
			b.errorf(w.Pos, "virtual_server_group", "%q is not an address, range, prefix or fwmark line", text)
			return mem, false
		}
		mem.First, mem.Last = a, a
	}
	if len(m.Args()) == 1 {
		p, ok := b.port(m, m.Args()[0], 0)
		if !ok {
			return mem, false
		}
		mem.Port = p
	}
	return mem, true
}

// rangeEnd reads the end of a range: a full address, or the last part of
// one (the last octet for IPv4, the last group for IPv6) replacing the
// start's.
func rangeEnd(first netip.Addr, s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, a.Is4() == first.Is4()
	}
	if first.Is4() {
		var v int
		if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v < 0 || v > 255 || fmt.Sprint(v) != s {
			return netip.Addr{}, false
		}
		b := first.As4()
		b[3] = byte(v)
		return netip.AddrFrom4(b), true
	}
	var v uint64
	if _, err := fmt.Sscanf(s, "%x", &v); err != nil || v > 0xffff || len(s) > 4 {
		return netip.Addr{}, false
	}
	b := first.As16()
	b[14], b[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(b), true
}

func lastInPrefix(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// virtualServer reads "virtual_server ADDR [PORT] | fwmark N | group NAME".
func (b *builder) virtualServer(n *conf.Node) *VirtualServer {
	vs := &VirtualServer{Pos: n.Pos(), Scheduler: defaultScheduler, Forward: Forward{Method: NAT},
		DelayLoop: Duration(defaultDelayLoop), Quorum: 1}
	args := n.Args()
	if !b.nargs(n, 1, 2) {
		return nil
	}
	switch args[0].Text {
	case "fwmark":
		if len(args) != 2 {
			b.errorf(n.Pos(), n.Keyword(), "fwmark needs a mark number")
			return nil
		}
		v, ok := b.integer(n, args[1], 1, 1<<32-1)
		if !ok {
			return nil
		}
		vs.FWMark = uint32(v)
	case "group":
		if len(args) != 2 {
			b.errorf(n.Pos(), n.Keyword(), "group needs a virtual_server_group name")
			return nil
		}
		vs.Group = args[1].Text
	default:
		a, ok := b.addr(n, args[0])
		if !ok {
			return nil
		}
		vs.Addr = a
		if len(args) == 2 {
			if vs.Port, ok = b.port(n, args[1], 1); !ok {
				return nil
			}
		}
	}
	walk(b, vs, cached(b, "virtual_server", vsTable), "virtual_server", n.Block)
	return vs
}

// forward reads "NAT|DR|TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]".
func (b *builder) forward(n *conf.Node) (Forward, bool) {
	args := n.Args()
	if !b.nargs(n, 1, 6) {
		return Forward{}, false
	}
	m, ok := b.choice(n, args[0], "NAT", "DR", "TUN")
	if !ok {
		return Forward{}, false
	}
	f := Forward{Method: Method(m)}
	rest := args[1:]
	if len(rest) > 0 && f.Method != TUN {
		b.errorf(rest[0].Pos, n.Keyword(), "%q: only TUN takes options", rest[0].Text)
		return Forward{}, false
	}
	if len(rest) == 0 {
		return f, true
	}
	if rest[0].Text != "type" || len(rest) < 2 {
		b.errorf(rest[0].Pos, n.Keyword(), "want TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]")
		return Forward{}, false
	}
	if f.TunType, ok = b.choice(n, rest[1], "ipip", "gue", "gre"); !ok {
		return Forward{}, false
	}
	rest = rest[2:]
	if f.TunType == "gue" {
		if len(rest) < 2 || rest[0].Text != "port" {
			b.errorf(args[0].Pos, n.Keyword(), "TUN type gue needs port NUM")
			return Forward{}, false
		}
		if f.TunPort, ok = b.port(n, rest[1], 1); !ok {
			return Forward{}, false
		}
		rest = rest[2:]
	}
	if len(rest) > 0 {
		allowed := []string{"nocsum", "csum", "remcsum"}
		if f.TunType == "gre" {
			allowed = allowed[:2] // the kernel has no remcsum for GRE
		}
		if f.TunType == "ipip" {
			b.errorf(rest[0].Pos, n.Keyword(), "%q: checksum options need type gue or gre", rest[0].Text)
			return Forward{}, false
		}
		if f.TunCsum, ok = b.choice(n, rest[0], allowed...); !ok {
			return Forward{}, false
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		b.errorf(rest[0].Pos, n.Keyword(), "%q is one word too many", rest[0].Text)
		return Forward{}, false
	}
	return f, true
}

// timingKeywords adds the checker timing options shared by virtual_server,
// real_server and checkers; get returns where to store them.
func timingKeywords[T any](t table[T], get func(*T) *Timing) {
	t["connect_timeout"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.timerArg(n, time.Microsecond, maxConnectTimeout); ok {
			get(x).ConnectTimeout = b.duration(d)
		}
	}}
	t["retry"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.intArg(n, 0, 1<<31-1); ok {
			get(x).Retry = b.intPtr(int(v))
		}
	}}
	t.alias("nb_get_retry", "retry", "use retry")
	t["delay_before_retry"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.timerArg(n, 0, maxTimer); ok {
			get(x).DelayBeforeRetry = b.duration(d)
		}
	}}
	t["warmup"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.timerArg(n, 0, maxTimer); ok {
			get(x).Warmup = b.duration(d)
		}
	}}
	t["delay_loop"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.timerArg(n, time.Microsecond, maxTimer); ok {
			get(x).DelayLoop = b.duration(d)
		}
	}}
}

func vsTable() table[VirtualServer] {
	t := table[VirtualServer]{
		"lvs_sched": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if s, ok := b.choice(n, w, Schedulers...); ok {
					vs.Scheduler = s
				}
			}
		}},
		"lvs_method": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if f, ok := b.forward(n); ok {
				vs.Forward = f
			}
		}},
		"protocol": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if p, ok := b.choice(n, w, "TCP", "UDP", "SCTP"); ok {
					vs.Protocol.UnmarshalText([]byte(p))
					vs.protoSet = true
				}
			}
		}},
		"ops": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			vs.OnePacket = b.flag(n)
		}},
		"persistence_timeout": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if !b.nargs(n, 0, 1) {
				return
			}
			vs.PersistenceTimeout = Duration(defaultPersistenceTimeout)
			if len(n.Args()) == 0 {
				return
			}
			if w := n.Args()[0]; w.Text == "0" {
				// keepalived 1.x read 0 as "not persistent"; 2.2 rejects it
				// and runs the service without persistence all the same.
				vs.PersistenceTimeout = 0
				b.warnf(w.Pos, n.Keyword(), "0 means no persistence; keepalived 2.2 rejects it: leave the line out")
				return
			}
			if v, ok := b.integer(n, n.Args()[0], 1, maxPersistenceTimeout); ok {
				vs.PersistenceTimeout = Duration(time.Duration(v) * time.Second)
			}
		}},
		"persistence_granularity": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if m, ok := b.netmask(n, w); ok {
					vs.PersistenceGranularity = m
				}
			}
		}},
		"persistence_engine": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if s, ok := b.choice(n, w, "sip"); ok {
					vs.PersistenceEngine = s
				}
			}
		}},
		"ip_family": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if s, ok := b.choice(n, w, "inet", "inet6"); ok {
					vs.Family = s
				}
			}
		}},
		"ha_suspend":         {fn: func(b *builder, vs *VirtualServer, n *conf.Node) { vs.HASuspend = b.flag(n) }},
		"omega":              {fn: func(b *builder, vs *VirtualServer, n *conf.Node) { vs.Omega = b.flag(n) }},
		"inhibit_on_failure": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) { vs.InhibitOnFailure = b.flag(n) }},
		"alpha": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				vs.Alpha = v
			}
		}},
		"quorum": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 1<<32-1); ok {
				vs.Quorum = int(v)
			}
		}},
		"hysteresis": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				vs.Hysteresis = int(v)
			}
		}},
		"quorum_up": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if s, ok := b.script(n, true); ok {
				vs.QuorumUp = &s
			}
		}},
		"quorum_down": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if s, ok := b.script(n, true); ok {
				vs.QuorumDown = &s
			}
		}},
		"virtualhost": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if s, ok := b.str(n); ok {
				vs.Virtualhost = s
			}
		}},
		"smtp_alert": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				vs.SMTPAlert = &v
			}
		}},
		"sorry_server": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if rs := b.serverAddr(n); rs != nil {
				vs.SorryServer = rs
			}
		}},
		"sorry_server_inhibit": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) { vs.SorryServerInhibit = b.flag(n) }},
		"sorry_server_lvs_method": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if f, ok := b.forward(n); ok {
				vs.sorryFwd = &f
			}
		}},
		"real_server": {block: false, optBlock: true, fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if rs := b.realServer(n); rs != nil {
				vs.RealServers = append(vs.RealServers, rs)
			}
		}},
		"snmp_name": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if _, ok := b.str(n); ok {
				b.warnf(n.Pos(), n.Keyword(), "accepted but not implemented by keepvs (no SNMP); ignored")
			}
		}},
		"hashed": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if b.flag(n) {
				b.warnf(n.Pos(), n.Keyword(), "obsolete (the kernel no longer has it); ignored")
			}
		}},
		"nat_mask": {fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if _, ok := b.netmask(n, w); ok {
					b.warnf(n.Pos(), n.Keyword(), "obsolete (keepalived 2 no longer reads it either); ignored")
				}
			}
		}},
	}
	for _, f := range []struct{ name, flag string }{
		{"flag-1", FlagSched1}, {"flag-2", FlagSched2}, {"flag-3", FlagSched3},
		{"sh-fallback", FlagSched1}, {"sh-port", FlagSched2}, {"mh-fallback", FlagSched1}, {"mh-port", FlagSched2},
	} {
		t[f.name] = kw[VirtualServer]{fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
			if !b.flag(n) {
				return
			}
			if want := strings.SplitN(n.Keyword(), "-", 2)[0]; want != "flag" && vs.Scheduler != want {
				b.warnf(n.Pos(), n.Keyword(), "has no effect with scheduler %s (it is a flag of %s)", vs.Scheduler, want)
			}
			for _, have := range vs.SchedFlags {
				if have == f.flag {
					return
				}
			}
			vs.SchedFlags = append(vs.SchedFlags, f.flag)
		}}
	}
	t.alias("lb_algo", "lvs_sched", "")
	t.alias("lb_kind", "lvs_method", "")
	timingKeywords(t, func(vs *VirtualServer) *Timing { return &vs.Timing })
	// delay_loop at virtual_server level is the service's own field too.
	dl := t["delay_loop"]
	t["delay_loop"] = kw[VirtualServer]{fn: func(b *builder, vs *VirtualServer, n *conf.Node) {
		dl.fn(b, vs, n)
		if vs.Timing.DelayLoop != nil {
			vs.DelayLoop, vs.Timing.DelayLoop = *vs.Timing.DelayLoop, nil
		}
	}}
	return t
}

// netmask reads a persistence netmask: a dotted IPv4 mask, or a prefix
// length (IPv6's form for ipvsadm -M). The kernel ANDs the client address
// with the mask, so a non-contiguous IPv4 mask works; it is almost always a
// typo, so it is worth a warning.
func (b *builder) netmask(n *conf.Node, w conf.Word) (string, bool) {
	if a, err := netip.ParseAddr(w.Text); err == nil && a.Is4() {
		v := a.As4()
		m := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
		if m == 0 {
			b.errorf(w.Pos, n.Keyword(), "netmask 0.0.0.0 would make every client one")
			return "", false
		}
		if m|(m-1) != 0xffffffff && m != 0xffffffff {
			b.warnf(w.Pos, n.Keyword(), "%s is not a contiguous netmask; the kernel will AND client addresses with it as written", w.Text)
		}
		return a.String(), true
	}
	v, ok := b.integer(n, w, 1, 128)
	return strconv.FormatInt(v, 10), ok
}

// serverAddr reads "ADDR [PORT]" for real_server and sorry_server.
func (b *builder) serverAddr(n *conf.Node) *RealServer {
	if !b.nargs(n, 1, 2) {
		return nil
	}
	a, ok := b.addr(n, n.Args()[0])
	if !ok {
		return nil
	}
	rs := b.realServers.new() // zero: set field by field, without a write barrier for each
	rs.Pos, rs.Addr, rs.Weight = n.Pos(), a, 1
	if len(n.Args()) == 2 {
		if rs.Port, ok = b.port(n, n.Args()[1], 0); !ok {
			return nil
		}
	}
	return rs
}

func (b *builder) realServer(n *conf.Node) *RealServer {
	rs := b.serverAddr(n)
	if rs == nil {
		return nil
	}
	walk(b, rs, cached(b, "real_server", rsTable), "real_server", n.Block)
	return rs
}

func rsTable() table[RealServer] {
	t := table[RealServer]{
		"weight": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				rs.Weight = int(v)
			}
		}},
		"lvs_method": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if f, ok := b.forward(n); ok {
				rs.Forward, rs.fwdSet = f, true
			}
		}},
		"inhibit_on_failure": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				rs.InhibitOnFailure, rs.inhibitSet = v, true
			}
		}},
		"uthreshold": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				rs.UThreshold = uint32(v)
			}
		}},
		"lthreshold": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				rs.LThreshold = uint32(v)
			}
		}},
		"notify_up": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if s, ok := b.script(n, true); ok {
				rs.NotifyUp = &s
			}
		}},
		"notify_down": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if s, ok := b.script(n, true); ok {
				rs.NotifyDown = &s
			}
		}},
		"virtualhost": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if s, ok := b.str(n); ok {
				rs.Virtualhost = s
			}
		}},
		"smtp_alert": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				rs.SMTPAlert = &v
			}
		}},
		"alpha": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				rs.Timing.Alpha = &v
			}
		}},
		"snmp_name": {fn: func(b *builder, rs *RealServer, n *conf.Node) {
			if _, ok := b.str(n); ok {
				b.warnf(n.Pos(), n.Keyword(), "accepted but not implemented by keepvs (no SNMP); ignored")
			}
		}},
	}
	t.alias("lb_kind", "lvs_method", "")
	timingKeywords(t, func(rs *RealServer) *Timing { return &rs.Timing })
	checkKeywords(t)
	return t
}
