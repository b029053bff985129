package model

import (
	"net"
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// Instance is a vrrp_instance: one virtual router on one interface.
// Fields marked "resolved" are filled by finishVRRP from global_defs and
// from the rest of the instance, as keepalived's vrrp_complete_instance
// does.
type Instance struct {
	Name string `json:"name"`
	// State is the initial state, MASTER or BACKUP (the default).
	State     string `json:"state"`
	Interface string `json:"interface,omitempty"`
	VRID      int    `json:"virtual_router_id"`
	// Priority is 1-255, default 100; 255 when state MASTER is written
	// without a priority (resolved).
	Priority int `json:"priority"`
	// AdvertInt defaults to 1s.
	AdvertInt Duration `json:"advert_int"`
	// Version is 2 or 3: vrrp_version by default, always 3 for IPv6
	// (resolved).
	Version int `json:"version"`
	// Family is "inet" or "inet6": that of the first of unicast_src_ip,
	// mcast_src_ip, native_ipv6 or the first VIP (resolved).
	Family string `json:"family"`

	Auth *Auth `json:"authentication,omitempty"`

	// Preempt is on by default; nopreempt turns it off.
	Preempt      bool     `json:"preempt"`
	PreemptDelay Duration `json:"preempt_delay,omitempty"`
	// Accept is nil unless accept or no_accept was written; keepalived
	// then accepts unless strict, where only the address owner does.
	Accept           *bool `json:"accept,omitempty"`
	DontTrackPrimary bool  `json:"dont_track_primary,omitempty"`
	// SkipCheckAdvAddr, StrictMode and CheckUnicastSrc default to the
	// global vrrp_* settings (resolved).
	SkipCheckAdvAddr bool `json:"skip_check_adv_addr,omitempty"`
	StrictMode       bool `json:"strict_mode,omitempty"`
	CheckUnicastSrc  bool `json:"check_unicast_src,omitempty"`

	VIPs               []VIP   `json:"virtual_ipaddress,omitempty"`
	ExcludedVIPs       []VIP   `json:"virtual_ipaddress_excluded,omitempty"`
	Routes             []Route `json:"virtual_routes,omitempty"`
	Rules              []Rule  `json:"virtual_rules,omitempty"`
	PromoteSecondaries bool    `json:"promote_secondaries,omitempty"`

	TrackInterface []Ref `json:"track_interface,omitempty"`
	TrackScript    []Ref `json:"track_script,omitempty"`
	TrackFile      []Ref `json:"track_file,omitempty"`
	TrackSrcIP     bool  `json:"track_src_ip,omitempty"`

	UnicastSrcIP       netip.Addr `json:"unicast_src_ip,omitzero"`
	UnicastPeers       []Peer     `json:"unicast_peer,omitempty"`
	UnicastTTL         *int64     `json:"unicast_ttl,omitempty"`
	UnicastFaultNoPeer bool       `json:"unicast_fault_no_peer,omitempty"`
	McastSrcIP         netip.Addr `json:"mcast_src_ip,omitzero"`
	// McastDstIP defaults to vrrp_mcast_group4/6 (resolved).
	McastDstIP netip.Addr `json:"mcast_dst_ip,omitzero"`

	VMAC         *VMAC `json:"use_vmac,omitempty"`
	VMACXmitBase bool  `json:"vmac_xmit_base,omitempty"`
	UseVMACAddr  bool  `json:"use_vmac_addr,omitempty"`

	// GARP is global_defs' vrrp_garp_* overridden by the instance's
	// garp_* (resolved).
	GARP             GARP `json:"garp"`
	DownTimerAdverts int  `json:"down_timer_adverts"` // default vrrp_down_timer_adverts (3)

	Notify    Notify `json:"notify,omitzero"`
	SMTPAlert *bool  `json:"smtp_alert,omitempty"`
	Debug     int    `json:"debug,omitempty"`

	// SyncGroup names the vrrp_sync_group the instance belongs to
	// (resolved).
	SyncGroup string `json:"sync_group,omitempty"`

	Pos conf.Pos `json:"-"`

	preemptDelayPos, vmacPos                                                          conf.Pos
	priorityPos, statePos, nopreemptPos, advertPos, versionPos, authPos, interfacePos conf.Pos
	prioritySet, nativeIPv6                                                           bool
	family                                                                            string
	familyPos                                                                         conf.Pos
	familyFrom                                                                        string
	version                                                                           int
	skipCheckAdvAddr, strictMode                                                      *bool
	downTimerAdverts                                                                  int
}

// Auth is the VRRPv2 authentication block.
type Auth struct {
	Type string `json:"auth_type"` // PASS or AH
	// Pass is at most 8 bytes: keepalived keeps only the first eight.
	Pass string `json:"auth_pass,omitempty"`
}

// Peer is a unicast peer; MinTTL/MaxTTL, when set, bound the TTL of
// adverts accepted from it (and turn on check_unicast_src).
type Peer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL *int64     `json:"min_ttl,omitempty"`
	MaxTTL *int64     `json:"max_ttl,omitempty"`
	Pos    conf.Pos   `json:"-"`
}

