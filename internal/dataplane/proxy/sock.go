package proxy

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/rawsys"
)

// toSockaddr converts ap for the raw socket calls; IPv4-mapped addresses
// become IPv4.
func toSockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// listenSocket opens a non-blocking socket bound to ap with SO_REUSEADDR
// and IP_FREEBIND / IPV6_FREEBIND, so a VIP that VRRP has not brought up
// yet can be bound; stream sockets also listen.
func listenSocket(typ int, ap netip.AddrPort) (int, error) {
	fam := family(ap.Addr())
	fd, err := unix.Socket(fam, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	opts := [][3]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1}}
	if fam == unix.AF_INET {
		opts = append(opts, [3]int{unix.SOL_IP, unix.IP_FREEBIND, 1})
	} else {
		opts = append(opts, [3]int{unix.SOL_IPV6, unix.IPV6_FREEBIND, 1}, [3]int{unix.SOL_IPV6, unix.IPV6_V6ONLY, 1})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o[0], o[1], o[2]); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt %d/%d: %w", o[0], o[1], err)
		}
	}
	if err := unix.Bind(fd, toSockaddr(ap)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", ap, err)
	}
	if typ == unix.SOCK_STREAM {
		// Accepted sockets inherit TCP_NODELAY: one setsockopt per
		// service instead of one per connection.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt TCP_NODELAY: %w", err)
		}
		// The kernel caps the backlog at net.core.somaxconn.
		if err := unix.Listen(fd, 65535); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("listen %s: %w", ap, err)
		}
	}
	return fd, nil
}

// dialSocket starts a non-blocking connect to ap. For TCP the connection
// completes later (EINPROGRESS); the caller waits for writability.
func dialSocket(typ int, ap netip.AddrPort) (int, error) {
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family(ap.Addr())), uintptr(typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), 0)
	if e != 0 {
		return -1, fmt.Errorf("socket: %w", e)
	}
	if typ == unix.SOCK_STREAM {
		rawsys.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err := rawsys.Connect(int(fd), ap, 0); err != nil && err != unix.EINPROGRESS {
		rawsys.Close(int32(fd))
		return -1, fmt.Errorf("connect %s: %w", ap, err)
	}
	return int(fd), nil
}

// closeReset closes a TCP socket with an RST (SO_LINGER 0), as the peer of
// a reset or failed connection should see it.
func closeReset(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	rawsys.Close(int32(fd))
}

// pipe is a kernel pipe that carries spliced bytes between two sockets.
// A connection holds one only while bytes are in flight.
type pipe struct{ r, w int }

// pipeSize is the most one splice moves: the default pipe's capacity.
// Larger pipes (F_SETPIPE_SZ) measured no faster on loopback.
const pipeSize = 64 << 10

func newPipe() (*pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	return &pipe{r: fds[0], w: fds[1]}, nil
}

func (p *pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}
