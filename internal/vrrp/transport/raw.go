package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// Listen opens a raw protocol 112 socket on o.Interface: bound to the
// device, multicast loop off, TTL 255 for unicast and multicast, the
// group joined when o.Group is set. IPv4 reads keep the IP header (the
// kernel always gives it on raw sockets), so the TTL, source and
// destination come from the packet itself; IPv6 reads get the hop limit
// and destination as control messages (IPV6_RECVHOPLIMIT,
// IPV6_RECVPKTINFO). Sends leave the header to the kernel (IP_HDRINCL
// off) and set the source with IP_PKTINFO / IPV6_PKTINFO.
func Listen(ctx context.Context, o Options) (Conn, error) {
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp socket: %w", err)
	}
	if o.TTL <= 0 {
		o.TTL = packet.TTL
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), o.Interface) })
		return errors.Join(err, serr)
	}}
	switch o.Family {
	case packet.IPv4:
		pc, err := lc.ListenPacket(ctx, "ip4:112", "0.0.0.0")
		if err != nil {
			return nil, fmt.Errorf("vrrp socket on %s: %w", o.Interface, err)
		}
		c := &raw4{ic: pc.(*net.IPConn), pc: ipv4.NewPacketConn(pc), ifi: ifi, src: o.Src}
		if err := c.setup(o); err != nil {
			pc.Close()
			return nil, fmt.Errorf("vrrp socket on %s: %w", o.Interface, err)
		}
		return c, nil
	case packet.IPv6:
		pc, err := lc.ListenPacket(ctx, "ip6:112", "::")
		if err != nil {
			return nil, fmt.Errorf("vrrp socket on %s: %w", o.Interface, err)
		}
		c := &raw6{pc: ipv6.NewPacketConn(pc), ifi: ifi, src: o.Src}
		if err := c.setup(o); err != nil {
			pc.Close()
			return nil, fmt.Errorf("vrrp socket on %s: %w", o.Interface, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("vrrp socket: family %v: %w", o.Family, packet.ErrFamily)
}

type raw4 struct {
	ic  *net.IPConn
	pc  *ipv4.PacketConn
	ifi *net.Interface
	src netip.Addr
}

func (c *raw4) setup(o Options) error {
	if err := c.pc.SetTTL(o.TTL); err != nil {
		return err
	}
	if err := c.pc.SetMulticastTTL(o.TTL); err != nil {
		return err
	}
	if err := c.pc.SetMulticastLoopback(false); err != nil {
		return err
	}
	if err := c.pc.SetMulticastInterface(c.ifi); err != nil {
		return err
	}
	// VRRP is link-local: RFC 5798 says TOS/DSCP "Internetwork Control".
	c.pc.SetTOS(0xc0)
	if o.Group.IsValid() {
		if err := c.pc.JoinGroup(c.ifi, &net.IPAddr{IP: o.Group.AsSlice()}); err != nil {
			return fmt.Errorf("join %v: %w", o.Group, err)
		}
	}
	return nil
}

func (c *raw4) WriteTo(msg []byte, dst netip.Addr) error {
	cm := &ipv4.ControlMessage{IfIndex: c.ifi.Index}
	if c.src.IsValid() {
		cm.Src = c.src.AsSlice()
	}
	_, err := c.pc.WriteTo(msg, cm, &net.IPAddr{IP: dst.AsSlice()})
	return wrapClosed(err)
}

func (c *raw4) ReadFrom(b []byte) (int, packet.RecvMeta, error) {
	// ReadMsgIP, unlike ReadFrom, keeps the IPv4 header.
	n, _, _, _, err := c.ic.ReadMsgIP(b, nil)
	if err != nil {
		return 0, packet.RecvMeta{}, wrapClosed(err)
	}
	meta, msg, r := packet.SplitIPv4(b[:n])
	if r != packet.DropNone {
		// Only a damaged header gets here (the socket is protocol
		// 112): an empty message, which Validate counts as too short.
		return 0, meta, nil
	}
	return copy(b, msg), meta, nil
}

func (c *raw4) Close() error { return c.pc.Close() }

type raw6 struct {
	pc  *ipv6.PacketConn
	ifi *net.Interface
	src netip.Addr
}

func (c *raw6) setup(o Options) error {
	if err := c.pc.SetHopLimit(o.TTL); err != nil {
		return err
	}
	if err := c.pc.SetMulticastHopLimit(o.TTL); err != nil {
		return err
	}
	if err := c.pc.SetMulticastLoopback(false); err != nil {
		return err
	}
	if err := c.pc.SetMulticastInterface(c.ifi); err != nil {
		return err
	}
	c.pc.SetTrafficClass(0xc0)
	if err := c.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
		return err
	}
	if o.Group.IsValid() {
		if err := c.pc.JoinGroup(c.ifi, &net.IPAddr{IP: o.Group.AsSlice()}); err != nil {
			return fmt.Errorf("join %v: %w", o.Group, err)
		}
	}
	return nil
}

func (c *raw6) WriteTo(msg []byte, dst netip.Addr) error {
	cm := &ipv6.ControlMessage{IfIndex: c.ifi.Index}
	if c.src.IsValid() {
		cm.Src = c.src.AsSlice()
	}
	// The interface goes in the control message only: a zone on dst as
	// well makes the kernel refuse the send (EINVAL).
	_, err := c.pc.WriteTo(msg, cm, &net.IPAddr{IP: dst.AsSlice()})
	return wrapClosed(err)
}

func (c *raw6) ReadFrom(b []byte) (int, packet.RecvMeta, error) {
	n, cm, src, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, packet.RecvMeta{}, wrapClosed(err)
	}
	meta := packet.RecvMeta{TTL: -1}
	if ip, ok := src.(*net.IPAddr); ok {
		meta.Src, _ = netip.AddrFromSlice(ip.IP)
	}
	if cm != nil {
		meta.Dst, _ = netip.AddrFromSlice(cm.Dst)
		meta.TTL = cm.HopLimit
	}
	return n, meta, nil
}

func (c *raw6) Close() error { return c.pc.Close() }

func wrapClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return err
}
