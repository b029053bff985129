package proxy

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/lvs"
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
	fd int
	sa unix.Sockaddr
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
		fd, sa, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
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
		batch[n] = accepted{fd, sa}
		n++
	}
	l.mu.Unlock()
	for _, a := range batch[:n] {
		w.newTCPConn(l, a.fd, a.sa)
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
// readiness: set by events, cleared by EAGAIN.
type tcpSide struct {
	fd       int32
	readable bool
	writable bool
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

func (w *worker) newTCPConn(l *tcpListener, fd int, sa unix.Sockaddr) {
	virtual := l.virtual
	if !virtual.Addr().IsValid() || virtual.Addr().IsUnspecified() {
		if la, err := unix.Getsockname(fd); err == nil {
			virtual = fromSockaddr(la)
		}
	}
	sess, err := w.p.table.Open(l.key, fromSockaddr(sa), virtual)
	if err != nil {
		w.p.log.Debug("no destination", "vs", l.key.String(), "client", fromSockaddr(sa).String(), "err", err)
		closeReset(fd)
		return
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
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

// pumpBudget is how many splice rounds one connection gets before the
// worker serves others.
const pumpBudget = 16

func (c *tcpConn) event(w *worker, side int, ev uint32) {
	if side < 0 {
		c.queued = false
	} else {
		s := &c.side[side]
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			s.readable = true
		}
		if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			s.writable = true
		}
	}
	switch c.phase {
	case phaseClosed:
		return
	case phaseConnecting:
		if side == client && ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.abort(w)
			return
		}
		if side != server || !c.side[server].writable {
			return
		}
		if errno, err := unix.GetsockoptInt(int(c.side[server].fd), unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			w.p.log.Debug("connect", "rs", c.sess.Dest().String(), "err", unix.Errno(errno))
			c.abort(w)
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

// move splices bytes from side d to side 1-d until one of them would
// block or the budget runs out. It reports false when the connection was
// aborted.
func (c *tcpConn) move(w *worker, d int, budget *int) bool {
	src, dst, dr := &c.side[d], &c.side[1-d], &c.dir[d]
	for ; *budget > 0; *budget-- {
		if dr.pending > 0 {
			if !dst.writable {
				return true
			}
			n, err := unix.Splice(dr.pipe.r, nil, int(dst.fd), nil, int(dr.pending), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
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
			unix.Shutdown(int(dst.fd), unix.SHUT_WR)
			dr.done = true
			if !c.dir[1-d].done {
				if d == client {
					c.sess.SetState(lvs.StateFinWait)
				} else {
					c.sess.SetState(lvs.StateCloseWait)
				}
			}
			return true
		}
		if !src.readable {
			c.putPipe(w, dr)
			return true
		}
		if dr.pipe == nil {
			p, err := w.getPipe()
			if err != nil {
				w.p.log.Warn("no pipe for splice", "err", err)
				c.abort(w)
				return false
			}
			dr.pipe = p
		}
		n, err := unix.Splice(int(src.fd), nil, dr.pipe.w, nil, pipeSize, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
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
		dr.pending = int32(n)
		c.last = w.now
		if d == client {
			c.sess.In(int(n))
		} else {
			c.sess.Out(int(n))
		}
	}
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
			unix.Close(int(s.fd))
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
