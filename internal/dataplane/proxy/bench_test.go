package proxy

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The benchmarks run the same client and backend against three targets:
// keepvs's proxy, the backend directly (the floor), and HAProxy in mode tcp
// when its binary is on PATH (with and without splice), for comparison:
//
//	go test -run '^$' -bench . -benchmem ./internal/dataplane/proxy/

type target struct {
	name  string
	start func(b *testing.B, backend netip.AddrPort) netip.AddrPort
}

func targets(b *testing.B) []target {
	ts := []target{
		{"keepvs", func(b *testing.B, be netip.AddrPort) netip.AddrPort {
			p := startProxy(b, Options{})
			vip := freePort(b, "127.0.0.1")
			addService(b, p, tcpService(vip, "rr"), []*backend{{addr: be}})
			return vip
		}},
		{"direct", func(b *testing.B, be netip.AddrPort) netip.AddrPort { return be }},
	}
	if _, err := exec.LookPath("haproxy"); err == nil {
		ts = append(ts,
			target{"haproxy", func(b *testing.B, be netip.AddrPort) netip.AddrPort { return startHAProxy(b, be, "") }},
			target{"haproxy-splice", func(b *testing.B, be netip.AddrPort) netip.AddrPort {
				return startHAProxy(b, be, "option splice-auto")
			}})
	}
	return ts
}

func startHAProxy(b *testing.B, be netip.AddrPort, option string) netip.AddrPort {
	vip := freePort(b, "127.0.0.1")
	cfg := fmt.Sprintf(`global
	maxconn 4000
	nbthread 2
defaults
	mode tcp
	timeout connect 5s
	timeout client 1m
	timeout server 1m
	%s
frontend f
	bind %s
	default_backend b
backend b
	server s1 %s
`, option, vip, be)
	path := filepath.Join(b.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-db", "-q", "-f", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(waitFor)
	for {
		c, err := net.Dial("tcp", vip.String())
		if err == nil {
			c.Close()
			return vip
		}
		if time.Now().After(deadline) {
			b.Fatalf("haproxy did not listen: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sink is a backend that counts what it reads from one connection at a time.
func sink(b *testing.B) (netip.AddrPort, chan int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	got := make(chan int64, 1)
	go func() {
		buf := make([]byte, 256<<10)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var n int64
			for {
				m, err := c.Read(buf)
				n += int64(m)
				if err != nil {
					break
				}
			}
			c.Close()
			if n > 0 { // not a readiness probe
				got <- n
			}
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), got
}

// BenchmarkProxyTCP is throughput from client to real server over one
// connection through the proxy.
func BenchmarkProxyTCP(b *testing.B) {
	const chunk = 128 << 10
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			be, got := sink(b)
			vip := tg.start(b, be)
			c, err := net.Dial("tcp", vip.String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			if n := <-got; n != int64(b.N)*chunk {
				b.Fatalf("backend got %d bytes, want %d", n, int64(b.N)*chunk)
			}
		})
	}
}

// BenchmarkProxyConnect is one new connection per op: connect, get one
// byte from the real server, see its FIN, close.
func BenchmarkProxyConnect(b *testing.B) {
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			be := startBackend(b, 1, "127.0.0.1:0")
			// The server closes first, so TIME_WAIT stays on the
			// server side and the client's ports do not run out.
			be.setHandle(func(net.Conn) {})
			vip := tg.start(b, be.addr)
			buf := make([]byte, 16)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c, err := net.Dial("tcp", vip.String())
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.ReadFull(c, buf[:1])
				if n != 1 {
					b.Fatalf("read: %v", err)
				}
				c.Read(buf)
				c.Close()
			}
		})
	}
}
