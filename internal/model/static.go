package model

import (
	"net/netip"
	"strings"

	"github.com/keepvs/keepvs/internal/conf"
)

// VIP is one line of virtual_ipaddress, virtual_ipaddress_excluded or
// static_ipaddress: the options of `ip address add`, plus keepalived's
// no_track, use_vmac and track_group.
type VIP struct {
	Prefix netip.Prefix `json:"prefix"`
	// Brd is an address, or "+"/"-" to set/clear the host bits.
	Brd           string       `json:"brd,omitempty"`
	Dev           string       `json:"dev,omitempty"`
	Scope         string       `json:"scope,omitempty"`
	Label         string       `json:"label,omitempty"`
	Peer          netip.Prefix `json:"peer,omitzero"`
	Home          bool         `json:"home,omitempty"`
	NoDAD         bool         `json:"nodad,omitempty"`
	MngTmpAddr    bool         `json:"mngtmpaddr,omitempty"`
	NoPrefixRoute bool         `json:"noprefixroute,omitempty"`
	AutoJoin      bool         `json:"autojoin,omitempty"`
	NoTrack       bool         `json:"no_track,omitempty"`
	// UseVMAC puts the address on a VMAC of its dev; VMACName is that
	// VMAC's name when given.
	UseVMAC  bool   `json:"use_vmac,omitempty"`
	VMACName string `json:"vmac_name,omitempty"`
	// PreferredLft is the preferred lifetime in seconds; -1 is forever,
	// nil leaves the kernel's default (0 for /128 VIPs in keepalived).
	PreferredLft *int64   `json:"preferred_lft,omitempty"`
	TrackGroup   string   `json:"track_group,omitempty"`
	Pos          conf.Pos `json:"-"`
}

// scopes are the names ip(8) and keepalived accept for scope.
var scopes = []string{"global", "site", "link", "host", "nowhere"}

// vip reads one address line. static is true for static_ipaddress, which
// has track_group but neither no_track nor use_vmac.
func (b *builder) vip(n *conf.Node, static bool) (VIP, bool) {
	if n.HasBlock {
		b.errorf(n.Open, n.Keyword(), "takes no { ... } block")
		return VIP{}, false
	}
	v := VIP{Pos: n.Pos()}
	p, ok := b.prefix(n, n.Words[0])
	if !ok {
		return VIP{}, false
	}
	v.Prefix = p
	args := n.Args()
	value := func(i int) (conf.Word, bool) {
		if i+1 >= len(args) {
			b.errorf(args[i].Pos, n.Keyword(), "%s needs a value", args[i].Text)
			return conf.Word{}, false
		}
		return args[i+1], true
	}
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		o := args[i]
		if seen[o.Text] {
			b.errorf(o.Pos, n.Keyword(), "%s given twice", o.Text)
			return VIP{}, false
		}
		seen[o.Text] = true
		switch o.Text {
		case "brd", "broadcast":
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			if w.Text != "+" && w.Text != "-" {
				a, ok := b.addr(n, w)
				if !ok {
					return VIP{}, false
				}
				if !a.Is4() || !p.Addr().Is4() {
					b.errorf(w.Pos, n.Keyword(), "brd is for IPv4 addresses only")
					return VIP{}, false
				}
			}
			v.Brd = w.Text
		case "dev":
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			v.Dev = w.Text
		case "scope":
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			s, ok := b.choice(n, w, scopes...)
			if !ok {
				return VIP{}, false
			}
			v.Scope = s
		case "label":
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			// The kernel limits labels to IFNAMSIZ-1 bytes, and keepalived
			// expects "<dev>:<anything>" for ifconfig compatibility.
			if len(w.Text) > 15 {
				b.errorf(w.Pos, n.Keyword(), "label %q is longer than 15 characters", w.Text)
				return VIP{}, false
			}
			v.Label = w.Text
		case "peer":
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			pp, ok := b.prefix(n, w)
			if !ok {
				return VIP{}, false
			}
			if pp.Addr().Is4() != p.Addr().Is4() {
				b.errorf(w.Pos, n.Keyword(), "peer %s is not of the address's family", pp.Addr())
				return VIP{}, false
			}
			v.Peer = pp
		case "home":
			v.Home = true
		case "-nodad":
			v.NoDAD = true
		case "mngtmpaddr":
			v.MngTmpAddr = true
		case "noprefixroute":
			v.NoPrefixRoute = true
		case "autojoin":
			v.AutoJoin = true
		case "no_track":
			if static {
				b.errorf(o.Pos, n.Keyword(), "no_track is for virtual addresses, not static ones")
				return VIP{}, false
			}
			v.NoTrack = true
		case "use_vmac":
			if static {
				b.errorf(o.Pos, n.Keyword(), "use_vmac is for virtual addresses, not static ones")
				return VIP{}, false
			}
			v.UseVMAC = true
			// An optional VMAC name follows unless the next word is an
			// option.
			if i+1 < len(args) && !vipOptions[args[i+1].Text] {
				i++
				v.VMACName = args[i].Text
			}
		case "track_group":
			if !static {
				b.errorf(o.Pos, n.Keyword(), "track_group is for static addresses only")
				return VIP{}, false
			}
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			v.TrackGroup = w.Text
		case "preferred_lft":
			w, ok := value(i)
			if !ok {
				return VIP{}, false
			}
			i++
			lft := int64(-1)
			if w.Text != "forever" {
				if lft, ok = b.integer(n, w, 0, 1<<32-2); !ok {
					return VIP{}, false
				}
			}
			v.PreferredLft = &lft
		default:
			msg := "unknown address option %q; expected brd, dev, scope, label, peer, home, -nodad, mngtmpaddr, noprefixroute, autojoin, preferred_lft, "
			if static {
				msg += "track_group"
			} else {
				msg += "no_track, use_vmac"
			}
			if s := suggest(o.Text, keysOf(vipOptions)); s != "" {
				msg += "; did you mean " + s + "?"
			}
			b.errorf(o.Pos, n.Keyword(), msg, o.Text)
			return VIP{}, false
		}
	}
	if (v.Home || v.NoDAD || v.MngTmpAddr) && v.Prefix.Addr().Is4() {
		b.errorf(n.Pos(), n.Keyword(), "home, -nodad and mngtmpaddr are for IPv6 addresses only")
		return VIP{}, false
	}
	return v, true
}

