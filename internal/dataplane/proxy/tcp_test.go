package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/lvs"
)

// TestRoundTrip: bytes go through and back unchanged; the connection table
// shows ESTABLISHED while the connection is open and TIME_WAIT after both
// sides closed.
func TestRoundTrip(t *testing.T) {
	p := startProxy(t, Options{})
	bs := startBackends(t, 1)
	vip := freePort(t, "127.0.0.1")
	addService(t, p, tcpService(vip, "rr"), bs)

	c, _ := dial(t, vip, netip.Addr{})
	defer c.Close()
	if got := connState(p, clientAddr(c)); got != "ESTABLISHED" {
		t.Errorf("state after connect = %q, want ESTABLISHED", got)
	}
	want := make([]byte, 4<<20)
	rand.Read(want)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs from what was sent")
	}
	c.Close()
	eventually(t, "TIME_WAIT", func() bool { return connState(p, clientAddr(c)) == "TIME_WAIT" })
}

// TestHalfClose: the client shuts its sending side; the server still
// answers after seeing EOF and the client receives everything.
func TestHalfClose(t *testing.T) {
	p := startProxy(t, Options{})
	b := startBackend(t, 0, "127.0.0.1:0")
	reply := make([]byte, 2<<20)
	rand.Read(reply)
	b.setHandle(func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		if n != 100_000 {
			return
		}
		c.Write(reply)
	})
	vip := freePort(t, "127.0.0.1")
	addService(t, p, tcpService(vip, "rr"), []*backend{b})

	c, _ := dial(t, vip, netip.Addr{})
	defer c.Close()
	if _, err := c.Write(make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after CloseWrite: %v", err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("got %d bytes back, want the server's %d", len(got), len(reply))
	}
	eventually(t, "TIME_WAIT", func() bool { return connState(p, clientAddr(c)) == "TIME_WAIT" })
}

// TestHalfCloseStates: a FIN from the client makes FIN_WAIT, one from the
// server first makes CLOSE_WAIT, and the client can still send to a server
// that has closed its side.
func TestHalfCloseStates(t *testing.T) {
	p := startProxy(t, Options{})
	b := startBackend(t, 0, "127.0.0.1:0")
	got := make(chan []byte, 1)
	b.setHandle(func(c net.Conn) {
		if bytes.Equal(readN(c, 1), []byte("S")) {
			c.(*net.TCPConn).CloseWrite() // server closes first
		}
		data, _ := io.ReadAll(c)
		got <- data
	})
	vip := freePort(t, "127.0.0.1")
	addService(t, p, tcpService(vip, "rr"), []*backend{b})

	c, _ := dial(t, vip, netip.Addr{})
	defer c.Close()
	c.Write([]byte("S"))
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after server FIN: %q, %v; want EOF", rest, err)
	}
	eventually(t, "CLOSE_WAIT", func() bool { return connState(p, clientAddr(c)) == "CLOSE_WAIT" })
	c.Write([]byte("late"))
	c.CloseWrite()
	if data := <-got; string(data) != "late" {
		t.Errorf("server got %q after its FIN, want %q", data, "late")
	}
	eventually(t, "TIME_WAIT", func() bool { return connState(p, clientAddr(c)) == "TIME_WAIT" })

	// Client first.
	release := make(chan struct{})
	b.setHandle(func(c net.Conn) {
		io.Copy(io.Discard, c)
		<-release
	})
	c2, _ := dial(t, vip, netip.Addr{})
	defer c2.Close()
	c2.CloseWrite()
	eventually(t, "FIN_WAIT", func() bool { return connState(p, clientAddr(c2)) == "FIN_WAIT" })
	close(release)
	io.ReadAll(c2)
	eventually(t, "TIME_WAIT", func() bool { return connState(p, clientAddr(c2)) == "TIME_WAIT" })
}

func readN(c net.Conn, n int) []byte {
	b := make([]byte, n)
	n, _ = io.ReadFull(c, b)
	return b[:n]
}

// TestConnectRefused: a real server that refuses makes the client's
// connection end and the entry CLOSE.
func TestConnectRefused(t *testing.T) {
	p := startProxy(t, Options{})
	dead := freePort(t, "127.0.0.1")
	vip := freePort(t, "127.0.0.1")
	s := tcpService(vip, "rr")
	ctx := context.Background()
	if err := p.AddService(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := p.AddDest(ctx, s.ServiceKey, lvs.Destination{Addr: dead.Addr(), Port: dead.Port(), Weight: 1}); err != nil {
		t.Fatal(err)
	}
	// The reset may come before the client's connect returns.
	c, err := net.Dial("tcp", vip.String())
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitFor))
		if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read through a refused destination: %d, %v; want EOF or reset", n, err)
		}
	}
	eventually(t, "CLOSE", func() bool {
		conns, _ := p.Conns(context.Background())
		return len(conns) == 1 && conns[0].State == "CLOSE"
	})
}

