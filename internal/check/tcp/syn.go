package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/fifo"
)

// SynProber runs half-open TCP_CHECK probes (keepvs --tcp-check=syn) for
// the whole process: a SYN from a raw socket, and the answer read from the
// same socket — a SYN-ACK means up (this host's kernel answers it with a
// RST, as no socket owns the connection), a RST means refused, silence
// until the timeout means down; an unanswered SYN goes again after a
// second, then two, four... within the timeout, as a connect's does. No
// socket, connect or close per probe, and on a real director no handshake
// to finish: about a third of a connect probe's kernel work
// (docs/benchmarks.md, "TCP_CHECK half-open mode"). A SynChecker's probes
// reuse its own memory, so a probe costs no allocation.
//
// The source ports are a pool reserved by ordinary TCP sockets bound to
// them and never used: no other socket of the host can take those ports,
// and a SYN-ACK to one finds no connection, so the kernel resets it. A
// classic BPF filter on each raw socket passes only segments to that pool
// with ACK and SYN or RST set, so the rest of the host's TCP traffic is
// not copied to us. Replies match a probe by remote address and port,
// local port, and an ack of the probe's random sequence number + 1.
//
// Like the connect poller, one goroutine (Run) reads replies, expires
// deadlines and delivers results. Probes queued together (Queue, as the
// Runner starts the probes due in one tick) leave in one sendmmsg at
// Flush, and replies are read up to batchMax a call.
type SynProber struct {
	// The raw sockets SYNs leave by: IPPROTO_RAW (both families with
	// their own IP header) where the packet rings read the answers, else
	// IPPROTO_TCP, which read them; -1 when that family is missing.
	fd4, fd6 int
	f4, f6   *os.File   // the same, in the Go runtime's poller, when they read
	r4, r6   *ring      // the packet rings, or nil
	tc       *tcAnswers // the eBPF program's answers, or nil
	hdr6     bool       // IPv6 SYNs carry their own header (IPPROTO_RAW)
	log      *slog.Logger
	udp4     int // UDP sockets connected to look up source addresses, or -1
	udp6     int
	hold     []int    // the sockets reserving the source ports
	ports    []uint16 // the reserved source ports, ascending

	mu sync.Mutex
	core[synRef]
	ops    map[synKey]*synOp
	max    int
	next   int // the pool's next port, round robin
	closed bool
	routes map[[16]byte]route    // source address by destination (As16)
	bound  map[netip.Addr]route  // bindto addresses found local
	oobs   map[netip.Addr][]byte // IP_PKTINFO by source address

	pending []synRef // launched, their SYNs not sent yet (Flush sends them)
	live    []*synOp // flushLocked's batch
	ipid    uint16   // the IPv4 ID of the last SYN
	// SYNs sent since Run last looked, and those of them unanswered
	// then, by when they go again: most are answered before Run looks,
	// while the probe is still in the cache, and never reach resends.
	sent    []synRef
	resends fifo.Lanes[synRef]
	ringErr error // why the packet rings could not be set up
	tcErr   error // why the eBPF program could not be set up
	tx, rx  *batch
	looks   int // Run's turns of its loop (tests)
	blocked int // SYNs the kernel did not take (send buffer full), to go again

	// Pacing (flushLocked): SYNs stop going while window of those sent
	// since the last lull are unanswered; the rest go as answers come,
	// or after a lull of pause.
	window    int           // unanswered SYNs there may be
	pause     time.Duration // a lull: this long without sending
	burstSent int           // SYNs sent since the last lull
	burstBase uint64        // answers() at the last lull
	lastSent  int64         // when SYNs last went (mono)
	held      bool          // pending SYNs wait for answers
	answered  uint64        // answers the readers parsed (answers() where no eBPF)
	touch     uint64        // flushLocked's sink for the touches
}

// SynOptions size a SynProber; zero values take the defaults.
type SynOptions struct {
	// Ports is how many source ports to reserve (default 512; fewer
	// where other sockets hold ports, down to a quarter). Two probes in
	// flight to the same address and port need two of them.
	Ports int
	// MaxInFlight bounds the probes waiting for an answer (default
	// 65536); more wait their turn. A probe in flight costs memory only.
	MaxInFlight int
	// Receive is where answers are read (default ReceiveAuto).
	Receive ReceiveMode
	// Logger hears of interfaces that appear later and that the eBPF
	// program cannot read (nil: slog.Default()).
	Logger *slog.Logger
}

// ReceiveMode says how a SynProber reads the answers to its SYNs.
type ReceiveMode int

const (
	// ReceiveAuto is ReceiveEBPF where the program can be loaded and
	// put on every interface, else ReceiveRing.
	ReceiveAuto ReceiveMode = iota
	// ReceiveEBPF: an eBPF program on the ingress of every interface
	// takes the answers and sends the RSTs (tcAnswers); an error where
	// it cannot.
	ReceiveEBPF
	// ReceiveRing: packet rings, else (where a ring cannot be set up)
	// the raw sockets.
	ReceiveRing
	// ReceiveRaw: the raw IPPROTO_TCP sockets the SYNs leave by.
	ReceiveRaw
)