var vipOptions = map[string]bool{"brd": true, "broadcast": true, "dev": true, "scope": true, "label": true,
	"peer": true, "home": true, "-nodad": true, "mngtmpaddr": true, "noprefixroute": true,
	"autojoin": true, "no_track": true, "use_vmac": true, "track_group": true, "preferred_lft": true}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// vipList reads a block of addresses.
func (b *builder) vipList(n *conf.Node, static bool) []VIP {
	var out []VIP
	seen := map[netip.Addr]conf.Pos{}
	for _, m := range n.Block {
		v, ok := b.vip(m, static)
		if !ok {
			continue
		}
		if p, dup := seen[v.Prefix.Addr()]; dup {
			b.errorf(m.Pos(), m.Keyword(), "%s is listed twice (first at %s)", v.Prefix.Addr(), p)
			continue
		}
		seen[v.Prefix.Addr()] = m.Pos()
		out = append(out, v)
	}
	return out
}

// Route is one line of virtual_routes or static_routes, in ip-route
// syntax. The options keepvs reasons about are typed; the rest of ip
// route's options are kept in Options, as written.
type Route struct {
	// Type is unicast (the default), blackhole, unreachable, prohibit,
	// throw, local, broadcast, anycast, multicast or nat.
	Type    string       `json:"type,omitempty"`
	To      netip.Prefix `json:"to"`
	Src     netip.Addr   `json:"src,omitzero"`
	Via     netip.Addr   `json:"via,omitzero"`
	Dev     string       `json:"dev,omitempty"`
	Scope   string       `json:"scope,omitempty"`
	Table   string       `json:"table,omitempty"`
	Metric  *int64       `json:"metric,omitempty"`
	Onlink  bool         `json:"onlink,omitempty"`
	NoTrack bool         `json:"no_track,omitempty"`
	// Options holds the other ip-route options, e.g. {"mtu": "1400"};
	// Nexthops holds multipath "nexthop ..." words as written.
	Options    map[string]string `json:"options,omitempty"`
	Nexthops   []string          `json:"nexthops,omitempty"`
	TrackGroup string            `json:"track_group,omitempty"`
	Pos        conf.Pos          `json:"-"`
}

var routeTypes = map[string]bool{"unicast": true, "blackhole": true, "unreachable": true, "prohibit": true,
	"throw": true, "local": true, "broadcast": true, "anycast": true, "multicast": true, "nat": true}

