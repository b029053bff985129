package model

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// finishVRRP resolves what depends on more than one block (defaults from
// global_defs, the instance's family and version) and checks references
// between blocks, the way keepalived's vrrp_complete_init does, but
// refusing what keepalived only logs and repairs (see
// testdata/vrrp/STRICTER.md).
func (c *Config) finishVRRP(b *builder) {
	c.Global.GARP = c.Global.GARP.resolve()

	scripts := byName(b, c.Scripts, "vrrp_script", func(s *VRRPScript) (string, conf.Pos) { return s.Name, s.Pos })
	files := byName(b, c.TrackFiles, "track_file", func(f *TrackFile) (string, conf.Pos) { return f.Name, f.Pos })
	instances := byName(b, c.Instances, "vrrp_instance", func(in *Instance) (string, conf.Pos) { return in.Name, in.Pos })
	used := map[string]bool{}
	checkRefs := func(refs []Ref, kw, what string, defined func(string) bool, names []string) {
		for _, r := range refs {
			used[r.Name] = true
			if !defined(r.Name) {
				msg := "no " + what + " named " + r.Name
				if s := suggestName(r.Name, names); s != "" {
					msg += "; did you mean " + s + "?"
				}
				b.errorf(r.Pos, kw, "%s", msg)
			}
		}
	}
	scriptNames := mapKeys(scripts)
	fileNames := mapKeys(files)
	instNames := mapKeys(instances)
	hasScript := func(s string) bool { return scripts[s] != nil }
	hasFile := func(s string) bool { return files[s] != nil }
	hasInst := func(s string) bool { return instances[s] != nil }

	for _, in := range c.Instances {
		c.finishInstance(b, in)
		checkRefs(in.TrackScript, "track_script", "vrrp_script", hasScript, scriptNames)
		checkRefs(in.TrackFile, "track_file", "track_file", hasFile, fileNames)
	}

	groups := map[string]*SyncGroup{}
	for _, g := range c.SyncGroups {
		if old, dup := groups[g.Name]; dup {
			b.errorf(g.Pos, "vrrp_sync_group", "%s is already defined at %s", g.Name, old.Pos)
			continue
		}
		groups[g.Name] = g
		checkRefs(g.Members, g.Name, "vrrp_instance", hasInst, instNames)
		checkRefs(g.TrackScript, "track_script", "vrrp_script", hasScript, scriptNames)
		checkRefs(g.TrackFile, "track_file", "track_file", hasFile, fileNames)
		owners := 0
		for _, m := range g.Members {
			in := instances[m.Name]
			if in == nil {
				continue
			}
			if in.SyncGroup != "" {
				b.errorf(m.Pos, m.Name, "vrrp_instance %s is already in vrrp_sync_group %s", m.Name, in.SyncGroup)
				continue
			}
			in.SyncGroup = g.Name
			if in.Priority == 255 {
				owners++
			}
		}
		if len(g.Members) == 1 {
			b.warnf(g.Pos, "vrrp_sync_group", "%s has only one instance; a sync group is for several", g.Name)
		}
		if owners > 0 && owners < len(g.Members) {
			b.warnf(g.Pos, "vrrp_sync_group", "%s mixes address owners (priority 255) with other instances; they cannot change state together", g.Name)
		}
	}
	for _, tg := range c.TrackGroups {
		checkRefs(tg.Instances, tg.Name, "vrrp_instance", hasInst, instNames)
	}
	for _, s := range c.Scripts {
		if !used[s.Name] {
			b.warnf(s.Pos, "vrrp_script", "%s is not tracked by any instance or sync group", s.Name)
		}
	}
	if sd := c.Global.LVSSyncDaemon; sd != nil && sd.Instance != "" && instances[sd.Instance] == nil {
		msg := "no vrrp_instance named " + sd.Instance
		if s := suggestName(sd.Instance, instNames); s != "" {
			msg += "; did you mean " + s + "?"
		}
		b.errorf(sd.instPos, "lvs_sync_daemon", "%s", msg)
	}
	c.checkVRIDs(b)
}

func mapKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// finishInstance fills an instance's resolved fields and checks it as a
// whole.
func (c *Config) finishInstance(b *builder, in *Instance) {
	g := &c.Global
	const kw = "vrrp_instance"
	if in.VRID == 0 {
		b.errorf(in.Pos, kw, "%s has no virtual_router_id", in.Name)
	}

	in.Family = in.family
	if in.Family == "" {
		in.Family = "inet" // keepalived's default with no address at all
	}
	v6 := in.Family == "inet6"

	// Version: the instance's, else vrrp_version; IPv6 needs VRRPv3.
	in.Version = g.VRRPVersion
	if in.version != 0 {
		in.Version = in.version
	}
	if v6 && in.Version == 2 {
		if in.version == 2 {
			b.errorf(in.versionPos, "version", "VRRPv2 cannot carry IPv6; %s is IPv6 (from %s at %s)", in.Name, in.familyFrom, in.familyPos)
		}
		in.Version = 3
	}

	in.StrictMode = g.VRRPStrict
	if in.strictMode != nil {
		in.StrictMode = *in.strictMode
	}
	in.SkipCheckAdvAddr = g.VRRPSkipCheckAdvAddr
	if in.skipCheckAdvAddr != nil {
		in.SkipCheckAdvAddr = *in.skipCheckAdvAddr
	}
	if g.VRRPCheckUnicastSrc {
		in.CheckUnicastSrc = true
	}
	in.DownTimerAdverts = g.VRRPDownTimerAdverts
	if in.downTimerAdverts != 0 {
		in.DownTimerAdverts = in.downTimerAdverts
	}
	in.GARP = in.GARP.override(g.GARP)
	if !in.McastDstIP.IsValid() {
		in.McastDstIP = g.VRRPMcastGroup4
		if v6 {
			in.McastDstIP = g.VRRPMcastGroup6
		}
	} else if in.McastDstIP.Is6() != v6 {
		b.errorf(in.Pos, "mcast_dst_ip", "%s is not of the instance's family (%s)", in.McastDstIP, familyName(in.Family))
	}

	// Priority: 255 for a MASTER that gives none (keepalived makes it
	// the address owner).
	if !in.prioritySet && in.State == "MASTER" {
		in.Priority = 255
	}
	if in.StrictMode && (in.State == "MASTER") != (in.Priority == 255) {
		b.errorf(in.statePos, "state", "strict mode: state MASTER if and only if priority 255 (%s has state %s, priority %d)", in.Name, in.State, in.Priority)
	} else if in.State == "BACKUP" && in.statePos.IsValid() && in.Priority == 255 {
		b.warnf(in.priorityPos, "priority", "255 makes %s the address owner: it becomes master at once, whatever state BACKUP says", in.Name)
	}

	// Advert interval: VRRPv2 carries whole seconds 1-255, VRRPv3
	// centiseconds up to 40.95 s. keepalived rounds; we refuse.
	if in.Version == 2 {
		if in.AdvertInt.D()%time.Second != 0 {
			b.errorf(in.advertPos, "advert_int", "%s is not a whole number of seconds, as VRRPv2 needs (use version 3 for fractions)", seconds(in.AdvertInt.D()))
		}
	} else {
		switch {
		case in.AdvertInt.D()%(10*time.Millisecond) != 0:
			b.errorf(in.advertPos, "advert_int", "%s is not a multiple of 0.01s, as VRRPv3 needs", seconds(in.AdvertInt.D()))
		case in.AdvertInt.D() > 4095*10*time.Millisecond:
			b.errorf(in.advertPos, "advert_int", "%s is more than VRRPv3's 40.95s", seconds(in.AdvertInt.D()))
		}
	}

	// Preemption: keepalived clears nopreempt and preempt_delay where they
	// cannot work, with a warning; so do we.
	switch {
	case !in.Preempt && in.Priority == 255:
		b.warnf(in.nopreemptPos, "nopreempt", "ignored: an address owner (priority 255) always preempts")
		in.Preempt = true
	case !in.Preempt && in.State == "MASTER":
		b.warnf(in.nopreemptPos, "nopreempt", "ignored with state MASTER; use state BACKUP on every node")
		in.Preempt = true
	}
	if in.PreemptDelay != 0 {
		switch {
		case !in.Preempt:
			b.warnf(in.preemptDelayPos, "preempt_delay", "ignored with nopreempt")
			in.PreemptDelay = 0
		case in.State == "MASTER":
			b.warnf(in.preemptDelayPos, "preempt_delay", "ignored with state MASTER; use state BACKUP")
			in.PreemptDelay = 0
		case in.StrictMode:
			b.warnf(in.preemptDelayPos, "preempt_delay", "ignored in strict mode")
			in.PreemptDelay = 0
		}
	}

	// Authentication exists only in VRRPv2, and not in strict mode.
	if in.Auth != nil {
		switch {
		case in.Version == 3:
			b.warnf(in.authPos, "authentication", "ignored: VRRPv3 has no authentication")
			in.Auth = nil
		case in.StrictMode:
			b.warnf(in.authPos, "authentication", "ignored in strict mode")
			in.Auth = nil
		case in.Auth.Type == "AH" && in.State == "MASTER":
			b.warnf(in.authPos, "authentication", "AH is incompatible with state MASTER; authentication ignored")
			in.Auth = nil
		}
	}

	// Accept mode: on unless strict, where only the owner accepts.
	if in.Accept == nil {
		v := !in.StrictMode || in.Priority == 255
		in.Accept = &v
	}

	// Unicast.
	for _, p := range in.UnicastPeers {
		if p.Addr.Is6() != v6 {
			b.errorf(p.Pos, p.Addr.String(), "unicast peer is %s but %s is %s", family(p.Addr), in.Name, familyName(in.Family))
		}
		if p.MinTTL != nil || p.MaxTTL != nil {
			in.CheckUnicastSrc = true
		}
	}
	if len(in.UnicastPeers) > 0 {
		if in.StrictMode {
			b.errorf(in.UnicastPeers[0].Pos, "unicast_peer", "strict mode does not allow unicast peers (%s)", in.Name)
		}
		if in.VMAC != nil && !in.VMACXmitBase {
			b.warnf(in.vmacPos, "use_vmac", "unicast with use_vmac needs vmac_xmit_base; setting it, as keepalived does")
			in.VMACXmitBase = true
		}
	} else {
		if in.UnicastSrcIP.IsValid() || in.UnicastTTL != nil {
			b.warnf(in.Pos, kw, "%s has unicast settings but no unicast_peer: it will use multicast", in.Name)
		}
	}
	if in.Interface == "" {
		switch {
		case len(in.UnicastPeers) == 0:
			b.errorf(in.Pos, kw, "%s has no interface (only a unicast instance may omit it)", in.Name)
		case !in.UnicastSrcIP.IsValid():
			b.errorf(in.Pos, kw, "%s has no interface: a unicast instance without one needs unicast_src_ip", in.Name)
		case in.UnicastSrcIP.IsLinkLocalUnicast():
			b.errorf(in.Pos, kw, "%s has no interface, so unicast_src_ip cannot be link-local", in.Name)
		}
		if in.VMAC != nil {
			b.errorf(in.vmacPos, "use_vmac", "needs an interface to create the VMAC on")
		}
	}
	if in.VMACXmitBase && in.VMAC == nil {
		b.warnf(in.Pos, "vmac_xmit_base", "has no effect without use_vmac")
	}

	// VIPs.
	if len(in.VIPs) == 0 {
		if in.StrictMode {
			b.errorf(in.Pos, kw, "strict mode needs at least one virtual_ipaddress (%s)", in.Name)
		} else {
			b.warnf(in.Pos, kw, "%s has no virtual_ipaddress", in.Name)
		}
	} else if v6 && !in.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
		if in.StrictMode {
			b.errorf(in.VIPs[0].Pos, in.VIPs[0].Prefix.Addr().String(), "strict mode: the first IPv6 VIP must be link-local (RFC 5798)")
		} else {
			b.warnf(in.VIPs[0].Pos, in.VIPs[0].Prefix.Addr().String(), "the first IPv6 VIP should be link-local (RFC 5798)")
		}
	}
	// A VRRP advert carries at most 255 addresses (8-bit count).
	if len(in.VIPs) > math.MaxUint8 {
		b.errorf(in.VIPs[255].Pos, in.VIPs[255].Prefix.Addr().String(), "an advert carries at most 255 addresses; move the rest to virtual_ipaddress_excluded")
	}

	// An address owner's priority cannot move: weights are ignored.
	if in.Priority == 255 {
		for _, list := range [][]Ref{in.TrackScript, in.TrackFile, in.TrackInterface} {
			for _, r := range list {
				if r.Weight.Value != 0 {
					b.warnf(r.Pos, r.Name, "weight ignored: %s has priority 255, which tracking cannot change", in.Name)
				}
			}
		}
	}
	for _, r := range in.TrackInterface {
		if r.Name == in.Interface {
			b.warnf(r.Pos, r.Name, "%s is the instance's own interface, which is always tracked", r.Name)
		}
	}
}