// ParseReceiveMode is the mode named auto, ebpf, ring or raw.
func ParseReceiveMode(s string) (ReceiveMode, error) {
	switch s {
	case "", "auto":
		return ReceiveAuto, nil
	case "ebpf":
		return ReceiveEBPF, nil
	case "ring":
		return ReceiveRing, nil
	case "raw":
		return ReceiveRaw, nil
	}
	return 0, fmt.Errorf("%q: want auto, ebpf, ring or raw", s)
}

// synKey is a probe in flight: the remote address (16 bytes, IPv4
// mapped) and port, and the local port. Plain bytes, no netip zone
// handle: a quick map key.
type synKey struct {
	addr          [16]byte
	remote, local uint16
}

// synOp is one probe: a SynChecker's own, reused for each of its
// probes, or one of its own for a probe started otherwise.
type synOp struct {
	// The fields a probe's launch, send and answer use, first.
	gen      uint32 // bumped each time it starts a probe
	isn      uint32
	inflight bool
	zoned    bool  // target.Addr has an IPv6 zone
	tries    uint8 // its SYN's sends so far
	resendAt int64 // when its SYN goes again, unanswered
	key      synKey
	remote   netip.AddrPort // target.Addr, unmapped and without zone
	scope    uint32         // IPv6 zone's interface index
	cache    *route         // where its checker keeps rt, or nil
	rt       route          // the SYN's source
	probe
}

// synRef is a reference to the probe a synOp ran when the reference was
// taken: the prober's lists keep these, so a reused synOp's old entries
// are dead.
type synRef struct {
	o   *synOp
	gen uint32
}

func (r synRef) base() *probe { return &r.o.probe }
func (r synRef) stale() bool  { return r.o.gen != r.gen }
func (o *synOp) ref() synRef  { return synRef{o, o.gen} }

// route is a cached source address for a destination.
type route struct {
	src     netip.Addr
	oob     []byte // IP_PKTINFO / IPV6_PKTINFO setting src
	expires int64
}

// routeTTL is how long a looked-up source address is used; a timeout
// forgets it at once, so a changed route costs at most one failed probe.
// (10,000 destinations at 30 s were 333 lookups a second.)
const routeTTL = 2 * time.Minute

// ErrRawSocket wraps the failure to open the raw sockets, typically EPERM
// without CAP_NET_RAW.
var ErrRawSocket = errors.New("raw TCP socket")

// OpenSynProber opens the raw sockets and reserves the source ports. It
// starts no goroutine: Run must run for probes to finish.
func OpenSynProber(opt SynOptions) (*SynProber, error) {
	if opt.Ports <= 0 {
		opt.Ports = 512
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 65536
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	p := &SynProber{log: opt.Logger, fd4: -1, fd6: -1, udp4: -1, udp6: -1, core: core[synRef]{evfd: -1, waitTill: -1, kick: make(chan struct{}, 1), timers: newDeadlines[synRef]()}, max: opt.MaxInFlight, window: paceWindow, pause: pacePause,
		ops: map[synKey]*synOp{}, routes: map[[16]byte]route{}, bound: map[netip.Addr]route{}, oobs: map[netip.Addr][]byte{}, tx: newBatch(ip6Len + synLen), rx: newBatch(replyKeep)}
	p.resends = fifo.NewLanes(
		func(r synRef) bool { return r.stale() || !r.o.inflight },
		func(a, b synRef) bool { return a.o.resendAt < b.o.resendAt })
	if opt.Receive == ReceiveAuto || opt.Receive == ReceiveEBPF {
		err := p.openTC(opt.Ports)
		if err == nil {
			return p, nil
		}
		p.closeFDs()
		if errors.Is(err, ErrRawSocket) || opt.Receive == ReceiveEBPF {
			return nil, err
		}
		p.tcErr = err
	}
	if opt.Receive != ReceiveRaw {
		err := p.openRings(opt.Ports)
		if err == nil {
			return p, nil
		}
		p.closeFDs()
		if errors.Is(err, ErrRawSocket) {
			return nil, err
		}
		p.ringErr = err
	}
	if err := p.open(opt.Ports); err != nil {
		p.closeFDs()
		return nil, err
	}
	return p, nil
}

// Receive says where answers are read: "eBPF program", "packet ring"
// or "raw socket", with why the ones before could not be set up.
func (p *SynProber) Receive() string {
	var s string
	switch {
	case p.tc != nil && p.tc.kernelRST.Load():
		return "eBPF program (RSTs by the kernel: connection tracking is on)"
	case p.tc != nil:
		return "eBPF program"
	case p.r4 != nil:
		s = "packet ring"
	default:
		s = "raw socket"
		if p.ringErr != nil {
			s += " (no packet ring: " + p.ringErr.Error() + ")"
		}
	}
	if p.tcErr != nil {
		s += " (no eBPF program: " + p.tcErr.Error() + ")"
	}
	return s
}

// openTC opens the IPPROTO_RAW sockets SYNs leave by, reserves the
// source ports, and loads the eBPF program that takes the answers, on
// every interface: one it cannot read (errFraming) is an error.
func (p *SynProber) openTC(nports int) error {
	if err := p.openSend(unix.IPPROTO_RAW, nports); err != nil {
		return err
	}
	first, last := p.Ports()
	a, err := openTCAnswers(first, last, conntrackOn())
	if err != nil {
		return err
	}
	p.tc = a
	return a.attachAll()
}

// ringOpener opens a packet ring; tests make it fail, as a kernel
// without packet sockets would.
var ringOpener = openRing

// openRings opens the IPPROTO_RAW sockets SYNs leave by, reserves the
// source ports, and opens the packet rings that read the answers.
func (p *SynProber) openRings(nports int) error {
	if err := p.openSend(unix.IPPROTO_RAW, nports); err != nil {
		return err
	}
	first, last := p.Ports()
	for _, r := range []struct {
		v6 bool
		to **ring
	}{{false, &p.r4}, {true, &p.r6}} {
		if r.v6 && p.fd6 < 0 {
			continue
		}
		prog, err := ringFilter(r.v6, first, last)
		if err != nil {
			return err
		}
		if *r.to, err = ringOpener(r.v6, prog); err != nil {
			return err
		}
	}
	return nil
}

// openSend opens the raw sockets of protocol (IPPROTO_RAW or
// IPPROTO_TCP) that SYNs leave by, each family's where the host has it,
// with a filter that passes nothing yet, and reserves the source ports.
// IPv4 SYNs carry their own IP header, as do IPv6 ones on IPPROTO_RAW:
// the kernel's raw send then skips its datagram building (corking,
// fragmentation, the ID hash).
func (p *SynProber) openSend(protocol, nports int) error {
	fd4, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRawSocket, os.NewSyscallError("socket", err))
	}
	p.fd4, p.hdr6 = fd4, protocol == unix.IPPROTO_RAW
	if err := unix.SetsockoptInt(fd4, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return os.NewSyscallError("setsockopt IP_HDRINCL", err)
	}
	if fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol); err == nil {
		p.fd6 = fd6
		if protocol == unix.IPPROTO_RAW {
			if err := unix.SetsockoptInt(fd6, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1); err != nil {
				return os.NewSyscallError("setsockopt IPV6_HDRINCL", err)
			}
		}
	}
	for _, fd := range []int{p.fd4, p.fd6} {
		if fd >= 0 {
			setSendBuffer(fd, sendBuffer)
		}
	}
	// Nothing until a filter for the reserved ports is on (IPPROTO_RAW
	// sockets receive only IP protocol 255, which nobody sends: they keep
	// this one).
	for _, fd := range []int{p.fd4, p.fd6} {
		if fd >= 0 {
			if err := attach(fd, fd == p.fd4, 1, 0); err != nil {
				return err
			}
		}
	}
	return p.reserve(nports)
}