// TestIdleTimeout: a connection silent for the table's tcp timeout is
// closed; so is any connection older than Options.ConnTimeout.
func TestIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		to   lvs.Timeouts
	}{
		{"tcp timeout", Options{}, lvs.Timeouts{TCP: 300 * time.Millisecond}},
		{"conn timeout", Options{ConnTimeout: 300 * time.Millisecond}, lvs.Timeouts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, tc.opts)
			bs := startBackends(t, 1)
			vip := freePort(t, "127.0.0.1")
			addService(t, p, tcpService(vip, "rr"), bs)
			if err := p.SetTimeouts(context.Background(), tc.to); err != nil {
				t.Fatal(err)
			}
			c, _ := dial(t, vip, netip.Addr{})
			defer c.Close()
			start := time.Now()
			n, err := c.Read(make([]byte, 1))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("idle read: %d, %v; want the proxy to close", n, err)
			}
			if d := time.Since(start); d < 100*time.Millisecond {
				t.Errorf("closed after %v, before the 300ms timeout", d)
			}
		})
	}
}

// TestDelService: deleting a service closes its listener at once; the
// connections it already proxies go on, as in IPVS.
func TestDelService(t *testing.T) {
	p := startProxy(t, Options{})
	bs := startBackends(t, 1)
	vip := freePort(t, "127.0.0.1")
	s := tcpService(vip, "rr")
	addService(t, p, s, bs)
	c, _ := dial(t, vip, netip.Addr{})
	defer c.Close()
	if err := p.DelService(context.Background(), s.ServiceKey); err != nil {
		t.Fatal(err)
	}
	if c2, err := net.Dial("tcp", vip.String()); err == nil {
		c2.Close()
		t.Fatal("dial after DelService succeeded, want refused")
	}
	c.Write([]byte("still"))
	if got := readN(c, 5); string(got) != "still" {
		t.Errorf("existing connection after DelService echoed %q", got)
	}
	// The port is free again.
	addService(t, p, s, bs)
	dialID(t, vip, netip.Addr{})
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c2, err := net.Dial("tcp", vip.String()); err == nil {
		c2.Close()
		t.Fatal("dial after Flush succeeded, want refused")
	}
}

// TestStats: connections and bytes in both directions add up in the
// service's and destinations' counters.
func TestStats(t *testing.T) {
	p := startProxy(t, Options{})
	bs := startBackends(t, 2)
	vip := freePort(t, "127.0.0.1")
	s := tcpService(vip, "rr")
	addService(t, p, s, bs)
	const conns, size = 10, 3000
	for range conns {
		c, _ := dial(t, vip, netip.Addr{})
		c.Write(make([]byte, size))
		readN(c, size)
		c.CloseWrite()
		io.ReadAll(c)
		c.Close()
	}
	want := lvs.Stats{Conns: conns, InBytes: conns * size, OutBytes: conns * (size + 1)}
	var st lvs.ServiceStatus
	eventually(t, "counters", func() bool {
		ss, _ := p.Services(context.Background())
		st = ss[0]
		return st.Stats.InBytes == want.InBytes && st.Stats.OutBytes == want.OutBytes
	})
	if st.Stats.Conns != want.Conns {
		t.Errorf("service conns = %d, want %d", st.Stats.Conns, want.Conns)
	}
	if st.Stats.InPkts < conns || st.Stats.OutPkts < 2*conns {
		t.Errorf("packets in/out = %d/%d, want at least %d/%d", st.Stats.InPkts, st.Stats.OutPkts, conns, 2*conns)
	}
	var sum lvs.Stats
	for _, d := range st.Dests {
		sum.Conns += d.Stats.Conns
		sum.InPkts += d.Stats.InPkts
		sum.OutPkts += d.Stats.OutPkts
		sum.InBytes += d.Stats.InBytes
		sum.OutBytes += d.Stats.OutBytes
	}
	if sum != st.Stats {
		t.Errorf("destinations add up to %+v, service has %+v", sum, st.Stats)
	}
}

// TestForwardingMethods: DR and TUN destinations are proxied like NAT ones
// (the table gives DR a service's own port, so the backend listens on
// another loopback address with the service's port).
func TestForwardingMethods(t *testing.T) {
	p := startProxy(t, Options{})
	b := startBackend(t, 7, "127.0.0.2:0")
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.addr.Port())
	s := tcpService(vip, "rr")
	ctx := context.Background()
	if err := p.AddService(ctx, s); err != nil {
		t.Skipf("port %d taken on 127.0.0.1: %v", vip.Port(), err)
	}
	if err := p.AddDest(ctx, s.ServiceKey, lvs.Destination{Addr: b.addr.Addr(), Weight: 1, Forward: lvs.Route}); err != nil {
		t.Fatal(err)
	}
	if id := dialID(t, vip, netip.Addr{}); id != 7 {
		t.Errorf("DR destination: served by %d", id)
	}
	ss, _ := p.Services(ctx)
	if f := ss[0].Dests[0].Forward; f != lvs.Route {
		t.Errorf("table lists forward %v, want Route kept", f)
	}
}

