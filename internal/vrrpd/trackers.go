package vrrpd

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/track"
)

// trackers runs the watchers of what the instances track — each
// vrrp_script and track_file in use, and one watcher for all the
// interfaces — and posts what they see to the loop. reconcile starts the
// watchers a configuration needs and stops those it no longer does; a
// watcher whose definition a reload leaves alone runs on untouched, and
// the loop keeps the last state of every object by name, so an unchanged
// script's verdict survives a reload (as keepalived's clear_diff_script
// keeps it) and a restarted one's first verdict is only a change if it
// differs.
type trackers struct {
	n   *Node
	ctx context.Context
	out chan track.Update
	// running by key ("script NAME", "file NAME", "interfaces").
	running map[string]*watcher
	stopAll context.CancelFunc
	wg      sync.WaitGroup
}

type watcher struct {
	def    string // the definition it runs, to tell a changed one
	cancel context.CancelFunc
	done   chan struct{}
}

// newTrackers forwards updates to n's loop until ctx ends or stop.
func newTrackers(ctx context.Context, n *Node) *trackers {
	ctx, cancel := context.WithCancel(ctx)
	t := &trackers{n: n, ctx: ctx, out: make(chan track.Update, 64), running: map[string]*watcher{}, stopAll: cancel}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			select {
			case u := <-t.out:
				n.post(event{kind: evTrack, upd: u})
			case <-ctx.Done():
				return
			}
		}
	}()
	return t
}

// reconcile runs the watchers that cfg and its instances ins need, and
// only those. It is called from one goroutine at a time.
func (t *trackers) reconcile(cfg *model.Config, ins []*inst) {
	want := map[string]func(ctx context.Context){}
	defs := map[string]string{}
	scripts, files := map[string]bool{}, map[string]bool{}
	ifaces := map[string]bool{}
	var srcs []track.AddrOn
	uses := func(tr track.Tracked) {
		for _, r := range tr.Scripts {
			scripts[r.Name] = true
		}
		for _, r := range tr.Interfaces {
			ifaces[r.Name] = true
		}
		for _, r := range tr.Files {
			files[r.Name] = true
		}
	}
	for _, i := range ins {
		uses(track.Resolve(&cfg.VRRP, i.m.TrackScript, i.m.TrackInterface, i.m.TrackFile))
		ifaces[i.base] = true
		if a, ok := i.trackedSrc(); ok {
			srcs = append(srcs, a)
		}
		if i.vmac != "" {
			ifaces[i.vmac] = true
		}
	}
	for _, g := range cfg.SyncGroups {
		uses(track.Resolve(&cfg.VRRP, g.TrackScript, g.TrackInterface, g.TrackFile))
	}
	n, g := t.n, cfg.Global
	for _, s := range cfg.Scripts {
		if scripts[s.Name] {
			k := "script " + s.Name
			opt := track.ScriptOptions{User: g.ScriptUser, Group: g.ScriptGroup, Exec: n.opt.ScriptExec, Clock: n.clk, Log: n.log}
			defs[k] = definition(s, opt.User, opt.Group)
			want[k] = func(ctx context.Context) { track.RunScript(ctx, s, opt, t.out) }
		}
	}
	for _, f := range cfg.TrackFiles {
		if files[f.Name] {
			k := "file " + f.Name
			defs[k] = definition(f)
			want[k] = func(ctx context.Context) { track.RunFile(ctx, f, 0, t.out) }
		}
	}
	if !n.opt.NoInterfaceTracking {
		var names []string
		for name := range ifaces {
			names = append(names, name)
		}
		slices.Sort(names)
		if len(srcs) > 0 {
			slices.SortFunc(srcs, func(a, b track.AddrOn) int { return strings.Compare(a.Key(), b.Key()) })
			defs["addresses"] = definition(srcs)
			want["addresses"] = func(ctx context.Context) {
				if err := track.RunAddresses(ctx, srcs, t.out); err != nil && ctx.Err() == nil {
					n.log.Error("track_src_ip stopped", "err", err)
				}
			}
		}
		defs["interfaces"] = definition(names)
		want["interfaces"] = func(ctx context.Context) {
			if err := track.RunInterfaces(ctx, names, t.out); err != nil && ctx.Err() == nil {
				n.log.Error("interface tracking stopped", "err", err)
			}
		}
	}
	for k, w := range t.running {
		if _, ok := want[k]; !ok || defs[k] != w.def {
			w.cancel()
			<-w.done // so its last update comes before its successor's first
			delete(t.running, k)
		}
	}
	for k, run := range want {
		if _, ok := t.running[k]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(t.ctx)
		w := &watcher{def: defs[k], cancel: cancel, done: make(chan struct{})}
		t.running[k] = w
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer close(w.done)
			run(ctx)
		}()
	}
}

// stop ends every watcher and the forwarding, and waits for them.
func (t *trackers) stop() {
	t.stopAll()
	t.wg.Wait()
}

// definition is what a watcher runs, as text to compare: the resolved
// model as `keepvs -d` shows it (positions left out).
func definition(v ...any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// trackedSrc is the address track_src_ip watches for i: its configured
// source (unicast_src_ip or mcast_src_ip) on its interface.
func (i *inst) trackedSrc() (track.AddrOn, bool) {
	if !i.m.TrackSrcIP {
		return track.AddrOn{}, false
	}
	src := configuredSrc(i.m)
	return track.AddrOn{Dev: i.base, Addr: src}, src.IsValid()
}
