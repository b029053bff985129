package tcp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/rawsys"
)

// poller runs TCP connects for every TCP_CHECK of the process on one epoll
// set and one goroutine: a probe is a nonblocking socket and connect, an
// epoll registration, and a getsockopt(SO_ERROR) when it is writable. No
// goroutine, context or net.Conn per probe — at 10,000 checks a second
// that is the difference between a few and a few dozen percent of a core
// in user space (docs/benchmarks.md).
//
// Results are always delivered from the poller's goroutine, never from
// Start, so a caller may start probes while holding its own lock.
//
// Probes queued together (queue, as the Runner starts the probes due in
// one tick) connect together at Flush, after the Runner has let go of its
// lock: on loopback a connect runs the listener's half of the handshake
// (~45 us), and a hundred of them under the Runner's lock, each taking
// and leaving the poller's, made the loop delivering results and the
// Runner's tick wait on each other — ticks of 20-70 ms, probes up to
// 120 ms late.
type poller struct {
	epfd int

	mu sync.Mutex
	core[*op]
	ops     map[int32]*op // in flight, by fd
	pending []*op         // admitted, to connect at the next Flush
	gen     uint32
	max     int
}

// op is one probe.
type op struct {
	probe
	fd  int32
	gen uint32
}

var (
	pollBase = time.Now()

	defaultPollerOnce sync.Once
	defaultPoller     *poller
	defaultPollerErr  error
)

func mono() int64 { return int64(time.Since(pollBase)) }

// maxInFlight bounds the sockets the poller holds open at once; further
// probes wait their turn (their time counts against their timeout, as a
// blocked probe goroutine's would).
const maxInFlight = 4096

func sharedPoller() (*poller, error) {
	defaultPollerOnce.Do(func() {
		defaultPoller, defaultPollerErr = newPoller(maxInFlight)
		if defaultPollerErr == nil {
			go defaultPoller.loop()
		}
	})
	return defaultPoller, defaultPollerErr
}

func newPoller(max int) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &poller{epfd: epfd, core: core[*op]{evfd: evfd, waitTill: -1, timers: newDeadlines[*op]()}, ops: map[int32]*op{}, max: max}, nil
}

// start begins a probe of t that ends within timeout and calls done once
// from the poller's goroutine. cancel drops the probe; done is then not
// called (or its call is already under way and its result is stale).
func (p *poller) start(t check.Target, timeout time.Duration, done func(check.Result)) (cancel func()) {
	cancel = p.queue(t, timeout, 0, doneOf(done))
	p.Flush()
	return cancel
}

// queue is start without the connect: it happens at the next Flush, with
// the others queued since the last. The timeout runs from queue.
func (p *poller) queue(t check.Target, timeout time.Duration, tag uint64, done check.Done) (cancel func()) {
	o := &op{probe: probe{target: t, timeout: timeout, tag: tag, done: done}, fd: -1}
	p.mu.Lock()
	p.admitLocked(o, len(p.ops)+len(p.pending) < p.max, p.pendLocked)
	p.mu.Unlock()
	return func() { p.cancel(o) }
}

func (p *poller) pendLocked(o *op) { p.pending = append(p.pending, o) }

// Flush connects the probes queued since the last Flush; those canceled
// or timed out meanwhile are finished and skipped.
func (p *poller) Flush() {
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
}

func (p *poller) flushLocked() {
	for _, o := range p.pending {
		if !o.finished {
			p.launchLocked(o)
		}
	}
	clear(p.pending)
	p.pending = p.pending[:0]
}

// launchLocked opens o's socket and connects. An immediate verdict goes
// to ready, for the loop to deliver.
func (p *poller) launchLocked(o *op) {
	fd, inProgress, err := dial(o.target)
	if err != nil || !inProgress {
		if err != nil {
			o.res = o.failed(check.ErrText(err))
		} else {
			o.res = check.Result{OK: true, Duration: o.since()}
		}
		p.readyLocked(o)
		return
	}
	p.gen++
	o.fd, o.gen = int32(fd), p.gen
	ev := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: o.fd, Pad: int32(o.gen)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		o.fd = -1
		o.res = o.failed("epoll_ctl: " + err.Error())
		p.readyLocked(o)
		return
	}
	p.ops[o.fd] = o
}

func (p *poller) cancel(o *op) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelLocked(o, p.dropLocked, p.launchQueuedLocked)
}

