package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestIdleConnectionsMemory measures what idle proxied connections cost the
// proxy process: Go heap and resident memory per connection. Clients and
// the real server live in a child process, so the proxy's descriptor limit
// goes to its own two sockets per connection.
//
//	KEEPVS_MEMTEST=1 go test -run TestIdleConnectionsMemory -v ./internal/dataplane/proxy/
//
// KEEPVS_MEMTEST_N sets the number of connections (default 100000, or as
// many as RLIMIT_NOFILE allows, the result then extrapolated).
func TestIdleConnectionsMemory(t *testing.T) {
	if os.Getenv("KEEPVS_MEMTEST") == "" {
		t.Skip("set KEEPVS_MEMTEST=1 to measure idle connection memory")
	}
	limit := raiseNofile(t)
	want := 100_000
	if s := os.Getenv("KEEPVS_MEMTEST_N"); s != "" {
		want, _ = strconv.Atoi(s)
	}
	n := min(want, int(limit-200)/2)
	if n < want {
		t.Logf("RLIMIT_NOFILE is %d: measuring %d connections and extrapolating to %d", limit, n, want)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestMemHelper$")
	child.Env = append(os.Environ(), "KEEPVS_MEMHELPER=1")
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	out := bufio.NewScanner(stdout)
	line := func() string {
		for out.Scan() {
			if f := strings.Fields(out.Text()); len(f) == 2 && (f[0] == "backends" || f[0] == "backend" || f[0] == "dialed") {
				return f[1]
			}
		}
		t.Fatalf("helper ended: %v", out.Err())
		return ""
	}
	// One 4-tuple family (source IP, real server) has ~28k ephemeral ports:
	// the helper listens on several real servers and dials from several
	// loopback addresses so 100,000 connections fit.
	nb, _ := strconv.Atoi(line())
	var bes []*backend
	for range nb {
		bes = append(bes, &backend{addr: netip.MustParseAddrPort(line())})
	}

	p := startProxy(t, Options{})
	vip := freePort(t, "127.0.0.1")
	addService(t, p, tcpService(vip, "rr"), bes)

	heap0, rss0 := memNow()
	slab0 := slab()
	start := time.Now()
	fmt.Fprintf(stdin, "%s %d\n", vip, n)
	got, _ := strconv.Atoi(line())
	if got != n {
		t.Fatalf("helper opened %d of %d connections", got, n)
	}
	eventually(t, "all connections ESTABLISHED", func() bool {
		ss, _ := p.Services(t.Context())
		var active uint32
		for _, d := range ss[0].Dests {
			active += d.ActiveConns
		}
		return active == uint32(n)
	})
	setup := time.Since(start)
	heap1, rss1 := memNow()
	slab1 := slab()
	heapPer := float64(heap1-heap0) / float64(n)
	rssPer := float64(rss1-rss0) / float64(n)
	t.Logf("%d idle proxied connections opened in %v", n, setup.Round(time.Millisecond))
	t.Logf("Go heap in use: %.0f B/conn (%d -> %d MiB)", heapPer, heap0>>20, heap1>>20)
	t.Logf("RSS: %.0f B/conn (%d -> %d MiB)", rssPer, rss0>>20, rss1>>20)
	// Kernel memory is host-wide and counts all four sockets of each
	// proxied connection (client, the proxy's two, server), not just the
	// proxy's; it is not in the proxy's RSS.
	t.Logf("kernel slab, host-wide: %.0f B/conn (4 sockets each)", float64(int64(slab1)-int64(slab0))/float64(n))
	t.Logf("extrapolated to %d connections: heap %.0f MiB, RSS %.0f MiB", want, heapPer*float64(want)/(1<<20), rssPer*float64(want)/(1<<20))
	if total := rssPer * float64(want); total > 1<<30 {
		t.Errorf("%d idle connections would take %.0f MiB RSS, over 1 GiB", want, total/(1<<20))
	}
}

// TestMemHelper is the child of TestIdleConnectionsMemory: a real server
// that holds every connection it accepts, and the clients.
func TestMemHelper(t *testing.T) {
	if os.Getenv("KEEPVS_MEMHELPER") == "" {
		t.Skip("helper process for TestIdleConnectionsMemory")
	}
	raiseNofile(t)
	const perTuple = 20000 // under the 28k ephemeral ports of one address pair
	var held []net.Conn
	var mu sync.Mutex
	nb := 5
	fmt.Printf("\nbackends %d\n", nb)
	for range nb {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		fmt.Printf("\nbackend %s\n", ln.Addr())
	}
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return
	}
	var vip string
	var n int
	fmt.Sscan(in.Text(), &vip, &n)
	var clients []net.Conn
	for i := range n {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i/perTuple))}
		c, err := (&net.Dialer{LocalAddr: src}).Dial("tcp", vip)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			break
		}
		clients = append(clients, c)
	}
	fmt.Printf("\ndialed %d\n", len(clients))
	for in.Scan() {
	}
	runtime.KeepAlive(clients)
	mu.Lock()
	runtime.KeepAlive(held)
	mu.Unlock()
}

func raiseNofile(t *testing.T) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && rl.Max < 1<<20 {
		// Root may raise the hard limit (up to fs.nr_open), unless a
		// sandbox takes CAP_SYS_RESOURCE away: then what is allowed.
		up := rl
		up.Max, up.Cur = 1<<20, 1<<20
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			return up.Cur
		}
		t.Logf("cannot raise RLIMIT_NOFILE past %d here (no CAP_SYS_RESOURCE)", rl.Max)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	return rl.Cur
}

// slab is the kernel's slab memory (/proc/meminfo Slab).
func slab() uint64 {
	info, _ := os.ReadFile("/proc/meminfo")
	for l := range bytes.Lines(info) {
		if f := strings.Fields(string(l)); len(f) >= 2 && f[0] == "Slab:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// memNow is the Go heap in use and the resident set after a collection.
func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, _ := os.ReadFile("/proc/self/status")
	for l := range bytes.Lines(status) {
		if f := strings.Fields(string(l)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return ms.HeapInuse, rss
}
