package tcp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The connect poller's connect and close are raw system calls, like the
// half-open prober's sendmmsg: nonblocking, but on loopback a connect runs
// the listener's half of the handshake in the call (~45 us) and a close
// its FIN. As ordinary system calls, each one long enough had the
// runtime's monitor hand the P of the Flush's goroutine to another
// thread, and the Flush then waited for a P again, a hundred times a
// tick. Measured, alternated runs of bench/checks-10k-syn.sh lo connect:
// 37-41% of a core raw, 43-47% as ordinary calls (lateness the same: the
// batching is what removed that).

// rawConnect connects the nonblocking socket fd to sa.
func rawConnect(fd int, sa unix.Sockaddr) error {
	var buf unix.RawSockaddrInet6
	var n uintptr
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(&buf))
		r.Family = unix.AF_INET
		r.Port = htons(uint16(a.Port))
		r.Addr = a.Addr
		n = unix.SizeofSockaddrInet4
	case *unix.SockaddrInet6:
		buf.Family = unix.AF_INET6
		buf.Port = htons(uint16(a.Port))
		buf.Addr = a.Addr
		buf.Scope_id = a.ZoneId
		n = unix.SizeofSockaddrInet6
	default:
		return unix.Connect(fd, sa)
	}
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&buf)), n)
	if errno != 0 {
		return errno
	}
	return nil
}

// rawClose closes fd.
func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}
