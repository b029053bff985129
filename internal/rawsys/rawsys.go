// Package rawsys is the socket calls of the hot paths as raw system
// calls: the proxy's workers and the TCP health checks.
package rawsys

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The proxy's workers and the TCP checkers make their socket calls as raw
// system calls: every socket is non-blocking, so no call sleeps, and skipping the runtime's
// entersyscall/exitsyscall matters at tens of thousands of calls a second.
// A P left in a system call is retaken by sysmon, which then polls every
// 20µs and hands the P to another thread (futex wake-ups, a thread switch
// when the call returns): with GOMAXPROCS=1 that cost a tenth of the CPU
// per new connection (connect and shutdown on loopback run the peer's TCP
// receive path inside the call, long enough to be caught), and 13% of the
// CPU of 10,000 connect TCP_CHECKs a second (37-41% of a core against
// 43-47%, docs/benchmarks.md). The wrappers
// also skip what x/sys adds: a getsockopt(SO_PROTOCOL) and an allocation
// per accepted address.

// errno turns a raw call's errno into an error; boxing an Errno below 256
// does not allocate.
func errno(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Recv reads from a socket: recvfrom skips read(2)'s VFS layers.
func Recv(fd int32, p []byte) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), 0, 0, 0)
	return int(n), errno(e)
}

func Read(fd int32, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno(e)
}

func Write(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno(e)
}

// Send writes p to a socket without raising SIGPIPE.
func Send(fd int32, p []byte, flags int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)),
		uintptr(flags|unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT), 0, 0)
	return int(n), errno(e)
}

func Splice(in, out int, n int) (int, error) {
	m, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(m), errno(e)
}

func Shutdown(fd int32, how int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return errno(e)
}

func Close(fd int32) error {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errno(e)
}

func SetsockoptInt(fd int, level, opt, value int) error {
	v := int32(value)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), 4, 0)
	return errno(e)
}

func EpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errno(e)
}

// EpollPoll collects ready events without waiting.
func EpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	return int(n), errno(e)
}

// Accept accepts a connection, non-blocking and close-on-exec, and
// returns the client's address.
func Accept(fd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(nfd), addrPortOf(&rsa), nil
}

// Recvfrom reads a datagram and its sender's address.
func Recvfrom(fd int, p []byte) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return 0, netip.AddrPort{}, e
	}
	return int(n), addrPortOf(&rsa), nil
}

// Sendto sends a datagram to ap.
func Sendto(fd int, p []byte, ap netip.AddrPort) error {
	var rsa unix.RawSockaddrInet6
	l := PutAddrPort(ap, 0, &rsa)
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&rsa)), uintptr(l))
	return errno(e)
}

// Connect starts a connect to ap (an IPv6 link-local one on interface
// scope); a stream socket answers EINPROGRESS.
func Connect(fd int, ap netip.AddrPort, scope uint32) error {
	var rsa unix.RawSockaddrInet6
	l := PutAddrPort(ap, scope, &rsa)
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(l))
	return errno(e)
}

func addrPortOf(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), NetOrder(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), NetOrder(sa.Port))
	}
	return netip.AddrPort{}
}

// PutAddrPort fills rsa, room for either family, with ap (IPv4-mapped
// addresses as IPv4; scope is an IPv6 address's interface) and returns
// its length.
func PutAddrPort(ap netip.AddrPort, scope uint32, rsa *unix.RawSockaddrInet6) int {
	*rsa = unix.RawSockaddrInet6{}
	a := ap.Addr().Unmap()
	if a.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		sa.Family = unix.AF_INET
		sa.Port = NetOrder(ap.Port())
		sa.Addr = a.As4()
		return unix.SizeofSockaddrInet4
	}
	rsa.Family = unix.AF_INET6
	rsa.Port = NetOrder(ap.Port())
	rsa.Addr = a.As16()
	rsa.Scope_id = scope
	return unix.SizeofSockaddrInet6
}

// NetOrder swaps a port (or an AF_PACKET protocol) between network and
// host order (both ways alike).
func NetOrder(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
