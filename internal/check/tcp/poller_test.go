package tcp

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/fifo"
)

// stuckTarget is a loopback listener that never accepts, with its queue
// full: a connect to it gets no SYN-ACK and hangs until its deadline.
func stuckTarget(t *testing.T) check.Target {
	t.Helper()
	tg, _ := stuckListener(t)
	return tg
}

// stuckListener is stuckTarget and its listening socket.
func stuckListener(t *testing.T) (check.Target, int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4(sa.(*syscall.SockaddrInet4).Addr), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue (backlog 0 holds one) so later SYNs drop.
	for range 2 {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return check.Target{Addr: ap}, fd
}

func openTarget(t *testing.T) check.Target {
	t.Helper()
	return check.Target{Addr: netip.MustParseAddrPort(acceptAndClose(t, "127.0.0.1:0").Addr().String())}
}

// acceptAndClose listens on addr until the test ends, closing every
// connection it accepts (and telling accepted, if given, of each).
func acceptAndClose(t *testing.T, addr string, accepted ...chan<- struct{}) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			for _, ch := range accepted {
				ch <- struct{}{}
			}
		}
	}()
	return ln
}

func testPoller(t *testing.T, max int) *poller {
	t.Helper()
	p, err := newPoller(max)
	if err != nil {
		t.Fatal(err)
	}
	go p.loop()
	return p
}

func result(t *testing.T, ch <-chan check.Result, within time.Duration) check.Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("no result within %v", within)
		return check.Result{}
	}
}

func TestPollerTimeout(t *testing.T) {
	p := testPoller(t, 16)
	target := stuckTarget(t)
	ch := make(chan check.Result, 1)
	start := time.Now()
	p.start(target, 150*time.Millisecond, func(r check.Result) { ch <- r })
	r := result(t, ch, 5*time.Second)
	if took := time.Since(start); r.OK || r.Reason != "connect "+target.Addr.String()+": timeout" || took < 150*time.Millisecond {
		t.Fatalf("result %+v after %v, want a timeout after 150ms", r, took)
	}
	checkEmpty(t, &p.mu, &p.ops, &p.timers)
}

// TestPollerNeverCallsBackInStart: an immediate failure (bind to an
// address this host does not have) is delivered from the loop, so a caller
// holding a lock its callback takes does not deadlock.
func TestPollerNeverCallsBackInStart(t *testing.T) {
	p := testPoller(t, 16)
	var mu sync.Mutex
	ch := make(chan check.Result, 1)
	target := openTarget(t)
	target.BindTo = netip.MustParseAddr("192.0.2.1")
	mu.Lock()
	p.start(target, time.Second, func(r check.Result) { mu.Lock(); ch <- r; mu.Unlock() })
	mu.Unlock()
	r := result(t, ch, 5*time.Second)
	if r.OK || !strings.Contains(r.Reason, "cannot assign requested address") {
		t.Fatalf("result %+v, want a bind failure", r)
	}
}

func TestPollerCancel(t *testing.T) {
	p := testPoller(t, 16)
	checkCancel(t, p.start)
	checkEmpty(t, &p.mu, &p.ops, &p.timers)
}

// TestPollerQueue: with one socket allowed in flight, a second probe waits
// for the first, and its wait counts against its own timeout.
func TestPollerQueue(t *testing.T) {
	p := testPoller(t, 1)
	stuck, open := stuckTarget(t), openTarget(t)
	first, second, third := make(chan check.Result, 1), make(chan check.Result, 1), make(chan check.Result, 1)
	p.start(stuck, 200*time.Millisecond, func(r check.Result) { first <- r })
	p.start(open, time.Second, func(r check.Result) { second <- r })
	p.start(open, 50*time.Millisecond, func(r check.Result) { third <- r })
	if r := result(t, third, 5*time.Second); r.OK || !strings.HasSuffix(r.Reason, "timeout") {
		t.Errorf("third (50ms, queued behind a 200ms probe) = %+v, want a timeout", r)
	}
	if r := result(t, first, 5*time.Second); r.OK {
		t.Errorf("first = %+v, want a timeout", r)
	}
	if r := result(t, second, 5*time.Second); !r.OK {
		t.Errorf("second = %+v, want success once the first left", r)
	}
	// Many probes through two slots all succeed.
	p2 := testPoller(t, 2)
	const n = 200
	all := make(chan check.Result, n)
	for range n {
		p2.start(open, 5*time.Second, func(r check.Result) { all <- r })
	}
	for range n {
		if r := result(t, all, 10*time.Second); !r.OK {
			t.Fatalf("probe failed: %+v", r)
		}
	}
}

// checkCancel starts a probe of a target that never answers, cancels it,
// and checks that its callback never comes.
func checkCancel(t *testing.T, start func(check.Target, time.Duration, func(check.Result)) func()) {
	t.Helper()
	ch := make(chan check.Result, 1)
	cancel := start(stuckTarget(t), 100*time.Millisecond, func(r check.Result) { ch <- r })
	cancel()
	select {
	case r := <-ch:
		t.Fatalf("canceled probe reported %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
}

// checkEmpty checks, under the prober's lock, that it holds no probe in
// flight and no live deadline.
func checkEmpty[K comparable, V any, O prober](t *testing.T, mu *sync.Mutex, ops *map[K]V, timers *fifo.Lanes[O]) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if _, live := timers.Next(); len(*ops) != 0 || live {
		t.Errorf("prober still holds %d probes (a live deadline: %v)", len(*ops), live)
	}
}

// TestCheckerBatches: a connect TCP_CHECK started by the Runner's Start
// only queues; the connect leaves at the Flush of its Flusher (the
// Runner flushes once per tick, after letting go of its lock).
func TestCheckerBatches(t *testing.T) {
	accepted := make(chan struct{}, 1)
	ln := acceptAndClose(t, "127.0.0.1:0", accepted)
	var c check.Batcher = New(check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())})
	ch := make(chan check.Result, 1)
	c.Start(3*time.Second, 7, func(tag uint64, r check.Result) {
		if tag != 7 {
			t.Errorf("done called with tag %d, want 7", tag)
		}
		ch <- r
	})
	select {
	case <-accepted:
		t.Fatal("connected before Flush")
	case r := <-ch:
		t.Fatalf("result before Flush: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	c.Flusher().Flush()
	if r := result(t, ch, 5*time.Second); !r.OK {
		t.Fatalf("after Flush: %+v, want up", r)
	}
	<-accepted
}