// sendBuffer is the raw sockets' send buffer. Each SYN in the kernel's
// queues counts against it until the packet is done with: behind a veth
// whose other end is slower than the sender (RPS hands its receive work
// to another CPU), a tick's few hundred SYNs filled the default 208 KiB
// and the rest came back EAGAIN. 4 MiB holds ~5,000 of them.
const sendBuffer = 4 << 20

// setSendBuffer sets fd's send buffer to n bytes, above the system's
// maximum where allowed (CAP_NET_ADMIN, which a raw socket's user
// usually has), else as high as it allows.
func setSendBuffer(fd, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n)
	}
}

// open opens the raw IPPROTO_TCP sockets SYNs leave by and answers are
// read from, and reserves the source ports.
func (p *SynProber) open(nports int) error {
	if err := p.openSend(unix.IPPROTO_TCP, nports); err != nil {
		return err
	}
	// The filter for the ports the binds got, and out with what came
	// before it.
	for _, fd := range []int{p.fd4, p.fd6} {
		if fd < 0 {
			continue
		}
		first, last := p.Ports()
		if err := attach(fd, fd == p.fd4, first, last); err != nil {
			return err
		}
		drain(fd, p.rx.slot(0))
		// Room for a burst of answers: 10,000 probes due at once.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		}
	}
	// Nonblocking sockets: the runtime's poller takes them.
	p.f4 = os.NewFile(uintptr(p.fd4), "raw-tcp4")
	if p.fd6 >= 0 {
		p.f6 = os.NewFile(uintptr(p.fd6), "raw-tcp6")
	}
	return nil
}

func attach(fd int, ipv4 bool, lo, hi uint16) error {
	prog, err := replyFilter(ipv4, lo, hi)
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}); err != nil {
		return os.NewSyscallError("attach filter", err)
	}
	return nil
}

