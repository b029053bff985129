// Package dns is DNS_CHECK: one query over UDP; the real server is up when
// an answer with the query's ID comes back with RCODE 0 (NOERROR), whatever
// its answer count, as keepalived's check_dns.c decides.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// Types are the query types DNS_CHECK knows, by name.
var Types = map[string]uint16{"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}

// Checker is one DNS_CHECK.
type Checker struct {
	Target check.Target
	Type   string // default SOA
	Name   string // default "."
	// ID returns the query ID; nil picks a random one.
	ID func() uint16
}

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	reason := c.ask(ctx)
	return check.Result{OK: reason == "", Reason: reason, Duration: time.Since(start)}
}

func (c *Checker) ask(ctx context.Context) string {
	typ, name := c.Type, c.Name
	if typ == "" {
		typ = "SOA"
	}
	if name == "" {
		name = "."
	}
	qtype, ok := Types[strings.ToUpper(typ)]
	if !ok {
		return "unknown DNS type " + typ
	}
	id := uint16(rand.Uint32())
	if c.ID != nil {
		id = c.ID()
	}
	q, err := Query(id, name, qtype)
	if err != nil {
		return err.Error()
	}
	addr := c.Target.Addr.String()
	conn, err := c.Target.Dial(ctx, "udp")
	if err != nil {
		return "connect " + addr + ": " + check.ErrText(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(q); err != nil {
		return "send query to " + addr + ": " + check.ErrText(err)
	}
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return "read answer from " + addr + ": " + check.ErrText(err)
		}
		switch rcode, err := Verdict(id, buf[:n]); {
		case errors.Is(err, ErrNotOurs):
			continue // keepalived reads on: short, foreign or not a response
		case rcode != 0:
			return fmt.Sprintf("%s answered %s %s with rcode %d (%s)", addr, name, typ, rcode, rcodeName(rcode))
		default:
			return ""
		}
	}
}

// ErrNotOurs is a datagram that is not the answer to our query.
var ErrNotOurs = errors.New("not an answer to the query")

// Verdict reads the header of msg: ErrNotOurs when it is shorter than a
// header, has another ID or is not a response; else its RCODE.
func Verdict(id uint16, msg []byte) (int, error) {
	if len(msg) < 12 || binary.BigEndian.Uint16(msg) != id || msg[2]&0x80 == 0 {
		return 0, ErrNotOurs
	}
	return int(msg[3] & 0x0f), nil
}

// Query encodes a query with recursion desired, one question of class IN.
// "." and "" are the root; a trailing dot is allowed.
func Query(id uint16, name string, qtype uint16) ([]byte, error) {
	b := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(b[0:], id)
	b[2] = 0x01                          // RD
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for _, label := range strings.Split(name, ".") {
			if label == "" || len(label) > 63 {
				return nil, fmt.Errorf("DNS name %q: bad label %q", name, label)
			}
			b = append(b, byte(len(label)))
			b = append(b, label...)
		}
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1) // IN
	if len(b) > 512 {
		return nil, fmt.Errorf("DNS name %q too long", name)
	}
	return b, nil
}

func rcodeName(rc int) string {
	switch rc {
	case 1:
		return "FORMERR"
	case 2:
		return "SERVFAIL"
	case 3:
		return "NXDOMAIN"
	case 4:
		return "NOTIMP"
	case 5:
		return "REFUSED"
	}
	return "rcode"
}
