package vrrpd_test

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
	"github.com/keepvs/keepvs/internal/vrrpd"
)

// pairLAN is an in-memory LAN of transport.Pollers over unix datagram
// socket pairs, so a node's loop runs its real epoll path without root
// or namespaces. Each message carries its sender's IPv4 address in
// front.
type pairLAN struct {
	conns atomic.Pointer[[]*pairConn]
}

type pairConn struct {
	lan    *pairLAN
	addr   netip.Addr
	rd, wr int // the node reads rd; the others write wr
	buf    [2048]byte
	closed atomic.Bool
}

func (l *pairLAN) conn(t *testing.T, addr netip.Addr) *pairConn {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Closed only when the test is over: a peer's loop may still send.
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	c := &pairConn{lan: l, addr: addr, rd: fds[0], wr: fds[1]}
	var all []*pairConn
	if p := l.conns.Load(); p != nil {
		all = append(all, *p...)
	}
	all = append(all, c)
	l.conns.Store(&all)
	return c
}

func (c *pairConn) Fd() int { return c.rd }

func (c *pairConn) ReadNow(b []byte) (int, packet.RecvMeta, error) {
	if c.closed.Load() {
		return 0, packet.RecvMeta{}, transport.ErrClosed
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(c.rd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return 0, packet.RecvMeta{}, transport.ErrWouldBlock
	}
	if e != 0 || n < 4 {
		return 0, packet.RecvMeta{}, e
	}
	src := netip.AddrFrom4([4]byte(b[:4]))
	return copy(b, b[4:n]), packet.RecvMeta{Src: src, Dst: packet.GroupIPv4, TTL: packet.TTL}, nil
}

func (c *pairConn) ReadFrom([]byte) (int, packet.RecvMeta, error) {
	return 0, packet.RecvMeta{}, errors.New("pairConn: ReadFrom: use ReadNow")
}

// WriteTo sends to every other open conn; the loop is its only caller,
// so c.buf needs no lock.
func (c *pairConn) WriteTo(msg []byte, _ netip.Addr) error {
	if c.closed.Load() {
		return transport.ErrClosed
	}
	a := c.addr.As4()
	copy(c.buf[:4], a[:])
	n := 4 + copy(c.buf[4:], msg)
	for _, p := range *c.lan.conns.Load() {
		if p != c && !p.closed.Load() {
			unix.RawSyscall6(unix.SYS_SENDTO, uintptr(p.wr), uintptr(unsafe.Pointer(&c.buf[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		}
	}
	return nil
}

func (c *pairConn) Close() error {
	c.closed.Store(true)
	return nil
}

func startPairNode(t *testing.T, lan *pairLAN, addr string, prio int, opt vrrpd.Options) *hubNode {
	t.Helper()
	return runNode(t, addr, prio, "0.01", opt, func(src netip.Addr, _ transport.Options) transport.Conn { return lan.conn(t, src) })
}

// startMasterBackup starts a master (10.0.0.1, priority 150) and a backup
// (10.0.0.2, 100) at advert_int 0.01 on one pair LAN, and returns once
// the master holds the VIP.
func startMasterBackup(t *testing.T) (master, backup *hubNode) {
	t.Helper()
	lan := &pairLAN{}
	a := startPairNode(t, lan, "10.0.0.1", 150, vrrpd.Options{})
	b := startPairNode(t, lan, "10.0.0.2", 100, vrrpd.Options{})
	waitFor(t, "a master", 2*time.Second, func() bool { return a.ann.holds(netip.MustParseAddr("10.0.0.100")) })
	return a, b
}

// TestLoopDoesNotAllocate runs a master and a backup at advert_int 0.01
// and counts the process's allocations while they exchange adverts: the
// loop receives, times and sends without allocating, so the garbage
// collector has no reason to stop it.
func TestLoopDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	_, b := startMasterBackup(t)
	time.Sleep(200 * time.Millisecond)
	before := b.node.Status()[0].Stats.RcvdAdvertisements
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	time.Sleep(time.Second)
	runtime.ReadMemStats(&m1)
	got := b.node.Status()[0].Stats.RcvdAdvertisements - before
	if got < 50 {
		t.Fatalf("the backup received %d adverts in a second, want about 100", got)
	}
	t.Logf("%d allocations in the process while %d adverts went from master to backup", m1.Mallocs-m0.Mallocs, got)
	if allocs := m1.Mallocs - m0.Mallocs; allocs > 20 {
		t.Errorf("%d allocations while %d adverts went from master to backup, want none per advert", allocs, got)
	}
	if b.ann.holds(netip.MustParseAddr("10.0.0.100")) {
		t.Error("the backup holds the vip")
	}
}

// rtThreads lists this process's threads in SCHED_RR as "tid:priority".
func rtThreads(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var rr []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread just ended
		}
		// Fields after the command's closing parenthesis start at 3;
		// rt_priority is field 40, policy 41.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 39 {
			continue
		}
		if policy, _ := strconv.Atoi(f[38]); policy == unix.SCHED_RR {
			rr = append(rr, e.Name()+":"+f[37])
		}
	}
	return rr
}

// TestRealtimeThread checks the VRRP thread's scheduling: SCHED_RR at
// the default priority, one thread only, gone with the node; and normal
// scheduling with NoRealtime.
func TestRealtimeThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_NICE) for realtime scheduling")
	}
	if rr := rtThreads(t); len(rr) != 0 {
		t.Fatalf("realtime threads before the node started: %v", rr)
	}
	lan := &pairLAN{}
	n := startPairNode(t, lan, "10.0.0.1", 150, vrrpd.Options{})
	waitFor(t, "one SCHED_RR thread", 2*time.Second, func() bool { return len(rtThreads(t)) == 1 })
	if rr := rtThreads(t); !strings.HasSuffix(rr[0], ":"+strconv.Itoa(vrrpd.DefaultRTPriority)) {
		t.Errorf("realtime thread %v, want priority %d", rr, vrrpd.DefaultRTPriority)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_RTTIME, &lim); err != nil || lim.Max != vrrpd.DefaultRlimitRTTime || lim.Cur != vrrpd.DefaultRlimitRTTime {
		t.Errorf("RLIMIT_RTTIME %+v (%v), want %d/%d", lim, err, vrrpd.DefaultRlimitRTTime, vrrpd.DefaultRlimitRTTime)
	}
	n.stop()
	waitFor(t, "no SCHED_RR thread after stop", 2*time.Second, func() bool { return len(rtThreads(t)) == 0 })

	n = startPairNode(t, lan, "10.0.0.2", 150, vrrpd.Options{NoRealtime: true})
	waitFor(t, "the node master", 2*time.Second, func() bool { return n.ann.holds(netip.MustParseAddr("10.0.0.100")) })
	if rr := rtThreads(t); len(rr) != 0 {
		t.Errorf("realtime threads with NoRealtime: %v", rr)
	}
}

