package model

import (
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// VRRP is the VRRP half of a configuration: instances and what they
// track, and the static addresses, routes and rules keepalived's VRRP
// process also owns.
type VRRP struct {
	Scripts    []*VRRPScript `json:"vrrp_scripts,omitempty"`
	TrackFiles []*TrackFile  `json:"track_files,omitempty"`
	SyncGroups []*SyncGroup  `json:"vrrp_sync_groups,omitempty"`
	Instances  []*Instance   `json:"vrrp_instances,omitempty"`

	GARPGroups         []*GARPGroup        `json:"garp_groups,omitempty"`
	LinkbeatInterfaces []LinkbeatInterface `json:"linkbeat_interfaces,omitempty"`
	InterfaceDelays    []InterfaceDelay    `json:"interface_up_down_delays,omitempty"`
	TrackGroups        []*TrackGroup       `json:"track_groups,omitempty"`

	StaticAddresses []VIP   `json:"static_ipaddress,omitempty"`
	StaticRoutes    []Route `json:"static_routes,omitempty"`
	StaticRules     []Rule  `json:"static_rules,omitempty"`
}

// GARPGroup sets the gratuitous ARP / NA pacing of one interface or of a
// set of interfaces behind the same switch.
type GARPGroup struct {
	Interval   Duration `json:"garp_interval,omitempty"`
	NAInterval Duration `json:"gna_interval,omitempty"`
	Interfaces []string `json:"interfaces"`
	Pos        conf.Pos `json:"-"`
}

// LinkbeatInterface polls an interface's link state (MII, ETHTOOL or
// IOCTL; empty: the first that works) instead of trusting netlink.
type LinkbeatInterface struct {
	Interface string `json:"interface"`
	Type      string `json:"type,omitempty"`
}

// InterfaceDelay debounces an interface's down and up transitions.
type InterfaceDelay struct {
	Interface string   `json:"interface"`
	Down      Duration `json:"down"`
	Up        Duration `json:"up"` // default: Down
}

// TrackGroup lists the instances that go to fault when a static address,
// route or rule naming the group cannot be restored.
type TrackGroup struct {
	Name      string   `json:"name"`
	Instances []Ref    `json:"group"`
	Pos       conf.Pos `json:"-"`
}

func defaultVRRP() VRRP { return VRRP{} }

func addVRRPKeywords(t table[Config]) {
	t["vrrp_script"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if s := b.vrrpScript(n); s != nil {
			c.Scripts = append(c.Scripts, s)
		}
	}}
	t["track_file"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if f := b.trackFile(n); f != nil {
			c.TrackFiles = append(c.TrackFiles, f)
		}
	}}
	t.alias("vrrp_track_file", "track_file", "use track_file")
	t["vrrp_sync_group"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if g := b.syncGroup(n); g != nil {
			c.SyncGroups = append(c.SyncGroups, g)
		}
	}}
	t["vrrp_instance"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if in := b.instance(n); in != nil {
			c.Instances = append(c.Instances, in)
		}
	}}
	t["static_ipaddress"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if b.nargs(n, 0, 0) {
			c.StaticAddresses = append(c.StaticAddresses, b.vipList(n, true)...)
		}
	}}
	t["static_routes"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if b.nargs(n, 0, 0) {
			c.StaticRoutes = append(c.StaticRoutes, b.routeList(n, true)...)
		}
	}}
	t["static_rules"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if b.nargs(n, 0, 0) {
			c.StaticRules = append(c.StaticRules, b.ruleList(n, true)...)
		}
	}}
	t["garp_group"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if !b.nargs(n, 0, 0) {
			return
		}
		g := &GARPGroup{Pos: n.Pos()}
		walk(b, g, cached(b, "garp_group", garpGroupTable), "garp_group", n.Block)
		if len(g.Interfaces) == 0 {
			b.errorf(n.Pos(), n.Keyword(), "names no interface (interface or interfaces)")
			return
		}
		c.GARPGroups = append(c.GARPGroups, g)
	}}
	t["linkbeat_interfaces"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if !b.nargs(n, 0, 0) {
			return
		}
		for _, m := range n.Block {
			if !b.nargs(m, 0, 1) || !b.ifName(m, m.Words[0]) {
				continue
			}
			l := LinkbeatInterface{Interface: m.Keyword()}
			if len(m.Args()) == 1 {
				v, ok := b.choice(m, m.Args()[0], "MII", "ETHTOOL", "IOCTL")
				if !ok {
					continue
				}
				l.Type = v
			}
			c.LinkbeatInterfaces = append(c.LinkbeatInterfaces, l)
		}
	}}
	// Delays are at most 255 s (keepalived.conf(5)).
	t["interface_up_down_delays"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if !b.nargs(n, 0, 0) {
			return
		}
		for _, m := range n.Block {
			if !b.nargs(m, 1, 2) || !b.ifName(m, m.Words[0]) {
				continue
			}
			down, ok := b.timer(m, m.Args()[0], 0, 255*time.Second)
			if !ok {
				continue
			}
			up := down
			if len(m.Args()) == 2 {
				if up, ok = b.timer(m, m.Args()[1], 0, 255*time.Second); !ok {
					continue
				}
			}
			c.InterfaceDelays = append(c.InterfaceDelays, InterfaceDelay{Interface: m.Keyword(), Down: down, Up: up})
		}
	}}
	t["track_group"] = kw[Config]{block: true, fn: func(b *builder, c *Config, n *conf.Node) {
		if !b.nargs(n, 1, 1) {
			return
		}
		g := &TrackGroup{Name: n.Args()[0].Text, Pos: n.Pos()}
		walk(b, g, table[TrackGroup]{
			"group": {block: true, fn: func(b *builder, g *TrackGroup, n *conf.Node) {
				g.Instances = append(g.Instances, b.nameList(n)...)
			}},
		}, "track_group", n.Block)
		c.TrackGroups = append(c.TrackGroups, g)
	}}
	t["vrrp_track_process"] = ignored[Config]()
}

