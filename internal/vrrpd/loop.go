package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
)

// The VRRP hot path is one OS thread: the loop. It owns every instance,
// and waits in epoll_wait for three kinds of descriptor:
//
//   - each instance's raw socket (a transport.Poller), read with
//     non-blocking recvmsg into one buffer;
//   - a timerfd on CLOCK_MONOTONIC, armed for the earliest deadline any
//     instance has (the instances know their deadlines; the loop asks
//     them, so no timer exists outside them);
//   - an eventfd that other goroutines write after they put an event in
//     the inbox: tracker changes, Status calls, the stop, and (for a
//     Conn that is no Poller, as on a transport.Hub) received adverts.
//
// Adverts are sent from the loop with one non-blocking sendmsg. What can
// block or take long — netlink for VIPs and routes, gratuitous ARP, notify
// scripts, the FIFO, logging — goes to the worker goroutine as a job, in
// order. The loop does not allocate while it receives, times and sends
// adverts (TestLoopDoesNotAllocate), so it gives the garbage collector no
// work, and it parks nowhere in the Go scheduler: the only blocking call
// is epoll_wait, and realtime it runs pinned around it (pin.go).
//
// A Clock other than clock.Real (tests) drives the timers the old way,
// through vrrp.Timers and the inbox, and the loop is not pinned.

// epoll tags: the event's data says which descriptor it is.
const (
	tagTimer = iota
	tagWake
	tagInst // tagInst+k is n.ins[k]
)

// maxReadErrs failed reads in a row take a socket out of the loop.
const maxReadErrs = 64

// maxFires bounds the timers fired in one pass, so a timer re-armed at
// zero cannot hold the loop.
const maxFires = 1024

// sleptAtLeast in epoll_wait means the thread slept (and the kernel
// restarted its realtime CPU count).
const sleptAtLeast = 50 * time.Microsecond

type loop struct {
	n    *Node
	epfd int
	tfd  int // -1: the clock is not clock.Real
	efd  int

	events [32]unix.EpollEvent
	armed  time.Time // the timerfd's deadline; zero when disarmed
	spec   unix.ItimerSpec
	word   [8]byte
	buf    [2048]byte

	// budget is how long the loop may run without sleeping (a quarter of
	// vrrp_rlimit_rttime) when realtime; 0 otherwise.
	budget    time.Duration
	busySince time.Time
	throttled uint64

	// Timers found late since lateSaid, and the worst.
	lateSaid  time.Time
	lateCount uint64
	lateMax   time.Duration

	// Pinned wake-ups that waited for a P (schedWaitLong or more) since
	// schedSaid, and the longest wait: time between the kernel's return
	// from epoll_wait (woke) and the loop running again (back).
	woke, back     unix.Timespec
	schedSaid      time.Time
	schedWaitCount uint64
	schedWaitMax   time.Duration

	// pinned: realtime with clock.Real, the loop runs pinned (pin.go).
	pinned   bool
	stopping bool
}

// newLoop creates the descriptors and registers the instances' sockets.
func (n *Node) newLoop() (*loop, error) {
	l := &loop{n: n, epfd: -1, tfd: -1, efd: -1}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("vrrp loop: epoll: %w", err)
	}
	if n.realClock {
		if l.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
			l.close()
			return nil, fmt.Errorf("vrrp loop: timerfd: %w", err)
		}
		if err := l.add(l.tfd, tagTimer); err != nil {
			l.close()
			return nil, err
		}
	}
	if l.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("vrrp loop: eventfd: %w", err)
	}
	if err := l.add(l.efd, tagWake); err != nil {
		l.close()
		return nil, err
	}
	if err := l.register(); err != nil {
		l.close()
		return nil, err
	}
	n.wakeMu.Lock()
	n.wakeFd = l.efd
	n.wakeMu.Unlock()
	return l, nil
}

func (l *loop) add(fd int, tag int32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: tag}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("vrrp loop: epoll_ctl: %w", err)
	}
	return nil
}

