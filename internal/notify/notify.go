// Package notify runs keepalived's notify scripts and writes its notify
// FIFOs. Scripts for one subject (a VRRP instance, a real server, a virtual
// server's quorum) run one at a time in the order their events happened,
// never overlapping or reordered (keepalived issue #1055); each has a
// timeout after which its process group is killed. With
// enable_script_security a script that a non-root user could change is
// refused, with the reason.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/keepvs/keepvs/internal/model"
)

// Exec runs one command; Runner uses ExecCommand unless a test gives
// another.
type Exec func(ctx context.Context, argv []string, uid, gid int) error

// Options configure a Runner.
type Options struct {
	// User and Group run scripts that name no user (global_defs
	// script_user); empty means the daemon's own.
	User, Group string
	// Security is enable_script_security.
	Security bool
	// Timeout bounds one script (default 30s).
	Timeout time.Duration
	Exec    Exec
	Log     *slog.Logger
}

// Runner runs scripts in order per subject.
type Runner struct {
	opt    Options
	mu     sync.Mutex
	queues map[string][]job
	wg     sync.WaitGroup
}

type job struct {
	script model.Script
	args   []string
}

// New returns a Runner.
func New(opt Options) *Runner {
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.Exec == nil {
		opt.Exec = ExecCommand
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{opt: opt, queues: map[string][]job{}}
}

// Run queues script for subject, with args appended to its argv (the
// generic `notify` script's "INSTANCE" NAME STATE PRIORITY). It returns at
// once; the script runs after those queued before it for the same subject.
func (r *Runner) Run(subject string, script model.Script, args ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[subject]
	r.queues[subject] = append(q, job{script: script, args: args})
	if len(q) == 0 {
		r.wg.Add(1)
		go r.drain(subject)
	}
}

// Wait blocks until every queued script has finished.
func (r *Runner) Wait() { r.wg.Wait() }

func (r *Runner) drain(subject string) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		q := r.queues[subject]
		if len(q) == 0 {
			delete(r.queues, subject)
			r.mu.Unlock()
			return
		}
		j := q[0]
		r.mu.Unlock()
		r.runOne(subject, j)
		r.mu.Lock()
		r.queues[subject] = r.queues[subject][1:]
		r.mu.Unlock()
	}
}

func (r *Runner) runOne(subject string, j job) {
	argv := append(append([]string{}, j.script.Argv...), j.args...)
	uid, gid, err := r.identity(j.script)
	if err == nil && r.opt.Security {
		err = CheckSecurity(argv[0], uid)
	}
	if err != nil {
		r.opt.Log.Error("notify script refused", "subject", subject, "script", j.script.Cmd, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opt.Timeout)
	defer cancel()
	start := time.Now()
	err = r.opt.Exec(ctx, argv, uid, gid)
	switch {
	case ctx.Err() != nil:
		r.opt.Log.Error("notify script timed out and was killed", "subject", subject, "script", j.script.Cmd, "timeout", r.opt.Timeout)
	case err != nil:
		r.opt.Log.Warn("notify script failed", "subject", subject, "script", j.script.Cmd, "err", err)
	default:
		r.opt.Log.Debug("notify script done", "subject", subject, "script", j.script.Cmd, "took", time.Since(start))
	}
}

// identity is the uid and gid a script runs as.
func (r *Runner) identity(s model.Script) (int, int, error) {
	return Identity(s, r.opt.User, r.opt.Group)
}

// Identity is the uid and gid script s runs as: its own user (and group),
// else the default (global_defs script_user), else the daemon's (-1:
// unchanged).
func Identity(s model.Script, defUser, defGroup string) (int, int, error) {
	name, group := s.User, s.Group
	if name == "" {
		name, group = defUser, defGroup
	}
	if name == "" {
		return -1, -1, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("script user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return 0, 0, fmt.Errorf("script group %q: %w", group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

// ErrInsecure is returned for a script a non-root user could change.
var ErrInsecure = errors.New("script is not secure")

// CheckSecurity applies enable_script_security to the program argv0 run
// as uid (-1: the daemon's): when it runs as root, neither the program nor
// any directory above it may be writable by anyone but root.
func CheckSecurity(argv0 string, uid int) error {
	path := argv0
	if !filepath.IsAbs(path) {
		p, err := exec.LookPath(argv0)
		if err != nil {
			return fmt.Errorf("%q: %w", argv0, err)
		}
		path = p
	}
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if uid > 0 || (uid < 0 && os.Geteuid() != 0) {
		return nil // not run as root: nothing to escalate to
	}
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if why := insecure(fi); why != "" {
			return fmt.Errorf("%w: %s %s (it runs as root; see enable_script_security)", ErrInsecure, p, why)
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

func insecure(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && st.Uid != 0 {
		return fmt.Sprintf("is owned by uid %d", st.Uid)
	}
	mode := fi.Mode()
	if mode&0o002 != 0 && !(fi.IsDir() && mode&fs.ModeSticky != 0) {
		return "is writable by everyone"
	}
	if mode&0o020 != 0 && ok && st.Gid != 0 {
		return fmt.Sprintf("is writable by group %d", st.Gid)
	}
	return ""
}

// ExecCommand runs argv in its own process group as uid/gid (-1: the
// daemon's), killing the whole group when ctx ends.
func ExecCommand(ctx context.Context, argv []string, uid, gid int) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if uid >= 0 && os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return ctx.Err()
	}
}
