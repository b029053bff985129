package netnstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Pinger sends ICMP echo requests from a host (no ping(8) needed).
type Pinger struct {
	c    *icmp.PacketConn
	v6   bool
	id   int
	seq  int
	dst  netip.Addr
	buf  []byte
	From string // the host
}

// Pinger opens an ICMP socket on host h for pinging dst.
func (b *Bed) Pinger(h string, dst netip.Addr) (*Pinger, error) {
	p := &Pinger{v6: dst.Is6(), dst: dst, id: os.Getpid()&0xffff ^ int(seq.Add(1)), buf: make([]byte, 1500), From: h}
	err := b.Do(h, func() (err error) {
		if p.v6 {
			p.c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		} else {
			p.c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	b.t.Cleanup(func() { p.c.Close() })
	return p, nil
}

// Ping sends one echo request and waits up to timeout for its reply.
func (p *Pinger) Ping(timeout time.Duration) error {
	p.seq = (p.seq + 1) & 0xffff
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1
	if p.v6 {
		typ, proto = ipv6.ICMPTypeEchoRequest, 58
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: p.seq, Data: []byte("keepvs")}}
	wb, err := m.Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := p.c.WriteTo(wb, &net.IPAddr{IP: p.dst.AsSlice()}); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		p.c.SetReadDeadline(deadline)
		n, _, err := p.c.ReadFrom(p.buf)
		if err != nil {
			return fmt.Errorf("ping %v: %w", p.dst, err)
		}
		r, err := icmp.ParseMessage(proto, p.buf[:n])
		if err != nil {
			continue
		}
		if e, ok := r.Body.(*icmp.Echo); ok && (r.Type == ipv4.ICMPTypeEchoReply || r.Type == ipv6.ICMPTypeEchoReply) && e.ID == p.id && e.Seq == p.seq {
			return nil
		}
	}
}

// MustPing fails the test unless dst answers within timeout (retrying).
func (b *Bed) MustPing(h string, dst netip.Addr, timeout time.Duration) {
	b.t.Helper()
	p, err := b.Pinger(h, dst)
	if err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := p.Ping(200 * time.Millisecond)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s cannot ping %v: %v", h, dst, err)
		}
	}
}