// register puts every instance's socket in the epoll set, tagged with
// its place in n.ins; after a reload it re-tags those already there.
func (l *loop) register() error {
	for k, i := range l.n.ins {
		if i.poll == nil || i.readErrs >= maxReadErrs {
			continue
		}
		op := unix.EPOLL_CTL_ADD
		if i.polled {
			op = unix.EPOLL_CTL_MOD
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tagInst + k)}
		if err := unix.EpollCtl(l.epfd, op, i.poll.Fd(), &ev); err != nil {
			return fmt.Errorf("vrrp instance %s: epoll_ctl: %w", i.name, err)
		}
		i.polled = true
	}
	return nil
}

// unregister takes i's socket out of the epoll set.
func (l *loop) unregister(i *inst) {
	if i.polled {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, i.poll.Fd(), nil)
		i.polled = false
	}
}

// close closes the loop's descriptors; posts from now on only queue.
func (l *loop) close() {
	n := l.n
	n.wakeMu.Lock()
	n.wakeFd = -1
	n.wakeMu.Unlock()
	for _, fd := range []int{l.tfd, l.efd, l.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// run is the VRRP thread: it starts the instances, runs until ctx ends,
// stops them (a master says goodbye with priority 0), closes the sockets
// and the loop, and closes n.done.
func (l *loop) run(ctx context.Context) {
	// Locked for good: the thread ends with this goroutine, so no other
	// goroutine ever runs with its scheduling.
	runtime.LockOSThread()
	n := l.n
	defer n.closeDone()
	l.budget = n.schedule()
	if l.budget > 0 {
		stopWatch := make(chan struct{})
		defer close(stopWatch)
		n.watchRTTime(stopWatch)
	}
	stop := context.AfterFunc(ctx, func() { n.post(event{kind: evStop}) })
	defer stop()
	if d := n.opt.StartupDelay; d > 0 && l.tfd >= 0 {
		n.startAt = n.clk.Now().Add(d)
		n.log.Info("vrrp instances wait for vrrp_startup_delay", "delay", d)
	} else {
		n.startAll()
	}
	n.log.Info("vrrp running", "instances", len(n.ins))
	l.busySince = time.Now()
	l.pinned = l.budget > 0 && l.tfd >= 0
	if l.pinned {
		procPin()
	}
	// Each pass reads the sockets before it fires timers: a backup that
	// wakes late finds its master's adverts queued and keeps following
	// it, instead of taking over on a master down timer that expired
	// while the adverts waited.
	l.drain() // what was posted before the eventfd was there to wake the loop
	l.fireDue()
	l.arm()
	for !l.stopping {
		l.dispatch(l.wait())
		l.fireDue()
		l.arm()
	}
	if l.pinned {
		procUnpin()
	}
	for _, i := range n.ins {
		n.do(i.in.Handle(n.clk.Now(), vrrp.Stop()))
	}
	n.closeConns()
	l.close()
	unschedule()
	if l.throttled > 0 {
		n.work.push(job{a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelWarn, Msg: "vrrp thread slept to stay under vrrp_rlimit_rttime"}, count: l.throttled})
	}
}

// wait blocks in epoll_wait. Realtime, it also keeps the thread under
// its RLIMIT_RTTIME: after budget without a real sleep it naps.
func (l *loop) wait() int {
	t0 := time.Now()
	var nev int
	var err error
	if l.pinned {
		var e syscall.Errno
		nev, e = epollWaitPinned(l.epfd, unsafe.Pointer(&l.events[0]), len(l.events), &l.woke)
		if e != 0 {
			err = e
		}
		l.schedWait()
	} else {
		nev, err = unix.EpollWait(l.epfd, l.events[:], -1)
	}
	if err != nil {
		if err != unix.EINTR {
			l.n.work.push(job{a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelError, Msg: "vrrp loop: epoll_wait failed"}, err: err})
			napRaw(time.Millisecond)
		}
		return 0
	}
	if l.budget > 0 {
		t1 := time.Now()
		switch {
		case t1.Sub(t0) >= sleptAtLeast:
			l.busySince = t1
		case t1.Sub(l.busySince) > l.budget:
			napRaw(200 * time.Microsecond)
			if l.throttled == 0 {
				l.n.work.push(job{a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelWarn, Msg: "vrrp thread busy without a break: sleeping briefly to stay under vrrp_rlimit_rttime"}})
			}
			l.throttled++
			l.busySince = time.Now()
		}
	}
	return nev
}

