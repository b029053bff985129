package model

import (
	"math"
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// Global is the global_defs block. Defaults are keepalived 2.2.7's, from
// keepalived.conf(5) and checked against `keepalived -t` where the page
// is silent; each default is noted by its field.
type Global struct {
	RouterID string `json:"router_id,omitempty"` // default: the host name, filled at run time

	NotificationEmail     []string   `json:"notification_email,omitempty"`
	NotificationEmailFrom string     `json:"notification_email_from,omitempty"` // default keepalived@<host name>
	SMTPServer            SMTPServer `json:"smtp_server,omitzero"`
	SMTPHeloName          string     `json:"smtp_helo_name,omitempty"` // default: host name
	SMTPConnectTimeout    Duration   `json:"smtp_connect_timeout"`     // default 30s (man page)
	// SMTPAlert* are nil when not written: the more specific one falls
	// back on smtp_alert, which defaults to off.
	SMTPAlert             *bool `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP         *bool `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker      *bool `json:"smtp_alert_checker,omitempty"`
	NoEmailFaults         bool  `json:"no_email_faults,omitempty"`
	CheckerLogAllFailures bool  `json:"checker_log_all_failures,omitempty"`
	NoCheckerEmails       bool  `json:"no_checker_emails,omitempty"`
	RSInitNotifies        bool  `json:"rs_init_notifies,omitempty"`

	// ScriptUser is who runs scripts that name no user; empty means
	// keepalived_script if that user exists, else root.
	ScriptUser           string `json:"script_user,omitempty"`
	ScriptGroup          string `json:"script_group,omitempty"`
	EnableScriptSecurity bool   `json:"enable_script_security,omitempty"`

	NotifyFIFO                *FIFO `json:"notify_fifo,omitempty"`
	VRRPNotifyFIFO            *FIFO `json:"vrrp_notify_fifo,omitempty"`
	LVSNotifyFIFO             *FIFO `json:"lvs_notify_fifo,omitempty"`
	FIFOWriteVRRPStatesReload bool  `json:"fifo_write_vrrp_states_on_reload,omitempty"`
	VRRPNotifyPriorityChanges bool  `json:"vrrp_notify_priority_changes,omitempty"`

	// Gratuitous ARP / unsolicited NA defaults for every instance.
	GARP GARP `json:"garp"`

	VRRPVersion          int        `json:"vrrp_version"`      // default 2 (IPv6 instances always 3)
	VRRPMcastGroup4      netip.Addr `json:"vrrp_mcast_group4"` // default 224.0.0.18 (RFC 5798)
	VRRPMcastGroup6      netip.Addr `json:"vrrp_mcast_group6"` // default ff02::12
	VRRPCheckUnicastSrc  bool       `json:"vrrp_check_unicast_src,omitempty"`
	VRRPSkipCheckAdvAddr bool       `json:"vrrp_skip_check_adv_addr,omitempty"`
	VRRPStrict           bool       `json:"vrrp_strict,omitempty"`
	VRRPDownTimerAdverts int        `json:"vrrp_down_timer_adverts"` // default 3 (RFC)
	VRRPStartupDelay     Duration   `json:"vrrp_startup_delay,omitempty"`
	LogUnknownVRIDs      bool       `json:"log_unknown_vrids,omitempty"`
	DefaultInterface     string     `json:"default_interface"` // default eth0 (man page)
	VMACPrefix           string     `json:"vmac_prefix"`       // default "vrrp"
	VMACAddrPrefix       string     `json:"vmac_addr_prefix,omitempty"`
	// Process niceness; keepvs is one process, so it applies the VRRP
	// value to its VRRP goroutines' OS thread where it can.
	VRRPPriority    int `json:"vrrp_priority,omitempty"`
	CheckerPriority int `json:"checker_priority,omitempty"`
	// MaxAutoPriority is -1 (disabled, no warning), 0 (off, the default)
	// or the highest realtime priority to climb to.
	MaxAutoPriority int `json:"max_auto_priority,omitempty"`
	// VRRPRTPriority is vrrp_rt_priority, the SCHED_RR priority (1-99) of
	// keepvs's VRRP thread; 0 when not written, and keepvs then uses
	// vrrpd.DefaultRTPriority (1) where it is permitted.
	VRRPRTPriority int `json:"vrrp_rt_priority,omitempty"`
	// VRRPRlimitRTTime is vrrp_rlimit_rttime: the CPU time, in
	// microseconds, the realtime VRRP thread may use without sleeping
	// (RLIMIT_RTTIME). 0 when not written: vrrpd.DefaultRlimitRTTime.
	VRRPRlimitRTTime int `json:"vrrp_rlimit_rttime,omitempty"`

	DynamicInterfaces *DynamicInterfaces `json:"dynamic_interfaces,omitempty"`

	LVSSyncDaemon  *LVSSyncDaemon `json:"lvs_sync_daemon,omitempty"`
	LVSFlush       bool           `json:"lvs_flush,omitempty"`
	LVSFlushOnStop string         `json:"lvs_flush_on_stop,omitempty"` // "", "RS" (each VS and RS) or "VS"
	LVSTimeouts    *LVSTimeouts   `json:"lvs_timeouts,omitempty"`
}

// SMTPServer is where alert mail goes.
type SMTPServer struct {
	Host string `json:"host,omitempty"`
	Port uint16 `json:"port,omitempty"` // default 25
}

// FIFO is a notify FIFO and the optional script keepalived starts to read
// it.
type FIFO struct {
	Path   string  `json:"path"`
	User   string  `json:"user,omitempty"`
	Group  string  `json:"group,omitempty"`
	Script *Script `json:"script,omitempty"`
}

// GARP holds the gratuitous ARP / NA timing shared by global_defs
// (vrrp_garp_*) and vrrp_instance (garp_*).
type GARP struct {
	MasterDelay         Duration `json:"master_delay"`          // default 5s
	MasterRepeat        int64    `json:"master_repeat"`         // default 5
	LowerPrioDelay      Duration `json:"lower_prio_delay"`      // default: master_delay
	LowerPrioRepeat     int64    `json:"lower_prio_repeat"`     // default: master_repeat
	MasterRefresh       Duration `json:"master_refresh"`        // default 0: no refresh
	MasterRefreshRepeat int64    `json:"master_refresh_repeat"` // default 1
	Interval            Duration `json:"interval,omitempty"`    // between GARPs, default 0
	NAInterval          Duration `json:"na_interval,omitempty"` // between NAs, default 0
	// LowerPrioNoAdvert and HigherPrioSendAdvert default to off (on and
	// off respectively in strict mode).
	LowerPrioNoAdvert    bool `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert bool `json:"higher_prio_send_advert,omitempty"`
	// ExtraIf sends periodic GARP/NA on VIP interfaces other than the
	// instance's: every ExtraIfInterval, on VMACs only unless ExtraIfAll.
	ExtraIfInterval Duration `json:"extra_if_interval,omitempty"`
	ExtraIfAll      bool     `json:"extra_if_all,omitempty"`

	// set records which fields the block wrote, so an instance overrides
	// only those of global_defs.
	set garpField
}

type garpField uint16

const (
	gMasterDelay garpField = 1 << iota
	gMasterRepeat
	gLowerDelay
	gLowerRepeat
	gRefresh
	gRefreshRepeat
	gLowerNoAdvert
	gHigherSendAdvert
	gExtraIf
)

// resolve fills the lower-priority GARP settings that were not written:
// keepalived defaults them to the master ones.
func (g GARP) resolve() GARP {
	if g.set&gLowerDelay == 0 {
		g.LowerPrioDelay = g.MasterDelay
	}
	if g.set&gLowerRepeat == 0 {
		g.LowerPrioRepeat = g.MasterRepeat
	}
	return g
}

// override returns global with the fields written in inst replaced: an
// instance's garp_* settings default to global_defs' vrrp_garp_*.
func (inst GARP) override(global GARP) GARP {
	out := global
	out.set |= inst.set
	if inst.set&gMasterDelay != 0 {
		out.MasterDelay = inst.MasterDelay
		if inst.set&gLowerDelay == 0 && global.set&gLowerDelay == 0 {
			out.LowerPrioDelay = inst.MasterDelay
		}
	}
	if inst.set&gMasterRepeat != 0 {
		out.MasterRepeat = inst.MasterRepeat
		if inst.set&gLowerRepeat == 0 && global.set&gLowerRepeat == 0 {
			out.LowerPrioRepeat = inst.MasterRepeat
		}
	}
	if inst.set&gLowerDelay != 0 {
		out.LowerPrioDelay = inst.LowerPrioDelay
	}
	if inst.set&gLowerRepeat != 0 {
		out.LowerPrioRepeat = inst.LowerPrioRepeat
	}
	if inst.set&gRefresh != 0 {
		out.MasterRefresh = inst.MasterRefresh
	}
	if inst.set&gRefreshRepeat != 0 {
		out.MasterRefreshRepeat = inst.MasterRefreshRepeat
	}
	if inst.set&gLowerNoAdvert != 0 {
		out.LowerPrioNoAdvert = inst.LowerPrioNoAdvert
	}
	if inst.set&gHigherSendAdvert != 0 {
		out.HigherPrioSendAdvert = inst.HigherPrioSendAdvert
	}
	if inst.set&gExtraIf != 0 {
		out.ExtraIfInterval, out.ExtraIfAll = inst.ExtraIfInterval, inst.ExtraIfAll
	}
	return out
}

// DynamicInterfaces allows interfaces that do not exist at startup.
type DynamicInterfaces struct {
	AllowIfChanges bool `json:"allow_if_changes,omitempty"`
}

// LVSSyncDaemon runs the IPVS connection sync daemon, following the
// state of Instance when given.
type LVSSyncDaemon struct {
	Interface string     `json:"interface"`
	Instance  string     `json:"instance,omitempty"`
	SyncID    *int64     `json:"sync_id,omitempty"` // default: the instance's VRID, or 0
	MaxLen    int64      `json:"maxlen,omitempty"`
	Port      uint16     `json:"port,omitempty"` // default 8848
	TTL       int64      `json:"ttl,omitempty"`
	Group     netip.Addr `json:"group,omitzero"` // default 224.0.0.81
	Pos       conf.Pos   `json:"-"`
	instPos   conf.Pos
}

// LVSTimeouts are the IPVS tcp, tcpfin and udp timeouts; zero leaves the
// kernel's value.
type LVSTimeouts struct {
	TCP    Duration `json:"tcp,omitempty"`
	TCPFin Duration `json:"tcpfin,omitempty"`
	UDP    Duration `json:"udp,omitempty"`
}

func defaultGlobal() Global {
	return Global{
		SMTPConnectTimeout:   Duration(30 * time.Second),
		GARP:                 defaultGARP(),
		VRRPVersion:          2,
		VRRPMcastGroup4:      netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:      netip.MustParseAddr("ff02::12"),
		VRRPDownTimerAdverts: 3,
		DefaultInterface:     "eth0",
		VMACPrefix:           "vrrp",
	}
}

// defaultGARP is keepalived's: vrrp_garp_master_delay 5,
// vrrp_garp_master_repeat 5, refresh off, refresh repeat 1 (man page).
func defaultGARP() GARP {
	return GARP{
		MasterDelay:         Duration(5 * time.Second),
		MasterRepeat:        5,
		LowerPrioDelay:      Duration(5 * time.Second),
		LowerPrioRepeat:     5,
		MasterRefreshRepeat: 1,
	}
}

// maxSecs is keepalived's limit for whole-second timers (UINT_MAX /
// TIMER_HZ, 4294 s).
const maxSecs = 4294

// kaMaxTimer is keepalived's limit for <TIMER> values (UINT_MAX µs).
const kaMaxTimer = time.Duration(math.MaxUint32) * time.Microsecond

func addGlobalKeywords(t table[Config]) {
	t["global_defs"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if !b.nargs(n, 0, 0) {
			return
		}
		walk(b, &c.Global, cached(b, "global_defs", globalTable), "global_defs", n.Block)
	}}
	// Top-level process settings keepvs does not act on.
	addIgnored(t, "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
		"instance", "use_pid_dir", "linkbeat_use_polling", "child_wait_time",
		"bfd_instance")
}

// wholeSecs reads an integer number of seconds in [lo, hi].
func (b *builder) wholeSecs(n *conf.Node, lo, hi int64) (Duration, bool) {
	v, ok := b.intArg(n, lo, hi)
	return Duration(time.Duration(v) * time.Second), ok
}

func globalTable() table[Global] {
	t := table[Global]{
		"router_id": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.str(n); ok {
				g.RouterID = s
			}
		}},
		"notification_email": {block: true, fn: func(b *builder, g *Global, n *conf.Node) {
			for _, r := range b.nameList(n) {
				g.NotificationEmail = append(g.NotificationEmail, r.Name)
			}
		}},
		"notification_email_from": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.str(n); ok {
				g.NotificationEmailFrom = s
			}
		}},
		"smtp_server": {fn: func(b *builder, g *Global, n *conf.Node) {
			if !b.nargs(n, 1, 2) {
				return
			}
			s := SMTPServer{Host: n.Args()[0].Text, Port: 25}
			if len(n.Args()) == 2 {
				p, ok := b.port(n, n.Args()[1], 1)
				if !ok {
					return
				}
				s.Port = p
			}
			g.SMTPServer = s
		}},
		"smtp_helo_name": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.str(n); ok {
				g.SMTPHeloName = s
			}
		}},
		// keepalived turns 0 into 1; we refuse it.
		"smtp_connect_timeout": {fn: func(b *builder, g *Global, n *conf.Node) {
			if d, ok := b.wholeSecs(n, 1, maxSecs); ok {
				g.SMTPConnectTimeout = d
			}
		}},
		"smtp_alert":               boolPtr(func(g *Global) **bool { return &g.SMTPAlert }),
		"smtp_alert_vrrp":          boolPtr(func(g *Global) **bool { return &g.SMTPAlertVRRP }),
		"smtp_alert_checker":       boolPtr(func(g *Global) **bool { return &g.SMTPAlertChecker }),
		"no_email_faults":          flagKw(func(g *Global) *bool { return &g.NoEmailFaults }),
		"checker_log_all_failures": boolKw(func(g *Global) *bool { return &g.CheckerLogAllFailures }),
		"no_checker_emails":        flagKw(func(g *Global) *bool { return &g.NoCheckerEmails }),
		"rs_init_notifies":         boolKw(func(g *Global) *bool { return &g.RSInitNotifies }),
		"script_user": {fn: func(b *builder, g *Global, n *conf.Node) {
			if !b.nargs(n, 1, 2) {
				return
			}
			g.ScriptUser = n.Args()[0].Text
			if len(n.Args()) == 2 {
				g.ScriptGroup = n.Args()[1].Text
			}
		}},
		"enable_script_security":           flagKw(func(g *Global) *bool { return &g.EnableScriptSecurity }),
		"notify_fifo":                      fifoKw(func(g *Global) **FIFO { return &g.NotifyFIFO }),
		"notify_fifo_script":               fifoScriptKw(func(g *Global) **FIFO { return &g.NotifyFIFO }),
		"vrrp_notify_fifo":                 fifoKw(func(g *Global) **FIFO { return &g.VRRPNotifyFIFO }),
		"vrrp_notify_fifo_script":          fifoScriptKw(func(g *Global) **FIFO { return &g.VRRPNotifyFIFO }),
		"lvs_notify_fifo":                  fifoKw(func(g *Global) **FIFO { return &g.LVSNotifyFIFO }),
		"lvs_notify_fifo_script":           fifoScriptKw(func(g *Global) **FIFO { return &g.LVSNotifyFIFO }),
		"fifo_write_vrrp_states_on_reload": flagKw(func(g *Global) *bool { return &g.FIFOWriteVRRPStatesReload }),
		"vrrp_notify_priority_changes":     boolKw(func(g *Global) *bool { return &g.VRRPNotifyPriorityChanges }),

		"vrrp_version": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.intArg(n, 2, 3); ok {
				g.VRRPVersion = int(v)
			}
		}},
		"vrrp_mcast_group4": {fn: func(b *builder, g *Global, n *conf.Node) {
			if a, ok := b.mcast(n, true); ok {
				g.VRRPMcastGroup4 = a
			}
		}},
		"vrrp_mcast_group6": {fn: func(b *builder, g *Global, n *conf.Node) {
			if a, ok := b.mcast(n, false); ok {
				g.VRRPMcastGroup6 = a
			}
		}},
		"vrrp_check_unicast_src":   flagKw(func(g *Global) *bool { return &g.VRRPCheckUnicastSrc }),
		"vrrp_skip_check_adv_addr": flagKw(func(g *Global) *bool { return &g.VRRPSkipCheckAdvAddr }),
		"vrrp_strict":              flagKw(func(g *Global) *bool { return &g.VRRPStrict }),
		"vrrp_down_timer_adverts": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 100); ok {
				g.VRRPDownTimerAdverts = int(v)
			}
		}},
		"vrrp_startup_delay": {fn: func(b *builder, g *Global, n *conf.Node) {
			if d, ok := b.timerArg(n, time.Millisecond, kaMaxTimer); ok {
				g.VRRPStartupDelay = d
			}
		}},
		"log_unknown_vrids": flagKw(func(g *Global) *bool { return &g.LogUnknownVRIDs }),
		"default_interface": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.str(n); ok {
				g.DefaultInterface = s
			}
		}},
		"vmac_prefix": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.str(n); ok {
				g.VMACPrefix = s
			}
		}},
		"vmac_addr_prefix": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.str(n); ok {
				g.VMACAddrPrefix = s
			}
		}},
		"vrrp_priority": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.intArg(n, -20, 19); ok {
				g.VRRPPriority = int(v)
			}
		}},
		"checker_priority": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.intArg(n, -20, 19); ok {
				g.CheckerPriority = int(v)
			}
		}},
		"vrrp_rt_priority": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 99); ok {
				g.VRRPRTPriority = int(v)
			}
		}},
		"vrrp_rlimit_rttime": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.intArg(n, 1, math.MaxUint32); ok {
				g.VRRPRlimitRTTime = int(v)
			}
		}},
		// Without a value keepalived uses the system maximum (99).
		"max_auto_priority": {fn: func(b *builder, g *Global, n *conf.Node) {
			if !b.nargs(n, 0, 1) {
				return
			}
			if len(n.Args()) == 0 {
				g.MaxAutoPriority = 99
				return
			}
			if v, ok := b.integer(n, n.Args()[0], -1, 99); ok {
				g.MaxAutoPriority = int(v)
			}
		}},
		"dynamic_interfaces": {fn: func(b *builder, g *Global, n *conf.Node) {
			if !b.nargs(n, 0, 1) {
				return
			}
			d := &DynamicInterfaces{}
			if len(n.Args()) == 1 {
				if _, ok := b.choice(n, n.Args()[0], "allow_if_changes"); !ok {
					return
				}
				d.AllowIfChanges = true
			}
			g.DynamicInterfaces = d
		}},
		"lvs_sync_daemon": {fn: func(b *builder, g *Global, n *conf.Node) {
			if s, ok := b.syncDaemon(n); ok {
				g.LVSSyncDaemon = s
			}
		}},
		"lvs_flush": flagKw(func(g *Global) *bool { return &g.LVSFlush }),
		"lvs_flush_on_stop": {fn: func(b *builder, g *Global, n *conf.Node) {
			if !b.nargs(n, 0, 1) {
				return
			}
			g.LVSFlushOnStop = "RS"
			if len(n.Args()) == 1 {
				if v, ok := b.choice(n, n.Args()[0], "VS"); ok {
					g.LVSFlushOnStop = v
				}
			}
		}},
		"lvs_timeouts": {fn: func(b *builder, g *Global, n *conf.Node) {
			if v, ok := b.lvsTimeouts(n); ok {
				g.LVSTimeouts = v
			}
		}},
	}
	t.alias("lvs_flush_onstop", "lvs_flush_on_stop", "use lvs_flush_on_stop")
	t.alias("vrrp_rlimit_rtime", "vrrp_rlimit_rttime", "use vrrp_rlimit_rttime")
	garpKeywords(t, "vrrp_", func(g *Global) *GARP { return &g.GARP })
	t.alias("vrrp_vmac_garp_intvl", "vrrp_garp_extra_if", "use vrrp_garp_extra_if")

	// Accepted, never acted on: keepvs is one process without SNMP, DBus,
	// BFD, a firewall of its own, realtime tuning outside VRRP or netlink
	// buffer knobs.
	addIgnored(t,
		"tmp_config_directory", "config_save_dir", "process_names", "process_name",
		"vrrp_process_name", "checker_process_name", "bfd_process_name", "lvs_process_name",
		"startup_script", "startup_script_timeout", "shutdown_script", "shutdown_script_timeout",
		"nftables", "nftables_priority", "nftables_counters", "nftables_ifindex",
		"nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark",
		"vrrp_iptables", "vrrp_ipsets", "disable_local_igmp", "min_auto_priority_delay",
		"bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap",
		"vrrp_cpu_affinity", "checker_cpu_affinity", "bfd_cpu_affinity",
		"checker_rt_priority", "bfd_rt_priority",
		"checker_rlimit_rttime", "bfd_rlimit_rttime",
		"checker_rlimit_rtime", "bfd_rlimit_rtime",
		"snmp_socket", "enable_snmp_vrrp", "enable_snmp_keepalived", "enable_snmp_checker",
		"enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps",
		"enable_dbus", "dbus_service_name",
		"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
		"vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
		"lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
		"lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force",
		"process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
		"vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "umask", "random_seed",
		"reload_check_config", "include_check", "reload_time_file", "reload_repeat",
		"reload_file", "data_use_instance")
	return t
}

// garpKeywords registers the gratuitous ARP keywords under prefix
// ("vrrp_" in global_defs, "" in vrrp_instance).
func garpKeywords[T any](t table[T], prefix string, get func(*T) *GARP) {
	t[prefix+"garp_master_delay"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.wholeSecs(n, 0, maxSecs); ok {
			g := get(x)
			g.MasterDelay, g.set = d, g.set|gMasterDelay
		}
	}}
	// keepalived turns 0 into 1; we refuse it.
	t[prefix+"garp_master_repeat"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.intArg(n, 1, math.MaxUint32); ok {
			g := get(x)
			g.MasterRepeat, g.set = v, g.set|gMasterRepeat
		}
	}}
	t[prefix+"garp_lower_prio_delay"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.wholeSecs(n, 0, maxSecs); ok {
			g := get(x)
			g.LowerPrioDelay, g.set = d, g.set|gLowerDelay
		}
	}}
	t[prefix+"garp_lower_prio_repeat"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.intArg(n, 0, math.MaxUint32); ok {
			g := get(x)
			g.LowerPrioRepeat, g.set = v, g.set|gLowerRepeat
		}
	}}
	t[prefix+"garp_master_refresh"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if d, ok := b.wholeSecs(n, 0, math.MaxUint32); ok {
			g := get(x)
			g.MasterRefresh, g.set = d, g.set|gRefresh
		}
	}}
	// keepalived turns 0 into 1; we refuse it.
	t[prefix+"garp_master_refresh_repeat"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.intArg(n, 1, math.MaxUint32); ok {
			g := get(x)
			g.MasterRefreshRepeat, g.set = v, g.set|gRefreshRepeat
		}
	}}
	t[prefix+"lower_prio_no_advert"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.boolArg(n); ok {
			g := get(x)
			g.LowerPrioNoAdvert, g.set = v, g.set|gLowerNoAdvert
		}
	}}
	t[prefix+"higher_prio_send_advert"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.boolArg(n); ok {
			g := get(x)
			g.HigherPrioSendAdvert, g.set = v, g.set|gHigherSendAdvert
		}
	}}
	// garp_extra_if [all] SECS: at most one day; 0 turns it off.
	t[prefix+"garp_extra_if"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if !b.nargs(n, 1, 2) {
			return
		}
		args := n.Args()
		all := false
		if len(args) == 2 {
			if _, ok := b.choice(n, args[0], "all"); !ok {
				return
			}
			all, args = true, args[1:]
		}
		v, ok := b.integer(n, args[0], 0, 86400)
		if !ok {
			return
		}
		g := get(x)
		g.ExtraIfInterval, g.ExtraIfAll = Duration(time.Duration(v)*time.Second), all
		g.set |= gExtraIf
	}}
	if prefix == "vrrp_" {
		// These two exist only globally (a garp_group sets them per
		// interface).
		t["vrrp_garp_interval"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
			if d, ok := b.timerArg(n, 0, kaMaxTimer); ok {
				get(x).Interval = d
			}
		}}
		t["vrrp_gna_interval"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
			if d, ok := b.timerArg(n, 0, kaMaxTimer); ok {
				get(x).NAInterval = d
			}
		}}
		// vrrp_min_garp: one GARP, no second burst.
		t["vrrp_min_garp"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
			if v, ok := b.boolArg(n); ok && v {
				g := get(x)
				g.MasterRepeat, g.MasterDelay = 1, 0
				g.set |= gMasterRepeat | gMasterDelay
			}
		}}
	}
}

func flagKw[T any](get func(*T) *bool) kw[T] {
	return kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if b.flag(n) {
			*get(x) = true
		}
	}}
}

func boolKw[T any](get func(*T) *bool) kw[T] {
	return kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.boolArg(n); ok {
			*get(x) = v
		}
	}}
}

func boolPtr[T any](get func(*T) **bool) kw[T] {
	return kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.boolArg(n); ok {
			*get(x) = &v
		}
	}}
}

func fifoKw(get func(*Global) **FIFO) kw[Global] {
	return kw[Global]{fn: func(b *builder, g *Global, n *conf.Node) {
		if !b.nargs(n, 1, 3) {
			return
		}
		p := get(g)
		if *p == nil {
			*p = &FIFO{}
		}
		f := *p
		args := n.Args()
		f.Path = args[0].Text
		if len(args) > 1 {
			f.User = args[1].Text
		}
		if len(args) > 2 {
			f.Group = args[2].Text
		}
	}}
}

func fifoScriptKw(get func(*Global) **FIFO) kw[Global] {
	return kw[Global]{fn: func(b *builder, g *Global, n *conf.Node) {
		s, ok := b.notifyScript(n)
		if !ok {
			return
		}
		p := get(g)
		if *p == nil {
			*p = &FIFO{}
		}
		(*p).Script = s
	}}
}

// mcast reads a VRRP multicast group: IPv4 multicast, or IPv6
// link-local multicast (keepalived only warns for other IPv6 scopes;
// adverts are link-local by RFC 5798, so we refuse).
func (b *builder) mcast(n *conf.Node, v4 bool) (netip.Addr, bool) {
	w, ok := b.arg(n)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := b.addr(n, w)
	if !ok {
		return netip.Addr{}, false
	}
	switch {
	case v4 && !a.Is4(), !v4 && !a.Is6():
		want := "IPv4"
		if !v4 {
			want = "IPv6"
		}
		b.errorf(w.Pos, n.Keyword(), "%s is not an %s address", a, want)
	case !a.IsMulticast():
		b.errorf(w.Pos, n.Keyword(), "%s is not a multicast address", a)
	case !v4 && !a.IsLinkLocalMulticast():
		b.errorf(w.Pos, n.Keyword(), "%s is not a link-local multicast address (ff02::/16)", a)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// syncDaemon reads "lvs_sync_daemon IF [[inst] NAME] [id N] [maxlen N]
// [port N] [ttl N] [group IP]".
func (b *builder) syncDaemon(n *conf.Node) (*LVSSyncDaemon, bool) {
	if !b.nargs(n, 1, -1) {
		return nil, false
	}
	args := n.Args()
	s := &LVSSyncDaemon{Interface: args[0].Text, Pos: n.Pos()}
	opts := map[string]bool{"inst": true, "id": true, "maxlen": true, "port": true, "ttl": true, "group": true}
	i := 1
	// The instance may be given without "inst", right after the
	// interface, for compatibility.
	if i < len(args) && !opts[args[i].Text] {
		s.Instance, s.instPos = args[i].Text, args[i].Pos
		i++
	}
	seen := map[string]bool{}
	for ; i < len(args); i += 2 {
		o := args[i]
		if !opts[o.Text] {
			b.errorf(o.Pos, n.Keyword(), "unknown option %q; expected inst, id, maxlen, port, ttl or group", o.Text)
			return nil, false
		}
		if seen[o.Text] || (o.Text == "inst" && s.Instance != "") {
			b.errorf(o.Pos, n.Keyword(), "%s given twice", o.Text)
			return nil, false
		}
		seen[o.Text] = true
		if i+1 >= len(args) {
			b.errorf(o.Pos, n.Keyword(), "%s needs a value", o.Text)
			return nil, false
		}
		v := args[i+1]
		var ok bool
		switch o.Text {
		case "inst":
			s.Instance, s.instPos, ok = v.Text, v.Pos, true
		case "id":
			var id int64
			if id, ok = b.integer(n, v, 0, 255); ok {
				s.SyncID = &id
			}
		case "maxlen":
			s.MaxLen, ok = b.integer(n, v, 1, 65507)
		case "port":
			s.Port, ok = b.port(n, v, 1)
		case "ttl":
			s.TTL, ok = b.integer(n, v, 1, 255)
		case "group":
			if s.Group, ok = b.addr(n, v); ok && !s.Group.IsMulticast() {
				b.errorf(v.Pos, n.Keyword(), "group %s is not a multicast address", s.Group)
				ok = false
			}
		}
		if !ok {
			return nil, false
		}
	}
	return s, true
}

// lvsTimeouts reads "lvs_timeouts [tcp SECS] [tcpfin SECS] [udp SECS]",
// each at most 31 days as keepalived allows.
func (b *builder) lvsTimeouts(n *conf.Node) (*LVSTimeouts, bool) {
	if !b.nargs(n, 2, 6) {
		return nil, false
	}
	args := n.Args()
	t := &LVSTimeouts{}
	seen := map[string]bool{}
	for i := 0; i < len(args); i += 2 {
		o := args[i]
		var dst *Duration
		switch o.Text {
		case "tcp":
			dst = &t.TCP
		case "tcpfin":
			dst = &t.TCPFin
		case "udp":
			dst = &t.UDP
		default:
			b.errorf(o.Pos, n.Keyword(), "unknown option %q; expected tcp, tcpfin or udp", o.Text)
			return nil, false
		}
		if seen[o.Text] {
			b.errorf(o.Pos, n.Keyword(), "%s given twice", o.Text)
			return nil, false
		}
		seen[o.Text] = true
		if i+1 >= len(args) {
			b.errorf(o.Pos, n.Keyword(), "%s needs a value in seconds", o.Text)
			return nil, false
		}
		v, ok := b.integer(n, args[i+1], 0, 31*86400)
		if !ok {
			return nil, false
		}
		*dst = Duration(time.Duration(v) * time.Second)
	}
	return t, true
}