// routeValueOpts are ip-route options with one value that keepvs passes on
// to the kernel as they are.
var routeValueOpts = map[string]bool{"tos": true, "dsfield": true, "protocol": true, "proto": true,
	"mtu": true, "advmss": true, "rtt": true, "rttvar": true, "reordering": true,
	"window": true, "cwnd": true, "ssthresh": true, "realms": true, "rto_min": true, "initcwnd": true,
	"initrwnd": true, "features": true, "quickack": true, "congctl": true, "pref": true, "expires": true,
	"hoplimit": true, "fastopen_no_cookie": true, "ttl-propagate": true, "vrf": true, "encap": true,
	"or": true, "as": true, "nhid": true}

// route reads one route line.
func (b *builder) route(n *conf.Node, static bool) (Route, bool) {
	if n.HasBlock {
		b.errorf(n.Open, n.Keyword(), "takes no { ... } block")
		return Route{}, false
	}
	r := Route{Pos: n.Pos()}
	words := n.Words
	value := func(i int) (conf.Word, bool) {
		if i+1 >= len(words) {
			b.errorf(words[i].Pos, n.Keyword(), "%s needs a value", words[i].Text)
			return conf.Word{}, false
		}
		return words[i+1], true
	}
	addrOpt := func(i int, dst *netip.Addr) bool {
		w, ok := value(i)
		if !ok {
			return false
		}
		a, ok := b.addr(n, w)
		*dst = a
		return ok
	}
	inet6 := false
	for i := 0; i < len(words); i++ {
		o := words[i]
		switch {
		case i == 0 && routeTypes[o.Text]:
			r.Type = o.Text
		case o.Text == "inet6":
			inet6 = true
		case o.Text == "src":
			if !addrOpt(i, &r.Src) {
				return Route{}, false
			}
			i++
		case o.Text == "via" || o.Text == "gw":
			if !addrOpt(i, &r.Via) {
				return Route{}, false
			}
			i++
		case o.Text == "to":
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			if r.To, ok = b.routeDst(n, w); !ok {
				return Route{}, false
			}
		case o.Text == "dev" || o.Text == "oif":
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			r.Dev = w.Text
		case o.Text == "scope":
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			if r.Scope, ok = b.choice(n, w, scopes...); !ok {
				return Route{}, false
			}
		case o.Text == "table":
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			r.Table = w.Text
		case o.Text == "metric" || o.Text == "priority" || o.Text == "preference":
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			m, ok := b.integer(n, w, 0, 1<<32-1)
			if !ok {
				return Route{}, false
			}
			r.Metric = &m
		case o.Text == "onlink":
			r.Onlink = true
		case o.Text == "no_track":
			if static {
				b.errorf(o.Pos, n.Keyword(), "no_track is for virtual routes, not static ones")
				return Route{}, false
			}
			r.NoTrack = true
		case o.Text == "track_group" && static:
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			r.TrackGroup = w.Text
		case o.Text == "append" || o.Text == "prepend":
			setOpt(&r.Options, o.Text, "")
		case o.Text == "nexthop":
			// Multipath: the rest of the line is nexthop specifications.
			var parts []string
			for _, w := range words[i:] {
				parts = append(parts, w.Text)
			}
			r.Nexthops = strings.Split(strings.TrimPrefix(strings.Join(parts, " "), "nexthop "), " nexthop ")
			i = len(words)
		case routeValueOpts[o.Text]:
			w, ok := value(i)
			if !ok {
				return Route{}, false
			}
			i++
			// "ssthresh lock 107": lock applies to the metric after it.
			if w.Text == "lock" && i+1 < len(words) {
				i++
				w.Text = "lock " + words[i].Text
			}
			setOpt(&r.Options, o.Text, w.Text)
		case !r.To.IsValid() && (strings.ContainsAny(o.Text, ".:") || o.Text == "default"):
			p, ok := b.routeDst(n, o)
			if !ok {
				return Route{}, false
			}
			r.To = p
		default:
			b.errorf(o.Pos, n.Keyword(), "unknown route option %q", o.Text)
			return Route{}, false
		}
	}
	if !r.To.IsValid() {
		b.errorf(n.Pos(), n.Keyword(), "route has no destination")
		return Route{}, false
	}
	if inet6 && r.To.Addr().Is4() {
		b.errorf(n.Pos(), n.Keyword(), "inet6 route to IPv4 destination %s", r.To)
		return Route{}, false
	}
	for _, a := range []netip.Addr{r.Src, r.Via} {
		if a.IsValid() && a.Is4() != r.To.Addr().Is4() {
			b.errorf(n.Pos(), n.Keyword(), "%s is not of the family of destination %s", a, r.To)
			return Route{}, false
		}
	}
	return r, true
}

// routeDst reads a route destination: ADDR[/LEN] or "default".
func (b *builder) routeDst(n *conf.Node, w conf.Word) (netip.Prefix, bool) {
	if w.Text == "default" {
		return netip.MustParsePrefix("0.0.0.0/0"), true
	}
	return b.prefix(n, w)
}

