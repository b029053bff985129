package tcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/check"
)

// testSynProber opens a SynProber and runs it for the test; without root
// (CAP_NET_RAW for the raw sockets) the test is skipped. It reads answers
// the way mode says (default ReceiveAuto).
func testSynProber(t *testing.T, run bool, mode ...ReceiveMode) *SynProber {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("half-open TCP_CHECK needs root (CAP_NET_RAW) for its raw sockets")
	}
	m := ReceiveAuto
	if len(mode) > 0 {
		m = mode[0]
	}
	p, err := OpenSynProber(SynOptions{Ports: 64, Receive: m})
	if m == ReceiveEBPF && (errors.Is(err, errNoTC) || errors.Is(err, errFraming)) {
		t.Skipf("no eBPF receive here (CAP_BPF, a kernel with tcx, 6.6+, and interfaces it reads needed): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[ReceiveMode]string{ReceiveEBPF: "eBPF program", ReceiveRing: "packet ring", ReceiveRaw: "raw socket"}[m]
	if want != "" && !strings.HasPrefix(p.Receive(), want) {
		t.Fatalf("answers read from %q, want %q", p.Receive(), want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	if run {
		go func() { p.Run(ctx); close(ran) }()
	} else {
		close(ran)
	}
	t.Cleanup(func() { cancel(); <-ran; p.Close() })
	return p
}

// receiveModes runs f once for each way answers are read.
func receiveModes(t *testing.T, f func(t *testing.T, mode ReceiveMode)) {
	t.Run("ebpf", func(t *testing.T) { f(t, ReceiveEBPF) })
	t.Run("ring", func(t *testing.T) { f(t, ReceiveRing) })
	t.Run("raw", func(t *testing.T) { f(t, ReceiveRaw) })
}

func synProbe(t *testing.T, p *SynProber, tg check.Target, timeout time.Duration) check.Result {
	t.Helper()
	ch := make(chan check.Result, 1)
	p.Start(tg, timeout, func(r check.Result) { ch <- r })
	return result(t, ch, timeout+5*time.Second)
}

// closedPort is a port nothing listens on at addr: bound by a socket
// that never listens, until the test ends — a port merely closed again
// could be taken meanwhile by a listener of a test running in parallel.
func closedPort(t *testing.T, network, addr string) check.Target {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: ap.Addr().As16()}
	if network == "tcp4" {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ap.Addr().As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := 0
	switch g := got.(type) {
	case *unix.SockaddrInet4:
		port = g.Port
	case *unix.SockaddrInet6:
		port = g.Port
	}
	return check.Target{Addr: netip.AddrPortFrom(ap.Addr(), uint16(port))}
}

func TestSyn(t *testing.T) { receiveModes(t, testSyn) }

func testSyn(t *testing.T, mode ReceiveMode) {
	p := testSynProber(t, true, mode)
	open := openTarget(t)
	tests := []struct {
		name    string
		target  check.Target
		timeout time.Duration
		ok      bool
		reason  string
		within  time.Duration
	}{
		{"listener", open, 3 * time.Second, true, "", time.Second},
		{"bindto loopback", check.Target{Addr: open.Addr, BindTo: netip.MustParseAddr("127.0.0.1")}, 3 * time.Second, true, "", time.Second},
		{"closed port: RST, before the timeout", closedPort(t, "tcp4", "127.0.0.1:0"), 3 * time.Second, false, "connection refused", time.Second},
		{"no answer: down at the timeout", stuckTarget(t), 300 * time.Millisecond, false, "timeout", 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := synProbe(t, p, tt.target, tt.timeout)
			if r.OK != tt.ok || !strings.HasSuffix(r.Reason, tt.reason) {
				t.Errorf("probe = %+v, want ok=%v reason ending %q", r, tt.ok, tt.reason)
			}
			if r.Duration > tt.within {
				t.Errorf("probe took %v, want under %v", r.Duration, tt.within)
			}
			if tt.reason == "timeout" && r.Duration < tt.timeout {
				t.Errorf("timed out after %v, before its %v", r.Duration, tt.timeout)
			}
		})
	}
}

// TestSynNoConnection: a half-open probe never completes a connection,
// so the real server's application never sees it.
func TestSynNoConnection(t *testing.T) {
	p := testSynProber(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tg := check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}
	for range 20 {
		if r := synProbe(t, p, tg, time.Second); !r.OK {
			t.Fatalf("probe = %+v, want up", r)
		}
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the listener accepted a connection from a half-open probe")
	}
}

func TestSynIPv6(t *testing.T) { receiveModes(t, testSynIPv6) }

func testSynIPv6(t *testing.T, mode ReceiveMode) {
	p := testSynProber(t, true, mode)
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	open := check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}
	closed := closedPort(t, "tcp6", "[::1]:0")
	if r := synProbe(t, p, open, 3*time.Second); !r.OK {
		t.Errorf("listener on ::1: %+v, want up", r)
	}
	if r := synProbe(t, p, closed, 3*time.Second); r.OK || !strings.HasSuffix(r.Reason, "connection refused") || r.Duration > time.Second {
		t.Errorf("closed port on ::1: %+v, want refused at once", r)
	}
}

// TestSynMany: thousands of probes at once over many listeners and
// closed ports, several to the same address and port at the same time,
// each get their own verdict.
func TestSynMany(t *testing.T) { receiveModes(t, testSynMany) }

func testSynMany(t *testing.T, mode ReceiveMode) {
	p := testSynProber(t, true, mode)
	var targets []check.Target
	var want []bool
	for i := range 20 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 1+i%4))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		targets = append(targets, check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())})
		want = append(want, true)
		targets = append(targets, closedPort(t, "tcp4", fmt.Sprintf("127.0.0.%d:0", 1+i%4)))
		want = append(want, false)
	}
	const rounds = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for range rounds {
		for i, tg := range targets {
			wg.Add(1)
			p.Start(tg, 3*time.Second, func(r check.Result) {
				defer wg.Done()
				if r.OK != want[i] {
					mu.Lock()
					if bad++; bad < 5 {
						t.Errorf("%v: %+v, want ok=%v", tg.Addr, r, want[i])
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d of %d probes wrong", bad, rounds*len(targets))
	}
	checkEmpty(t, &p.mu, &p.ops, &p.timers)
}

func TestSynCancel(t *testing.T) {
	p := testSynProber(t, true)
	checkCancel(t, p.Start)
	checkEmpty(t, &p.mu, &p.ops, &p.timers)
}

// TestSynNeverCallsBackInStart: a probe that fails at once (a source
// address this host does not have) is delivered from Run.
func TestSynNeverCallsBackInStart(t *testing.T) {
	p := testSynProber(t, true)
	var mu sync.Mutex
	ch := make(chan check.Result, 1)
	tg := openTarget(t)
	tg.BindTo = netip.MustParseAddr("192.0.2.1")
	mu.Lock()
	p.Start(tg, time.Second, func(r check.Result) { mu.Lock(); ch <- r; mu.Unlock() })
	mu.Unlock()
	if r := result(t, ch, 5*time.Second); r.OK || r.Duration > 500*time.Millisecond {
		t.Fatalf("result %+v, want a failure at once", r)
	}
}

// TestSynFilter: the kernel's filter keeps the host's other TCP traffic
// off the raw sockets and the packet rings; only the answer to our SYN
// gets through.
func TestSynFilter(t *testing.T) { receiveModes(t, testSynFilter) }

func testSynFilter(t *testing.T, mode ReceiveMode) {
	p := testSynProber(t, false, mode) // nothing reads the answers but the test
	raw := mode == ReceiveRaw
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		// read is the next answer, or nil.
		var read func() []byte
		if raw {
			fd := map[string]int{"tcp4": p.fd4, "tcp6": p.fd6}[network]
			buf := make([]byte, 256)
			read = func() []byte {
				n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
				if err != nil {
					return nil
				}
				return buf[:n]
			}
		} else {
			var r func(func([]byte)) bool
			switch {
			case mode == ReceiveEBPF:
				r = p.tc.read
			case network == "tcp4" && p.r4 != nil:
				r = p.r4.read
			case network == "tcp6" && p.r6 != nil:
				r = p.r6.read
			}
			var got [][]byte
			if r != nil {
				read = func() []byte {
					r(func(pkt []byte) { got = append(got, slices.Clone(pkt)) })
					if len(got) == 0 {
						return nil
					}
					pkt := got[0]
					got = got[1:]
					return pkt
				}
			}
		}
		ln, err := net.Listen(network, addr)
		if err != nil || read == nil {
			t.Logf("%s: skipped, no such loopback (%v)", network, err)
			continue
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(c, c)
				c.Close()
			}
		}()
		// Unrelated traffic: handshakes, data, FINs; and a RST.
		for range 5 {
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("hello"))
			io.ReadFull(c, make([]byte, 5))
			c.Close()
		}
		if c, err := net.Dial(network, closedPort(t, network, addr).Addr.String()); err == nil {
			c.Close()
		}
		// A ring hands a block over ringWait after its first packet.
		time.Sleep(50 * time.Millisecond)
		if b := read(); b != nil {
			t.Errorf("%s: unrelated traffic got through: % x", network, b)
		}
		// Our own probe's answer does.
		tg := check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}
		cancel := p.Start(tg, time.Second, func(check.Result) {})
		defer cancel()
		time.Sleep(50 * time.Millisecond)
		b := read()
		if b == nil {
			t.Fatalf("%s: the SYN-ACK did not get through", network)
		}
		var r reply
		switch {
		case mode == ReceiveEBPF:
			r, _ = parseRecord(b)
		case network == "tcp4":
			r, _ = parseReply4(b)
		case raw: // the address comes with recvfrom
			r, _ = parseSegment(b)
			r.remote = netip.AddrPortFrom(tg.Addr.Addr(), r.remote.Port())
		default:
			r, _ = parseReply6(b)
		}
		if first, last := p.Ports(); r.flags != tcpSYN|tcpACK || r.localPort < first || r.localPort > last || r.remote != tg.Addr {
			t.Errorf("%s: got flags %#x from %v to port %d, want a SYN-ACK from %v to %d-%d", network, r.flags, r.remote, r.localPort, tg.Addr, first, last)
		}
		if b := read(); b != nil {
			t.Errorf("%s: more than the SYN-ACK got through: % x", network, b)
		}
	}
}

