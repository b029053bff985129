package model

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// Checker defaults of keepalived.conf(5).
const (
	defaultConnectTimeout  = 5 * time.Second
	defaultRetry           = 1
	defaultHTTPRetryDelay  = 3 * time.Second
	defaultOtherRetryDelay = 1 * time.Second
	defaultDNSRetry        = 3
	defaultMiscRetry       = 0
)

// finishLVS fills the defaults that depend on other settings (cascading
// checker timing, real server ports and methods) and checks what one block
// alone cannot: references, duplicates, families, combinations.
func (c *Config) finishLVS(b *builder) {
	groups := map[string]*VirtualServerGroup{}
	for _, g := range c.VSGroups {
		if prev, dup := groups[g.Name]; dup {
			b.errorf(g.Pos, "virtual_server_group", "%q is already defined at %s", g.Name, prev.Pos)
			continue
		}
		groups[g.Name] = g
		if len(g.Members) == 0 {
			b.warnf(g.Pos, "virtual_server_group", "%q has no members", g.Name)
		}
		if g.mixedFamilies() {
			for _, m := range g.Members {
				if m.FWMark != 0 && m.Family == "" {
					b.errorf(m.Pos, "fwmark", "group %q has IPv4 and IPv6 addresses, so fwmark %d needs its family (inet or inet6)", g.Name, m.FWMark)
				}
			}
		}
	}
	type svcKey struct {
		proto Protocol
		name  string
	}
	seen := map[svcKey]*VirtualServer{}
	for _, vs := range c.VirtualServers {
		if vs.FWMark != 0 {
			// An fwmark service matches packets of any protocol.
			if vs.protoSet {
				b.warnf(vs.Pos, "protocol", "fwmark %d: a fwmark service has no protocol; ignored", vs.FWMark)
			}
			vs.Protocol = 0
		} else if !vs.protoSet {
			// keepalived 2.2.7 logs "no protocol set - defaulting to UDP".
			vs.Protocol = UDP
			b.warnf(vs.Pos, "virtual_server", "%s: no protocol set; defaulting to UDP as keepalived does (write protocol TCP if you meant TCP)", vs.Name())
		}
		key := svcKey{vs.Protocol, vs.Name()}
		if prev, dup := seen[key]; dup {
			b.errorf(vs.Pos, "virtual_server", "%s %s is already defined at %s", vs.Protocol, vs.Name(), prev.Pos)
		}
		seen[key] = vs
		c.finishVirtualServer(b, vs, groups)
	}
}