func setOpt(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}

// Rule is one line of virtual_rules or static_rules, in ip-rule syntax.
type Rule struct {
	From     netip.Prefix `json:"from,omitzero"`
	To       netip.Prefix `json:"to,omitzero"`
	Table    string       `json:"table,omitempty"`
	Priority *int64       `json:"priority,omitempty"`
	Not      bool         `json:"not,omitempty"`
	Inet6    bool         `json:"inet6,omitempty"`
	NoTrack  bool         `json:"no_track,omitempty"`
	// Options holds the other ip-rule selectors and actions as written
	// (iif, oif, fwmark, tos, goto, realms, uidrange, ...).
	Options    map[string]string `json:"options,omitempty"`
	TrackGroup string            `json:"track_group,omitempty"`
	Pos        conf.Pos          `json:"-"`
}

var ruleValueOpts = map[string]bool{"iif": true, "oif": true, "fwmark": true, "tos": true, "dsfield": true,
	"goto": true, "realms": true, "uidrange": true, "protocol": true, "ip_proto": true, "ipproto": true,
	"sport": true, "dport": true, "suppress_prefixlength": true, "suppress_ifgroup": true,
	"type": true, "lookup": true, "nat": true, "tun_id": true}

var ruleFlags = map[string]bool{"l3mdev": true, "blackhole": true, "unreachable": true, "prohibit": true}

// rule reads one rule line.
func (b *builder) rule(n *conf.Node, static bool) (Rule, bool) {
	if n.HasBlock {
		b.errorf(n.Open, n.Keyword(), "takes no { ... } block")
		return Rule{}, false
	}
	r := Rule{Pos: n.Pos()}
	words := n.Words
	for i := 0; i < len(words); i++ {
		o := words[i]
		if o.Text == "not" {
			r.Not = true
			continue
		}
		if o.Text == "inet6" {
			r.Inet6 = true
			continue
		}
		if o.Text == "no_track" && !static {
			r.NoTrack = true
			continue
		}
		if ruleFlags[o.Text] {
			setOpt(&r.Options, o.Text, "")
			continue
		}
		known := ruleValueOpts[o.Text] || o.Text == "from" || o.Text == "to" || o.Text == "table" ||
			o.Text == "preference" || o.Text == "priority" || o.Text == "pref" || (o.Text == "track_group" && static)
		if !known {
			b.errorf(o.Pos, n.Keyword(), "unknown rule option %q", o.Text)
			return Rule{}, false
		}
		if i+1 >= len(words) {
			b.errorf(o.Pos, n.Keyword(), "%s needs a value", o.Text)
			return Rule{}, false
		}
		i++
		w := words[i]
		var ok bool
		switch o.Text {
		case "from":
			r.From, ok = b.rulePrefix(n, w)
		case "to":
			r.To, ok = b.rulePrefix(n, w)
		case "table", "lookup":
			r.Table, ok = w.Text, true
		case "preference", "priority", "pref":
			var p int64
			if p, ok = b.integer(n, w, 0, 1<<32-1); ok {
				r.Priority = &p
			}
		case "track_group":
			r.TrackGroup, ok = w.Text, true
		default:
			setOpt(&r.Options, o.Text, w.Text)
			ok = true
		}
		if !ok {
			return Rule{}, false
		}
	}
	if r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4() {
		b.errorf(n.Pos(), n.Keyword(), "from %s and to %s are of different families", r.From, r.To)
		return Rule{}, false
	}
	if r.Inet6 && ((r.From.IsValid() && r.From.Addr().Is4()) || (r.To.IsValid() && r.To.Addr().Is4())) {
		b.errorf(n.Pos(), n.Keyword(), "inet6 rule with IPv4 addresses")
		return Rule{}, false
	}
	return r, true
}

func (b *builder) rulePrefix(n *conf.Node, w conf.Word) (netip.Prefix, bool) {
	if w.Text == "all" {
		return netip.Prefix{}, true
	}
	return b.prefix(n, w)
}

func (b *builder) routeList(n *conf.Node, static bool) []Route {
	var out []Route
	for _, m := range n.Block {
		if r, ok := b.route(m, static); ok {
			out = append(out, r)
		}
	}
	return out
}

func (b *builder) ruleList(n *conf.Node, static bool) []Rule {
	var out []Rule
	for _, m := range n.Block {
		if r, ok := b.rule(m, static); ok {
			out = append(out, r)
		}
	}
	return out
}
