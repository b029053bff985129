package tcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// tcAnswers is the receive side of the half-open prober where eBPF can
// be loaded: a program on the ingress of every Ethernet (or loopback)
// interface takes the answers to our SYNs before the kernel's TCP does.
// It writes each (a SYN-ACK or a RST to a reserved port) as a 32-byte
// record into a BPF ring buffer shared with us, drops the RSTs, and turns
// each SYN-ACK, in place, into the RST that resets the listener's
// half-open connection, sent back out the interface it came in by.
//
// Against a packet ring and the kernel's own RST, on loopback, that is
// per probe: no packet socket's filter run on each of the three packets;
// no SYN-ACK through IP and TCP receive (two socket table misses) nor a
// RST built from nothing (a route lookup, a fresh buffer, IP output).
// The RST is what the kernel would send — RFC 793's reset of a segment
// with an ACK: sequence number the segment's ack, no ACK, no options.
type tcAnswers struct {
	lo, hi    uint16      // the reserved source ports
	kernelRST atomic.Bool // SYN-ACKs passed on to the kernel, which resets them
	rb        *ebpf.Map
	f         *os.File // the ring buffer's fd in the Go runtime's poller
	cons      []byte   // consumer position page
	data      []byte   // producer position page, then the data twice
	consPos   *uint64  // in cons
	prodPos   *uint64  // in data
	ring      []byte   // data past its first page
	mask      uint64

	ns netns.NsHandle // the network namespace it was opened in

	mu     sync.Mutex
	progs  map[int16]*ebpf.Program // by bytes before the IP header
	links  map[int]tcLink          // by interface index
	warned map[int]bool            // interfaces it cannot go on, told
}

// tcLink is the program on one interface.
type tcLink struct {
	link.Link
	l2 int16 // its program's framing
}

// answerRecord is what the program writes for each answer (answerLen
// bytes): the ack and the ports as on the wire, the flags, whether IPv6,
// the sender's address (IPv4: the first 4 bytes).
const (
	recAck     = 0
	recPorts   = 4 // remote port, local port
	recFlags   = 8
	recV6      = 9
	recAddr    = 16
	answerLen  = 32
	recordLen  = 8 + answerLen // with the ring buffer's header
	answerRing = 1 << 20       // 26,214 answers (each 40 bytes with its header)
)

// rstLen is a RST's TCP header: no options.
const rstLen = 20

// tcx return codes (include/uapi/linux/bpf.h).
const (
	tcxNext   = -1
	tcActOK   = 0
	tcActShot = 2
)

// Offsets in struct __sk_buff, and what the program compares.
const (
	ethLen      = 14
	skbLen      = 0
	skbPktType  = 4
	skbProto    = 16
	skbIfindex  = 40
	skbData     = 76
	skbDataEnd  = 80
	packetHost  = 0
	ethIPv4Wire = 0x0008 // htons(ETH_P_IP) as a little-endian load sees it
	ethIPv6Wire = 0xdd86
)