func garpGroupTable() table[GARPGroup] {
	return table[GARPGroup]{
		"garp_interval": {fn: func(b *builder, g *GARPGroup, n *conf.Node) {
			if d, ok := b.timerArg(n, 0, kaMaxTimer); ok {
				g.Interval = d
			}
		}},
		"gna_interval": {fn: func(b *builder, g *GARPGroup, n *conf.Node) {
			if d, ok := b.timerArg(n, 0, kaMaxTimer); ok {
				g.NAInterval = d
			}
		}},
		"interface": {fn: func(b *builder, g *GARPGroup, n *conf.Node) {
			w, ok := b.arg(n)
			if !ok || !b.ifName(n, w) {
				return
			}
			if len(g.Interfaces) > 0 {
				b.errorf(n.Pos(), n.Keyword(), "use only one of interface or interfaces per garp_group")
				return
			}
			g.Interfaces = []string{w.Text}
		}},
		"interfaces": {block: true, fn: func(b *builder, g *GARPGroup, n *conf.Node) {
			if len(g.Interfaces) > 0 {
				b.errorf(n.Pos(), n.Keyword(), "use only one of interface or interfaces per garp_group")
				return
			}
			for _, r := range b.nameList(n) {
				g.Interfaces = append(g.Interfaces, r.Name)
			}
		}},
	}
}

// vrrpBlocks lists the keywords of the VRRP blocks for "it is a keyword
// of X" hints.
func vrrpBlocks(m map[string][]string) {
	m["global_defs"] = keys(globalTable())
	m["vrrp_instance"] = keys(instanceTable())
	m["vrrp_script"] = keys(vrrpScriptTable())
	m["vrrp_sync_group"] = keys(syncGroupTable())
	m["track_file"] = keys(trackFileTable())
	m["authentication"] = keys(authTable())
	m["garp_group"] = keys(garpGroupTable())
}
