// Package transport is VRRP on the wire: raw IP protocol 112 sockets
// bound to one interface, multicast (224.0.0.18, ff02::12) or unicast to
// peers, TTL / hop limit 255 both ways. A Conn moves VRRP messages (the
// payload after the IP header) and reports what packet.Validate needs of
// the IP header: source, destination and TTL.
//
// Conn is the seam: Listen opens the real sockets, Hub is an in-memory
// LAN for tests of whatever drives VRRP.
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

// ErrClosed is returned by a closed Conn.
var ErrClosed = errors.New("vrrp transport closed")

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