// answerProgram is the ingress program for source ports [lo, hi],
// writing to rb, for interfaces whose packets start with an Ethernet
// header (l2 = ethLen: Ethernet, loopback) or with the IP header (l2 =
// 0: tun, WireGuard). Registers: R6 the skb, R7 its data, R8 its end,
// R9 the TCP flags.
//
// With kernelRST the program only records a SYN-ACK and passes it on:
// the kernel's TCP resets it, through netfilter (see conntrackOn).
func answerProgram(lo, hi uint16, rb *ebpf.Map, l2 int16, kernelRST bool) asm.Instructions {
	var (
		v4Len = int32(l2) + ip4Len + rstLen // an answer's, and the RST's, least
		v6Len = int32(l2) + ip6Len + rstLen
	)
	const rec = -answerLen // the record on the stack
	var p asm.Instructions
	add := func(ins ...asm.Instruction) { p = append(p, ins...) }
	// load R7, R8 and bounds-check n bytes, else next.
	data := func(n int32) {
		add(
			asm.LoadMem(asm.R7, asm.R6, skbData, asm.Word),
			asm.LoadMem(asm.R8, asm.R6, skbDataEnd, asm.Word),
			asm.Mov.Reg(asm.R2, asm.R7),
			asm.Add.Imm(asm.R2, n),
			asm.JGT.Reg(asm.R2, asm.R8, "next"),
		)
	}
	// fold R0, a 32-bit one's complement sum, into the checksum at off.
	fold := func(off int16) {
		add(
			asm.Mov.Reg(asm.R1, asm.R0),
			asm.RSh.Imm(asm.R1, 16),
			asm.And.Imm(asm.R0, 0xffff),
			asm.Add.Reg(asm.R0, asm.R1),
			asm.Mov.Reg(asm.R1, asm.R0),
			asm.RSh.Imm(asm.R1, 16),
			asm.Add.Reg(asm.R0, asm.R1),
			asm.Xor.Imm(asm.R0, 0xffff),
			asm.StoreMem(asm.R7, off, asm.R0, asm.Half),
		)
	}
	// csum sums n bytes at off into R0, from seed (R5 when seedReg).
	csum := func(off int16, n int32, seed int32, seedReg bool) {
		add(asm.Mov.Imm(asm.R1, 0), asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Reg(asm.R3, asm.R7), asm.Add.Imm(asm.R3, int32(off)),
			asm.Mov.Imm(asm.R4, n))
		if seedReg {
			add(asm.Mov.Reg(asm.R5, asm.R0))
		} else {
			add(asm.Mov.Imm(asm.R5, seed))
		}
		add(asm.FnCsumDiff.Call())
	}
	// answer checks the TCP header at base+tcp (base R7, or R4 past
	// IPv4 options: to a reserved port, ACK and SYN or RST), writes the
	// record with the sender's address (at R7+addr), and drops a RST; a
	// SYN-ACK goes on at synLabel — with pass, to the kernel.
	answer := func(base asm.Register, tcp, addr int16, v6 bool, synLabel string, pass bool) {
		add(
			asm.LoadMem(asm.R2, base, tcp+2, asm.Half),
			asm.HostTo(asm.BE, asm.R2, asm.Half),
			asm.JLT.Imm(asm.R2, int32(lo), "next"),
			asm.JGT.Imm(asm.R2, int32(hi), "next"),
			asm.LoadMem(asm.R9, base, tcp+13, asm.Byte),
			asm.Mov.Reg(asm.R2, asm.R9),
			asm.And.Imm(asm.R2, tcpACK),
			asm.JEq.Imm(asm.R2, 0, "next"),
			asm.Mov.Reg(asm.R2, asm.R9),
			asm.And.Imm(asm.R2, tcpSYN|tcpRST),
			asm.JEq.Imm(asm.R2, 0, "next"),
			zero8(rec+8),
			zero8(rec+16),
			zero8(rec+24),
			asm.LoadMem(asm.R2, base, tcp+8, asm.Word),
			asm.StoreMem(asm.R10, rec+recAck, asm.R2, asm.Word),
			asm.LoadMem(asm.R2, base, tcp, asm.Word),
			asm.StoreMem(asm.R10, rec+recPorts, asm.R2, asm.Word),
			asm.StoreMem(asm.R10, rec+recFlags, asm.R9, asm.Byte),
		)
		if v6 {
			add(
				asm.StoreImm(asm.R10, rec+recV6, 1, asm.Byte),
				asm.LoadMem(asm.R2, asm.R7, addr, asm.DWord),
				asm.StoreMem(asm.R10, rec+recAddr, asm.R2, asm.DWord),
				asm.LoadMem(asm.R2, asm.R7, addr+8, asm.DWord),
				asm.StoreMem(asm.R10, rec+recAddr+8, asm.R2, asm.DWord),
			)
		} else {
			add(
				asm.LoadMem(asm.R2, asm.R7, addr, asm.Word),
				asm.StoreMem(asm.R10, rec+recAddr, asm.R2, asm.Word),
			)
		}
		add(
			asm.LoadMapPtr(asm.R1, rb.FD()),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, rec),
			asm.Mov.Imm(asm.R3, answerLen),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnRingbufOutput.Call(),
			asm.And.Imm(asm.R9, tcpRST),
			asm.JEq.Imm(asm.R9, 0, synLabel),
			asm.Mov.Imm(asm.R0, tcActShot),
			asm.Return(),
		)
		if pass {
			add(asm.Mov.Imm(asm.R0, tcActOK).WithSymbol(synLabel), asm.Return())
		}
	}
	// trim cuts the packet to n bytes (when longer: the SYN-ACK's TCP
	// options) and loads and checks R7, R8 again.
	trim := func(n int32, label string) {
		add(
			asm.LoadMem(asm.R2, asm.R6, skbLen, asm.Word).WithSymbol(label),
			asm.JEq.Imm(asm.R2, n, label+"-trimmed"),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, n),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnSkbChangeTail.Call(),
			asm.JNE.Imm(asm.R0, 0, "next"), // the kernel answers it
			asm.Mov.Imm(asm.R0, 0).WithSymbol(label+"-trimmed"),
		)
		data(n)
		if l2 == 0 {
			return
		}
		// Ethernet addresses swapped.
		add(
			asm.LoadMem(asm.R2, asm.R7, 0, asm.Word),
			asm.LoadMem(asm.R3, asm.R7, 4, asm.Half),
			asm.LoadMem(asm.R4, asm.R7, 6, asm.Word),
			asm.LoadMem(asm.R5, asm.R7, 10, asm.Half),
			asm.StoreMem(asm.R7, 0, asm.R4, asm.Word),
			asm.StoreMem(asm.R7, 4, asm.R5, asm.Half),
			asm.StoreMem(asm.R7, 6, asm.R2, asm.Word),
			asm.StoreMem(asm.R7, 10, asm.R3, asm.Half),
		)
	}
	// rst makes the TCP header at tcp the RST: ports swapped, sequence
	// number the SYN-ACK's ack, no ack, header only, no window.
	rst := func(tcp int16) {
		add(
			asm.LoadMem(asm.R2, asm.R7, tcp, asm.Half),
			asm.LoadMem(asm.R3, asm.R7, tcp+2, asm.Half),
			asm.StoreMem(asm.R7, tcp, asm.R3, asm.Half),
			asm.StoreMem(asm.R7, tcp+2, asm.R2, asm.Half),
			asm.LoadMem(asm.R2, asm.R7, tcp+8, asm.Word),
			asm.StoreMem(asm.R7, tcp+4, asm.R2, asm.Word),
			asm.StoreImm(asm.R7, tcp+8, 0, asm.Word),
			asm.StoreImm(asm.R7, tcp+12, (rstLen/4)<<4|tcpRST<<8, asm.Half),
			asm.StoreImm(asm.R7, tcp+14, 0, asm.Word), // window, checksum
			asm.StoreImm(asm.R7, tcp+18, 0, asm.Half),
		)
	}
	out := func() {
		add(
			asm.LoadMem(asm.R1, asm.R6, skbIfindex, asm.Word),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
		)
	}

	add(
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, skbPktType, asm.Word),
		asm.JNE.Imm(asm.R2, packetHost, "next"),
		asm.LoadMem(asm.R2, asm.R6, skbProto, asm.Word),
		asm.JEq.Imm(asm.R2, ethIPv6Wire, "v6"),
		asm.JNE.Imm(asm.R2, ethIPv4Wire, "next"),
	)
	// IPv4: not a later fragment, TCP.
	ip4, tcp4 := l2, l2+ip4Len
	data(v4Len)
	add(
		asm.LoadMem(asm.R3, asm.R7, ip4+6, asm.Half),
		asm.And.Imm(asm.R3, 0xff1f), // fragment offset, as loaded
		asm.JNE.Imm(asm.R3, 0, "next"),
		asm.LoadMem(asm.R3, asm.R7, ip4+9, asm.Byte),
		asm.JNE.Imm(asm.R3, unix.IPPROTO_TCP, "next"),
		asm.LoadMem(asm.R2, asm.R7, ip4, asm.Byte),
		asm.JEq.Imm(asm.R2, 0x45, "v4"),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xf0),
		asm.JNE.Imm(asm.R3, 0x40, "next"),
		// With options (rare: nothing adds them to a SYN-ACK unless the
		// SYN had some): recorded, and the kernel answers it.
		asm.And.Imm(asm.R2, 0x0f),
		asm.JLT.Imm(asm.R2, 5, "next"),
		asm.LSh.Imm(asm.R2, 2),
		asm.Mov.Reg(asm.R4, asm.R7),
		asm.Add.Reg(asm.R4, asm.R2),
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.Add.Imm(asm.R5, int32(l2)+rstLen),
		asm.JGT.Reg(asm.R5, asm.R8, "next"),
	)
	answer(asm.R4, l2, ip4+12, false, "syn4opt", true)
	add(asm.Mov.Imm(asm.R0, 0).WithSymbol("v4"))
	answer(asm.R7, tcp4, ip4+12, false, syn(false), kernelRST)
	if !kernelRST { // the SYN-ACK rewritten into the RST and sent back
		trim(v4Len, syn(false))
		add(
			// Version, header length, TOS, total length; ID, DF; TTL 64,
			// TCP, no checksum yet.
			asm.StoreImm(asm.R7, ip4, 0x45|(ip4Len+rstLen)<<24, asm.Word),
			asm.StoreImm(asm.R7, ip4+4, 0x40<<16, asm.Word),
			asm.StoreImm(asm.R7, ip4+8, 64|unix.IPPROTO_TCP<<8, asm.Word),
			asm.LoadMem(asm.R2, asm.R7, ip4+12, asm.Word),
			asm.LoadMem(asm.R3, asm.R7, ip4+16, asm.Word),
			asm.StoreMem(asm.R7, ip4+12, asm.R3, asm.Word),
			asm.StoreMem(asm.R7, ip4+16, asm.R2, asm.Word),
		)
		csum(ip4, ip4Len, 0, false)
		fold(ip4 + 10)
		rst(tcp4)
		// Pseudo header: the addresses, then zero, protocol, length.
		csum(ip4+12, 8, unix.IPPROTO_TCP<<8|rstLen<<24, false)
		csum(tcp4, rstLen, 0, true)
		fold(tcp4 + 16)
		out()
	}

	// IPv6: TCP right after the fixed header.
	ip6, tcp6 := l2, l2+ip6Len
	add(asm.Mov.Imm(asm.R0, 0).WithSymbol("v6"))
	data(v6Len)
	add(
		asm.LoadMem(asm.R2, asm.R7, ip6+6, asm.Byte),
		asm.JNE.Imm(asm.R2, unix.IPPROTO_TCP, "next"),
	)
	answer(asm.R7, tcp6, ip6+8, true, syn(true), kernelRST)
	if !kernelRST { // as IPv4's
		trim(v6Len, syn(true))
		add(
			asm.StoreImm(asm.R7, ip6, 0x60, asm.Word),
			asm.StoreImm(asm.R7, ip6+4, rstLen<<8|unix.IPPROTO_TCP<<16|64<<24, asm.Word),
		)
		for i := int16(0); i < 16; i += 8 {
			add(
				asm.LoadMem(asm.R2, asm.R7, ip6+8+i, asm.DWord),
				asm.LoadMem(asm.R3, asm.R7, ip6+24+i, asm.DWord),
				asm.StoreMem(asm.R7, ip6+8+i, asm.R3, asm.DWord),
				asm.StoreMem(asm.R7, ip6+24+i, asm.R2, asm.DWord),
			)
		}
		rst(tcp6)
		csum(ip6+8, 32, rstLen<<24+unix.IPPROTO_TCP<<24, false)
		csum(tcp6, rstLen, 0, true)
		fold(tcp6 + 16)
		out()
	}

	add(
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("next"),
		asm.Return(),
	)
	return p
}

