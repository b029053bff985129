// Package check is the health checking of real servers: a Checker makes one
// probe (tcp, http, smtp, dns, udp, ping, misc and file live in their own
// packages and only probe), and the Runner owns keepalived's timing and
// verdicts for every checker, written once: delay_loop, retry,
// delay_before_retry, warmup, alpha, and a real server that is up only
// while all its checkers are.
package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Checker makes one probe of a real server. It does not retry; it returns
// by ctx's deadline (the checker's connect_timeout), or soon after ctx is
// done.
type Checker interface {
	Check(ctx context.Context) Result
}

// Starter is a Checker that probes without a goroutine of its own (the
// TCP_CHECK on its shared poller). Start begins one probe that ends within
// timeout and calls done exactly once with tag and its result, from
// another goroutine and never before Start returns, so a caller may hold
// a lock across Start. After cancel, done is not called, or its call is
// already under way (tag tells that late call from a later probe's). One
// done for every probe of a checker, and a cancel a Starter may keep for
// all of its probes, cost no allocation per probe.
type Starter interface {
	Checker
	Start(timeout time.Duration, tag uint64, done Done) (cancel func())
}

// Done receives the end of a probe begun with tag.
type Done func(tag uint64, r Result)

// Batcher is a Starter whose Start only queues its probe, for its Flusher
// (shared by many Batchers) to send with the others queued: one system
// call for many probes. The Runner calls Flush after starting the probes
// due together; a probe queued and never flushed never leaves.
type Batcher interface {
	Starter
	Flusher() Flusher
}

// Aligned is a Checker whose probes cost less the more of them start in
// one wake-up: the half-open TCP_CHECK, a thousand SYNs a flush, answered
// in that flush's own system calls on loopback. The Runner puts only
// these on its Grid; a connect probe costs more in thousands at once
// (that many sockets alive together), and a goroutine's probe would only
// queue for the Runner's MaxProbes.
type Aligned interface {
	Checker
	Aligned()
}

// Flusher sends the probes queued on it.
type Flusher interface {
	Flush()
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context) Result

func (f CheckerFunc) Check(ctx context.Context) Result { return f(ctx) }

// Result is the verdict of one probe.
type Result struct {
	OK bool
	// Reason says why the probe failed, e.g. "connect 10.0.0.1:80:
	// connection refused" or "HTTP status 503 not in 200-299".
	Reason string
	// Weight is the weight a dynamic checker (MISC_CHECK with
	// misc_dynamic) gives the real server on success: exit status - 2.
	// nil means the configured weight. The Runner reads it only from
	// checkers whose Spec is Dynamic.
	Weight *int
	// WeightOffset is added to the real server's weight while the probe
	// succeeds: a FILE_CHECK's value × weight.
	WeightOffset int
	// Duration is how long the probe took.
	Duration time.Duration
}

// Failf is a failed Result with a formatted reason.
func Failf(format string, args ...any) Result {
	return Result{Reason: fmt.Sprintf(format, args...)}
}

// ErrText is the short form of a network error for a Reason: the errno's
// text ("connection refused"), "timeout", or the error itself.
func ErrText(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return ""
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return err.Error()
}

// Deadline is ctx's deadline, or now+fallback when it has none.
func Deadline(ctx context.Context, fallback time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(fallback)
}
