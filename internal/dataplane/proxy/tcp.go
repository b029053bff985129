package proxy

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/rawsys"
)

// tcpListener is a TCP virtual service's listening socket. It sits in every
// worker's epoll with EPOLLEXCLUSIVE, so one worker wakes per burst of
// connections and serves the ones it accepts.
type tcpListener struct {
	id      uint32
	key     lvs.ServiceKey
	virtual netip.AddrPort

	// mu keeps the fd number from being closed (and reused) while a
	// worker accepts on it.
	mu     sync.Mutex
	fd     int
	closed bool
}

// acceptBatch bounds the connections one wake accepts, so a flood on one
// service does not starve the others (the listener is level-triggered).
const acceptBatch = 64

type accepted struct {
	fd   int
	from netip.AddrPort
}

func (l *tcpListener) accept(w *worker) {
	var batch [acceptBatch]accepted
	n := 0
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	for n < acceptBatch {
		fd, from, err := rawsys.Accept(l.fd)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			if err != unix.EAGAIN {
				w.p.acceptError(l, err)
				// Out of descriptors or memory: the listener stays
				// readable, so stop watching it for a while rather
				// than spin.
				w.pause(l)
			}
			break
		}
		batch[n] = accepted{fd, from}
		n++
	}
	l.mu.Unlock()
	for _, a := range batch[:n] {
		w.newTCPConn(l, a.fd, a.from)
	}
}

// pause stops this worker watching l until its next sweep (l.mu held).
func (w *worker) pause(l *tcpListener) {
	unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
	w.paused = append(w.paused, l)
	w.nextSweep = min(w.nextSweep, w.now+int64(100*time.Millisecond))
}

// resume watches the paused listeners again.
func (w *worker) resume() {
	for _, l := range w.paused {
		l.mu.Lock()
		if !l.closed {
			l.watch(w)
		}
		l.mu.Unlock()
	}
	w.paused = nil
}

func (l *tcpListener) watch(w *worker) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: tokListener, Pad: int32(l.id)}
	return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, l.fd, &ev)
}

func (l *tcpListener) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		unix.Close(l.fd)
	}
}

// Connection phases.
const (
	phaseConnecting = iota
	phaseOpen
	phaseClosed
)

const (
	client = 0
	server = 1
)

// tcpSide is one of a connection's two sockets with its edge-triggered
// readiness: set by events, cleared by EAGAIN or a short read.
type tcpSide struct {
	fd       int32
	readable bool
	writable bool
	// hup: the peer's FIN or an error has been signalled. A short read
	// then no longer proves the socket drained (it stops at the FIN, and
	// no new edge will come) ...
	hup bool
	// ... but with a FIN and no error it proves the EOF: the kernel
	// takes a FIN in sequence, after every byte before it.
	fin bool
}

// tcpDir is one direction of the copy: bytes in a pipe on their way from
// side d to side 1-d.
type tcpDir struct {
	pipe    *pipe
	pending int32
	eof     bool // the source sent FIN
	done    bool // FIN passed on to the other side
}

// tcpConn is one proxied connection: no goroutine and no buffer of its
// own; a pipe only while bytes are in flight.
type tcpConn struct {
	sess   *lvs.Session
	side   [2]tcpSide
	dir    [2]tcpDir
	start  int64
	last   int64
	idx    int32
	phase  uint8
	queued bool
}

func (w *worker) newTCPConn(l *tcpListener, fd int, from netip.AddrPort) {
	virtual := l.virtual
	if !virtual.Addr().IsValid() || virtual.Addr().IsUnspecified() {
		if la, err := unix.Getsockname(fd); err == nil {
			virtual = fromSockaddr(la)
		}
	}
	sess, err := w.p.table.Open(l.key, from, virtual)
	if err != nil {
		w.p.log.Debug("no destination", "vs", l.key.String(), "client", from.String(), "err", err)
		closeReset(fd)
		return
	}
	// TCP_NODELAY comes from the listener.
	bfd, err := dialSocket(unix.SOCK_STREAM, sess.Dest())
	if err != nil {
		w.p.log.Debug("connect", "vs", l.key.String(), "rs", sess.Dest().String(), "err", err)
		sess.SetState(lvs.StateClose)
		closeReset(fd)
		return
	}
	c := &tcpConn{sess: sess, start: w.now, last: w.now}
	c.side[client].fd = int32(fd)
	c.side[server].fd = int32(bfd)
	idx, gen := w.alloc(c)
	c.idx = idx
	const ev = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	if err := w.register(fd, ev, idx, gen, client); err != nil {
		c.abort(w)
		return
	}
	if err := w.register(bfd, ev, idx, gen, server); err != nil {
		c.abort(w)
	}
}