func (c *Config) finishVirtualServer(b *builder, vs *VirtualServer, groups map[string]*VirtualServerGroup) {
	name := vs.Name()
	if vs.Group != "" {
		if g, ok := groups[vs.Group]; ok && g.mixedFamilies() {
			for _, rs := range vs.RealServers {
				if rs.fwdSet && rs.Forward.Method != TUN || !rs.fwdSet && vs.Forward.Method != TUN {
					b.errorf(rs.Pos, "real_server", "group %q mixes IPv4 and IPv6, which only TUN real servers can serve; %s is %s", vs.Group, rs.Name(), rs.Forward.Method)
				}
			}
		} else if !ok {
			names := make([]string, 0, len(groups))
			for n := range groups {
				names = append(names, n)
			}
			msg := fmt.Sprintf("virtual_server_group %q is not defined", vs.Group)
			if s := suggest(vs.Group, names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			b.errorf(vs.Pos, "virtual_server", "%s", msg)
		}
	}
	if vs.Addr.IsValid() && vs.Port == 0 && vs.PersistenceTimeout == 0 {
		b.errorf(vs.Pos, "virtual_server", "%s: the port may only be left out of a persistent service (add a port or persistence_timeout)", vs.Addr)
	}
	if vs.OnePacket && vs.Protocol != UDP {
		b.errorf(vs.Pos, "ops", "%s: one-packet scheduling is for UDP services only", name)
	}
	if vs.Hysteresis > 0 && vs.Hysteresis >= vs.Quorum {
		b.warnf(vs.Pos, "hysteresis", "%s: hysteresis %d is not below quorum %d, so quorum can never be lost", name, vs.Hysteresis, vs.Quorum)
	}
	if g := vs.PersistenceGranularity; g != "" && vs.Addr.IsValid() {
		if dotted := strings.Contains(g, "."); dotted != vs.Addr.Is4() {
			b.errorf(vs.Pos, "persistence_granularity", "%s: %s is not a %s netmask (IPv4: a dotted mask; IPv6: a prefix length)", name, g, family(vs.Addr))
		}
	}
	if vs.SorryServer != nil {
		vs.SorryServer.Forward = vs.Forward
		if vs.sorryFwd != nil {
			vs.SorryServer.Forward = *vs.sorryFwd
		}
		vs.SorryServer.InhibitOnFailure = vs.SorryServerInhibit
		c.finishRealServer(b, vs, vs.SorryServer)
	} else if vs.sorryFwd != nil {
		b.warnf(vs.Pos, "sorry_server_lvs_method", "%s: there is no sorry_server", name)
	}
	// Duplicates: a map for many real servers; for a few, looking back
	// costs less than hashing.
	var seen map[netip.AddrPort]*RealServer
	if len(vs.RealServers) > 64 {
		seen = make(map[netip.AddrPort]*RealServer, len(vs.RealServers))
	}
	for i, rs := range vs.RealServers {
		if !rs.fwdSet {
			rs.Forward = vs.Forward
		}
		if !rs.inhibitSet {
			rs.InhibitOnFailure = vs.InhibitOnFailure
		}
		c.finishRealServer(b, vs, rs)
		var prev *RealServer // the last one before it at the same address
		if seen != nil {
			key := netip.AddrPortFrom(rs.Addr, rs.Port)
			prev = seen[key]
			seen[key] = rs
		} else {
			for j := i - 1; j >= 0; j-- {
				if o := vs.RealServers[j]; o.Addr == rs.Addr && o.Port == rs.Port {
					prev = o
					break
				}
			}
		}
		if prev != nil {
			b.errorf(rs.Pos, "real_server", "%s is already a real server of %s (at %s)", rs.Name(), name, prev.Pos)
		}
	}
}

func (c *Config) finishRealServer(b *builder, vs *VirtualServer, rs *RealServer) {
	if rs.Port == 0 && vs.Port != 0 {
		// ipvsadm and keepalived take the service's port.
		rs.Port = vs.Port
	}
	if vs.Addr.IsValid() && rs.Addr.Is4() != vs.Addr.Is4() && rs.Forward.Method != TUN {
		b.errorf(rs.Pos, "real_server", "%s is %s but virtual server %s is %s; only TUN real servers may differ", rs.Addr, family(rs.Addr), vs.Name(), family(vs.Addr))
	}
	if rs.UThreshold != 0 && rs.LThreshold > rs.UThreshold {
		b.errorf(rs.Pos, "lthreshold", "%s: lthreshold %d is above uthreshold %d", rs.Name(), rs.LThreshold, rs.UThreshold)
	}
	for _, ch := range rs.Checks {
		resolveTiming(ch, rs, vs)
		if ch.HTTP != nil && ch.HTTP.Virtualhost == "" {
			ch.HTTP.Virtualhost = firstNonEmpty(rs.Virtualhost, vs.Virtualhost)
		}
	}
}

// resolveTiming applies checker, then real server, then virtual server
// settings, then keepalived's per-type defaults.
func resolveTiming(ch *Check, rs *RealServer, vs *VirtualServer) {
	levels := []Timing{ch.timing, rs.Timing, vs.Timing}
	pickDur := func(get func(Timing) *Duration, def Duration) Duration {
		for _, l := range levels {
			if v := get(l); v != nil {
				return *v
			}
		}
		return def
	}
	ch.DelayLoop = pickDur(func(t Timing) *Duration { return t.DelayLoop }, vs.DelayLoop)
	ch.ConnectTimeout = pickDur(func(t Timing) *Duration { return t.ConnectTimeout }, Duration(defaultConnectTimeout))
	retryDelay := Duration(defaultOtherRetryDelay)
	retry := defaultRetry
	switch ch.Type {
	case "HTTP_GET", "SSL_GET":
		retryDelay = Duration(defaultHTTPRetryDelay)
	case "DNS_CHECK":
		retryDelay, retry = ch.DelayLoop, defaultDNSRetry
	case "MISC_CHECK":
		retry = defaultMiscRetry
	}
	ch.DelayBeforeRetry = pickDur(func(t Timing) *Duration { return t.DelayBeforeRetry }, retryDelay)
	ch.Warmup = pickDur(func(t Timing) *Duration { return t.Warmup }, ch.DelayLoop)
	ch.Retry = retry
	for _, l := range levels {
		if l.Retry != nil {
			ch.Retry = *l.Retry
			break
		}
	}
	ch.Alpha = vs.Alpha
	for _, l := range levels {
		if l.Alpha != nil {
			ch.Alpha = *l.Alpha
			break
		}
	}
	if ch.Misc != nil && ch.Misc.Timeout == 0 {
		// keepalived runs a misc script for at most delay_loop by default.
		ch.Misc.Timeout = ch.DelayLoop
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// mixedFamilies reports whether the group has both IPv4 and IPv6 addresses.
func (g *VirtualServerGroup) mixedFamilies() bool {
	var v4, v6 bool
	for _, m := range g.Members {
		if m.First.IsValid() {
			v4 = v4 || m.First.Is4()
			v6 = v6 || m.First.Is6()
		}
	}
	return v4 && v6
}

// RealServerFor reads one real_server block (name names it in messages) as
// if it were written inside vs: the same keywords, the same defaults and
// cascades from the virtual server. The control API adds real servers at
// run time with it.
func RealServerFor(vs *VirtualServer, name string, src []byte) (*RealServer, conf.Diagnostics) {
	f, diags := conf.Parse(name, src, conf.Options{ConfigID: "-"})
	if diags.HasErrors() {
		return nil, diags
	}
	b := newBuilder()
	if len(f.Nodes) != 1 || f.Nodes[0].Keyword() != "real_server" {
		b.errorf(conf.Pos{File: name, Line: 1, Col: 1}, "", "want exactly one real_server ADDR PORT { ... } block")
		return nil, append(diags, b.diags...)
	}
	rs := b.realServer(f.Nodes[0])
	if rs == nil {
		return nil, append(diags, b.diags...)
	}
	if !rs.fwdSet {
		rs.Forward = vs.Forward
	}
	if !rs.inhibitSet {
		rs.InhibitOnFailure = vs.InhibitOnFailure
	}
	(&Config{}).finishRealServer(b, vs, rs)
	diags = append(diags, b.diags...)
	if diags.HasErrors() {
		return nil, diags
	}
	return rs, diags
}
