// Package udp is UDP_CHECK: send a datagram on a connected socket. Without
// require_reply the real server is up unless an ICMP unreachable comes
// back (ECONNREFUSED on the socket) within connect_timeout; silence is
// success. With require_reply a reply must come, and when reply bytes are
// set it must match them under their mask, at a length in [min, max].
package udp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// Checker is one UDP_CHECK.
type Checker struct {
	Target  check.Target
	Payload []byte // nil: randomPayload random bytes, as keepalived sends its own
	// RequireReply: no reply within the deadline is a failure.
	RequireReply bool
	// Reply and ReplyMask: the first min(len(reply), len(Reply)) bytes must
	// equal Reply where ReplyMask has 1 bits (a nil mask compares all).
	Reply          []byte
	ReplyMask      []byte
	MinReplyLength int
	MaxReplyLength int // 0 means keepalived's 255
}

const randomPayload = 32

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	reason := c.probe(ctx)
	return check.Result{OK: reason == "", Reason: reason, Duration: time.Since(start)}
}

func (c *Checker) probe(ctx context.Context) string {
	addr := c.Target.Addr.String()
	conn, err := c.Target.Dial(ctx, "udp")
	if err != nil {
		return "connect " + addr + ": " + check.ErrText(err)
	}
	defer conn.Close()
	dl, hasDL := ctx.Deadline()
	if hasDL {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	payload := c.Payload
	if payload == nil {
		payload = make([]byte, randomPayload)
		for i := range payload {
			payload[i] = byte(rand.Uint32())
		}
	}
	if _, err := conn.Write(payload); err != nil {
		return "send to " + addr + ": " + check.ErrText(err)
	}
	maxLen := c.MaxReplyLength
	if maxLen <= 0 {
		maxLen = 255
	}
	buf := make([]byte, maxLen+1) // one more, to see a reply too long
	n, err := conn.Read(buf)
	if err != nil {
		if check.ErrText(err) == "timeout" && !errors.Is(ctx.Err(), context.Canceled) && !c.RequireReply {
			return "" // silence until the deadline: nothing refused the datagram
		}
		if check.ErrText(err) == "timeout" {
			return "no reply from " + addr
		}
		return addr + ": " + check.ErrText(err)
	}
	if !c.RequireReply || c.Reply == nil {
		return ""
	}
	return c.match(buf[:n], addr)
}

func (c *Checker) match(got []byte, addr string) string {
	maxLen := c.MaxReplyLength
	if maxLen <= 0 {
		maxLen = 255
	}
	if len(got) < c.MinReplyLength || len(got) > maxLen {
		return fmt.Sprintf("reply from %s is %d bytes, want %d to %d", addr, len(got), c.MinReplyLength, maxLen)
	}
	for i := 0; i < len(got) && i < len(c.Reply); i++ {
		mask := byte(0xff)
		if i < len(c.ReplyMask) {
			mask = c.ReplyMask[i]
		}
		if (got[i]^c.Reply[i])&mask != 0 {
			return fmt.Sprintf("reply from %s differs at byte %d: % x", addr, i, got[:min(len(got), 16)])
		}
	}
	return ""
}
