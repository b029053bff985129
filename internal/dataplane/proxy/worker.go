package proxy

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/rawsys"
)

// Tokens in an epoll event's Fd field below 0; 0 and up index a worker's
// slots (with the slot's generation and the socket's side in Pad).
const (
	tokWake     = -1 // the worker's eventfd
	tokListener = -2 // a shared TCP listener; Pad is its id
)

// handler is what a slot holds: a TCP connection (side 0 client, 1 real
// server), a UDP service or a UDP session. event gets the epoll bits; a
// handler on the ready list is resumed with side -1.
type handler interface {
	event(w *worker, side int, ev uint32)
	// expire closes the handler if it has been idle too long; now is the
	// worker's monotonic time.
	expire(w *worker, now int64, to *timeouts)
	// shut closes the handler at once (proxy Close).
	shut(w *worker)
}

type slot struct {
	gen uint32
	h   handler
}

// worker is one event loop: an epoll instance, the sockets registered in
// it and the state of their connections. Only its own goroutine touches
// that state while it runs; other goroutines hand it work through do.
type worker struct {
	p      *Proxy
	epfd   int
	wakefd int
	// epfile is epfd in Go's netpoller: an idle worker parks there, like
	// any goroutine waiting on a socket, holding no thread.
	epfile *os.File
	raw    syscall.RawConn

	mu      sync.Mutex
	queue   []func()
	running bool
	stop    atomic.Bool

	slots []slot
	free  []int32
	ready []handler
	pipes []*pipe
	now   int64 // monotonic nanoseconds at the last epoll_wait return
	buf   []byte

	nextSweep int64
	deadline  int64 // the nextSweep epfile's read deadline was set for
	paused    []*tcpListener
}

// maxPooledPipes bounds the idle pipes a worker keeps (2 fds each).
const maxPooledPipes = 64

// epoch anchors monotonic time for the workers.
var epoch = time.Now()

func monotime() int64 { return int64(time.Since(epoch)) }

func newWorker(p *Proxy) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: tokWake}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wfd)
		return nil, fmt.Errorf("epoll nonblock: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unix.Close(wfd)
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	return &worker{p: p, epfd: epfd, wakefd: wfd, epfile: f, raw: raw, now: monotime(), deadline: -1}, nil
}

// wait fills events without blocking a thread: a non-blocking epoll_wait,
// and when nothing is ready, a park in Go's netpoller until epfd is
// readable or the next sweep is due. (A blocking epoll_wait would hold the
// P, or, made as a plain system call, have sysmon hand the P to another
// thread each time: more CPU per connection than the park.)
func (w *worker) wait(events []unix.EpollEvent) (int, error) {
	if len(w.ready) > 0 {
		return rawsys.EpollPoll(w.epfd, events)
	}
	if w.deadline != w.nextSweep {
		// Set only when it changes: a deadline is a runtime timer.
		w.deadline = w.nextSweep
		w.epfile.SetReadDeadline(time.Now().Add(time.Duration(w.nextSweep - monotime())))
	}
	var n int
	var err error
	// Read tries the callback once before it parks, so a busy worker
	// does not park at all.
	rerr := w.raw.Read(func(uintptr) bool {
		n, err = rawsys.EpollPoll(w.epfd, events)
		return n != 0 || (err != nil && err != unix.EINTR)
	})
	if rerr != nil {
		if !errors.Is(rerr, os.ErrDeadlineExceeded) {
			return 0, rerr
		}
		w.deadline = -1 // it fired: set the next one
	}
	return n, err
}

// do runs f on the worker and waits for it: in its loop when it runs, at
// once (under the worker's lock, so never alongside the loop) when it does
// not. f must not take the Proxy's locks.
func (w *worker) do(f func()) {
	w.mu.Lock()
	if w.running {
		done := make(chan struct{})
		w.queue = append(w.queue, func() { f(); close(done) })
		w.mu.Unlock()
		w.wake()
		<-done
		return
	}
	defer w.mu.Unlock()
	w.now = monotime()
	f()
}

