package tcp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvfrom6 reads one datagram from a nonblocking IPv6 socket and its
// sender's address. unix.Recvfrom would ask the socket its protocol
// (getsockopt SO_PROTOCOL) on every call, one more system call per answer.
func recvfrom6(fd int, b []byte) (int, netip.Addr, error) {
	var sa unix.RawSockaddrInet6
	salen := uint32(unsafe.Sizeof(sa))
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
	if errno != 0 {
		return 0, netip.Addr{}, errno
	}
	return int(n), netip.AddrFrom16(sa.Addr).Unmap(), nil
}
