// Package file is FILE_CHECK: the tracked file holds a number (read as C's
// strtol with base 0 reads it: "12", "-3", "0x1f", "017"; missing or empty
// is 0). With weight 0 the real server is down while the number is not 0
// (reverse: while it is 0). With a weight, number × weight (× -1 with
// reverse) is added to the real server's weight, and only a result at the
// bottom of the int32 range faults it, as keepalived's track_file.c does.
// keepalived watches the file with inotify; keepvs reads it every probe.
package file

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// Checker is one FILE_CHECK.
type Checker struct {
	Path    string
	Weight  int
	Reverse bool

	mu   sync.Mutex
	last int64 // kept when the file holds a number out of range
}

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	v, err := c.read()
	res := c.judge(v)
	if err != nil {
		res.Reason += " (" + err.Error() + ")"
	}
	res.Duration = time.Since(start)
	return res
}

// judge maps the file's value to a result.
func (c *Checker) judge(v int64) check.Result {
	mult := int64(1)
	if c.Reverse {
		mult = -1
	}
	if c.Weight == 0 {
		if (v != 0) != c.Reverse {
			return check.Failf("%s holds %d", c.Path, v)
		}
		return check.Result{OK: true}
	}
	status := v * int64(c.Weight) * mult
	if status <= math.MinInt32 {
		return check.Failf("%s holds %d: weight %d below the fault limit", c.Path, v, status)
	}
	return check.Result{OK: true, WeightOffset: int(min(status, math.MaxInt32))}
}

func (c *Checker) read() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.Open(c.Path)
	if err != nil {
		c.last = 0 // a missing file counts as 0
		return 0, nil
	}
	defer f.Close()
	buf := make([]byte, 127)
	n, _ := io.ReadFull(f, buf)
	v, ok := Strtol(string(buf[:n]))
	if !ok || v < math.MinInt32 || v > math.MaxInt32+1 {
		return c.last, fmt.Errorf("invalid number %q ignored", strings.TrimSpace(string(buf[:n])))
	}
	c.last = v
	return v, nil
}

// Strtol reads a number as strtol(s, NULL, 0): leading blanks, a sign,
// then hex after 0x, octal after 0, else decimal, up to the first other
// character; no digits is 0. ok is false when the number overflows int64.
func Strtol(s string) (int64, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isDigit(s[2], 16):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	end := 0
	for end < len(s) && isDigit(s[end], base) {
		end++
	}
	if end == 0 {
		return 0, true
	}
	u, err := strconv.ParseUint(s[:end], base, 64)
	if err != nil || (!neg && u > math.MaxInt64) || (neg && u > 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

func isDigit(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') < base
	case c >= 'a' && c <= 'f':
		return base == 16
	case c >= 'A' && c <= 'F':
		return base == 16
	}
	return false
}
