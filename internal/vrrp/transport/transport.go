// Package transport is VRRP on the wire: raw IP protocol 112 sockets
// bound to one interface, multicast (224.0.0.18, ff02::12) or unicast to
// peers, TTL / hop limit 255 both ways. A Conn moves VRRP messages (the
// payload after the IP header) and reports what packet.Validate needs of
// the IP header: source, destination and TTL.
//
// Conn is the seam: Listen opens the real sockets, Hub is an in-memory
// LAN for tests of whatever drives VRRP. A Conn that is also a Poller can
// be driven from a caller's own epoll loop.
package transport

import (
	"errors"
	"net/netip"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// Conn is one instance's VRRP socket.
type Conn interface {
	// WriteTo sends one VRRP message to dst (the group or a peer).
	WriteTo(msg []byte, dst netip.Addr) error
	// ReadFrom reads one VRRP message into b and returns its length and
	// the IP header's source, destination and TTL (hop limit).
	ReadFrom(b []byte) (int, packet.RecvMeta, error)
	// Close makes ReadFrom return ErrClosed.
	Close() error
}

// Poller is a Conn whose caller waits for it itself: vrrpd's VRRP
// thread puts Fd in its own epoll set and reads with ReadNow, so a
// message reaches the state machine without the Go netpoller, a
// goroutine switch or an allocation. The Conns Listen returns are
// Pollers; a Hub's are not.
type Poller interface {
	Conn
	// Fd is the socket, to wait on for EPOLLIN. It is valid until Close;
	// the caller must not read, write or close it itself.
	Fd() int
	// ReadNow is ReadFrom that never waits: ErrWouldBlock when no
	// message is queued. It does not allocate.
	ReadNow(b []byte) (int, packet.RecvMeta, error)
}

var (
	// ErrClosed is returned by a closed Conn.
	ErrClosed = errors.New("vrrp transport closed")
	// ErrWouldBlock is ReadNow's "nothing queued".
	ErrWouldBlock = errors.New("vrrp transport: no message queued")
)

// Options say what to open.
type Options struct {
	// Interface is the interface adverts go out of and are read from.
	Interface string
	Family    packet.Family
	// Src is the source address of sent adverts (unicast_src_ip,
	// mcast_src_ip or the interface's primary address).
	Src netip.Addr
	// Group is the multicast group to join; the zero Addr joins none
	// (unicast peers only).
	Group netip.Addr
	// TTL of sent adverts; 0 means 255 (packet.TTL).
	TTL int
}
