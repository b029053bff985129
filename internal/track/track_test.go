package track_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/track"
	"github.com/keepvs/keepvs/internal/vrrpd/netnstest"
)

func TestScriptRiseFall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rise, fall int64
		initFail   bool
		runs       string // s: success, f: failure
		want       string // state after each run: u up, d down
	}{
		{"first run decides", 1, 3, false, "fss", "duu"},
		{"first run down, then rise", 3, 1, false, "fsss", "dddu"},
		{"fall 2", 1, 2, false, "sfsff", "uuuud"},
		{"rise 3", 3, 1, false, "fsssf", "dddud"},
		{"init_fail needs rise", 2, 1, true, "ss", "du"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := track.NewScript(&model.VRRPScript{Rise: tc.rise, Fall: tc.fall, InitFail: tc.initFail})
			got := ""
			for _, r := range tc.runs {
				got += map[track.Result]string{track.Up: "u", track.Down: "d", track.Unknown: "?"}[s.Result(r == 's')]
			}
			if got != tc.want {
				t.Errorf("states %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSum(t *testing.T) {
	cfg := &model.VRRP{
		Scripts:    []*model.VRRPScript{{Name: "chk", Weight: model.Weight{Value: -20, Set: true}}},
		TrackFiles: []*model.TrackFile{{Name: "f", Weight: model.Weight{Value: 2, Set: true}}},
	}
	tr := track.Resolve(cfg,
		[]model.Ref{{Name: "chk"}},
		[]model.Ref{{Name: "eth1"}, {Name: "eth2", Weight: model.Weight{Value: 10, Set: true}}},
		[]model.Ref{{Name: "f"}})
	s := track.NewState()
	for _, tc := range []struct {
		u     track.Update
		delta int
		fault bool
	}{
		{track.Update{Kind: track.KindScript, Name: "chk", Result: track.Up}, 0, false},
		{track.Update{Kind: track.KindInterface, Name: "eth2", Result: track.Up}, 10, false},
		{track.Update{Kind: track.KindScript, Name: "chk", Result: track.Down}, -10, false},
		{track.Update{Kind: track.KindFile, Name: "f", Value: 3}, -4, false},
		{track.Update{Kind: track.KindInterface, Name: "eth1", Result: track.Down}, -4, true},
	} {
		s.Apply(tc.u)
		if d, f := s.Sum(tr); d != tc.delta || f != tc.fault {
			t.Errorf("after %+v: delta %d fault %v, want %d %v", tc.u, d, f, tc.delta, tc.fault)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "v")
	for in, want := range map[string]int64{"": 0, "12\n": 12, "-7 x": -7, "abc": 0, " 5": 5} {
		os.WriteFile(p, []byte(in), 0o644)
		if got := track.ReadFile(p); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
	if got := track.ReadFile(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing: %d", got)
	}
	f := &model.TrackFile{Name: "f", File: filepath.Join(dir, "init"), Init: &model.TrackFileInit{Value: 4}}
	out := make(chan track.Update, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go track.RunFile(ctx, f, 10*time.Millisecond, out)
	if u := <-out; u.Value != 4 {
		t.Fatalf("init_file: %+v", u)
	}
	os.WriteFile(f.File, []byte("9\n"), 0o644)
	if u := <-out; u.Value != 9 {
		t.Fatalf("after write: %+v", u)
	}
}

func TestRunScript(t *testing.T) {
	results := make(chan error, 10)
	for _, r := range []error{nil, errors.New("exit 1"), nil} {
		results <- r
	}
	exec := func(ctx context.Context, argv []string, uid, gid int) error {
		select {
		case r := <-results:
			return r
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := &model.VRRPScript{Name: "chk", Script: &model.Script{Argv: []string{"/bin/true"}}, Interval: model.Duration(10 * time.Millisecond), Rise: 1, Fall: 1}
	out := make(chan track.Update, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go track.RunScript(ctx, s, track.ScriptOptions{Exec: exec}, out)
	for _, want := range []track.Result{track.Up, track.Down, track.Up, track.Down} {
		select {
		case u := <-out:
			if u.Result != want {
				t.Fatalf("got %v, want %v", u.Result, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no update (want %v)", want)
		}
		if want == track.Up && len(results) == 0 {
			results <- errors.New("timeout follows") // the last: down
		}
	}
}

// TestRunScriptTimeout runs a real script that outlives its timeout: it
// is killed and counts as a failure.
func TestRunScriptTimeout(t *testing.T) {
	dir := t.TempDir()
	sh := filepath.Join(dir, "slow.sh")
	os.WriteFile(sh, []byte("#!/bin/sh\nsleep 5\n"), 0o755)
	s := &model.VRRPScript{Name: "slow", Script: &model.Script{Argv: []string{sh}}, Interval: model.Duration(time.Second), Timeout: model.Duration(100 * time.Millisecond), Rise: 1, Fall: 1}
	out := make(chan track.Update, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go track.RunScript(ctx, s, track.ScriptOptions{}, out)
	select {
	case u := <-out:
		if u.Result != track.Down {
			t.Fatalf("got %v", u.Result)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("timeout took %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a script past its timeout was not killed")
	}
}

func TestRunInterfaces(t *testing.T) {
	bed := netnstest.New(t)
	bed.Host("a", "10.77.3.1/24")
	out := make(chan track.Update, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	// The subscription socket is opened in a's namespace and stays there.
	started := make(chan struct{})
	go bed.Do("a", func() error {
		close(started)
		errc <- track.RunInterfaces(ctx, []string{"eth0", "nosuch"}, out)
		return nil
	})
	<-started
	got := map[string]track.Result{}
	wait := func(name string, want track.Result) {
		t.Helper()
		deadline := time.After(3 * time.Second)
		for got[name] != want {
			select {
			case u := <-out:
				got[u.Name] = u.Result
			case err := <-errc:
				t.Fatal(err)
			case <-deadline:
				t.Fatalf("%s never %v (have %v)", name, want, got[name])
			}
		}
	}
	wait("eth0", track.Up)
	wait("nosuch", track.Down)
	bed.MustRun("", "ip", "link", "set", bed.Veth("a"), "down") // carrier lost
	wait("eth0", track.Down)
	bed.MustRun("", "ip", "link", "set", bed.Veth("a"), "up")
	wait("eth0", track.Up)
}

// TestRunFileInotify: with poll 0 a track_file is watched with inotify
// (the fallback re-read is every 10 s, so a change seen within 2 s was
// reported by the kernel): a file written in place, replaced by a rename
// and removed.
func TestRunFileInotify(t *testing.T) {
	dir := t.TempDir()
	f := &model.TrackFile{Name: "f", File: filepath.Join(dir, "weight")}
	out := make(chan track.Update, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go track.RunFile(ctx, f, 0, out)
	next := func(what string) int64 {
		t.Helper()
		select {
		case u := <-out:
			return u.Value
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: no update within 2 s", what)
			return 0
		}
	}
	if v := next("start"); v != 0 {
		t.Fatalf("missing file: %d", v)
	}
	// RunFile puts its watch in place before its first read: no write
	// from here on goes unseen.
	os.WriteFile(f.File, []byte("5\n"), 0o644)
	if v := next("write"); v != 5 {
		t.Fatalf("after write: %d", v)
	}
	tmp := filepath.Join(dir, "tmp")
	os.WriteFile(tmp, []byte("-3\n"), 0o644)
	os.Rename(tmp, f.File)
	if v := next("rename"); v != -3 {
		t.Fatalf("after rename: %d", v)
	}
	os.Remove(f.File)
	if v := next("remove"); v != 0 {
		t.Fatalf("after remove: %d", v)
	}
}
