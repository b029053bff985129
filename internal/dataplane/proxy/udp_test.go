package proxy

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
)

// udpBackend echoes each datagram prefixed with its id and the source port
// it saw (the proxy session's socket).
func udpBackend(t *testing.T, id byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			out := append([]byte{id, 0, 0}, buf[:n]...)
			binary.BigEndian.PutUint16(out[1:], from.Port())
			pc.WriteToUDPAddrPort(out, from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

type udpReply struct {
	id      byte
	srcPort uint16 // the session's port, as the backend saw it
	from    netip.AddrPort
	payload string
}

func udpExchange(t *testing.T, c *net.UDPConn, vip netip.AddrPort, msg string) udpReply {
	t.Helper()
	buf := make([]byte, 2048)
	// UDP may drop: resend until an answer comes, within waitFor.
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if _, err := c.WriteToUDPAddrPort([]byte(msg), vip); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if n < 3 {
			t.Fatalf("short reply %q", buf[:n])
		}
		return udpReply{buf[0], binary.BigEndian.Uint16(buf[1:3]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), string(buf[3:n])}
	}
	t.Fatalf("no UDP reply through %s", vip)
	return udpReply{}
}

func udpClient(t *testing.T) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sessions counts the proxy's UDP sessions.
func (p *Proxy) udpSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.frontends {
		if f.udp != nil {
			f.w.do(func() { n += len(f.udp.sessions) })
		}
	}
	return n
}

// TestUDP: datagrams are echoed through the proxy with one session per
// client (its own socket, so the same source port at the backend), replies
// come from the VIP, rr spreads clients, each datagram is counted, and a
// session idle for the udp timeout ends (a new one is opened after).
func TestUDP(t *testing.T) {
	p := startProxy(t, Options{})
	ctx := context.Background()
	b0, b1 := udpBackend(t, 0), udpBackend(t, 1)
	vip := freePort(t, "127.0.0.1")
	s := lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.UDP, Addr: vip.Addr(), Port: vip.Port()}, Scheduler: "rr"}
	if err := p.AddService(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, b := range []netip.AddrPort{b0, b1} {
		if err := p.AddDest(ctx, s.ServiceKey, lvs.Destination{Addr: b.Addr(), Port: b.Port(), Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}

	c1, c2 := udpClient(t), udpClient(t)
	var first [2]udpReply
	for i, c := range []*net.UDPConn{c1, c2} {
		for j := range 3 {
			r := udpExchange(t, c, vip, "hello")
			if r.from != vip || r.payload != "hello" {
				t.Fatalf("client %d: reply %q from %s, want %q from %s", i, r.payload, r.from, "hello", vip)
			}
			if j == 0 {
				first[i] = r
			} else if r.id != first[i].id || r.srcPort != first[i].srcPort {
				t.Fatalf("client %d: datagram %d went to backend %d port %d, the first to %d port %d", i, j, r.id, r.srcPort, first[i].id, first[i].srcPort)
			}
		}
	}
	if first[0].id == first[1].id {
		t.Errorf("rr sent both clients to backend %d", first[0].id)
	}
	if n := p.udpSessions(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
	conns, _ := p.Conns(ctx)
	if len(conns) != 2 || conns[0].State != "UDP" || conns[1].State != "UDP" {
		t.Errorf("connection table %+v, want two UDP entries", conns)
	}
	ss, _ := p.Services(ctx)
	st := ss[0].Stats
	// UDP may drop and udpExchange resends: at least 6 each way.
	if st.Conns != 2 || st.InPkts < 6 || st.OutPkts < 6 || st.InBytes != st.InPkts*5 || st.OutBytes != st.OutPkts*8 {
		t.Errorf("stats %+v, want 2 conns, 5-byte datagrams in and 8-byte out", st)
	}

	if err := p.SetTimeouts(ctx, lvs.Timeouts{UDP: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sessions to expire", func() bool { return p.udpSessions() == 0 })
	udpExchange(t, c1, vip, "again")
	if ss, _ := p.Services(ctx); ss[0].Stats.Conns != 3 {
		t.Errorf("after expiry: %d connections scheduled, want a third", ss[0].Stats.Conns)
	}

	if err := p.DelService(ctx, s.ServiceKey); err != nil {
		t.Fatal(err)
	}
	if n := p.udpSessions(); n != 0 {
		t.Errorf("%d sessions after DelService", n)
	}
}
