// Package misc is MISC_CHECK: run a script in its own process group; exit 0
// is up, anything else down, except that with misc_dynamic an exit of
// 2..255 is up with weight exit-2 (keepalived's check_misc.c). A script
// still running at the deadline gets SIGTERM, then SIGKILL two seconds
// later, to its whole process group.
package misc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// Checker is one MISC_CHECK.
type Checker struct {
	Argv    []string
	User    string // run as this user when keepvs runs as root
	Group   string // and group; default the user's
	Dynamic bool   // misc_dynamic
	// KillGrace is how long after SIGTERM the group gets SIGKILL; 0 means
	// keepalived's 2s.
	KillGrace time.Duration
}

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	res := c.run(ctx)
	res.Duration = time.Since(start)
	return res
}

func (c *Checker) run(ctx context.Context) check.Result {
	if len(c.Argv) == 0 {
		return check.Failf("no misc_path")
	}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.User != "" && os.Geteuid() == 0 {
		cred, err := credential(c.User, c.Group)
		if err != nil {
			return check.Failf("%s: %v", c.Argv[0], err)
		}
		cmd.SysProcAttr.Credential = cred
	}
	if err := cmd.Start(); err != nil {
		return check.Failf("start %s: %v", c.Argv[0], err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The deadline is the script's timeout; ctx ending early stops it too.
	var deadline <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		deadline = t.C
	}
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-deadline:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut {
		syscall.Kill(-pgid, syscall.SIGTERM)
		grace := c.KillGrace
		if grace <= 0 {
			grace = 2 * time.Second
		}
		select {
		case <-done:
		case <-time.After(grace):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		syscall.Kill(-pgid, syscall.SIGKILL) // children it left behind
		return check.Failf("%s timed out", c.Argv[0])
	}
	if err == nil {
		return check.Result{OK: true}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return check.Failf("%s: %v", c.Argv[0], err)
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return check.Failf("%s killed by signal %d (%s)", c.Argv[0], int(ws.Signal()), ws.Signal())
	}
	code := ws.ExitStatus()
	if c.Dynamic && code >= 2 && code <= 255 {
		w := code - 2
		return check.Result{OK: true, Weight: &w}
	}
	return check.Failf("%s exited with status %d", c.Argv[0], code)
}

func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("script user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("script group: %w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
