package transport

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// The sockets Listen opens are read and written with raw, non-blocking
// system calls: vrrpd's VRRP thread waits for them with its own epoll
// and must neither park in the Go scheduler nor allocate. Every buffer,
// address and control message lives on the stack.

func errnoErr(e syscall.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return ErrWouldBlock
	case unix.EBADF:
		return ErrClosed
	}
	return e // an Errno in an interface does not allocate
}

// Control message space: a cmsghdr (16 bytes on 64-bit, 12 on 32-bit,
// aligned to the word) and its payload, aligned.
const (
	cmsgHdr   = unix.SizeofCmsghdr
	cmsgAlign = unix.SizeofPtr
	pktinfo4  = (cmsgHdr + unix.SizeofInet4Pktinfo + cmsgAlign - 1) &^ (cmsgAlign - 1)
	pktinfo6  = (cmsgHdr + unix.SizeofInet6Pktinfo + cmsgAlign - 1) &^ (cmsgAlign - 1)
)

// sendmsg4 sends msg to dst out of ifindex, from src when it is valid
// (IP_PKTINFO's ipi_spec_dst, as x/net/ipv4 sets it).
func sendmsg4(fd int, msg []byte, dst netip.Addr, ifindex int, src netip.Addr) error {
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
	var oob [pktinfo4]byte
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(cmsgHdr + unix.SizeofInet4Pktinfo)
	pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[cmsgHdr]))
	pi.Ifindex = int32(ifindex)
	if src.Is4() {
		pi.Spec_dst = src.As4()
	}
	return sendmsg(fd, msg, unsafe.Pointer(&sa), unix.SizeofSockaddrInet4, oob[:])
}

// sendmsg6 sends msg to dst out of ifindex, from src when it is valid.
// The interface goes in the control message only: a scope on the
// destination as well makes the kernel refuse the send (EINVAL).
func sendmsg6(fd int, msg []byte, dst netip.Addr, ifindex int, src netip.Addr) error {
	sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	var oob [pktinfo6]byte
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(cmsgHdr + unix.SizeofInet6Pktinfo)
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[cmsgHdr]))
	pi.Ifindex = uint32(ifindex)
	if src.Is6() {
		pi.Addr = src.As16()
	}
	return sendmsg(fd, msg, unsafe.Pointer(&sa), unix.SizeofSockaddrInet6, oob[:])
}

func sendmsg(fd int, msg []byte, name unsafe.Pointer, namelen uint32, oob []byte) error {
	var iov unix.Iovec
	if len(msg) > 0 {
		iov.Base = &msg[0]
		iov.SetLen(len(msg))
	}
	m := unix.Msghdr{Name: (*byte)(name), Namelen: namelen, Iov: &iov, Control: &oob[0]}
	m.SetIovlen(1)
	m.SetControllen(len(oob))
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&m)), unix.MSG_DONTWAIT)
	return errnoErr(e)
}

// recv4 reads one IPv4 packet, header included, without waiting, and
// returns the VRRP message moved to the front of b.
func recv4(fd int, b []byte) (int, packet.RecvMeta, error) {
	if len(b) == 0 {
		return 0, packet.RecvMeta{}, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, packet.RecvMeta{}, errnoErr(e)
	}
	meta, msg, r := packet.SplitIPv4(b[:n])
	if r != packet.DropNone {
		// Only a damaged header gets here (the socket is protocol
		// 112): an empty message, which Validate counts as too short.
		return 0, meta, nil
	}
	return copy(b, msg), meta, nil
}

// recv6 reads one IPv6 VRRP message without waiting: the source from
// the address, the hop limit and destination from the control messages
// (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO are on).
func recv6(fd int, b []byte) (int, packet.RecvMeta, error) {
	meta := packet.RecvMeta{TTL: -1}
	if len(b) == 0 {
		return 0, meta, nil
	}
	var sa unix.RawSockaddrInet6
	var oob [128]byte
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	m := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&sa)), Namelen: unix.SizeofSockaddrInet6, Iov: &iov, Control: &oob[0]}
	m.SetIovlen(1)
	m.SetControllen(len(oob))
	n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&m)), unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, meta, errnoErr(e)
	}
	if sa.Family == unix.AF_INET6 {
		meta.Src = netip.AddrFrom16(sa.Addr)
	}
	cm := oob[:min(int(m.Controllen), len(oob))]
	for len(cm) >= cmsgHdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&cm[0]))
		l := int(h.Len)
		if l < cmsgHdr || l > len(cm) {
			break
		}
		data := cm[cmsgHdr:l]
		if h.Level == unix.IPPROTO_IPV6 {
			switch {
			case h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
				meta.TTL = int(int32(binary.NativeEndian.Uint32(data)))
			case h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
				meta.Dst = netip.AddrFrom16([16]byte(data[:16]))
			}
		}
		next := (l + cmsgAlign - 1) &^ (cmsgAlign - 1)
		if next >= len(cm) {
			break
		}
		cm = cm[next:]
	}
	return int(n), meta, nil
}
