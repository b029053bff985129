// Package ipvsadm is ipvsadm 1.31's command line in front of any
// dataplane.Dataplane: the same argv grammar (popt's, with ipvsadm's table
// of which options each command takes), the same messages and exit
// statuses, and listings and -S rules byte for byte as ipvsadm prints them.
// `keepvs adm ...` and the binary invoked as `ipvsadm` both land here.
package ipvsadm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keepvs/keepvs/internal/dataplane"
)

// Run runs ipvsadm with argv (the arguments after the program name; prog
// is the program name ipvsadm prints in its messages) against dp, and
// returns the exit status ipvsadm would.
func Run(ctx context.Context, prog string, argv []string, stdin io.Reader, stdout, stderr io.Writer, dp dataplane.Dataplane) int {
	c := &Cmd{
		Prog:   prog,
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		DP:     dp,
		Names:  &SystemNames{Timeout: time.Second},
	}
	return c.Run(ctx, argv)
}

// Cmd is one ipvsadm invocation with its environment.
type Cmd struct {
	Prog   string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	DP     dataplane.Dataplane
	// Names resolves host and service names; output without -n asks it.
	Names Names

	out   *bufio.Writer
	in    *bufio.Reader
	ipvs  ipvsInfo
	names Names
	// lastOp is libipvs's ipvs_func: the last call, which words errors.
	lastOp op
}

// Run runs argv (without the program name) and returns the exit status.
func (c *Cmd) Run(ctx context.Context, argv []string) int {
	c.out = bufio.NewWriter(c.Stdout)
	defer c.out.Flush()
	c.names = c.Names
	if c.names == nil {
		c.names = &SystemNames{Timeout: time.Second}
	}
	status, err := c.run(ctx, argv)
	var ee *exitError
	if errors.As(err, &ee) {
		c.out.Flush()
		if ee.msg != "" {
			fmt.Fprintln(c.Stderr, ee.msg)
		}
		return ee.code
	}
	return status
}

func (c *Cmd) run(ctx context.Context, argv []string) (int, error) {
	// ipvsadm opens IPVS before it looks at its arguments, so even -h
	// fails without it.
	info, err := c.DP.Info(ctx)
	if err != nil {
		return 0, &exitError{code: 2, msg: "Can't initialize ipvs: " + errText(opInit, err) +
			"\nAre you sure that IP Virtual Server is built in the kernel or as module?"}
	}
	c.ipvs = parseInfo(info)
	if len(argv) == 0 {
		if err := c.listAll(ctx, fmtNone); err != nil {
			return 0, err
		}
		return 0, nil
	}
	return c.process(ctx, append([]string{c.Prog}, argv...), false)
}

// status is what process_options returns: 0, or -1 (exit status 255).
const statusFailed = 255

func (c *Cmd) tryHelp(prog string) *exitError {
	return &exitError{code: 255, msg: fmt.Sprintf("Try `%s -h' or '%s --help' for more information.", prog, prog)}
}

// process is process_options: parse one command line (from argv or a line
// of -R input) and carry it out.
func (c *Cmd) process(ctx context.Context, argv []string, readingStdin bool) (int, error) {
	e, status, err := c.parse(ctx, argv)
	if err != nil || status != 0 {
		return status, err
	}
	if err := e.check(); err != nil {
		return 0, err
	}
	return c.execute(ctx, e, argv, readingStdin)
}