// syncBuffer is a log sink safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSchedulingIsLogged checks the node says once how its VRRP thread
// is scheduled: realtime as root, and, where realtime is refused (run
// the test binary as another user), normal scheduling with a warning.
func TestSchedulingIsLogged(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	n := startPairNode(t, &pairLAN{}, "10.0.0.1", 150, vrrpd.Options{Log: log})
	waitFor(t, "master", 2*time.Second, func() bool { return n.ann.holds(netip.MustParseAddr("10.0.0.100")) })
	n.stop()
	want := `level=WARN msg="vrrp thread in normal scheduling: realtime refused`
	if os.Geteuid() == 0 {
		want = `level=INFO msg="vrrp thread realtime" policy=SCHED_RR priority=1 rlimit_rttime_us=1000000 configured=false`
	}
	if got := buf.String(); strings.Count(got, "vrrp thread") != 1 || !strings.Contains(got, want) {
		t.Errorf("log does not say once %s:\n%s", want, got)
	}
}

// TestLateMasterDownListensAgain stalls master and backup together, as a
// host that stops the whole machine for 60 ms does, and lets the master
// go on a millisecond after the backup: the backup finds its master down
// timer long expired, listens once more, hears the master, and does not
// take over.
func TestLateMasterDownListensAgain(t *testing.T) {
	if raceEnabled {
		t.Skip("timing test: the race detector slows the loops down")
	}
	a, b := startMasterBackup(t)
	time.Sleep(100 * time.Millisecond)
	for round := range 5 {
		resume := time.Now().Add(60 * time.Millisecond)
		done := make(chan struct{})
		go func() { a.node.Stall(resume.Add(time.Millisecond)); close(done) }()
		b.node.Stall(resume)
		<-done
		time.Sleep(100 * time.Millisecond)
		if n := b.ann.adds(); n != 0 {
			t.Fatalf("round %d: the backup took over after a stall of both (%d vip adds)", round, n)
		}
	}
}
