package model

import (
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// VRRPScript is a vrrp_script: a command run every Interval whose exit
// status, after Rise successes or Fall failures, moves the priority of
// the instances tracking it by Weight (or faults them when Weight is 0).
type VRRPScript struct {
	Name   string  `json:"name"`
	Script *Script `json:"script"`
	// Interval defaults to 1s (VRRP_SCRIPT_DI); keepalived reads whole
	// seconds.
	Interval Duration `json:"interval"`
	// Timeout 0 (the default, VRRP_SCRIPT_DT) means the interval.
	Timeout Duration `json:"timeout,omitempty"`
	// Weight defaults to 0, -253..253.
	Weight   Weight   `json:"weight"`
	Rise     int64    `json:"rise"` // default 1
	Fall     int64    `json:"fall"` // default 1
	InitFail bool     `json:"init_fail,omitempty"`
	Pos      conf.Pos `json:"-"`
}

// TrackFile is a track_file: a file holding a number, multiplied by
// Weight (default 1) and added to the priority of the instances tracking
// it.
type TrackFile struct {
	Name   string         `json:"name"`
	File   string         `json:"file"`
	Weight Weight         `json:"weight"`
	Init   *TrackFileInit `json:"init_file,omitempty"`
	Pos    conf.Pos       `json:"-"`
}

// TrackFileInit writes Value to the file at startup when it is missing,
// or always when Overwrite is set.
type TrackFileInit struct {
	Value     int64 `json:"value"`
	Overwrite bool  `json:"overwrite,omitempty"`
}

// keepalived's weight limits: scripts, interfaces and BFD -253..253; files
// and processes -254..254 (a file's value may be negative).
const (
	maxScriptWeight = 253
	maxFileWeight   = 254
)

func (b *builder) vrrpScript(n *conf.Node) *VRRPScript {
	if !b.nargs(n, 1, 1) {
		return nil
	}
	s := &VRRPScript{
		Name:     n.Args()[0].Text,
		Interval: Duration(time.Second),
		Rise:     1,
		Fall:     1,
		Pos:      n.Pos(),
	}
	walk(b, s, cached(b, "vrrp_script", vrrpScriptTable), "vrrp_script", n.Block)
	if s.Script == nil {
		b.errorf(n.Pos(), n.Keyword(), "vrrp_script %s has no script", s.Name)
	}
	return s
}

func vrrpScriptTable() table[VRRPScript] {
	return table[VRRPScript]{
		// keepalived runs only the first word after script (split again
		// on its blanks) and drops the rest: quote a command with
		// arguments. We refuse the extra words rather than drop them.
		"script": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if !b.nargs(n, 1, -1) {
				return
			}
			if len(n.Args()) > 1 {
				extra := n.Args()[1]
				b.errorf(extra.Pos, n.Keyword(), "keepalived would run %q alone and drop %q; quote the whole command", n.Args()[0].Text, extra.Text)
				return
			}
			user, group := "", ""
			if s.Script != nil {
				user, group = s.Script.User, s.Script.Group
			}
			if sc, ok := b.scriptWords(n, n.Args()); ok {
				sc.User, sc.Group = user, group
				s.Script = sc
			}
		}},
		// Whole seconds; keepalived turns 0 into 1, we refuse it.
		"interval": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if d, ok := b.wholeSecs(n, 1, maxSecs); ok {
				s.Interval = d
			}
		}},
		"timeout": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if d, ok := b.wholeSecs(n, 1, maxSecs); ok {
				s.Timeout = d
			}
		}},
		"weight": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if !b.nargs(n, 1, 2) {
				return
			}
			if w, ok := b.weightWords(n, n.Words, -maxScriptWeight, maxScriptWeight, false); ok {
				s.Weight = w
			}
		}},
		"rise": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 1<<31-1); ok {
				s.Rise = v
			}
		}},
		"fall": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 1<<31-1); ok {
				s.Fall = v
			}
		}},
		"user": {fn: func(b *builder, s *VRRPScript, n *conf.Node) {
			if !b.nargs(n, 1, 2) {
				return
			}
			if s.Script == nil {
				s.Script = &Script{}
			}
			s.Script.User = n.Args()[0].Text
			if len(n.Args()) == 2 {
				s.Script.Group = n.Args()[1].Text
			}
		}},
		"init_fail": flagKw(func(s *VRRPScript) *bool { return &s.InitFail }),
	}
}

