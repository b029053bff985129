package check_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/check/tcp"
	"github.com/keepvs/keepvs/internal/clock"
)

const benchListeners = 100

// TestBenchListeners is the other process of TestRunner10k: it serves the
// TCP ports the checks connect to, so the checker's CPU is measured alone.
func TestBenchListeners(t *testing.T) {
	if os.Getenv("KEEPVS_CHECKBENCH_LISTENERS") == "" {
		t.Skip("helper process of TestRunner10k")
	}
	var ports []string
	for range benchListeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println("PORTS " + strings.Join(ports, " "))
	// Serve until the parent closes stdin.
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

func rssKB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// TestRunner10k runs 10,000 TCP_CHECK real servers at delay_loop 1s on the
// real clock against listeners in another process, and reports the CPU
// share of one core, memory, and probes started 100ms or more late.
//
//	KEEPVS_CHECKBENCH=1 go test -run TestRunner10k -v ./internal/check/
//	KEEPVS_CHECKBENCH=1 KEEPVS_CHECKBENCH_SYN=1 go test -run TestRunner10k -v ./internal/check/  # half-open, as root
func TestRunner10k(t *testing.T) {
	if os.Getenv("KEEPVS_CHECKBENCH") == "" {
		t.Skip("set KEEPVS_CHECKBENCH=1 to run the 10k-real-server benchmark (~25s)")
	}
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("KEEPVS_CHECKBENCH_N")); err == nil && v > 0 {
		n = v
	}
	run := 20 * time.Second
	if v, err := time.ParseDuration(os.Getenv("KEEPVS_CHECKBENCH_FOR")); err == nil {
		run = v
	}

	helper := exec.Command(os.Args[0], "-test.run=^TestBenchListeners$", "-test.v")
	helper.Env = append(os.Environ(), "KEEPVS_CHECKBENCH_LISTENERS=1")
	stdin, _ := helper.StdinPipe()
	stdout, _ := helper.StdoutPipe()
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		helper.Wait()
	}()
	var ports []uint16
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "PORTS "); ok {
			for _, p := range strings.Fields(rest) {
				v, _ := strconv.Atoi(p)
				ports = append(ports, uint16(v))
			}
			break
		}
	}
	if len(ports) != benchListeners {
		t.Fatalf("helper gave %d ports", len(ports))
	}
	go func() {
		for sc.Scan() {
		}
	}()

	var downs atomic.Int64
	var slow [4]atomic.Int64
	onEvent := func(e check.Event) {
		if !e.Up {
			if downs.Add(1) <= 3 {
				t.Logf("down: %s: %s", e.RealServer, e.Reason)
			}
		}
	}
	r := check.NewRunner(check.Config{Clock: clock.Real{}, Grace: check.DefaultGrace, OnEvent: onEvent})
	lo := netip.MustParseAddr("127.0.0.1")
	var syn *tcp.SynProber
	if os.Getenv("KEEPVS_CHECKBENCH_SYN") != "" {
		// The daemon's --tcp-check=syn, with its slack: root only.
		var err error
		if syn, err = tcp.OpenSynProber(tcp.SynOptions{}); err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { syn.Run(sctx); close(ran) }()
		defer func() { stop(); <-ran; syn.Close() }()
		r = check.NewRunner(check.Config{Clock: clock.Real{}, Grace: check.DefaultGrace, Slack: check.DefaultSlack, Grid: check.DefaultGrid, OnEvent: onEvent})
	}
	for i := range n {
		tg := check.Target{Addr: netip.AddrPortFrom(lo, ports[i%len(ports)])}
		p := tcp.New(tg)
		var c check.Checker = timedStarter{timed{p, &slow}, p}
		switch {
		case syn != nil:
			b := tcp.NewSyn(syn, tg).(check.Batcher)
			c = timedBatcher{timedStarter{timed{b, &slow}, b}, b}
		case os.Getenv("KEEPVS_CHECKBENCH_GOROUTINES") != "":
			c = timed{p, &slow} // a goroutine per probe, as before the poller
		}
		if _, err := r.Add(check.RealServer{ID: fmt.Sprint("rs", i), Weight: 1, Checks: []check.Spec{{
			Name: "TCP_CHECK", Checker: c, Timeout: 3 * time.Second, DelayLoop: time.Second,
			Retry: 1, DelayBeforeRetry: time.Second, Warmup: time.Second,
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // past the warmup
	st0, wall0 := r.Stats(), time.Now()
	u0, s0 := cpuTime()
	time.Sleep(run)
	st1, wall := r.Stats(), time.Since(wall0)
	u1, s1 := cpuTime()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := rssKB()
	cancel()
	r.Stop()

	probes := st1.Probes - st0.Probes
	user, sys := float64(u1-u0)/float64(wall), float64(s1-s0)/float64(wall)
	t.Logf("%d real servers, delay_loop 1s, %v: %d probes (%.0f/s), CPU %.1f%% of one core (user %.1f%%, system %.1f%%), RSS %d MiB, Go heap in use %d MiB, sys %d MiB; late >=100ms: %d (max %v over the whole run); real servers down: %d",
		n, wall.Round(time.Millisecond), probes, float64(probes)/wall.Seconds(), 100*(user+sys), 100*user, 100*sys,
		rss/1024, ms.HeapInuse>>20, ms.Sys>>20, st1.Late, st1.MaxLate.Round(time.Millisecond), downs.Load())
	t.Logf("probe durations: <10ms %d, <100ms %d, <1s %d, >=1s %d", slow[0].Load(), slow[1].Load(), slow[2].Load(), slow[3].Load())
	if downs.Load() != 0 {
		t.Errorf("%d real servers went down", downs.Load())
	}
}

// timed counts probe durations by decade.
type timed struct {
	check.Checker
	n *[4]atomic.Int64
}

func (c timed) Check(ctx context.Context) check.Result {
	start := time.Now()
	res := c.Checker.Check(ctx)
	c.count(time.Since(start))
	return res
}

// timedStarter keeps a Starter's way of probing.
type timedStarter struct {
	timed
	s check.Starter
}

func (c timedStarter) Start(timeout time.Duration, tag uint64, done check.Done) func() {
	start := time.Now()
	return c.s.Start(timeout, tag, func(tag uint64, r check.Result) {
		c.count(time.Since(start))
		done(tag, r)
	})
}

// timedBatcher keeps a Batcher's way too: the Runner flushes its queue.
type timedBatcher struct {
	timedStarter
	b check.Batcher
}

func (c timedBatcher) Flusher() check.Flusher { return c.b.Flusher() }

func (c timed) count(d time.Duration) {
	switch {
	case d < 10*time.Millisecond:
		c.n[0].Add(1)
	case d < 100*time.Millisecond:
		c.n[1].Add(1)
	case d < time.Second:
		c.n[2].Add(1)
	default:
		c.n[3].Add(1)
	}
}
