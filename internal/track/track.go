// Package track watches what keepalived's VRRP instances track —
// vrrp_script, track_interface, track_file — and turns it into the
// priority change or fault of each instance.
//
// Watchers (Script, Interfaces, File) send Updates on a channel; State
// keeps the last of each and Sum folds an instance's tracked objects into
// the delta and fault that vrrp.PriorityChanged and vrrp.FaultChanged
// carry, with vrrp's arithmetic (ScriptWeight, FileWeight).
package track

import (
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp"
)

// Kind is the kind of tracked object.
type Kind uint8

const (
	KindScript Kind = iota
	KindInterface
	KindFile
	KindAddress // track_src_ip: an address on an interface (AddrOn.Key)
)

// Result is a script's or an interface's state.
type Result uint8

const (
	// Unknown: a script that has not finished a first run (and has no
	// init_fail); it moves no priority and faults nothing, as in
	// keepalived.
	Unknown Result = iota
	Up
	Down
)

func (r Result) String() string {
	switch r {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Update is a tracked object's new state.
type Update struct {
	Kind   Kind
	Name   string
	Result Result // scripts, interfaces
	Value  int64  // files
}

// State is the last state of every tracked object, owned by one
// goroutine.
type State struct {
	scripts map[string]Result
	ifaces  map[string]Result
	files   map[string]int64
	addrs   map[string]Result
}

// NewState returns an empty State: every object Unknown (files 0).
func NewState() *State {
	return &State{scripts: map[string]Result{}, ifaces: map[string]Result{}, files: map[string]int64{}, addrs: map[string]Result{}}
}

// Apply records u and reports whether anything changed.
func (s *State) Apply(u Update) bool {
	switch u.Kind {
	case KindScript:
		old, ok := s.scripts[u.Name]
		s.scripts[u.Name] = u.Result
		return !ok || old != u.Result
	case KindInterface:
		old, ok := s.ifaces[u.Name]
		s.ifaces[u.Name] = u.Result
		return !ok || old != u.Result
	case KindAddress:
		old, ok := s.addrs[u.Name]
		s.addrs[u.Name] = u.Result
		return !ok || old != u.Result
	case KindFile:
		old, ok := s.files[u.Name]
		s.files[u.Name] = u.Value
		return !ok || old != u.Value
	}
	return false
}

// Interface is the last state of interface name.
func (s *State) Interface(name string) Result { return s.ifaces[name] }

// Address is the last state of an address track_src_ip watches.
func (s *State) Address(a AddrOn) Result { return s.addrs[a.Key()] }

// Tracked is what one instance (or sync group) tracks, with the weights
// resolved: a reference's own weight when it has one, else the object's.
type Tracked struct {
	Scripts    []Ref
	Interfaces []Ref
	Files      []Ref
}

// Ref is one tracked object and its weight.
type Ref struct {
	Name    string
	Weight  int
	Reverse bool
}

// Resolve builds Tracked from model references, taking default weights
// from the vrrp_script and track_file definitions in cfg.
func Resolve(cfg *model.VRRP, scripts, ifaces, files []model.Ref) Tracked {
	var t Tracked
	for _, r := range scripts {
		ref := Ref{Name: r.Name, Weight: int(r.Weight.Value), Reverse: r.Weight.Reverse}
		if !r.Weight.Set {
			for _, s := range cfg.Scripts {
				if s.Name == r.Name {
					ref.Weight, ref.Reverse = int(s.Weight.Value), s.Weight.Reverse
				}
			}
		}
		t.Scripts = append(t.Scripts, ref)
	}
	for _, r := range ifaces {
		t.Interfaces = append(t.Interfaces, Ref{Name: r.Name, Weight: int(r.Weight.Value), Reverse: r.Weight.Reverse})
	}
	for _, r := range files {
		ref := Ref{Name: r.Name, Weight: int(r.Weight.Value), Reverse: r.Weight.Reverse}
		if !r.Weight.Set {
			ref.Weight, ref.Reverse = 1, false
			for _, f := range cfg.TrackFiles {
				if f.Name == r.Name {
					ref.Weight, ref.Reverse = int(f.Weight.Value), f.Weight.Reverse
				}
			}
		}
		t.Files = append(t.Files, ref)
	}
	return t
}

// Sum is the delta and fault t contributes in state s. Unknown scripts
// and interfaces contribute nothing.
func (s *State) Sum(t Tracked) (delta int, fault bool) {
	add := func(d int, f bool) {
		delta += d
		fault = fault || f
	}
	for _, r := range t.Scripts {
		if res := s.scripts[r.Name]; res != Unknown {
			add(vrrp.ScriptWeight(r.Weight, r.Reverse, res == Up))
		}
	}
	for _, r := range t.Interfaces {
		if res := s.ifaces[r.Name]; res != Unknown {
			add(vrrp.ScriptWeight(r.Weight, r.Reverse, res == Up))
		}
	}
	for _, r := range t.Files {
		add(vrrp.FileWeight(s.files[r.Name], r.Weight, r.Reverse))
	}
	return delta, fault
}