// checkVRIDs refuses two instances with the same VRID on the same
// interface and family, as keepalived does ("both use VRID"), unless
// they use different multicast groups or unicast peers that do not
// overlap.
func (c *Config) checkVRIDs(b *builder) {
	type key struct {
		ifname, family string
		vrid           int
	}
	seen := map[key][]*Instance{}
	for _, in := range c.Instances {
		if in.VRID == 0 || in.Interface == "" {
			continue
		}
		k := key{in.Interface, in.Family, in.VRID}
		for _, other := range seen[k] {
			if sameVRRPChannel(in, other) {
				b.errorf(in.Pos, "virtual_router_id", "%s and %s both use VRID %d with %s on %s", other.Name, in.Name, in.VRID, familyName(in.Family), in.Interface)
				break
			}
		}
		seen[k] = append(seen[k], in)
	}
}

func sameVRRPChannel(a, b *Instance) bool {
	ua, ub := len(a.UnicastPeers) > 0, len(b.UnicastPeers) > 0
	if ua != ub {
		return false
	}
	if !ua {
		return a.McastDstIP == b.McastDstIP
	}
	peers := map[netip.Addr]bool{}
	for _, p := range a.UnicastPeers {
		peers[p.Addr] = true
	}
	for _, p := range b.UnicastPeers {
		if peers[p.Addr] {
			return true
		}
	}
	return false
}

// byName indexes named blocks, reporting a name defined twice (the first
// definition wins).
func byName[T any](b *builder, items []T, keyword string, id func(T) (string, conf.Pos)) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		name, pos := id(it)
		if old, dup := m[name]; dup {
			_, oldPos := id(old)
			b.errorf(pos, keyword, "%s is already defined at %s", name, oldPos)
			continue
		}
		m[name] = it
	}
	return m
}
