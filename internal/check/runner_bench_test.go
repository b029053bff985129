package check

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
)

// BenchmarkRunnerProbe is the Runner's own CPU per probe: 10,000 real
// servers whose probe (a Batcher) answers up at its Flush, on the real
// clock with the daemon's slack and grace, the delay_loop short enough
// that the Runner is the bottleneck. The kernel and the prober are not in
// it (docs/benchmarks.md: the half-open prober's CPU per check, of which
// this is the Runner's part).
//
// The saturated case has hot caches; "paced" runs the daemon's pace,
// each checker once a second, whose caches are cold.
//
//	go test -run - -bench RunnerProbe -cpu 1 ./internal/check/
func BenchmarkRunnerProbe(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchRunner(b, 5*time.Millisecond) })
	b.Run("paced", func(b *testing.B) { benchRunner(b, time.Second) })
}

func benchRunner(b *testing.B, delayLoop time.Duration) {
	r := NewRunner(Config{Clock: clock.Real{}, Grace: DefaultGrace, Slack: DefaultSlack, Grid: DefaultGrid})
	f := &instantFlusher{}
	for i := range 10000 {
		sp := Spec{Name: "TCP_CHECK", Checker: &instantStarter{f: f}, Timeout: time.Second, DelayLoop: delayLoop, Warmup: delayLoop, Retry: 1, DelayBeforeRetry: time.Second}
		if _, err := r.Add(RealServer{ID: fmt.Sprintf("TCP 10.0.0.1:80 10.1.%d.%d:80", i/100, i%100), Weight: 1, Checks: []Spec{sp}}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ru0, ru1 syscall.Rusage
	runtime.GC()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for r.Stats().Probes < uint64(b.N) {
		time.Sleep(50 * time.Millisecond) // the wait's own wake-ups count
	}
	r.Stop()
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	n := float64(r.Stats().Probes)
	cpu := float64(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(cpu/n, "cpu-ns/probe")
}

type instantFlusher struct {
	mu    sync.Mutex
	queue []func(Result)
	run   []func(Result)
}

func (f *instantFlusher) Flush() {
	f.mu.Lock()
	f.run, f.queue = f.queue, f.run[:0]
	f.mu.Unlock()
	for _, done := range f.run {
		done(Result{OK: true, Duration: time.Millisecond})
	}
	clear(f.run)
}

type instantStarter struct{ f *instantFlusher }

func (s *instantStarter) Check(context.Context) Result { return Result{OK: true} }
func (s *instantStarter) Start(_ time.Duration, tag uint64, done Done) func() {
	s.f.mu.Lock()
	s.f.queue = append(s.f.queue, func(r Result) { done(tag, r) })
	s.f.mu.Unlock()
	return func() {}
}
func (s *instantStarter) Flusher() Flusher { return s.f }