func (w *worker) wake() {
	var one = [8]byte{1}
	unix.Write(w.wakefd, one[:])
}

func (w *worker) runQueue() {
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	for i, f := range q {
		f()
		q[i] = nil
	}
}

// alloc gives h a slot; the slot's index and generation go into its
// sockets' epoll events, so a stale event for a reused slot is ignored.
func (w *worker) alloc(h handler) (int32, uint32) {
	var idx int32
	if n := len(w.free); n > 0 {
		idx = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		idx = int32(len(w.slots))
		w.slots = append(w.slots, slot{})
	}
	w.slots[idx].h = h
	return idx, w.slots[idx].gen
}

func (w *worker) release(idx int32) {
	s := &w.slots[idx]
	s.h = nil
	s.gen++
	w.free = append(w.free, idx)
}

func (w *worker) register(fd int, events uint32, idx int32, gen uint32, side int) error {
	ev := unix.EpollEvent{Events: events, Fd: idx, Pad: int32(gen<<1) | int32(side)}
	if err := rawsys.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

func (w *worker) getPipe() (*pipe, error) {
	if n := len(w.pipes); n > 0 {
		p := w.pipes[n-1]
		w.pipes = w.pipes[:n-1]
		return p, nil
	}
	return newPipe()
}

// putPipe takes back an empty pipe.
func (w *worker) putPipe(p *pipe) {
	if len(w.pipes) < maxPooledPipes {
		w.pipes = append(w.pipes, p)
		return
	}
	p.close()
}

// schedule puts h on the ready list: it used its budget with work left.
func (w *worker) schedule(h handler) { w.ready = append(w.ready, h) }

// timeouts are the limits a sweep applies, in nanoseconds.
type timeouts struct {
	tcp, tcpFin, udp, connect, conn int64
}

func (w *worker) loop() {
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	events := make([]unix.EpollEvent, 256)
	w.buf = make([]byte, 64<<10)
	for !w.stop.Load() {
		w.runQueue()
		n, err := w.wait(events)
		w.now = monotime()
		if err != nil && err != unix.EINTR {
			w.p.log.Error("epoll_wait", "err", err)
			return
		}
		for i := range n {
			ev := &events[i]
			switch {
			case ev.Fd == tokWake:
				var b [8]byte
				rawsys.Read(int32(w.wakefd), b[:])
			case ev.Fd == tokListener:
				if l := w.p.listener(uint32(ev.Pad)); l != nil {
					l.accept(w)
				}
			case int(ev.Fd) < len(w.slots):
				s := &w.slots[ev.Fd]
				if s.h != nil && s.gen<<1 == uint32(ev.Pad)&^1 {
					s.h.event(w, int(ev.Pad&1), ev.Events)
				}
			}
		}
		if len(w.ready) > 0 {
			ready := w.ready
			w.ready = nil
			for _, h := range ready {
				h.event(w, -1, 0)
			}
		}
		if w.now >= w.nextSweep {
			w.sweep()
		}
	}
	w.mu.Lock()
	w.running = false
	w.stop.Store(false)
	w.mu.Unlock()
	w.runQueue()
}

// sweep expires idle connections and sessions. It runs at a quarter of the
// shortest timeout (at most every second), so a timeout is honoured within
// 25%.
func (w *worker) sweep() {
	w.resume()
	to := w.p.timeouts()
	for i := range w.slots {
		if h := w.slots[i].h; h != nil {
			h.expire(w, w.now, &to)
		}
	}
	w.nextSweep = w.now + w.p.sweepInterval(&to)
}

// shutAll closes every connection and session of the worker.
func (w *worker) shutAll() {
	for i := range w.slots {
		if h := w.slots[i].h; h != nil {
			h.shut(w)
		}
	}
	w.ready = nil
}

func (w *worker) close() {
	for _, p := range w.pipes {
		p.close()
	}
	w.pipes = nil
	w.epfile.Close()
	unix.Close(w.wakefd)
}