// zero8 writes 8 zero bytes at R10+off (the DSL's StoreImm has no
// 8-byte form; the instruction set has).
func zero8(off int16) asm.Instruction {
	return asm.Instruction{OpCode: asm.StoreImmOp(asm.DWord), Dst: asm.R10, Offset: off}
}

func syn(v6 bool) string {
	if v6 {
		return "syn6"
	}
	return "syn4"
}

// errNoTC wraps why the eBPF receive could not be set up.
var errNoTC = errors.New("eBPF answer program")

// openTCAnswers loads the program for source ports [lo, hi] and maps its
// ring buffer; attachAll and watch put it on interfaces.
func openTCAnswers(lo, hi uint16, kernelRST bool) (*tcAnswers, error) {
	a := &tcAnswers{lo: lo, hi: hi, ns: -1, progs: map[int16]*ebpf.Program{}, links: map[int]tcLink{}, warned: map[int]bool{}}
	a.kernelRST.Store(kernelRST)
	var err error
	if a.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("%w: network namespace: %w", errNoTC, err)
	}
	a.rb, err = ebpf.NewMap(&ebpf.MapSpec{Name: "keepvs_answers", Type: ebpf.RingBuf, MaxEntries: answerRing})
	if err != nil {
		return nil, fmt.Errorf("%w: ring buffer: %w", errNoTC, err)
	}
	if _, err := a.program(ethLen); err != nil {
		a.close()
		return nil, err
	}
	if err := a.mmap(); err != nil {
		a.close()
		return nil, fmt.Errorf("%w: %w", errNoTC, err)
	}
	return a, nil
}

