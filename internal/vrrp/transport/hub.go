package transport

import (
	"net/netip"
	"sync"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// Hub is an in-memory LAN: every Conn on it receives the multicast
// messages of the others, and unicast messages to its own address, with
// TTL 255. A Conn can be cut off (its link down) to test failover.
type Hub struct {
	mu    sync.Mutex
	conns []*HubConn
}

// NewHub returns an empty LAN.
func NewHub() *Hub { return &Hub{} }

// HubConn is a Conn on a Hub.
type HubConn struct {
	hub   *Hub
	addr  netip.Addr
	group netip.Addr
	in    chan hubMsg
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	down  bool
}

type hubMsg struct {
	b    []byte
	meta packet.RecvMeta
}

// Conn attaches a host with address addr that listens to group (zero:
// unicast only).
func (h *Hub) Conn(addr, group netip.Addr) *HubConn {
	c := &HubConn{hub: h, addr: addr, group: group, in: make(chan hubMsg, 256), done: make(chan struct{})}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c
}

// SetDown cuts (true) or restores the conn's link: a down conn neither
// sends nor receives.
func (c *HubConn) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

func (c *HubConn) isDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// Inject delivers msg to c as if src had sent it to dst with ttl.
func (c *HubConn) Inject(msg []byte, src, dst netip.Addr, ttl int) {
	select {
	case c.in <- hubMsg{b: append([]byte(nil), msg...), meta: packet.RecvMeta{Src: src, Dst: dst, TTL: ttl}}:
	default:
	}
}

// WriteTo implements Conn.
func (c *HubConn) WriteTo(msg []byte, dst netip.Addr) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if c.isDown() {
		return nil // the cable is cut: the message is lost
	}
	c.hub.mu.Lock()
	peers := append([]*HubConn(nil), c.hub.conns...)
	c.hub.mu.Unlock()
	for _, p := range peers {
		if p == c || p.isDown() {
			continue
		}
		if (dst.IsMulticast() && p.group == dst) || (!dst.IsMulticast() && p.addr == dst) {
			p.Inject(msg, c.addr, dst, packet.TTL)
		}
	}
	return nil
}

// ReadFrom implements Conn.
func (c *HubConn) ReadFrom(b []byte) (int, packet.RecvMeta, error) {
	select {
	case m := <-c.in:
		return copy(b, m.b), m.meta, nil
	case <-c.done:
		return 0, packet.RecvMeta{}, ErrClosed
	}
}

// Close implements Conn.
func (c *HubConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