// dropLocked takes o out of flight, closing its socket; it reports
// whether o was in flight.
func (p *poller) dropLocked(o *op) bool {
	if o.fd < 0 {
		return false
	}
	delete(p.ops, o.fd)
	rawsys.Close(o.fd)
	o.fd = -1
	return true
}

// launchQueuedLocked starts waiting probes while there is room.
func (p *poller) launchQueuedLocked() {
	p.queued.launch(func() bool { return len(p.ops)+len(p.pending) < p.max }, p.launchLocked)
}

// loop waits for connects to finish and deadlines to pass, and delivers
// results, forever (the poller is shared by the process).
func (p *poller) loop() {
	events := make([]unix.EpollEvent, 256)
	var out []*op
	var dones []delivery
	for {
		p.mu.Lock()
		wait := -1
		p.waitTill = -1
		if at, ok := p.nextDeadline(); ok {
			d := at - mono()
			// Round up to the millisecond, so a wake-up finds the
			// deadline passed.
			wait = int(max((d+int64(time.Millisecond)-1)/int64(time.Millisecond), 0))
			p.waitTill = at
		}
		p.mu.Unlock()
		n, err := unix.EpollWait(p.epfd, events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Nothing sensible is left to do with a broken epoll set
			// but to keep going; the Runner's own deadlines count the
			// probes as timed out.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(p.evfd) {
				var buf [8]byte
				unix.Read(p.evfd, buf[:])
				continue
			}
			o := p.ops[ev.Fd]
			if o == nil || o.gen != uint32(ev.Pad) {
				continue // canceled, its fd maybe reused
			}
			delete(p.ops, ev.Fd)
			errno, gerr := unix.GetsockoptInt(int(o.fd), unix.SOL_SOCKET, unix.SO_ERROR)
			rawsys.Close(o.fd)
			o.fd = -1
			switch {
			case gerr != nil:
				o.res = o.failed(check.ErrText(gerr))
			case errno != 0:
				o.res = o.failed(unix.Errno(errno).Error())
			default:
				o.res = check.Result{OK: true, Duration: o.since()}
			}
			o.finished = true
			out = append(out, o)
		}
		now := mono()
		out = p.expireLocked(now, out, p.dropLocked)
		out = p.takeReadyLocked(out)
		p.launchQueuedLocked()
		out, dones = deliver(&p.mu, out, dones)
	}
}

// dial opens a nonblocking TCP socket to t, bound and marked as t says,
// and starts connecting. inProgress is false when the connect finished at
// once (err says how).
func dial(t check.Target) (fd int, inProgress bool, err error) {
	family := unix.AF_INET
	if t.Addr.Addr().Is6() && !t.Addr.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	if err := prepare(fd, family, t); err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	sa, err := sockaddr(family, t.Addr)
	if err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	switch err := connect(fd, sa); {
	case err == nil:
		unix.Close(fd)
		return -1, false, nil
	case errors.Is(err, unix.EINPROGRESS):
		return fd, true, nil
	default:
		unix.Close(fd)
		return -1, false, err
	}
}

// prepare sets the mark and device and binds the local address.
func prepare(fd, family int, t check.Target) error {
	if t.FWMark != 0 && os.Geteuid() == 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(t.FWMark)); err != nil {
			return os.NewSyscallError("set fwmark", err)
		}
	}
	if t.BindIf != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, t.BindIf); err != nil {
			return os.NewSyscallError("bind to device "+t.BindIf, err)
		}
	}
	if !t.BindTo.IsValid() && t.BindPort == 0 {
		return nil
	}
	ip := t.BindTo
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
		if family == unix.AF_INET6 {
			ip = netip.IPv6Unspecified()
		}
	}
	sa, err := sockaddr(family, netip.AddrPortFrom(ip, t.BindPort))
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// connect connects the nonblocking socket fd to sa, as a raw system call
// (internal/rawsys): on loopback a connect runs the listener's half of
// the handshake in the call (~45 us), long enough for the runtime to take
// the P of the Flush's goroutine away, a hundred times a tick.
func connect(fd int, sa unix.Sockaddr) error {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return rawsys.Connect(fd, netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), 0)
	case *unix.SockaddrInet6:
		return rawsys.Connect(fd, netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), a.ZoneId)
	}
	return unix.Connect(fd, sa)
}

func sockaddr(family int, ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	if family == unix.AF_INET {
		if !a.Unmap().Is4() {
			return nil, errors.New("address family mismatch: " + a.String())
		}
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}