// program is the program for packets with l2 bytes before the IP
// header, loaded on first use.
func (a *tcAnswers) program(l2 int16) (*ebpf.Program, error) {
	if p := a.progs[l2]; p != nil {
		return p, nil
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "keepvs_answers",
		Type:         ebpf.SchedCLS,
		Instructions: answerProgram(a.lo, a.hi, a.rb, l2, a.kernelRST.Load()),
		License:      "Apache-2.0",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: load: %w", errNoTC, err)
	}
	a.progs[l2] = p
	return p, nil
}

func (a *tcAnswers) mmap() error {
	page := os.Getpagesize()
	var err error
	if a.cons, err = unix.Mmap(a.rb.FD(), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return os.NewSyscallError("mmap ring buffer consumer page", err)
	}
	if a.data, err = unix.Mmap(a.rb.FD(), int64(page), page+2*answerRing, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return os.NewSyscallError("mmap ring buffer", err)
	}
	a.consPos = (*uint64)(unsafe.Pointer(&a.cons[0]))
	a.prodPos = (*uint64)(unsafe.Pointer(&a.data[0]))
	a.ring, a.mask = a.data[page:], answerRing-1
	fd, err := unix.Dup(a.rb.FD())
	if err != nil {
		return os.NewSyscallError("dup", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("set nonblock", err)
	}
	a.f = os.NewFile(uintptr(fd), "bpf-answers")
	return nil
}

// conntrackCount is the file whose number says whether netfilter's
// connection tracking follows this network namespace's traffic.
var conntrackCount = "/proc/sys/net/netfilter/nf_conntrack_count"

// conntrackOn reports whether connection tracking holds entries in the
// calling thread's network namespace (its hooks are registered only
// where a ruleset uses it). There the program lets the kernel reset each
// SYN-ACK: the SYN went through netfilter (a raw socket's send) and has
// an entry, which the SYN-ACK and the kernel's RST close (10 s to live);
// the program's own RST, sent below netfilter, would leave it half-open
// for nf_conntrack_tcp_timeout_syn_sent (120 s): at 10,000 probes a
// second, a table of 1.2 million entries.
func conntrackOn() bool {
	b, err := os.ReadFile(conntrackCount)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && n > 0
}

// framing is how many bytes come before the IP header in the packets
// the ingress of an interface of this link type (rtnetlink's encap
// name) sees; ok is false for the types the program does not read.
func framing(encap string) (l2 int16, ok bool) {
	switch encap {
	case "ether", "loopback":
		return ethLen, true
	case "none": // ARPHRD_NONE: tun, WireGuard
		return 0, true
	}
	return 0, false
}

// errFraming is an interface whose packets the program cannot read: an
// answer that comes in by it goes to the kernel, which resets it, and
// its probe times out.
var errFraming = errors.New("link type not read by the eBPF program")

// attach puts the program on the ingress of l (once).
func (a *tcAnswers) attach(l netlink.Link) error {
	at := l.Attrs()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.links[at.Index]; ok {
		return nil
	}
	l2, ok := framing(at.EncapType)
	if !ok {
		if at.Flags&net.FlagUp == 0 {
			// Nothing comes in by it (the fallback tunnels a module
			// creates in every namespace, tunl0, sit0...): asked again
			// when it comes up.
			return nil
		}
		return fmt.Errorf("interface %s (%s): %w", at.Name, at.EncapType, errFraming)
	}
	prog, err := a.program(l2)
	if err != nil {
		return err
	}
	ln, err := link.AttachTCX(link.TCXOptions{Interface: at.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("%w: attach to %s: %w", errNoTC, at.Name, err)
	}
	a.links[at.Index] = tcLink{ln, l2}
	return nil
}

// detach lets go of interface index (removed: the kernel has detached
// the program already).
func (a *tcAnswers) detach(index int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ln, ok := a.links[index]; ok {
		ln.Close()
		delete(a.links, index)
	}
	delete(a.warned, index)
}

// attachAll puts the program on every interface there is; an interface
// it cannot read that is up is an error (errFraming), after the others.
func (a *tcAnswers) attachAll() error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("%w: list interfaces: %w", errNoTC, err)
	}
	var errs []error
	for _, l := range links {
		if err := a.attach(l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// interfaces is how many interfaces the program is on.
func (a *tcAnswers) interfaces() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.links)
}

// watch follows the interfaces until ctx ends: the program goes on each
// new one; warn hears, once per interface, of those it cannot go on.
//
// Its thread joins the network namespace the program was opened in, for
// good: the interface indexes it attaches by are that namespace's (a
// test's, say, while the rest of the process is elsewhere).
func (a *tcAnswers) watch(ctx context.Context, warn func(err error)) {
	runtime.LockOSThread() // never unlocked: the thread ends with watch
	if err := netns.Set(a.ns); err != nil {
		warn(fmt.Errorf("%w: watch interfaces: %w", errNoTC, err))
		return
	}
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	var stopped atomic.Bool
	defer func() { stopped.Store(true); close(done) }()
	lost := func(err error) {
		if !stopped.Load() { // not the subscription's own end
			warn(fmt.Errorf("%w: stopped following interfaces: %w", errNoTC, err))
		}
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ListExisting: true, ErrorCallback: lost}); err != nil {
		warn(fmt.Errorf("%w: watch interfaces: %w", errNoTC, err))
		return
	}
	// Connection tracking turned on (or off) later changes who resets.
	tick := time.NewTicker(conntrackRecheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := a.setKernelRST(conntrackOn()); err != nil {
				warn(err)
			}
		case u, ok := <-ch:
			if !ok {
				return
			}
			if u.Header.Type == unix.RTM_DELLINK {
				a.detach(int(u.Index))
				continue
			}
			if err := a.attach(u.Link); err != nil {
				a.mu.Lock()
				first := !a.warned[int(u.Index)]
				a.warned[int(u.Index)] = true
				a.mu.Unlock()
				if first {
					warn(err)
				}
			}
		}
	}
}