// pumpBudget is how many copy rounds one connection gets before the
// worker serves others.
const pumpBudget = 16

// copyMax is the most a direction reads through the worker's buffer per
// turn. Below it, read and send cost two calls where splice costs three
// (socket to pipe, pipe to socket, and the EAGAIN that proves the socket
// drained: a short splice does not, as the pipe can fill first). A read
// that fills the buffer switches the direction to splice for the rest of
// the turn, so bulk transfers still move by reference.
const copyMax = 16 << 10

func (c *tcpConn) event(w *worker, side int, ev uint32) {
	if side < 0 {
		c.queued = false
	} else {
		s := &c.side[side]
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			s.readable = true
		}
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			s.fin = ev&unix.EPOLLRDHUP != 0 && ev&unix.EPOLLERR == 0 && (s.fin || !s.hup)
			s.hup = true
		}
		if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			s.writable = true
		}
	}
	switch c.phase {
	case phaseClosed:
		return
	case phaseConnecting:
		if side >= 0 && ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			if side == server {
				errno, _ := unix.GetsockoptInt(int(c.side[server].fd), unix.SOL_SOCKET, unix.SO_ERROR)
				w.p.log.Debug("connect", "rs", c.sess.Dest().String(), "err", unix.Errno(errno))
			}
			c.abort(w)
			return
		}
		// A connecting socket turns writable when the handshake is
		// done; a failed one signals EPOLLERR, so SO_ERROR need not be
		// read on success.
		if side != server || !c.side[server].writable {
			return
		}
		c.phase = phaseOpen
		c.last = w.now
		c.sess.SetState(lvs.StateEstablished)
	}
	budget := pumpBudget
	for d := range 2 {
		if !c.dir[d].done && !c.move(w, d, &budget) {
			return // aborted
		}
	}
	if c.dir[0].done && c.dir[1].done {
		c.sess.SetState(lvs.StateTimeWait)
		c.close(w, false)
		return
	}
	if budget <= 0 && !c.queued {
		c.queued = true
		w.schedule(c)
	}
}

// move copies bytes from side d to side 1-d until one of them would
// block or the budget runs out. It reports false when the connection was
// aborted.
func (c *tcpConn) move(w *worker, d int, budget *int) bool {
	src, dst, dr := &c.side[d], &c.side[1-d], &c.dir[d]
	bulk := false
	for ; *budget > 0; *budget-- {
		if dr.pending > 0 {
			if !dst.writable {
				return true
			}
			n, err := rawsys.Splice(dr.pipe.r, int(dst.fd), int(dr.pending))
			switch err {
			case nil:
				dr.pending -= int32(n)
				continue
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				dst.writable = false
				return true
			}
			c.abort(w)
			return false
		}
		if dr.eof {
			c.putPipe(w, dr)
			dr.done = true
			if c.dir[1-d].done {
				// Both FINs seen: event closes both sockets, and
				// close sends this FIN as shutdown would.
				return true
			}
			rawsys.Shutdown(dst.fd, unix.SHUT_WR)
			if d == client {
				c.sess.SetState(lvs.StateFinWait)
			} else {
				c.sess.SetState(lvs.StateCloseWait)
			}
			return true
		}
		if !src.readable {
			c.putPipe(w, dr)
			return true
		}
		var n int
		var err error
		if bulk {
			if dr.pipe == nil && !c.takePipe(w, dr) {
				return false
			}
			n, err = rawsys.Splice(int(src.fd), dr.pipe.w, pipeSize)
		} else {
			n, err = rawsys.Recv(src.fd, w.buf[:copyMax])
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			src.readable = false
			c.putPipe(w, dr)
			return true
		case err != nil:
			c.abort(w)
			return false
		case n == 0:
			dr.eof = true
			continue
		}
		c.last = w.now
		if d == client {
			c.sess.In(n)
		} else {
			c.sess.Out(n)
		}
		if bulk {
			dr.pending = int32(n)
			continue
		}
		switch {
		case n == copyMax:
			bulk = true
		case !src.hup:
			// Edge-triggered: a short read drained the socket, and
			// more data raises a new edge.
			src.readable = false
		case src.fin:
			// The FIN is next: no read for it, and the bytes go
			// out corked, in one segment with the FIN passed on
			// below (as HAProxy does).
			dr.eof = true
		}
		if !c.forward(w, d, w.buf[:n]) {
			return false
		}
	}
	return true
}