func drain(fd int, buf []byte) {
	for {
		if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

// reserve binds up to nports ports of the local port range (the ports no
// service listens on) on the wildcard address (IPv6 dual stack where
// there is IPv6, so both families are held): from a random base, within a
// span of 4*nports, skipping the ports other sockets hold. On a busy host
// those are many — TIME_WAIT connections alone hold ports all over the
// range, and a bind cannot take them — so the pool may have holes; the
// filter passes the whole span, and answers to a hole's owner find no
// probe. A quarter of nports is enough.
func (p *SynProber) reserve(nports int) error {
	lo, hi := localPortRange()
	span := min(4*nports, hi-lo+1)
	if span < nports {
		return fmt.Errorf("reserve %d source ports: the local port range %d-%d is smaller", nports, lo, hi)
	}
	var last error
	for range 8 {
		base := lo + rand.IntN(hi-lo+2-span)
		fds, ports, err := bindSome(base, span, nports)
		if err == nil && len(ports) >= max(nports/4, 1) {
			p.hold, p.ports = fds, ports
			return nil
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		last = err
		if err == nil {
			last = fmt.Errorf("only %d free in %d-%d", len(ports), base, base+span-1)
		}
	}
	return fmt.Errorf("reserve %d source ports: %w", nports, last)
}

// bindSome binds free ports from base on, at most n of them, within span.
func bindSome(base, span, n int) (fds []int, ports []uint16, err error) {
	for port := base; port < base+span && len(ports) < n; port++ {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port}
		if err == nil {
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		} else {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			sa = &unix.SockaddrInet4{Port: port}
		}
		if err != nil {
			return fds, ports, os.NewSyscallError("socket", err)
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EADDRINUSE) {
				continue
			}
			return fds, ports, fmt.Errorf("bind port %d: %w", port, err)
		}
		fds, ports = append(fds, fd), append(ports, uint16(port))
	}
	return fds, ports, nil
}

func localPortRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) == 2 {
		l, err1 := strconv.Atoi(f[0])
		h, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && l > 0 && h >= l {
			return l, h
		}
	}
	return lo, hi
}

// Ports is the span of the reserved source ports, first to last; ports
// in between that other sockets held are not the prober's.
func (p *SynProber) Ports() (first, last uint16) {
	return p.ports[0], p.ports[len(p.ports)-1]
}

// Reserved is how many source ports the prober holds.
func (p *SynProber) Reserved() int { return len(p.ports) }

// Supports reports whether t can be probed half-open. bind_port (the
// source port is the pool's), bind_if (the raw sockets are not bound to a
// device) and fwmark (the source address lookup does not see the mark's
// routing) would each cost a socket of their own per setting, for options
// TCP_CHECKs rarely use: such checks keep the connect probe. An IPv6
// target needs IPv6 on the host.
func (p *SynProber) Supports(t check.Target) bool {
	if t.BindPort != 0 || t.BindIf != "" || t.FWMark != 0 {
		return false
	}
	a := t.Addr.Addr().Unmap()
	if t.BindTo.IsValid() && t.BindTo.Unmap().Is4() != a.Is4() {
		return false
	}
	return a.Is4() || p.fd6 >= 0
}

// Run reads answers, expires deadlines and delivers results until ctx
// ends. Probes started while it does not run end only by their caller's
// own deadline (the Runner's).
//
// The raw sockets wait in the Go runtime's poller, one reader goroutine
// each, and deadlines on a Go timer: no thread of the prober sits in a
// system call of its own. (A loop blocked in its own epoll_wait, as
// before, kept a P in a system call that the runtime's monitor took back
// on every wait and then polled for every 20 us: a tenth of the prober's
// CPU, docs/benchmarks.md.)
func (p *SynProber) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var readers []*os.File
	for _, r := range []*ring{p.r4, p.r6} {
		if r != nil {
			readers = append(readers, r.f)
			parse := parseReply4
			if r.v6 {
				parse = parseReply6
			}
			wg.Go(func() { p.readLoop(ctx, r.f, p.frameReader(r.read, parse)) })
		}
	}
	if a := p.tc; a != nil {
		readers = append(readers, a.f)
		wg.Go(func() { p.readLoop(ctx, a.f, p.frameReader(a.read, parseRecord)) })
		wg.Go(func() {
			a.watch(ctx, func(err error) {
				p.log.Warn("half-open TCP_CHECK: answers through this interface are not seen; their probes time out (--syn-receive=ring reads them)", "err", err)
			})
		})
	}
	for _, s := range []struct {
		f  *os.File
		fd int
	}{{p.f4, p.fd4}, {p.f6, p.fd6}} {
		if s.f != nil {
			readers = append(readers, s.f)
			wg.Go(func() {
				p.readLoop(ctx, s.f, func(out []synRef) ([]synRef, bool) {
					out = p.readLocked(s.fd, out)
					return out, len(out) > 0
				})
			})
		}
	}
	stop := context.AfterFunc(ctx, func() {
		for _, f := range readers {
			f.SetReadDeadline(time.Now()) // the readers return
		}
	})
	defer stop()
	tm := time.NewTimer(idleWait)
	defer tm.Stop()
	var out []synRef
	var dones []delivery
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		case <-p.kick:
		case <-tm.C:
		}
		p.mu.Lock()
		p.looks++
		now := mono()
		out = p.expireLocked(now, out, p.timedOutLocked)
		out = p.takeReadyLocked(out)
		p.launchQueuedLocked()
		p.resendDueLocked(now)
		p.flushLocked()
		p.waitTill = now + int64(idleWait)
		if at, ok := p.nextDeadline(); ok {
			p.waitTill = min(p.waitTill, at)
		}
		if r, ok := p.resends.Next(); ok {
			p.waitTill = min(p.waitTill, r.o.resendAt)
		}
		if p.held {
			p.waitTill = min(p.waitTill, p.lastSent+int64(p.pause))
		}
		wait := time.Duration(p.waitTill - now)
		out, dones = deliver(&p.mu, out, dones)
		tm.Reset(wait)
	}
}