// VMAC is use_vmac: a macvlan carrying the virtual router MAC.
type VMAC struct {
	Name string `json:"name,omitempty"` // default vmac_prefix + "." + VRID, chosen at run time
	MAC  string `json:"mac,omitempty"`  // 5 or 6 octets; the VRID completes 5
}

func (b *builder) instance(n *conf.Node) *Instance {
	if !b.nargs(n, 1, 1) {
		return nil
	}
	in := &Instance{
		Name:      n.Args()[0].Text,
		State:     "BACKUP",
		Priority:  100,
		AdvertInt: Duration(time.Second),
		Preempt:   true,
		Pos:       n.Pos(),
	}
	walk(b, in, cached(b, "vrrp_instance", instanceTable), "vrrp_instance", n.Block)
	return in
}

// setFamily records the instance's address family from the first thing
// that fixes it, and reports a later thing of the other family.
func (b *builder) setFamily(in *Instance, kw string, pos conf.Pos, a netip.Addr, what string) bool {
	fam := "inet"
	if a.Is6() {
		fam = "inet6"
	}
	if in.family == "" {
		in.family, in.familyPos, in.familyFrom = fam, pos, what
		return true
	}
	if in.family != fam {
		hint := ""
		if what == "virtual_ipaddress" {
			hint = "; addresses of the other family go in virtual_ipaddress_excluded"
		}
		b.errorf(pos, kw, "%s is %s but the instance is %s (from %s at %s)%s", a, familyName(fam), familyName(in.family), in.familyFrom, in.familyPos, hint)
		return false
	}
	return true
}

func familyName(f string) string {
	if f == "inet6" {
		return "IPv6"
	}
	return "IPv4"
}

