package tcp

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/rawsys"
)

// ring is the receive side of the half-open prober: an AF_PACKET socket
// of one network protocol (IPv4 or IPv6) with a TPACKET_V2 ring. Its
// filter runs on every packet of that protocol the host receives, before
// any copy, and the kernel writes the few it passes straight into frames
// of memory shared with us, each ours as soon as it is written. Reading
// them is no system call.
//
// A raw IPPROTO_TCP socket, which it replaces where it can be opened,
// costs more per packet: the kernel clones every TCP segment delivered
// to this host for it before its filter runs (on loopback the SYN, the
// SYN-ACK and the RST of every probe: 8% of the prober's profile), then
// queues the one it keeps for a recvmmsg. (TPACKET_V3, which hands over
// whole blocks, hands a block over a timer tick after its first packet:
// on loopback, where the answers come during the prober's own send, that
// is a wake-up from idle per batch instead of none.)
type ring struct {
	fd    int
	f     *os.File // fd in the Go runtime's poller
	mem   []byte
	frame int // frame size
	n     int // frames
	next  int // the frame to read next
	v6    bool
}

const (
	ringFrame = 256 // header and sockaddr_ll (80 bytes), replyKeep
	ringBlock = 64 << 10
	// ringFrames: 4 MiB, answers to 16,384 probes — 10,000 probes due
	// at once fit.
	ringFrames = 16384
)

// openRing opens the ring for IPv4 or IPv6 packets with filter, whose
// return value is how much of a packet to keep. Nothing is received
// before the filter is on: the socket is bound to its protocol last.
func openRing(v6 bool, filter []bpf.RawInstruction) (*ring, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_PACKET", err)
	}
	r := &ring{fd: fd, frame: ringFrame, n: ringFrames, v6: v6}
	if err := r.setup(filter); err != nil {
		r.close()
		return nil, err
	}
	r.f = os.NewFile(uintptr(fd), "packet-ring")
	return r, nil
}

func (r *ring) setup(filter []bpf.RawInstruction) error {
	f := make([]unix.SockFilter, len(filter))
	for i, ins := range filter {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}); err != nil {
		return os.NewSyscallError("attach filter", err)
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return os.NewSyscallError("setsockopt PACKET_VERSION", err)
	}
	size := r.frame * r.n
	req := unix.TpacketReq{
		Block_size: ringBlock,
		Block_nr:   uint32(size / ringBlock),
		Frame_size: uint32(r.frame),
		Frame_nr:   uint32(r.n),
	}
	if err := unix.SetsockoptTpacketReq(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return os.NewSyscallError("setsockopt PACKET_RX_RING", err)
	}
	mem, err := unix.Mmap(r.fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return os.NewSyscallError("mmap packet ring", err)
	}
	r.mem = mem
	proto := uint16(unix.ETH_P_IP)
	if r.v6 {
		proto = unix.ETH_P_IPV6
	}
	if err := unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: rawsys.NetOrder(proto)}); err != nil {
		return os.NewSyscallError("bind AF_PACKET", err)
	}
	return nil
}

// Offsets in a frame's header, struct tpacket2_hdr.
const (
	pktStatus = 0
	pktSnap   = 8
	pktNet    = 14
)

func (r *ring) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.frame+pktStatus]))
}

// read calls f with every packet the kernel has written, network header
// first, and hands their frames back. It reports whether there were any.
func (r *ring) read(f func(pkt []byte)) bool {
	got := false
	for atomic.LoadUint32(r.status(r.next))&unix.TP_STATUS_USER != 0 {
		got = true
		h := r.mem[r.next*r.frame : (r.next+1)*r.frame]
		net := int(binary.NativeEndian.Uint16(h[pktNet:]))
		snap := int(binary.NativeEndian.Uint32(h[pktSnap:]))
		if net+snap <= len(h) {
			f(h[net : net+snap])
		}
		atomic.StoreUint32(r.status(r.next), unix.TP_STATUS_KERNEL)
		r.next = (r.next + 1) % r.n
	}
	return got
}

func (r *ring) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.f != nil {
		r.f.Close()
	} else if r.fd >= 0 {
		unix.Close(r.fd)
	}
	r.f, r.fd = nil, -1
}