// readLoop reads the answers on f as they come and delivers their
// results, until ctx ends. read, called with p.mu held, appends the
// probes the answers finish to out and says whether there was anything
// to read (else the loop waits for f).
func (p *SynProber) readLoop(ctx context.Context, f *os.File, read func(out []synRef) ([]synRef, bool)) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	var out []synRef
	var dones []delivery
	for ctx.Err() == nil {
		err := rc.Read(func(uintptr) bool {
			p.mu.Lock()
			var got bool
			out, got = read(out)
			if got && p.held {
				p.flushLocked() // a burst waits for these answers
			}
			p.mu.Unlock()
			return got
		})
		if err != nil {
			return
		}
		// A cancel meanwhile finds its probe finished and clears its
		// callback, which deliver then skips.
		p.mu.Lock()
		out, dones = deliver(&p.mu, out, dones)
	}
}

// frameReader is readLoop's read of memory shared with the kernel: read
// hands over every frame (a packet ring's) or record (the eBPF
// program's) written since the last, which parse reads.
func (p *SynProber) frameReader(read func(f func([]byte)) bool, parse func([]byte) (reply, bool)) func(out []synRef) ([]synRef, bool) {
	var out []synRef
	var now int64
	answer := func(pkt []byte) {
		if rep, ok := parse(pkt); ok {
			out = p.answerLocked(rep, now, out)
		}
	}
	return func(o []synRef) ([]synRef, bool) {
		out, now = o, mono()
		got := read(answer)
		o, out = out, nil
		return o, got
	}
}

// readLocked reads every queued answer on fd (until a read comes back
// short: the socket is drained, and the poller's edge-triggered wait
// sees what comes next) and finishes the probes they answer.
func (p *SynProber) readLocked(fd int, out []synRef) []synRef {
	v6 := fd != p.fd4
	for {
		p.rx.setRecv(v6)
		n, err := p.rx.recvmmsg(fd)
		if err != nil {
			return out
		}
		now := mono()
		for i := range n {
			var r reply
			var ok bool
			if !v6 {
				// The IP header says who sent it.
				r, ok = parseReply4(p.rx.received(i))
			} else {
				r, ok = parseSegment(p.rx.received(i))
				r.remote = netip.AddrPortFrom(p.rx.from(i), r.remote.Port())
			}
			if ok {
				out = p.answerLocked(r, now, out)
			}
		}
		if n < batchMax {
			return out
		}
	}
}

// answerLocked finishes the probe r, read at now (mono), answers, if any.
func (p *SynProber) answerLocked(r reply, now int64, out []synRef) []synRef {
	p.answered++
	o := p.ops[synKey{r.remote.Addr().As16(), r.remote.Port(), r.localPort}]
	if o == nil || r.flags&tcpACK == 0 || r.ack != o.isn+1 {
		return out // a late answer to an earlier probe, or not ours
	}
	switch {
	case r.flags&tcpRST != 0:
		o.res = o.failed(unix.ECONNREFUSED.Error())
	case r.flags&tcpSYN != 0:
		o.res = check.Result{OK: true, Duration: time.Duration(now - o.started())}
	default:
		return out
	}
	delete(p.ops, o.key)
	o.inflight = false
	o.finished = true
	return append(out, o.ref())
}

// Start begins a probe of t (which Supports) that ends within timeout and
// calls done once from Run's goroutine. cancel drops the probe; done is
// then not called, or its call is already under way.
func (p *SynProber) Start(t check.Target, timeout time.Duration, done func(check.Result)) (cancel func()) {
	cancel = p.Queue(t, timeout, done)
	p.Flush()
	return cancel
}

// Queue is Start without the send: the SYN leaves at the next Flush,
// with the others queued since the last. The timeout runs from Queue.
func (p *SynProber) Queue(t check.Target, timeout time.Duration, done func(check.Result)) (cancel func()) {
	return p.queue(newSynOp(t, nil), timeout, 0, doneOf(done))
}

// newSynOp is the memory of a probe of t; cache is where its checker
// keeps the route to t (guarded by p.mu), or nil.
func newSynOp(t check.Target, cache *route) *synOp {
	o := &synOp{}
	o.init(t, cache)
	return o
}

func (o *synOp) init(t check.Target, cache *route) {
	a := t.Addr.Addr().Unmap().WithZone("")
	*o = synOp{probe: probe{target: t, finished: true}, remote: netip.AddrPortFrom(a, t.Addr.Port()), cache: cache, zoned: t.Addr.Addr().Zone() != ""}
}

// queue starts a probe in o, which no probe uses.
func (p *SynProber) queue(o *synOp, timeout time.Duration, tag uint64, done check.Done) (cancel func()) {
	p.mu.Lock()
	p.queueLocked(o, timeout, tag, done)
	r := o.ref()
	p.mu.Unlock()
	return func() { p.cancel(r) }
}

// queueLocked starts a probe in o, which no probe uses: its memory is
// a new probe's, and its earlier references are stale.
func (p *SynProber) queueLocked(o *synOp, timeout time.Duration, tag uint64, done check.Done) {
	o.gen++
	o.timeout, o.tag, o.done = timeout, tag, done
	o.finished, o.inflight, o.tries = false, false, 0 // res: set when it ends
	p.admitLocked(o.ref(), len(p.ops) < p.max, p.launchLocked)
}