func (l *loop) dispatch(nev int) {
	n := l.n
	for _, ev := range l.events[:nev] {
		switch tag := int(ev.Fd); tag {
		case tagTimer:
			l.read(l.tfd)
			l.armed = time.Time{}
		case tagWake:
			l.read(l.efd)
			l.drain()
		default:
			if k := tag - tagInst; k >= 0 && k < len(n.ins) {
				l.readSocket(n.ins[k])
			}
		}
	}
}

// read empties a timerfd or eventfd.
func (l *loop) read(fd int) {
	unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&l.word[0])), uintptr(len(l.word)))
}

// drain handles what other goroutines posted.
func (l *loop) drain() {
	n := l.n
	for {
		select {
		case ev := <-n.inbox:
			if ev.kind == evStop {
				l.stopping = true
				continue
			}
			n.handle(ev)
		default:
			return
		}
	}
}

// readSocket reads what i's socket holds, a bounded number of messages
// at a time (level-triggered epoll brings the loop back for the rest).
func (l *loop) readSocket(i *inst) {
	for range 64 {
		nb, meta, err := i.poll.ReadNow(l.buf[:])
		if err != nil {
			if errors.Is(err, transport.ErrWouldBlock) {
				return
			}
			// A pending socket error (an ICMP unreachable for a unicast
			// advert, say) is consumed by the read that reports it. A
			// socket that fails read after read would keep the loop
			// spinning: take it out of the set.
			i.readErrs++
			if !i.readErrLogged || l.n.debug {
				i.readErrLogged = true
				l.n.work.push(job{i: i, m: i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelWarn, Msg: "vrrp socket read failed (said once; more at debug level)"}, err: err})
			}
			if i.readErrs >= maxReadErrs {
				l.unregister(i)
				l.n.work.push(job{i: i, m: i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelError, Msg: "vrrp socket keeps failing; the instance hears no adverts"}, err: err})
				return
			}
			continue
		}
		i.readErrs = 0
		i.received(l.buf[:nb], meta)
	}
}

// fireDue runs every timer that has fallen due, earliest first.
//
// A backup's master down timer found late is the one exception. The
// sockets were read first, so adverts that arrived while the thread was
// held up have been seen; but a thread held up for longer than a small
// grace (the whole machine stalled: host CPU throttling, a kernel section
// that cannot be preempted) may also have kept the master's advert in
// the kernel, or the master itself, if it stalled too. So such a timer
// waits that grace once more, with the sockets watched, before the
// backup takes over. On time, a timer fires at once: a real failover is
// not slowed down.
func (l *loop) fireDue() {
	if l.tfd < 0 {
		return
	}
	n := l.n
	now := n.clk.Now()
	if !n.startAt.IsZero() && !now.Before(n.startAt) {
		n.startAll()
	}
	for range maxFires {
		var due *inst
		var dk vrrp.TimerKind
		var at time.Time
		for _, i := range n.ins {
			for k := range vrrp.NumTimers {
				if d, ok := i.deadline(k); ok && !d.After(now) && (due == nil || d.Before(at)) {
					due, dk, at = i, k, d
				}
			}
		}
		if due == nil {
			return
		}
		if dk == vrrp.TimerMasterDown && due.in.State() == vrrp.StateBackup {
			d, _ := due.in.Deadline(dk)
			if g := due.stallGrace(); now.Sub(d) > g && !d.Equal(due.downLate) {
				due.downLate, due.downRetry = d, now.Add(g)
				n.work.push(job{i: due, m: due.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelInfo,
					Msg: "master down timer ran late; listening once more before taking over"}, late: now.Sub(d), grace: g})
				continue
			}
		}
		if late := now.Sub(at); late > due.in.MasterAdverInterval()/2 {
			l.lateTimer(due, late, now)
		}
		n.do(due.in.Handle(now, vrrp.TimerFired(dk)))
	}
}

