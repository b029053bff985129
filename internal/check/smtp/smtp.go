// Package smtp is SMTP_CHECK: connect, a 220 greeting, HELO answered with
// 250, then QUIT answered with any reply.
package smtp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// DefaultHelo is keepalived's helo_name when none is set.
const DefaultHelo = "smtpchecker.keepalived.org"

// Checker is one SMTP_CHECK.
type Checker struct {
	Target   check.Target
	HeloName string // "" means DefaultHelo
}

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	reason := c.talk(ctx)
	return check.Result{OK: reason == "", Reason: reason, Duration: time.Since(start)}
}

func (c *Checker) talk(ctx context.Context) string {
	addr := c.Target.Addr.String()
	conn, err := c.Target.Dial(ctx, "tcp")
	if err != nil {
		return "connect " + addr + ": " + check.ErrText(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	br := bufio.NewReaderSize(io.LimitReader(conn, 64<<10), 4096)
	helo := c.HeloName
	if helo == "" {
		helo = DefaultHelo
	}
	for _, st := range []struct {
		send string
		want int // 0: any reply
		what string
	}{
		{"", 220, "greeting"},
		{"HELO " + helo + "\r\n", 250, "HELO reply"},
		{"QUIT\r\n", 0, "QUIT reply"},
	} {
		if st.send != "" {
			if _, err := io.WriteString(conn, st.send); err != nil {
				return "write to " + addr + ": " + check.ErrText(err)
			}
		}
		code, line, err := reply(br)
		if err != nil {
			return fmt.Sprintf("read %s from %s: %s", st.what, addr, check.ErrText(err))
		}
		if st.want != 0 && code != st.want {
			return fmt.Sprintf("bad %s from %s: %q", st.what, addr, line)
		}
	}
	return ""
}

// reply reads one SMTP reply, following "250-" continuation lines to the
// last, and returns its code (-1 when not three digits) and last line.
func reply(br *bufio.Reader) (int, string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		code := -1
		if len(line) >= 3 {
			if n, err := strconv.Atoi(line[:3]); err == nil {
				code = n
			}
		}
		return code, line, nil
	}
}