// forward sends p, just read from side d, to the other side; what that
// socket does not take now waits in the direction's pipe. It reports false
// when the connection was aborted.
func (c *tcpConn) forward(w *worker, d int, p []byte) bool {
	dst, dr := &c.side[1-d], &c.dir[d]
	m := 0
	flags := 0
	if dr.eof {
		flags = unix.MSG_MORE
	}
	for dst.writable {
		n, err := rawsys.Send(dst.fd, p, flags)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			dst.writable = false
			break
		}
		if err != nil {
			c.abort(w)
			return false
		}
		if m = n; m < len(p) {
			dst.writable = false
		}
		break
	}
	if m == len(p) {
		return true
	}
	if dr.pipe == nil && !c.takePipe(w, dr) {
		return false
	}
	// The pipe is empty and holds 64 KiB: the rest fits whole.
	n, err := rawsys.Write(dr.pipe.w, p[m:])
	if err != nil || n != len(p)-m {
		w.p.log.Warn("pipe write", "n", n, "want", len(p)-m, "err", err)
		dr.pending = int32(max(n, 1)) // not back to the pool
		c.abort(w)
		return false
	}
	dr.pending = int32(n)
	return true
}

// takePipe gives dr a pipe from the pool; it aborts the connection and
// reports false when there is none.
func (c *tcpConn) takePipe(w *worker, dr *tcpDir) bool {
	p, err := w.getPipe()
	if err != nil {
		w.p.log.Warn("no pipe for splice", "err", err)
		c.abort(w)
		return false
	}
	dr.pipe = p
	return true
}

func (c *tcpConn) putPipe(w *worker, dr *tcpDir) {
	if dr.pipe != nil {
		w.putPipe(dr.pipe)
		dr.pipe = nil
	}
}

// abort ends a connection that failed (connect error, RST, write error):
// both peers get an RST, as they would through IPVS.
func (c *tcpConn) abort(w *worker) {
	c.sess.SetState(lvs.StateClose)
	c.close(w, true)
}

func (c *tcpConn) close(w *worker, reset bool) {
	if c.phase == phaseClosed {
		return
	}
	c.phase = phaseClosed
	for i := range c.dir {
		if p := c.dir[i].pipe; p != nil {
			if c.dir[i].pending == 0 {
				w.putPipe(p)
			} else {
				p.close()
			}
			c.dir[i].pipe = nil
		}
	}
	for _, s := range c.side {
		// close removes the fd from the epoll set.
		if reset {
			closeReset(int(s.fd))
		} else {
			rawsys.Close(s.fd)
		}
	}
	w.release(c.idx)
}

func (c *tcpConn) expire(w *worker, now int64, to *timeouts) {
	switch {
	case c.phase == phaseConnecting:
		if now-c.start >= to.connect {
			w.p.log.Debug("connect timeout", "rs", c.sess.Dest().String())
			c.abort(w)
		}
		return
	case to.conn > 0 && now-c.start >= to.conn:
	case c.dir[0].done || c.dir[1].done:
		if now-c.last < to.tcpFin {
			return
		}
	default:
		if now-c.last < to.tcp {
			return
		}
	}
	c.sess.SetState(lvs.StateClose)
	c.close(w, false)
}

func (c *tcpConn) shut(w *worker) {
	c.sess.SetState(lvs.StateClose)
	c.close(w, false)
}
