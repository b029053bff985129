package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

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
//
// The socket is a plain non-blocking descriptor, never registered with
// the Go netpoller: the Conn is a Poller, and vrrpd's VRRP thread waits
// for it in its own epoll set, so a received advert wakes that thread
// and no other. Reads and writes are single system calls that do not
// allocate. ReadFrom, for callers without an event loop, waits in
// poll(2).
func Listen(ctx context.Context, o Options) (Conn, error) {
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp socket: %w", err)
	}
	if o.TTL <= 0 {
		o.TTL = packet.TTL
	}
	c := &raw{fam: o.Family, ifindex: ifi.Index, src: o.Src.Unmap(), fd: -1}
	switch o.Family {
	case packet.IPv4:
		c.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, packet.Protocol)
		if err == nil {
			err = setup4(c.fd, o, ifi.Index)
		}
	case packet.IPv6:
		c.fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, packet.Protocol)
		if err == nil {
			err = setup6(c.fd, o, ifi.Index)
		}
	default:
		return nil, fmt.Errorf("vrrp socket: family %v: %w", o.Family, packet.ErrFamily)
	}
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, fmt.Errorf("vrrp socket on %s: %w", o.Interface, err)
	}
	return c, nil
}

func setup4(fd int, o Options, ifindex int) error {
	if err := unix.BindToDevice(fd, o.Interface); err != nil {
		return fmt.Errorf("bind to device: %w", err)
	}
	err := errors.Join(
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, o.TTL),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, o.TTL),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0),
		unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifindex)}),
	)
	if err != nil {
		return err
	}
	// VRRP is link-local: RFC 5798 says TOS/DSCP "Internetwork Control".
	unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, 0xc0)
	if o.Group.IsValid() {
		mreq := unix.IPMreqn{Multiaddr: o.Group.As4(), Ifindex: int32(ifindex)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &mreq); err != nil {
			return fmt.Errorf("join %v: %w", o.Group, err)
		}
	}
	return nil
}

func setup6(fd int, o Options, ifindex int) error {
	if err := unix.BindToDevice(fd, o.Interface); err != nil {
		return fmt.Errorf("bind to device: %w", err)
	}
	err := errors.Join(
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, o.TTL),
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, o.TTL),
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0),
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex),
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1),
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1),
	)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0)
	if o.Group.IsValid() {
		mreq := unix.IPv6Mreq{Multiaddr: o.Group.As16(), Interface: uint32(ifindex)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &mreq); err != nil {
			return fmt.Errorf("join %v: %w", o.Group, err)
		}
	}
	return nil
}

// raw is a Listen socket, IPv4 or IPv6.
type raw struct {
	fam     packet.Family
	fd      int
	ifindex int
	src     netip.Addr
	closed  atomic.Bool
	// mu is held shared by ReadFrom while it uses fd, and exclusively
	// by Close, so a blocked ReadFrom never reads a reused descriptor.
	mu sync.RWMutex
}

func (c *raw) Fd() int { return c.fd }

func (c *raw) ReadNow(b []byte) (int, packet.RecvMeta, error) {
	if c.closed.Load() {
		return 0, packet.RecvMeta{}, ErrClosed
	}
	if c.fam == packet.IPv4 {
		return recv4(c.fd, b)
	}
	return recv6(c.fd, b)
}

func (c *raw) ReadFrom(b []byte) (int, packet.RecvMeta, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for {
		if c.closed.Load() {
			return 0, packet.RecvMeta{}, ErrClosed
		}
		n, meta, err := c.ReadNow(b)
		if err != ErrWouldBlock {
			return n, meta, err
		}
		// Close shuts the socket down, which ends the wait at once.
		pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 1000); err != nil && err != unix.EINTR {
			return 0, packet.RecvMeta{}, err
		}
	}
}

func (c *raw) WriteTo(msg []byte, dst netip.Addr) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.fam == packet.IPv4 {
		dst = dst.Unmap()
		if !dst.Is4() {
			return fmt.Errorf("vrrp socket: send to %v: %w", dst, packet.ErrFamily)
		}
		return sendmsg4(c.fd, msg, dst, c.ifindex, c.src)
	}
	if !dst.Is6() || dst.Is4In6() {
		return fmt.Errorf("vrrp socket: send to %v: %w", dst, packet.ErrFamily)
	}
	return sendmsg6(c.fd, msg, dst, c.ifindex, c.src)
}

func (c *raw) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	// A raw socket is never connected, so shutdown reports ENOTCONN, but
	// it still wakes a ReadFrom waiting in poll.
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	c.mu.Lock()
	defer c.mu.Unlock()
	return unix.Close(c.fd)
}