// lateTimer notes a timer that fired more than half an advert interval
// late: the thread did not run when it should have (CPU starvation, a
// host that stopped the machine). It says so at most every 10 s.
func (l *loop) lateTimer(i *inst, late time.Duration, now time.Time) {
	l.lateCount++
	l.lateMax = max(l.lateMax, late)
	if now.Before(l.lateSaid.Add(10 * time.Second)) {
		return
	}
	l.n.work.push(job{i: i, m: i.m, a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelWarn,
		Msg: "vrrp thread ran late: timers fired after their deadline"}, late: l.lateMax, count: l.lateCount})
	l.lateSaid, l.lateCount, l.lateMax = now, 0, 0
}

// startAll starts the instances and applies what they track that is
// already known (unicast_fault_no_peer among it).
func (n *Node) startAll() {
	n.startAt = time.Time{}
	for _, i := range n.ins {
		n.do(i.in.Handle(n.clk.Now(), vrrp.Start()))
	}
	n.retrack()
}

// schedWaitLong is a wait for a P worth counting: a tenth of the
// shortest advert interval keepalived accepts.
const schedWaitLong = time.Millisecond

// schedWait measures how long the pinned loop, woken by the kernel,
// waited for the Go scheduler to give it a P (a garbage collection's
// stop-the-world, or every P held by other keepvs threads), and says so
// at most every 10 s when a wait reached schedWaitLong.
func (l *loop) schedWait() {
	unix.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(&l.back)), 0)
	w := time.Duration(l.back.Nano() - l.woke.Nano())
	if w < schedWaitLong {
		return
	}
	l.schedWaitCount++
	l.schedWaitMax = max(l.schedWaitMax, w)
	now := time.Now()
	if now.Before(l.schedSaid.Add(10 * time.Second)) {
		return
	}
	l.n.work.push(job{a: vrrp.Action{Kind: vrrp.ActLog, Level: slog.LevelWarn,
		Msg: "vrrp thread waited for the Go scheduler after waking"}, late: l.schedWaitMax, count: l.schedWaitCount})
	l.schedSaid, l.schedWaitCount, l.schedWaitMax = now, 0, 0
}

// deadline is when the loop runs timer k of i: the instance's deadline,
// or the retry of a master down timer that ran late.
func (i *inst) deadline(k vrrp.TimerKind) (time.Time, bool) {
	d, ok := i.in.Deadline(k)
	if ok && k == vrrp.TimerMasterDown && d.Equal(i.downLate) {
		return i.downRetry, true
	}
	return d, ok
}

// stallGrace is how late a master down timer may run before the backup
// listens again, and for how long: a quarter of the master's advert
// interval, between 1 and 5 ms.
func (i *inst) stallGrace() time.Duration {
	return min(max(i.in.MasterAdverInterval()/4, time.Millisecond), 5*time.Millisecond)
}

// arm sets the timerfd for the earliest deadline of any instance. It is
// armed relative to now, so it never fires before the deadline as the
// instances measure it.
func (l *loop) arm() {
	if l.tfd < 0 {
		return
	}
	next := l.n.startAt
	for _, i := range l.n.ins {
		for k := range vrrp.NumTimers {
			if d, ok := i.deadline(k); ok && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
	}
	if next.Equal(l.armed) {
		return
	}
	l.armed = next
	l.spec = unix.ItimerSpec{}
	if !next.IsZero() {
		d := max(next.Sub(time.Now()), 1)
		l.spec.Value = unix.NsecToTimespec(int64(d))
	}
	unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(l.tfd), 0, uintptr(unsafe.Pointer(&l.spec)), 0, 0, 0)
}
