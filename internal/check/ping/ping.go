// Package ping is PING_CHECK: one ICMP (or ICMPv6) echo request; the real
// server is up when the matching echo reply comes back. It uses a raw ICMP
// socket as root and the kernel's unprivileged "ping" datagram socket
// (net.ipv4.ping_group_range) otherwise.
package ping

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/keepvs/keepvs/internal/check"
)

// Checker is one PING_CHECK.
type Checker struct {
	Addr netip.Addr
	// Unprivileged forces the datagram ping socket even as root.
	Unprivileged bool
}

func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	reason := c.ping(ctx)
	return check.Result{OK: reason == "", Reason: reason, Duration: time.Since(start)}
}

func (c *Checker) ping(ctx context.Context) string {
	v6 := c.Addr.Is6() && !c.Addr.Is4In6()
	dst := c.Addr.Unmap()
	raw := os.Geteuid() == 0 && !c.Unprivileged
	network, laddr, proto := "udp4", "0.0.0.0", 1
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if v6 {
		network, laddr, proto = "udp6", "::", 58
		reqType, replyType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	if raw {
		network = map[bool]string{false: "ip4:icmp", true: "ip6:ipv6-icmp"}[v6]
	}
	conn, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return fmt.Sprintf("open ICMP socket (%s): %s", network, check.ErrText(err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	id, seq := int(rand.Uint32()&0xffff), int(rand.Uint32()&0xffff)
	msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("keepvs PING_CHECK")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return "marshal echo: " + err.Error()
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice()}
	if raw {
		to = &net.IPAddr{IP: dst.AsSlice()}
	}
	if _, err := conn.WriteTo(b, to); err != nil {
		return "send echo to " + dst.String() + ": " + check.ErrText(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return "no echo reply from " + dst.String() + ": " + check.ErrText(err)
		}
		if fromAddr(from) != dst {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		// The datagram socket rewrites the ID to its port, so only the
		// sequence number is ours to match there.
		if !ok || e.Seq != seq || (raw && e.ID != id) {
			continue
		}
		return ""
	}
}

func fromAddr(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}
