// Package tcp is TCP_CHECK: the real server is up when a TCP connection to
// it completes within connect_timeout.
package tcp

import (
	"context"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// Checker connects to Target and closes the connection.
type Checker struct {
	Target check.Target
}

// New returns a TCP_CHECK probe of t.
func New(t check.Target) *Checker { return &Checker{Target: t} }

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	conn, err := c.Target.Dial(ctx, "tcp")
	if err != nil {
		return check.Result{Reason: "connect " + c.Target.Addr.String() + ": " + check.ErrText(err), Duration: time.Since(start)}
	}
	conn.Close()
	return check.Result{OK: true, Duration: time.Since(start)}
}