// TestIPv6 serves a service on ::1.
func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	p := startProxy(t, Options{})
	b := startBackend(t, 6, "[::1]:0")
	vip := freePort(t, "::1")
	addService(t, p, tcpService(vip, "rr"), []*backend{b})
	if id := dialID(t, vip, netip.Addr{}); id != 6 {
		t.Errorf("served by %d", id)
	}
}

// TestFreebind: a VIP not (yet) on the host can be listened on.
func TestFreebind(t *testing.T) {
	p := startProxy(t, Options{})
	s := tcpService(netip.MustParseAddrPort("192.0.2.77:8080"), "rr")
	if err := p.AddService(context.Background(), s); err != nil {
		t.Fatalf("AddService on a VIP not on the host: %v", err)
	}
	u := s
	u.Proto = lvs.UDP
	if err := p.AddService(context.Background(), u); err != nil {
		t.Fatalf("UDP AddService on a VIP not on the host: %v", err)
	}
}

// TestUnproxiable: fwmark and port-less persistent services go into the
// table without a listener; a port already taken fails AddService and
// leaves the table as it was.
func TestUnproxiable(t *testing.T) {
	p := startProxy(t, Options{})
	ctx := context.Background()
	fwm := lvs.Service{ServiceKey: lvs.ServiceKey{FWMark: 5}, Scheduler: "rr"}
	if err := p.AddService(ctx, fwm); err != nil {
		t.Fatalf("fwmark service: %v", err)
	}
	any := lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddr("127.0.0.1")}, Scheduler: "rr", Flags: lvs.FlagPersistent}
	if err := p.AddService(ctx, any); err != nil {
		t.Fatalf("port-less persistent service: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := tcpService(ln.Addr().(*net.TCPAddr).AddrPort(), "rr")
	if err := p.AddService(ctx, taken); err == nil {
		t.Error("AddService on a port in use succeeded")
	}
	ss, _ := p.Services(ctx)
	if len(ss) != 2 {
		t.Errorf("table has %d services, want the 2 unproxiable ones", len(ss))
	}
	if err := p.DelService(ctx, fwm.ServiceKey); err != nil {
		t.Error(err)
	}
}

// TestNoGoroutineLeak: after Run ends and Close, the proxy leaves no
// goroutine behind, even with connections open.
func TestNoGoroutineLeak(t *testing.T) {
	bs := startBackends(t, 2)
	before := runtime.NumGoroutine()
	func() {
		p := New(lvsTable(), nil, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		vip := freePort(t, "127.0.0.1")
		addService(t, p, tcpService(vip, "rr"), bs)
		u := tcpService(freePort(t, "127.0.0.1"), "rr")
		u.Proto = lvs.UDP
		if err := p.AddService(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		var open []net.Conn
		for range 5 {
			c, _ := dial(t, vip, netip.Addr{})
			open = append(open, c)
		}
		cancel()
		<-done
		p.Close()
		for _, c := range open {
			c.SetDeadline(time.Now().Add(waitFor))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Error("connection still open after Close")
			}
			c.Close()
		}
	}()
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestConnectTimeout: a real server that never answers the SYN (its accept
// queue is full, so the kernel drops it) makes the proxy give up after
// Options.ConnectTimeout and reset the client.
func TestConnectTimeout(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	full := fromSockaddr(sa)
	// Fill the queue (a backlog of 0 holds one connection).
	for range 2 {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", full.String()); err == nil {
			defer c.Close()
		}
	}
	p := startProxy(t, Options{ConnectTimeout: 300 * time.Millisecond})
	vip := freePort(t, "127.0.0.1")
	s := tcpService(vip, "rr")
	if err := p.AddService(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if err := p.AddDest(t.Context(), s.ServiceKey, lvs.Destination{Addr: full.Addr(), Port: full.Port(), Weight: 1}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got string
	eventually(t, "the connection in the table", func() bool { got = connState(p, clientAddr(c)); return got != "" })
	if got != "SYN_RECV" {
		t.Skipf("the full queue did not hold the connect back (state %q)", got)
	}
	c.SetDeadline(time.Now().Add(waitFor))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v; want the proxy to reset after the connect timeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("reset after %v, before the 300ms connect timeout", d)
	}
	eventually(t, "CLOSE", func() bool { return connState(p, clientAddr(c)) == "CLOSE" })
}
