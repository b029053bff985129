package track

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify"
)

// ScriptOptions configure the runs of vrrp_scripts.
type ScriptOptions struct {
	// User and Group run scripts that name no user (script_user).
	User, Group string
	// Exec runs one command (default notify.ExecCommand: its own
	// process group, killed with it at the timeout).
	Exec  notify.Exec
	Clock clock.Clock
	Log   *slog.Logger
}

// Script is one vrrp_script's rise/fall state machine: Result is the
// verdict after a run that exited ok (true) or not.
type Script struct {
	rise, fall int64
	res        Result
	count      int64
}

// NewScript starts in Unknown, or in Down with init_fail.
func NewScript(s *model.VRRPScript) *Script {
	sc := &Script{rise: max(s.Rise, 1), fall: max(s.Fall, 1)}
	if s.InitFail {
		sc.res = Down
	}
	return sc
}

// Result records one run and returns the script's state: rise
// consecutive successes bring a down script up, fall consecutive failures
// take an up one down; the first run decides an Unknown script.
func (s *Script) Result(ok bool) Result {
	switch {
	case s.res == Unknown:
		s.res = Down
		if ok {
			s.res = Up
		}
		s.count = 0
	case ok == (s.res == Up):
		s.count = 0
	default:
		s.count++
		lim := s.fall
		if ok {
			lim = s.rise
		}
		if s.count >= lim {
			s.count = 0
			if ok {
				s.res = Up
			} else {
				s.res = Down
			}
		}
	}
	return s.res
}

// RunScript runs s every interval (the first run at once), each bounded
// by its timeout (default: the interval), and sends an Update whenever
// its state changes (and once for its initial state when it is Down
// from init_fail). It returns when ctx ends.
func RunScript(ctx context.Context, s *model.VRRPScript, opt ScriptOptions, out chan<- Update) {
	if opt.Exec == nil {
		opt.Exec = notify.ExecCommand
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	sc := NewScript(s)
	send := func(r Result) bool {
		select {
		case out <- Update{Kind: KindScript, Name: s.Name, Result: r}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if sc.res == Down && !send(Down) {
		return
	}
	uid, gid, err := identity(s.Script, opt.User, opt.Group)
	if err != nil {
		opt.Log.Error("vrrp_script cannot run", "script", s.Name, "err", err)
	}
	interval := s.Interval.D()
	if interval <= 0 {
		interval = time.Second
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = interval
	}
	tick := make(chan struct{}, 1)
	for {
		ok := false
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			rerr := opt.Exec(rctx, s.Script.Argv, uid, gid)
			timedOut := rctx.Err() != nil
			cancel()
			if ctx.Err() != nil {
				return
			}
			ok = rerr == nil
			if timedOut {
				opt.Log.Warn("vrrp_script timed out", "script", s.Name, "timeout", timeout)
			} else {
				opt.Log.Debug("vrrp_script ran", "script", s.Name, "ok", ok, "err", rerr)
			}
		}
		old := sc.res
		if r := sc.Result(ok); r != old {
			opt.Log.Info("vrrp_script state changed", "script", s.Name, "state", r.String())
			if !send(r) {
				return
			}
		}
		t := opt.Clock.AfterFunc(interval, func() { tick <- struct{}{} })
		select {
		case <-tick:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func identity(s *model.Script, defUser, defGroup string) (int, int, error) {
	if s == nil || len(s.Argv) == 0 {
		return 0, 0, fmt.Errorf("no command")
	}
	return notify.Identity(*s, defUser, defGroup)
}
