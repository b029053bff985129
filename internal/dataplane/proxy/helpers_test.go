package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/sched"
)

// waitFor bounds every poll loop: generous, for a loaded 2-core machine.
const waitFor = 20 * time.Second

func lvsTable() *lvs.Table { return lvs.NewTable(clock.Real{}, sched.Standard()) }

// startProxy runs a proxy on a fresh table until the test ends.
func startProxy(t testing.TB, opts Options) *Proxy {
	t.Helper()
	table := lvsTable()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("KEEPVS_PROXY_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := New(table, log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// freePort returns a TCP and UDP port on addr that was free a moment ago.
func freePort(t testing.TB, addr string) netip.AddrPort {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		ap := ln.Addr().(*net.TCPAddr).AddrPort()
		ln.Close()
		pc, err := net.ListenPacket("udp", ap.String())
		if err != nil {
			continue
		}
		pc.Close()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	t.Fatal("no free port")
	return netip.AddrPort{}
}

func tcpService(vip netip.AddrPort, scheduler string) lvs.Service {
	return lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: vip.Addr(), Port: vip.Port()}, Scheduler: scheduler}
}

// addService adds s with one destination per backend (weight 1 unless
// weights says otherwise).
func addService(t testing.TB, p *Proxy, s lvs.Service, backends []*backend, weights ...int) {
	t.Helper()
	ctx := context.Background()
	if err := p.AddService(ctx, s); err != nil {
		t.Fatalf("AddService: %v", err)
	}
	for i, b := range backends {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		d := lvs.Destination{Addr: b.addr.Addr(), Port: b.addr.Port(), Weight: w}
		if err := p.AddDest(ctx, s.ServiceKey, d); err != nil {
			t.Fatalf("AddDest: %v", err)
		}
	}
}

// backend is a real server: it greets every connection with its id byte,
// then runs handle (echo by default).
type backend struct {
	id      byte
	ln      net.Listener
	addr    netip.AddrPort
	accepts atomic.Int64
	handle  func(c net.Conn)

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func echo(c net.Conn) { io.Copy(c, c) }

func startBackend(t testing.TB, id byte, addr string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	b := &backend{id: id, ln: ln, addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), handle: echo, conns: map[net.Conn]bool{}}
	b.wg.Go(b.serve)
	t.Cleanup(b.close)
	return b
}

func startBackends(t testing.TB, n int) []*backend {
	bs := make([]*backend, n)
	for i := range bs {
		bs[i] = startBackend(t, byte(i), "127.0.0.1:0")
	}
	return bs
}

func (b *backend) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepts.Add(1)
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Go(func() {
			defer func() {
				c.Close()
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
			}()
			if _, err := c.Write([]byte{b.id}); err != nil {
				return
			}
			b.mu.Lock()
			handle := b.handle
			b.mu.Unlock()
			handle(c)
		})
	}
}

func (b *backend) setHandle(f func(net.Conn)) {
	b.mu.Lock()
	b.handle = f
	b.mu.Unlock()
}

func (b *backend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// dial connects to the service and reads the backend's id byte.
func dial(t testing.TB, vip netip.AddrPort, from netip.Addr) (*net.TCPConn, byte) {
	t.Helper()
	d := net.Dialer{Timeout: waitFor}
	if from.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
	}
	c, err := d.Dial("tcp", vip.String())
	if err != nil {
		t.Fatalf("dial %s: %v", vip, err)
	}
	c.SetDeadline(time.Now().Add(waitFor))
	var id [1]byte
	if _, err := io.ReadFull(c, id[:]); err != nil {
		c.Close()
		t.Fatalf("read backend id through %s: %v", vip, err)
	}
	return c.(*net.TCPConn), id[0]
}

// dialID makes one connection and returns which backend served it.
func dialID(t testing.TB, vip netip.AddrPort, from netip.Addr) byte {
	t.Helper()
	c, id := dial(t, vip, from)
	c.Close()
	return id
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// connState is the state of the connection-table entry from client, or "".
func connState(p *Proxy, client netip.AddrPort) string {
	conns, _ := p.Conns(context.Background())
	for _, c := range conns {
		if !c.Template && c.Client == client {
			return c.State
		}
	}
	return ""
}

func clientAddr(c net.Conn) netip.AddrPort {
	ap := c.LocalAddr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