// TestSynRingFallback: where a packet ring cannot be set up, the prober
// reads answers from raw sockets instead, says why, and still probes.
func TestSynRingFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("half-open TCP_CHECK needs root (CAP_NET_RAW) for its raw sockets")
	}
	defer func(f func(bool, []bpf.RawInstruction) (*ring, error)) { ringOpener = f }(ringOpener)
	ringOpener = func(bool, []bpf.RawInstruction) (*ring, error) { return nil, errors.New("no packet sockets here") }
	p, err := OpenSynProber(SynOptions{Ports: 64, Receive: ReceiveRing})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran; p.Close() }()
	if want := "raw socket (no packet ring: no packet sockets here)"; p.Receive() != want {
		t.Fatalf("Receive() = %q, want %q", p.Receive(), want)
	}
	if p.r4 != nil || p.f4 == nil {
		t.Fatal("a ring is open, or the raw socket is not read")
	}
	if r := synProbe(t, p, openTarget(t), 3*time.Second); !r.OK {
		t.Fatalf("probe = %+v, want up", r)
	}
	if r := synProbe(t, p, closedPort(t, "tcp4", "127.0.0.1:0"), 3*time.Second); r.OK || !strings.HasSuffix(r.Reason, "connection refused") {
		t.Fatalf("probe of a closed port = %+v, want refused", r)
	}
}