// queueOwn starts a probe of c in c's own memory, or in new memory when
// its last probe is still under way (a Start before the last one ended
// or was canceled: not the Runner's way). The cancel is the same for
// every probe of c: it cancels the one under way.
func (p *SynProber) queueOwn(c *SynChecker, timeout time.Duration, tag uint64, done check.Done) (cancel func()) {
	p.mu.Lock()
	if c.cancel == nil {
		c.op.init(c.Target, &c.op.rt) // its route kept where its SYNs read it
		c.cancel = func() {
			p.mu.Lock()
			r := c.op.ref()
			p.mu.Unlock()
			p.cancel(r)
		}
	}
	if !c.op.finished {
		p.mu.Unlock()
		return p.queue(newSynOp(c.Target, &c.op.rt), timeout, tag, done)
	}
	p.queueLocked(&c.op, timeout, tag, done)
	p.mu.Unlock()
	return c.cancel
}

// Flush sends the SYNs queued since the last Flush. Run sends those a
// slot freed for (probes that waited for MaxInFlight) itself.
func (p *SynProber) Flush() {
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
}

// launchLocked readies o's SYN: a source port, its source address, its
// sequence number; o is in flight from here, and its SYN leaves at the
// next flush. An immediate failure goes to ready, for Run to deliver.
func (p *SynProber) launchLocked(r synRef) {
	o := r.o
	if p.closed {
		o.res = o.failed("prober closed")
		p.readyLocked(r)
		return
	}
	if (o.remote.Addr().Is4() && p.fd4 < 0) || (!o.remote.Addr().Is4() && p.fd6 < 0) {
		o.res = o.failed("no raw socket for " + o.remote.Addr().String())
		p.readyLocked(r)
		return
	}
	// A source port no probe in flight to the same place uses.
	o.key.addr, o.key.remote = o.remote.Addr().As16(), o.remote.Port()
	for i := 0; ; i++ {
		if i == len(p.ports) {
			o.res = o.failed("no free source port")
			p.readyLocked(r)
			return
		}
		o.key.local = p.ports[p.next]
		p.next = (p.next + 1) % len(p.ports)
		if p.ops[o.key] == nil {
			break
		}
	}
	if now := o.started(); o.cache != nil && o.cache.expires > now {
		if o.cache != &o.rt {
			o.rt = *o.cache
		}
	} else {
		rt, err := p.routeLocked(o.remote.Addr(), o.target.BindTo, now)
		if err != nil {
			o.res = o.failed(check.ErrText(err))
			p.readyLocked(r)
			return
		}
		o.rt = rt
		if o.cache != nil {
			*o.cache = rt
		}
	}
	if o.zoned {
		o.scope = zoneIndex(o.target.Addr.Addr().Zone())
	}
	o.isn = rand.Uint32()
	o.inflight = true
	p.ops[o.key] = o
	p.pending = append(p.pending, r)
}

// flushLocked sends the pending SYNs, a sendmmsg per run of one family
// (at most batchMax long), paced: once window of the SYNs sent since
// the last lull (pause without sending) are unanswered, the rest wait in
// pending for answers (a reader that reads some flushes again) or for
// the lull (Run flushes then), after which silent real servers hold
// them up no longer. A receiver slower than we send (a veth's NAPI ring
// of 256 packets, a CPU's backlog of 1,000) takes a burst of any size
// so, where a thousand SYNs at once overflowed it, and each lost SYN
// timed its probe out; on loopback the answers come during the
// sendmmsg itself, and nothing waits. A SYN the kernel refuses fails
// its probe, unless its socket's send buffer is full: then it and the
// rest of its family's wait (blockedLocked).
func (p *SynProber) flushLocked() {
	if len(p.sent) > 0 {
		p.resendDueLocked(mono())
	}
	if len(p.pending) == 0 {
		p.held = false
		return
	}
	if mono()-p.lastSent >= int64(p.pause) {
		p.burstSent, p.burstBase = 0, p.answers()
	}
	var full4, full6 bool // the socket's send buffer was full
	progressed := false
	ops := p.pending
	for len(ops) > 0 {
		room := p.window - p.burstSent + int(p.answers()-p.burstBase)
		if room <= 0 {
			if !p.held || progressed {
				p.wakeBy(p.lastSent + int64(p.pause))
			}
			break
		}
		v4 := ops[0].o.remote.Addr().Is4()
		fd, full := p.fd4, &full4
		if !v4 {
			fd, full = p.fd6, &full6
		}
		// The probes are cold again (a thousand launched since, or the
		// kernel's work for the SYNs before): their lines are fetched
		// together, in a loop of independent loads, rather than one
		// miss at a time in the loop that builds the SYNs.
		for _, r := range ops[:min(len(ops), batchMax, room)] {
			p.touch += uint64(r.o.gen) + uint64(r.o.scope) + uint64(len(r.o.rt.oob))
		}
		n, live := 0, p.live[:0]
		for ; n < len(ops) && len(live) < min(batchMax, room) && ops[n].o.remote.Addr().Is4() == v4; n++ {
			o := ops[n].o
			if ops[n].stale() || !o.inflight {
				continue // canceled or expired while pending
			}
			i := len(live)
			b, n := p.tx.slot(i), synLen
			switch {
			case v4:
				p.ipid++
				ip4Header(b, o.rt.src, o.remote.Addr(), p.ipid|1, synLen)
				b, n = b[ip4Len:], ip4Len+synLen
			case p.hdr6: // IPPROTO_RAW: IPV6_HDRINCL
				ip6Header(b, o.rt.src, o.remote.Addr(), synLen)
				b, n = b[ip6Len:], ip6Len+synLen
			}
			synSegment(b, o.rt.src, o.remote.Addr(), o.key.local, o.remote.Port(), o.isn)
			p.tx.setSend(i, n, o.remote.Addr(), o.scope, o.rt.oob)
			live = append(live, o)
		}
		ops = ops[n:]
		now := int64(-1)
		for i := 0; i < len(live); {
			var sent int
			var err error
			if !*full {
				sent, err = p.tx.sendmmsg(fd, i, len(live))
				*full = err == unix.EAGAIN || err == unix.ENOBUFS
			}
			if *full {
				// The send buffer is full of SYNs still queued in
				// the kernel: these are not sent, and not failed.
				if now < 0 {
					now = mono()
				}
				for _, o := range live[i:] {
					p.blockedLocked(o, now)
				}
				break
			}
			if err != nil {
				r := live[i].ref()
				p.dropLocked(r)
				r.o.res = r.o.failed(check.ErrText(err))
				p.readyLocked(r)
				i++
				continue
			}
			if now < 0 {
				now = mono()
			}
			for _, o := range live[i : i+sent] {
				p.touch += uint64(o.tries) + uint64(o.deadline) // as above
			}
			for _, o := range live[i : i+sent] {
				p.resendLocked(o, now)
			}
			i += sent
			p.burstSent += sent
			p.lastSent = now
			progressed = true
		}
		clear(live)
		p.live = live[:0]
	}
	p.held = len(ops) > 0
	n := copy(p.pending, ops)
	clear(p.pending[n:])
	p.pending = p.pending[:n]
}

