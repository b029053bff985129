package proxy

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/rawsys"
)

// udpService is a UDP virtual service: one socket bound to VIP:port, owned
// by one worker, and a session per client address. A session has its own
// connected socket to the real server, in the same worker's epoll; replies
// go back to the client from the service socket, so they come from VIP:port.
type udpService struct {
	key      lvs.ServiceKey
	virtual  netip.AddrPort
	fd       int
	idx      int32
	queued   bool
	closed   bool
	sessions map[netip.AddrPort]*udpSession
}

type udpSession struct {
	svc    *udpService
	sess   *lvs.Session
	client netip.AddrPort
	fd     int
	idx    int32
	last   int64
	queued bool
	closed bool
}

// udpBudget is how many datagrams one socket gets per turn before the
// worker serves others.
const udpBudget = 64

func (w *worker) addUDPService(u *udpService) error {
	idx, gen := w.alloc(u)
	u.idx = idx
	if err := w.register(u.fd, unix.EPOLLIN|unix.EPOLLET, idx, gen, 0); err != nil {
		w.release(idx)
		return err
	}
	return nil
}

func (u *udpService) event(w *worker, side int, ev uint32) {
	if u.closed {
		return
	}
	if side < 0 {
		u.queued = false
	}
	for range udpBudget {
		n, from, err := rawsys.Recvfrom(u.fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // EAGAIN: wait for the next edge
		}
		s := u.sessions[from]
		if s == nil {
			if s = u.open(w, from); s == nil {
				continue
			}
		}
		s.last = w.now
		if _, err := rawsys.Write(s.fd, w.buf[:n]); err != nil {
			// A full socket buffer or an ICMP error from an earlier
			// datagram: UDP drops, as the network would.
			continue
		}
		s.sess.In(n)
	}
	if !u.queued {
		u.queued = true
		w.schedule(u)
	}
}

func (u *udpService) open(w *worker, from netip.AddrPort) *udpSession {
	sess, err := w.p.table.Open(u.key, from, u.virtual)
	if err != nil {
		w.p.log.Debug("no destination", "vs", u.key.String(), "client", from.String(), "err", err)
		return nil
	}
	fd, err := dialSocket(unix.SOCK_DGRAM, sess.Dest())
	if err != nil {
		w.p.log.Debug("connect", "vs", u.key.String(), "rs", sess.Dest().String(), "err", err)
		return nil
	}
	s := &udpSession{svc: u, sess: sess, client: from, fd: fd, last: w.now}
	idx, gen := w.alloc(s)
	s.idx = idx
	if err := w.register(fd, unix.EPOLLIN|unix.EPOLLET, idx, gen, 0); err != nil {
		w.release(idx)
		rawsys.Close(int32(fd))
		return nil
	}
	u.sessions[from] = s
	return s
}

func (s *udpSession) event(w *worker, side int, ev uint32) {
	if s.closed {
		return
	}
	if side < 0 {
		s.queued = false
	}
	for range udpBudget {
		n, err := rawsys.Recv(int32(s.fd), w.buf)
		switch err {
		case nil:
		case unix.EINTR, unix.ECONNREFUSED:
			// ECONNREFUSED reports an ICMP port unreachable for an
			// earlier datagram; the socket goes on.
			continue
		default:
			return
		}
		s.last = w.now
		if err := rawsys.Sendto(s.svc.fd, w.buf[:n], s.client); err != nil {
			continue
		}
		s.sess.Out(n)
	}
	if !s.queued {
		s.queued = true
		w.schedule(s)
	}
}

func (s *udpSession) expire(w *worker, now int64, to *timeouts) {
	if now-s.last >= to.udp {
		s.close(w)
	}
}

func (s *udpSession) shut(w *worker) { s.close(w) }

func (s *udpSession) close(w *worker) {
	if s.closed {
		return
	}
	s.closed = true
	rawsys.Close(int32(s.fd))
	w.release(s.idx)
	if s.svc.sessions[s.client] == s {
		delete(s.svc.sessions, s.client)
	}
}

func (u *udpService) expire(*worker, int64, *timeouts) {}

func (u *udpService) shut(w *worker) { u.close(w) }

// close closes the service socket and its sessions.
func (u *udpService) close(w *worker) {
	if u.closed {
		return
	}
	u.closed = true
	for _, s := range u.sessions {
		s.close(w)
	}
	unix.Close(u.fd)
	w.release(u.idx)
}