func instanceTable() table[Instance] {
	t := table[Instance]{
		"state": {fn: func(b *builder, in *Instance, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok {
				return
			}
			if s, ok := b.choice(n, w, "MASTER", "BACKUP"); ok {
				in.State, in.statePos = s, n.Pos()
			}
		}},
		"interface": {fn: func(b *builder, in *Instance, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok || !b.ifName(n, w) {
				return
			}
			in.Interface, in.interfacePos = w.Text, n.Pos()
		}},
		"virtual_router_id": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 255); ok {
				in.VRID = int(v)
			}
		}},
		"priority": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 255); ok {
				in.Priority, in.prioritySet, in.priorityPos = int(v), true, n.Pos()
			}
		}},
		// keepalived's range is 0.01-255 s; VRRPv2's whole seconds and
		// v3's centiseconds are checked once the version is known.
		"advert_int": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if d, ok := b.timerArg(n, 10*time.Millisecond, 255*time.Second); ok {
				in.AdvertInt, in.advertPos = d, n.Pos()
			}
		}},
		"version": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.intArg(n, 2, 3); ok {
				in.version, in.versionPos = int(v), n.Pos()
			}
		}},
		"native_ipv6": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if b.flag(n) {
				b.setFamily(in, n.Keyword(), n.Pos(), netip.IPv6Unspecified(), "native_ipv6")
				in.nativeIPv6 = true
			}
		}},
		"authentication": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			a := &Auth{}
			walk(b, a, cached(b, "authentication", authTable), "authentication", n.Block)
			if a.Type == "" {
				b.errorf(n.Pos(), n.Keyword(), "has no auth_type")
				return
			}
			if a.Type == "PASS" && a.Pass == "" {
				b.errorf(n.Pos(), n.Keyword(), "auth_type PASS needs an auth_pass")
				return
			}
			in.Auth, in.authPos = a, n.Pos()
		}},
		"nopreempt": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if b.flag(n) {
				in.Preempt, in.nopreemptPos = false, n.Pos()
			}
		}},
		"preempt": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if b.flag(n) {
				in.Preempt, in.nopreemptPos = true, conf.Pos{}
			}
		}},
		"preempt_delay": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if d, ok := b.timerArg(n, 0, 1000*time.Second); ok {
				in.PreemptDelay, in.preemptDelayPos = d, n.Pos()
			}
		}},
		"accept": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if b.flag(n) {
				v := true
				in.Accept = &v
			}
		}},
		"no_accept": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if b.flag(n) {
				v := false
				in.Accept = &v
			}
		}},
		"dont_track_primary": flagKw(func(in *Instance) *bool { return &in.DontTrackPrimary }),
		"skip_check_adv_addr": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				in.skipCheckAdvAddr = &v
			}
		}},
		"strict_mode": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				in.strictMode = &v
			}
		}},
		"check_unicast_src": flagKw(func(in *Instance) *bool { return &in.CheckUnicastSrc }),
		"virtual_ipaddress": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			for _, v := range b.vipList(n, false) {
				// The first VIP fixes the family when nothing else did;
				// keepalived ignores VIPs of the other family (they belong
				// in virtual_ipaddress_excluded), we refuse them.
				if b.setFamily(in, v.Prefix.Addr().String(), v.Pos, v.Prefix.Addr(), "virtual_ipaddress") {
					in.VIPs = append(in.VIPs, v)
				}
			}
		}},
		"virtual_ipaddress_excluded": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			in.ExcludedVIPs = append(in.ExcludedVIPs, b.vipList(n, false)...)
		}},
		"virtual_routes": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			in.Routes = append(in.Routes, b.routeList(n, false)...)
		}},
		"virtual_rules": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			in.Rules = append(in.Rules, b.ruleList(n, false)...)
		}},
		"promote_secondaries": flagKw(func(in *Instance) *bool { return &in.PromoteSecondaries }),
		"track_interface": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			in.TrackInterface = append(in.TrackInterface, b.trackList(n, -maxScriptWeight, maxScriptWeight, false)...)
		}},
		"track_script": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			in.TrackScript = append(in.TrackScript, b.trackList(n, -maxScriptWeight, maxScriptWeight, true)...)
		}},
		"track_file": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			in.TrackFile = append(in.TrackFile, b.trackList(n, -maxFileWeight, maxFileWeight, true)...)
		}},
		"track_src_ip": flagKw(func(in *Instance) *bool { return &in.TrackSrcIP }),
		"unicast_src_ip": {fn: func(b *builder, in *Instance, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok {
				return
			}
			if a, ok := b.addr(n, w); ok && b.setFamily(in, n.Keyword(), w.Pos, a, "unicast_src_ip") {
				in.UnicastSrcIP = a
			}
		}},
		"mcast_src_ip": {fn: func(b *builder, in *Instance, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok {
				return
			}
			if a, ok := b.addr(n, w); ok && b.setFamily(in, n.Keyword(), w.Pos, a, "mcast_src_ip") {
				in.McastSrcIP = a
			}
		}},
		"mcast_dst_ip": {fn: func(b *builder, in *Instance, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok {
				return
			}
			a, ok := b.addr(n, w)
			if !ok {
				return
			}
			if !a.IsMulticast() || (a.Is6() && !a.IsLinkLocalMulticast()) {
				b.errorf(w.Pos, n.Keyword(), "%s is not an IPv4 multicast or IPv6 link-local multicast (ffX2::) address", a)
				return
			}
			in.McastDstIP = a
		}},
		"unicast_peer": {block: true, fn: func(b *builder, in *Instance, n *conf.Node) {
			for _, m := range n.Block {
				if p, ok := b.peer(m); ok {
					in.UnicastPeers = append(in.UnicastPeers, p)
				}
			}
		}},
		"unicast_ttl": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 255); ok {
				in.UnicastTTL = &v
			}
		}},
		"unicast_fault_no_peer": flagKw(func(in *Instance) *bool { return &in.UnicastFaultNoPeer }),
		"use_vmac": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if !b.nargs(n, 0, 2) {
				return
			}
			v := &VMAC{}
			for _, w := range n.Args() {
				if _, err := net.ParseMAC(w.Text); err == nil || isMAC5(w.Text) {
					v.MAC = w.Text
					continue
				}
				if v.Name != "" || !b.ifName(n, w) {
					if v.Name != "" {
						b.errorf(w.Pos, n.Keyword(), "%q is neither a MAC address nor the only interface name", w.Text)
					}
					return
				}
				v.Name = w.Text
			}
			in.VMAC, in.vmacPos = v, n.Pos()
		}},
		"vmac_xmit_base": flagKw(func(in *Instance) *bool { return &in.VMACXmitBase }),
		"use_vmac_addr":  flagKw(func(in *Instance) *bool { return &in.UseVMACAddr }),
		"down_timer_adverts": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 100); ok {
				in.downTimerAdverts = int(v)
			}
		}},
		"smtp_alert": boolPtr(func(in *Instance) **bool { return &in.SMTPAlert }),
		// "not implemented yet" in keepalived itself.
		"debug": {fn: func(b *builder, in *Instance, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 4); ok {
				in.Debug = int(v)
			}
		}},
		"linkbeat_use_polling": {fn: func(b *builder, in *Instance, n *conf.Node) {
			b.flag(n)
		}, deprecated: "use a top-level linkbeat_interfaces block"},
		// keepalived's old per-instance sync daemon interface; keepvs
		// does not carry it: use global_defs lvs_sync_daemon.
		"lvs_sync_daemon_interface": {fn: func(b *builder, in *Instance, n *conf.Node) {
			b.errorf(n.Pos(), n.Keyword(), "no longer supported here; use global_defs lvs_sync_daemon %s %s", argText(n), in.Name)
		}},
	}
	garpKeywords(t, "", func(in *Instance) *GARP { return &in.GARP })
	t.alias("vmac_garp_intvl", "garp_extra_if", "use garp_extra_if")
	notifyKeywords(t, func(in *Instance) *Notify { return &in.Notify }, true)
	// Accepted, not acted on: keepvs has no BFD, process tracking, ipvlan
	// or VRF support, and sets its own socket buffers.
	addIgnored(t, "track_process", "track_bfd", "use_ipvlan", "vrf", "kernel_rx_buf_size", "old_unicast_checksum")
	return t
}