// paceWindow is how many of a burst's SYNs may be unanswered: half a
// veth's NAPI ring (256), a quarter of a CPU's backlog of received
// packets (netdev_max_backlog, 1,000), two sendmmsg calls.
const paceWindow = 2 * batchMax

// pacePause is how long a burst stopped for answers waits for them: at
// most a window of SYNs a millisecond to servers that never answer,
// 128,000 a second.
const pacePause = time.Millisecond

// answers counts the answers seen so far, a number that only grows: the
// eBPF program's records, as soon as it writes them (each the same
// size, so the ring buffer's producer position says how many), else
// those the readers parsed.
func (p *SynProber) answers() uint64 {
	if p.tc != nil {
		return atomic.LoadUint64(p.tc.prodPos) / recordLen
	}
	return p.answered
}

// synRTO is how long a SYN waits for an answer before it is sent again,
// doubled after each send, as the kernel's connect does (its initial
// retransmission timeout): a probe whose timeout leaves room outlives a
// lost SYN or SYN-ACK, as keepalived's connect does.
const synRTO = time.Second

// resendLocked counts o's SYN sent at now and, when o's timeout leaves
// room for another, sets when that goes, for Run to find.
func (p *SynProber) resendLocked(o *synOp, now int64) {
	o.tries++
	if at := now + int64(o.rto()); at < o.deadline {
		o.resendAt = at
		p.sent = append(p.sent, o.ref())
	}
}

// blockedRetry is how soon a SYN the kernel did not take (its socket's
// send buffer full) is sent again: the SYNs ahead of it leave the
// kernel's queues at the speed of whatever is slower than us.
const blockedRetry = 5 * time.Millisecond

// blockedLocked queues o, whose SYN the kernel did not take at now, to
// go again after blockedRetry — within its timeout, else it times out
// as an unanswered one does — and wakes Run to send it then.
func (p *SynProber) blockedLocked(o *synOp, now int64) {
	at := now + int64(blockedRetry)
	if at >= o.deadline {
		return
	}
	o.resendAt = at
	p.resends.Push(blockedRetry, o.ref())
	p.blocked++
	p.wakeBy(at)
}

// rto is how long o's last SYN waits for an answer.
func (o *synOp) rto() time.Duration { return synRTO << min(o.tries-1, 10) }

// resendDueLocked queues again, for the next flush, the SYNs unanswered
// at their resend time: first the ones sent since the last look that
// are still unanswered go to the resend FIFOs, then the due are taken.
func (p *SynProber) resendDueLocked(now int64) {
	for _, r := range p.sent {
		if !r.stale() && r.o.inflight {
			p.resends.Push(r.o.rto(), r)
		}
	}
	clear(p.sent)
	p.sent = p.sent[:0]
	p.resends.PopDue(func(r synRef) bool { return r.o.resendAt <= now }, func(r synRef) {
		p.pending = append(p.pending, r)
	})
}