func (b *builder) trackFile(n *conf.Node) *TrackFile {
	if !b.nargs(n, 1, 1) {
		return nil
	}
	f := &TrackFile{Name: n.Args()[0].Text, Weight: Weight{Value: 1}, Pos: n.Pos()}
	walk(b, f, cached(b, "track_file", trackFileTable), n.Keyword(), n.Block)
	if f.File == "" {
		b.errorf(n.Pos(), n.Keyword(), "%s %s has no file", n.Keyword(), f.Name)
	}
	return f
}

func trackFileTable() table[TrackFile] {
	return table[TrackFile]{
		"file": {fn: func(b *builder, f *TrackFile, n *conf.Node) {
			if s, ok := b.str(n); ok {
				f.File = s
			}
		}},
		"weight": {fn: func(b *builder, f *TrackFile, n *conf.Node) {
			if !b.nargs(n, 1, 2) {
				return
			}
			if w, ok := b.weightWords(n, n.Words, -maxFileWeight, maxFileWeight, false); ok {
				f.Weight = w
			}
		}},
		"init_file": {fn: func(b *builder, f *TrackFile, n *conf.Node) {
			if !b.nargs(n, 0, 2) {
				return
			}
			in := &TrackFileInit{}
			args := n.Args()
			if len(args) > 0 && args[0].Text != "overwrite" {
				v, ok := b.integer(n, args[0], -1<<31, 1<<31-1)
				if !ok {
					return
				}
				in.Value, args = v, args[1:]
			}
			if len(args) > 0 {
				if _, ok := b.choice(n, args[0], "overwrite"); !ok {
					return
				}
				in.Overwrite, args = true, args[1:]
			}
			if len(args) > 0 {
				b.errorf(args[0].Pos, n.Keyword(), "unexpected %q", args[0].Text)
				return
			}
			f.Init = in
		}},
	}
}

// SyncGroup is a vrrp_sync_group: instances that change state together.
type SyncGroup struct {
	Name           string   `json:"name"`
	Members        []Ref    `json:"group"`
	TrackInterface []Ref    `json:"track_interface,omitempty"`
	TrackScript    []Ref    `json:"track_script,omitempty"`
	TrackFile      []Ref    `json:"track_file,omitempty"`
	Notify         Notify   `json:"notify,omitzero"`
	SMTPAlert      *bool    `json:"smtp_alert,omitempty"`
	TrackingWeight bool     `json:"sync_group_tracking_weight,omitempty"`
	Pos            conf.Pos `json:"-"`
}

// Notify holds the scripts run on state changes.
type Notify struct {
	Master           *Script `json:"master,omitempty"`
	Backup           *Script `json:"backup,omitempty"`
	Fault            *Script `json:"fault,omitempty"`
	Stop             *Script `json:"stop,omitempty"`
	Deleted          *Script `json:"deleted,omitempty"`
	Any              *Script `json:"any,omitempty"` // "notify", called with type, name, state, priority
	MasterRxLowerPri *Script `json:"master_rx_lower_pri,omitempty"`
	// DeletedState sends DELETED rather than FAULT when a reload
	// removes the instance (notify_deleted, with or without a script).
	DeletedState    bool `json:"deleted_state,omitempty"`
	PriorityChanges bool `json:"priority_changes,omitempty"`
}