// TestSynReservedPorts: the pool's ports are taken for everyone else.
func TestSynReservedPorts(t *testing.T) {
	p := testSynProber(t, false)
	first, last := p.Ports()
	if p.Reserved() < 16 || int(last-first+1) > 4*64 {
		t.Fatalf("%d ports reserved in %d-%d, want 16-64 within 256", p.Reserved(), first, last)
	}
	for _, port := range []uint16{first, last} {
		if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			t.Errorf("port %d is reserved but 127.0.0.1:%d could be bound", port, port)
		}
	}
}

// TestSynCheckerReuse: a SynChecker's probes, one after the other, run
// in its own memory: a probe canceled before its SYN left sends none and
// reports nothing, even when the next one starts at once in the same
// memory (its stale entries in the prober's lists are dead), and the
// next keeps its own timeout and tag.
func TestSynCheckerReuse(t *testing.T) {
	p := testSynProber(t, true)
	c := NewSyn(p, stuckTarget(t)).(*SynChecker)
	type end struct {
		tag uint64
		r   check.Result
		at  time.Time
	}
	ch := make(chan end, 2)
	done := func(tag uint64, r check.Result) { ch <- end{tag, r, time.Now()} }
	cancel := c.Start(100*time.Millisecond, 1, done)
	cancel()
	start := time.Now()
	c.Start(400*time.Millisecond, 2, done)
	p.Flush()
	select {
	case e := <-ch:
		if e.tag != 2 || e.r.OK || !strings.HasSuffix(e.r.Reason, "timeout") || e.at.Sub(start) < 400*time.Millisecond {
			t.Fatalf("probe %d ended after %v with %+v, want probe 2 timed out after 400ms", e.tag, e.at.Sub(start), e.r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no result")
	}
	select {
	case e := <-ch:
		t.Fatalf("a second result: probe %d %+v", e.tag, e.r)
	case <-time.After(200 * time.Millisecond):
	}
	checkEmpty(t, &p.mu, &p.ops, &p.timers)
}

// TestSynCheckerAllocs: a SynChecker's probe, started as the Runner
// starts it, costs no heap allocation.
func TestSynCheckerAllocs(t *testing.T) {
	p := testSynProber(t, true)
	c := NewSyn(p, openTarget(t)).(*SynChecker)
	ch := make(chan check.Result, 1)
	done := func(_ uint64, r check.Result) { ch <- r }
	probe := func() {
		c.Start(time.Second, 0, done)
		p.Flush()
		if r := <-ch; !r.OK {
			t.Fatalf("probe failed: %+v", r)
		}
	}
	probe() // the prober's slices and maps grown
	n := testing.AllocsPerRun(200, probe)
	t.Logf("%.2f allocations per probe", n)
	if n > allocSlack {
		t.Errorf("%.2f allocations per probe, want none", n)
	}
}

// TestSynResend: a SYN that gets no answer goes again after a second, as
// a connect's does, so a probe whose timeout leaves room outlives a lost
// packet: the first SYN meets a listener whose accept queue is full (the
// kernel drops it), the queue is emptied, and the second SYN is answered.
func TestSynResend(t *testing.T) { receiveModes(t, testSynResend) }

func testSynResend(t *testing.T, mode ReceiveMode) {
	p := testSynProber(t, true, mode)
	tg, fd := stuckListener(t)
	drops := tcpStat(t, "TcpExt:", "ListenOverflows")
	ch := make(chan check.Result, 1)
	p.Start(tg, 2500*time.Millisecond, func(r check.Result) { ch <- r })
	// The first SYN dropped (the kernel counts it), the queue emptied.
	for deadline := time.Now().Add(2 * time.Second); tcpStat(t, "TcpExt:", "ListenOverflows") == drops; {
		if time.Now().After(deadline) {
			t.Fatal("the full listener dropped no SYN")
		}
		runtime.Gosched()
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	for {
		c, _, err := unix.Accept(fd)
		if err != nil {
			break
		}
		t.Cleanup(func() { unix.Close(c) })
	}
	r := result(t, ch, 5*time.Second)
	if !r.OK || r.Duration < 900*time.Millisecond || r.Duration > 2*time.Second {
		t.Fatalf("probe = %+v, want up after the SYN sent again at 1s", r)
	}
	checkEmpty(t, &p.mu, &p.ops, &p.timers)
}

// TestSynRunSleeps: probes started by Queue and Flush, as the Runner's
// ticks do, every 10 ms, all answered: Run (deadlines, resends) is not
// woken for them, and does not wake to look at what Flush sent (it woke
// every 50 ms for that: ten times in this test).
func TestSynRunSleeps(t *testing.T) {
	p := testSynProber(t, true)
	open := openTarget(t)
	ch := make(chan check.Result, 1)
	looks := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.looks
	}
	for looks() == 0 {
		runtime.Gosched()
	}
	before := looks()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range 50 {
		<-tick.C
		p.Queue(open, 3*time.Second, func(r check.Result) { ch <- r })
		p.Flush()
		if r := result(t, ch, 5*time.Second); !r.OK {
			t.Fatalf("probe = %+v, want up", r)
		}
	}
	if n := looks() - before; n > 1 {
		t.Errorf("Run looked %d times in 50 answered probes over 0.5 s, want at most 1 (its idle wake-up)", n)
	}
}
