package tcp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/rawsys"
)

// batchMax is the most segments one sendmmsg or recvmmsg moves. It also
// bounds how long one call keeps its thread from the Go scheduler: the
// calls are raw (see mmsg), and on loopback a send runs the receiver's
// whole handshake half in the same call.
const batchMax = 64

// batch is the message vectors of one sendmmsg or recvmmsg: batchMax
// messages of up to size bytes each with their addresses, kept in the
// heap the kernel reads and writes in place.
type batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	buf   []byte
	size  int
}

func newBatch(size int) *batch {
	b := &batch{
		hdrs:  make([]unix.Mmsghdr, batchMax),
		iovs:  make([]unix.Iovec, batchMax),
		names: make([]unix.RawSockaddrInet6, batchMax),
		buf:   make([]byte, batchMax*size),
		size:  size,
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*size]
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.Iovlen = 1
	}
	return b
}

// slot is message i's buffer.
func (b *batch) slot(i int) []byte { return b.buf[i*b.size : (i+1)*b.size] }

// setSend makes message i the first n bytes of its slot, to dst (the
// zone is a scope id), with oob as its control message.
func (b *batch) setSend(i, n int, dst netip.Addr, scope uint32, oob []byte) {
	h := &b.hdrs[i].Hdr
	b.iovs[i].SetLen(n)
	nm := &b.names[i]
	h.Namelen = uint32(rawsys.PutAddrPort(netip.AddrPortFrom(dst, 0), scope, nm))
	h.Name = (*byte)(unsafe.Pointer(nm))
	h.Control = nil
	h.SetControllen(0)
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// setRecv readies every message for a recvmmsg of whole slots, with the
// sender's address when names.
func (b *batch) setRecv(names bool) {
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		b.iovs[i].SetLen(b.size)
		h.Control = nil
		h.SetControllen(0)
		h.Name, h.Namelen = nil, 0
		if names {
			h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
			h.Namelen = unix.SizeofSockaddrInet6
		}
	}
}

// received is message i's data after a recvmmsg.
func (b *batch) received(i int) []byte { return b.slot(i)[:b.hdrs[i].Len] }

// from is message i's IPv6 sender after a recvmmsg with names.
func (b *batch) from(i int) netip.Addr { return netip.AddrFrom16(b.names[i].Addr).Unmap() }

// The two calls are raw system calls: no hand-off of the thread's P to
// the Go scheduler around them. Both are nonblocking and move at most
// batchMax segments; as ordinary system calls, every send slow enough
// (a loopback send runs the peer's handshake half too) made the
// runtime's monitor take the P away, hand it to another thread, and poll
// again every 20 µs — a tenth of the prober's CPU at 10,000 probes a
// second (docs/benchmarks.md).

// sendmmsg sends messages [from, to) of b on fd; it returns how many the
// kernel took, and the error of the first it refused when none.
func (b *batch) sendmmsg(fd, from, to int) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[from])), uintptr(to-from), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// recvmmsg reads up to batchMax messages from the nonblocking fd.
func (b *batch) recvmmsg(fd int) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), batchMax, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