// routeLocked is the source address of a SYN to dst: bindto, else the one
// the kernel's routing picks (a UDP socket connected to dst knows it, and
// sends nothing). The SYN's checksum covers it, and the send sets it
// (IP_PKTINFO), so the two agree.
func (p *SynProber) routeLocked(dst, bindTo netip.Addr, now int64) (route, error) {
	if bindTo.IsValid() {
		// The kernel takes any source address in a header it is given:
		// this host must have it, as a connect's bind would require.
		bindTo = bindTo.Unmap()
		if r, ok := p.bound[bindTo]; ok && r.expires > now {
			return r, nil
		}
		if err := isLocal(bindTo); err != nil {
			return route{}, err
		}
		r := route{src: bindTo, oob: p.pktinfoLocked(bindTo), expires: now + int64(routeTTL)}
		p.bound[bindTo] = r
		return r, nil
	}
	if r, ok := p.routes[dst.As16()]; ok && r.expires > now {
		return r, nil
	}
	family, fd := unix.AF_INET6, &p.udp6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: 9, Addr: dst.As16()}
	if dst.Is4() {
		family, fd = unix.AF_INET, &p.udp4
		sa = &unix.SockaddrInet4{Port: 9, Addr: dst.As4()}
	}
	if *fd < 0 {
		s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return route{}, os.NewSyscallError("socket", err)
		}
		*fd = s
	}
	// Connected again for each lookup: the same socket serves them all.
	if err := unix.Connect(*fd, sa); err != nil {
		return route{}, err
	}
	local, err := unix.Getsockname(*fd)
	if err != nil {
		return route{}, err
	}
	var src netip.Addr
	switch l := local.(type) {
	case *unix.SockaddrInet4:
		src = netip.AddrFrom4(l.Addr)
	case *unix.SockaddrInet6:
		src = netip.AddrFrom16(l.Addr)
	}
	r := route{src: src, oob: p.pktinfoLocked(src), expires: now + int64(routeTTL)}
	p.routes[dst.As16()] = r
	return r, nil
}

// isLocal is nil when a socket can bind a, an address of this host.
func isLocal(a netip.Addr) error {
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: a.As16()}
	if a.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: a.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	return unix.Bind(fd, sa)
}

// pktinfoLocked is the control message setting src, one per source
// address for every route: the kernel reads it for every SYN, and 10,000
// copies of the same bytes would be 10,000 cache misses.
func (p *SynProber) pktinfoLocked(src netip.Addr) []byte {
	if b, ok := p.oobs[src]; ok {
		return b
	}
	b := pktinfo(src)
	p.oobs[src] = b
	return b
}

func pktinfo(src netip.Addr) []byte {
	if src.Is4() {
		return (&ipv4.ControlMessage{Src: src.AsSlice()}).Marshal()
	}
	return (&ipv6.ControlMessage{Src: src.AsSlice()}).Marshal()
}

func zoneIndex(z string) uint32 {
	if n, err := strconv.Atoi(z); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(z); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// idleWait is the longest Run sleeps without a deadline or resend due: a
// probe started meanwhile with a later deadline then needs no wake-up
// (one per probe otherwise, as answers keep the deadlines' FIFOs empty
// of live ones). synRTO is short enough for the SYNs a Flush sends while
// Run sleeps: their resends are due no earlier than a synRTO after Run
// last looked. Flush, not Run, moves what it sent to the resend FIFOs:
// Run waking fifty times a second for that cost ~2% of the prober's CPU
// (each wake-up of an idle CPU of a virtual machine does).
const idleWait = synRTO

func (p *SynProber) cancel(o synRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelLocked(o, p.dropLocked, p.launchQueuedLocked)
	p.flushLocked() // what the freed slot launched
}

// dropLocked takes o out of flight; it reports whether o was in flight.
func (p *SynProber) dropLocked(r synRef) bool {
	o := r.o
	if r.stale() || !o.inflight {
		return false
	}
	delete(p.ops, o.key)
	o.inflight = false
	return true
}

// timedOutLocked drops o, timed out, and forgets the route to it: the
// route may have changed, so the next probe looks it up afresh.
func (p *SynProber) timedOutLocked(r synRef) bool {
	if !p.dropLocked(r) {
		return false
	}
	o := r.o
	delete(p.routes, o.remote.Addr().As16())
	if o.cache != nil {
		*o.cache = route{}
	}
	if o.target.BindTo.IsValid() {
		delete(p.bound, o.target.BindTo.Unmap())
	}
	return true
}

// launchQueuedLocked starts waiting probes while there is room.
func (p *SynProber) launchQueuedLocked() {
	p.queued.launch(func() bool { return len(p.ops) < p.max }, p.launchLocked)
}

// Close releases the sockets and the reserved ports. Run must have
// returned; probes still in flight never finish.
func (p *SynProber) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.closeFDs()
	return nil
}

func (p *SynProber) closeFDs() {
	for _, f := range []struct {
		fd *int
		f  **os.File
	}{{&p.fd4, &p.f4}, {&p.fd6, &p.f6}} {
		if *f.f != nil {
			(*f.f).Close()
		} else if *f.fd >= 0 {
			unix.Close(*f.fd)
		}
		*f.fd, *f.f = -1, nil
	}
	for _, r := range []**ring{&p.r4, &p.r6} {
		if *r != nil {
			(*r).close()
			*r = nil
		}
	}
	if p.tc != nil {
		p.tc.close()
		p.tc = nil
	}
	for _, fd := range append(p.hold, p.udp4, p.udp6) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	p.hold, p.udp4, p.udp6 = nil, -1, -1
}