// conntrackRecheck is how often watch looks whether connection
// tracking is on.
const conntrackRecheck = 10 * time.Second

// setKernelRST swaps the program on every interface for the variant
// that leaves the RSTs to the kernel (on) or sends them itself; the
// interfaces keep a program all along (tcx replaces it in place).
func (a *tcAnswers) setKernelRST(on bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kernelRST.Load() == on {
		return nil
	}
	old := a.progs
	a.progs = map[int16]*ebpf.Program{}
	a.kernelRST.Store(on)
	var done []tcLink
	for _, l := range a.links {
		prog, err := a.program(l.l2)
		if err == nil {
			err = l.Update(prog)
		}
		if err != nil {
			// Back to the programs they ran.
			for _, l := range done {
				l.Update(old[l.l2])
			}
			for _, p := range a.progs {
				p.Close()
			}
			a.progs = old
			a.kernelRST.Store(!on)
			return fmt.Errorf("%w: swap the program: %w", errNoTC, err)
		}
		done = append(done, l)
	}
	for _, p := range old {
		p.Close()
	}
	return nil
}

// read calls f with each record written since the last read and hands
// their room back. It reports whether there were any.
func (a *tcAnswers) read(f func(rec []byte)) bool {
	prod := atomic.LoadUint64(a.prodPos)
	c := atomic.LoadUint64(a.consPos)
	got := false
	for c < prod {
		at := int(c & a.mask)
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&a.ring[at])))
		if hdr&(1<<31) != 0 {
			break // still being written
		}
		n := int(hdr &^ (3 << 30))
		if hdr&(1<<30) == 0 && n >= answerLen {
			f(a.ring[at+8 : at+8+answerLen])
		}
		c += uint64(8 + (n+7)&^7)
		got = true
	}
	atomic.StoreUint64(a.consPos, c)
	return got
}

// parseRecord reads a record the program wrote.
func parseRecord(rec []byte) (reply, bool) {
	if len(rec) < answerLen {
		return reply{}, false
	}
	var addr netip.Addr
	if rec[recV6] != 0 {
		addr = netip.AddrFrom16([16]byte(rec[recAddr:]))
	} else {
		addr = netip.AddrFrom4([4]byte(rec[recAddr:]))
	}
	return reply{
		remote:    netip.AddrPortFrom(addr, binary.BigEndian.Uint16(rec[recPorts:])),
		localPort: binary.BigEndian.Uint16(rec[recPorts+2:]),
		ack:       binary.BigEndian.Uint32(rec[recAck:]),
		flags:     rec[recFlags],
	}, true
}

func (a *tcAnswers) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, l := range a.links {
		l.Close()
		delete(a.links, i)
	}
	for l2, p := range a.progs {
		p.Close()
		delete(a.progs, l2)
	}
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
	for _, m := range [][]byte{a.cons, a.data} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	a.cons, a.data, a.ring = nil, nil, nil
	if a.rb != nil {
		a.rb.Close()
		a.rb = nil
	}
	if a.ns.IsOpen() {
		a.ns.Close()
		a.ns = -1
	}
}
