// Package tcp is TCP_CHECK: the real server is up when a TCP connection to
// it completes within connect_timeout.
package tcp

import (
	"context"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// Checker connects to Target and closes the connection. Its probes run on
// the process's shared poller (see poller.go).
type Checker struct {
	Target check.Target
}

// New returns a TCP_CHECK probe of t.
func New(t check.Target) *Checker { return &Checker{Target: t} }

// Start queues one probe, connected at the poller's next Flush (a
// Batcher); done gets its result from the poller's goroutine, never from
// within Start.
func (c *Checker) Start(timeout time.Duration, tag uint64, done check.Done) (cancel func()) {
	p, err := sharedPoller()
	if err != nil {
		// No epoll here: probe on a goroutine instead.
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			res := c.Check(ctx)
			cancel()
			done(tag, res)
		}()
		return cancel
	}
	return p.queue(c.Target, timeout, tag, done)
}

// Flusher is the shared poller (one Flush connects every probe queued),
// or, where it could not be made, nothing to flush.
func (c *Checker) Flusher() check.Flusher {
	if p, err := sharedPoller(); err == nil {
		return p
	}
	return noFlush{}
}

type noFlush struct{}

func (noFlush) Flush() {}

// Check makes one probe and waits for it, until ctx's deadline.
func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	p, err := sharedPoller()
	if err != nil {
		return c.dial(ctx, start)
	}
	return await(ctx, c.Target, start, p.start)
}

// await makes one probe of t with start and waits for it, until ctx's
// deadline: the Check of both TCP checkers.
func await(ctx context.Context, t check.Target, begun time.Time, start func(check.Target, time.Duration, func(check.Result)) func()) check.Result {
	timeout := check.Deadline(ctx, 5*time.Second).Sub(begun)
	ch := make(chan check.Result, 1)
	cancel := start(t, timeout, func(r check.Result) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		cancel()
		return check.Result{Reason: "connect " + t.Addr.String() + ": " + check.ErrText(ctx.Err()), Duration: time.Since(begun)}
	}
}

func (c *Checker) dial(ctx context.Context, start time.Time) check.Result {
	conn, err := c.Target.Dial(ctx, "tcp")
	if err != nil {
		return check.Result{Reason: "connect " + c.Target.Addr.String() + ": " + check.ErrText(err), Duration: time.Since(start)}
	}
	conn.Close()
	return check.Result{OK: true, Duration: time.Since(start)}
}

// SynChecker is a half-open TCP_CHECK (keepvs --tcp-check=syn): a SYN, and
// the answer read back, on a SynProber shared by the process. A SYN-ACK
// is up, a RST refused, silence down at the timeout.
type SynChecker struct {
	Target check.Target
	Prober *SynProber

	// Its probes' memory, one after the other, next to the checker (a
	// probe reads both, long after they left the cache), the source
	// address of its SYNs kept there between probes (Prober.mu).
	op     synOp
	cancel func() // cancels the probe in op; nil before the first
}

// NewSyn returns a half-open probe of t on p, or the connect probe when p
// cannot probe t half-open (bind_port, bind_if, fwmark: see
// SynProber.Supports).
func NewSyn(p *SynProber, t check.Target) check.Starter {
	if !p.Supports(t) {
		return New(t)
	}
	return &SynChecker{Target: t, Prober: p}
}

// Start queues one probe, sent at the prober's next Flush (a Batcher);
// done gets its result from the prober's goroutine, never from within
// Start.
func (c *SynChecker) Start(timeout time.Duration, tag uint64, done check.Done) (cancel func()) {
	return c.Prober.queueOwn(c, timeout, tag, done)
}

// Flusher is the shared prober: one Flush sends every probe queued.
func (c *SynChecker) Flusher() check.Flusher { return c.Prober }

// Aligned puts the probes on the Runner's grid: a thousand SYNs in one
// flush cost less than thirty flushes of thirty (check.Aligned), and the
// prober paces them to their answers.
func (*SynChecker) Aligned() {}

// Check makes one probe and waits for it, until ctx's deadline.
func (c *SynChecker) Check(ctx context.Context) check.Result {
	return await(ctx, c.Target, time.Now(), c.Prober.Start)
}