// notifyKeywords registers notify_* on a table whose T holds a Notify.
func notifyKeywords[T any](t table[T], get func(*T) *Notify, instance bool) {
	one := func(pick func(*Notify) **Script) kw[T] {
		return kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
			p := pick(get(x))
			if *p != nil {
				b.errorf(n.Pos(), n.Keyword(), "given twice")
				return
			}
			if s, ok := b.notifyScript(n); ok {
				*p = s
			}
		}}
	}
	t["notify_master"] = one(func(n *Notify) **Script { return &n.Master })
	t["notify_backup"] = one(func(n *Notify) **Script { return &n.Backup })
	t["notify_fault"] = one(func(n *Notify) **Script { return &n.Fault })
	t["notify_stop"] = one(func(n *Notify) **Script { return &n.Stop })
	t["notify"] = one(func(n *Notify) **Script { return &n.Any })
	t["notify_priority_changes"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		if v, ok := b.boolArg(n); ok {
			get(x).PriorityChanges = v
		}
	}}
	if !instance {
		return
	}
	t["notify_master_rx_lower_pri"] = one(func(n *Notify) **Script { return &n.MasterRxLowerPri })
	t["notify_deleted"] = kw[T]{fn: func(b *builder, x *T, n *conf.Node) {
		nt := get(x)
		if nt.DeletedState {
			b.errorf(n.Pos(), n.Keyword(), "given twice")
			return
		}
		if len(n.Args()) == 0 {
			nt.DeletedState = true
			return
		}
		if s, ok := b.notifyScript(n); ok {
			nt.Deleted, nt.DeletedState = s, true
		}
	}}
}

func (b *builder) syncGroup(n *conf.Node) *SyncGroup {
	if !b.nargs(n, 1, 1) {
		return nil
	}
	g := &SyncGroup{Name: n.Args()[0].Text, Pos: n.Pos()}
	walk(b, g, cached(b, "vrrp_sync_group", syncGroupTable), "vrrp_sync_group", n.Block)
	if g.Members == nil {
		b.errorf(n.Pos(), n.Keyword(), "vrrp_sync_group %s has no group { } of instances", g.Name)
	}
	return g
}

func syncGroupTable() table[SyncGroup] {
	t := table[SyncGroup]{
		"group": {block: true, fn: func(b *builder, g *SyncGroup, n *conf.Node) {
			if g.Members != nil {
				b.errorf(n.Pos(), n.Keyword(), "given twice")
				return
			}
			g.Members = b.nameList(n)
			if g.Members == nil {
				b.errorf(n.Pos(), n.Keyword(), "is empty")
				g.Members = []Ref{}
			}
		}},
		"track_interface": {block: true, fn: func(b *builder, g *SyncGroup, n *conf.Node) {
			g.TrackInterface = append(g.TrackInterface, b.trackList(n, -maxScriptWeight, maxScriptWeight, true)...)
		}},
		"track_script": {block: true, fn: func(b *builder, g *SyncGroup, n *conf.Node) {
			g.TrackScript = append(g.TrackScript, b.trackList(n, -maxScriptWeight, maxScriptWeight, true)...)
		}},
		"track_file": {block: true, fn: func(b *builder, g *SyncGroup, n *conf.Node) {
			g.TrackFile = append(g.TrackFile, b.trackList(n, -maxFileWeight, maxFileWeight, true)...)
		}},
		"smtp_alert":                 boolPtr(func(g *SyncGroup) **bool { return &g.SMTPAlert }),
		"sync_group_tracking_weight": flagKw(func(g *SyncGroup) *bool { return &g.TrackingWeight }),
		"track_process":              ignored[SyncGroup](),
		"track_bfd":                  ignored[SyncGroup](),
	}
	notifyKeywords(t, func(g *SyncGroup) *Notify { return &g.Notify }, false)
	t.alias("global_tracking", "sync_group_tracking_weight", "use track_interface, track_script and track_file on the sync group")
	return t
}