func argText(n *conf.Node) string {
	if len(n.Args()) == 0 {
		return "IF"
	}
	return n.Args()[0].Text
}

// isMAC5 reports whether s is five colon-separated octets, which use_vmac
// completes with the VRID.
func isMAC5(s string) bool {
	_, err := net.ParseMAC(s + ":00")
	return err == nil && len(s) == 14
}

// ifName checks an interface name against the kernel's limits.
func (b *builder) ifName(n *conf.Node, w conf.Word) bool {
	if len(w.Text) == 0 || len(w.Text) > 15 {
		b.errorf(w.Pos, n.Keyword(), "interface name %q must be 1-15 characters", w.Text)
		return false
	}
	for _, c := range w.Text {
		if c == '/' || c == ' ' || c == ':' {
			b.errorf(w.Pos, n.Keyword(), "interface name %q contains %q", w.Text, c)
			return false
		}
	}
	return true
}

func authTable() table[Auth] {
	return table[Auth]{
		"auth_type": {fn: func(b *builder, a *Auth, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok {
				return
			}
			if v, ok := b.choice(n, w, "PASS", "AH"); ok {
				a.Type = v
			}
		}},
		// keepalived uses only the first 8 characters and logs that it
		// truncated; we do the same, with a warning.
		"auth_pass": {fn: func(b *builder, a *Auth, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok {
				return
			}
			a.Pass = w.Text
			if len(a.Pass) > 8 {
				a.Pass = a.Pass[:8]
				b.warnf(w.Pos, n.Keyword(), "only the first 8 characters are used (%q)", a.Pass)
			}
		}},
	}
}

// peer reads "ADDR [min_ttl N] [max_ttl N]".
func (b *builder) peer(n *conf.Node) (Peer, bool) {
	if n.HasBlock {
		b.errorf(n.Open, n.Keyword(), "takes no { ... } block")
		return Peer{}, false
	}
	a, ok := b.addr(n, n.Words[0])
	if !ok {
		return Peer{}, false
	}
	p := Peer{Addr: a, Pos: n.Pos()}
	args := n.Args()
	for i := 0; i < len(args); i += 2 {
		o := args[i]
		var dst **int64
		switch o.Text {
		case "min_ttl":
			dst = &p.MinTTL
		case "max_ttl":
			dst = &p.MaxTTL
		default:
			b.errorf(o.Pos, n.Keyword(), "unknown unicast_peer option %q; expected min_ttl or max_ttl", o.Text)
			return Peer{}, false
		}
		if i+1 >= len(args) {
			b.errorf(o.Pos, n.Keyword(), "%s needs a value", o.Text)
			return Peer{}, false
		}
		v, ok := b.integer(n, args[i+1], 0, 255)
		if !ok {
			return Peer{}, false
		}
		*dst = &v
	}
	if p.MinTTL != nil && p.MaxTTL != nil && *p.MinTTL > *p.MaxTTL {
		b.errorf(n.Pos(), n.Keyword(), "min_ttl %d > max_ttl %d: every advert would be dropped", *p.MinTTL, *p.MaxTTL)
		return Peer{}, false
	}
	return p, true
}
