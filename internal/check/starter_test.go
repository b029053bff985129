package check

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
)

// starter is a fake Starter: each Start is recorded with its callback,
// for the test to answer (or not) later, as the TCP poller does.
type starter struct {
	mu       sync.Mutex
	starts   []time.Duration // clock time of each Start, from t0
	dones    []func(Result)
	canceled int
	clk      *clocktest.Fake
}

func (f *starter) Check(context.Context) Result { panic("a Starter is started, never checked") }

func (f *starter) Start(timeout time.Duration, tag uint64, done Done) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, f.clk.Now().Sub(t0))
	f.dones = append(f.dones, func(r Result) { done(tag, r) })
	return func() {
		f.mu.Lock()
		f.canceled++
		f.mu.Unlock()
	}
}

// answer delivers probe i's result from another goroutine, as a Starter
// must, and waits for the Runner to take it.
func (f *starter) answer(i int, r Result) {
	f.mu.Lock()
	done := f.dones[i]
	f.mu.Unlock()
	ch := make(chan struct{})
	go func() { done(r); close(ch) }()
	<-ch
}

func (f *starter) state() ([]time.Duration, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.starts...), f.canceled
}

// runStarter runs a Runner with cfg on clk, checking real server "rs"
// (weight 1) with one fake Starter "c" (timeout 3s, delay_loop 10s, no
// retry, delay_before_retry retryDelay), until the test ends; events
// returns what it reported so far.
func runStarter(t *testing.T, clk *clocktest.Fake, cfg Config, retryDelay time.Duration) (*Runner, *starter, func() []ev) {
	t.Helper()
	var mu sync.Mutex
	var events []ev
	cfg.Clock = clk
	cfg.OnEvent = func(e Event) {
		mu.Lock()
		events = append(events, ev{e.At.Sub(t0), e.Up, e.Weight, e.Check, e.Reason})
		mu.Unlock()
	}
	r := NewRunner(cfg)
	f := &starter{clk: clk}
	sp := Spec{Name: "c", Checker: f, Timeout: 3 * s, DelayLoop: 10 * s, Retry: 0, DelayBeforeRetry: retryDelay}
	if _, err := r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{sp}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); r.Stop() })
	return r, f, func() []ev {
		mu.Lock()
		defer mu.Unlock()
		return append([]ev(nil), events...)
	}
}

// TestRunnerStarter: a Starter is started on the Runner's schedule without
// a goroutine, its answers drive the verdict, a probe that never answers
// is failed after Timeout+Grace and canceled, and Remove cancels the
// probe in flight.
func TestRunnerStarter(t *testing.T) {
	clk := clocktest.New(t0)
	r, f, events := runStarter(t, clk, Config{Grace: time.Second}, 2*s)

	clk.Advance(0) // the first probe, due at once
	f.answer(0, Result{OK: true})
	clk.Advance(10 * s) // second probe at 10s: never answered
	clk.Advance(4 * s)  // 14s = 10s + Timeout + Grace: failed
	f.answer(1, Result{OK: true, Reason: "too late"})
	clk.Advance(10 * s) // third probe at 24s
	f.answer(2, Result{OK: true})
	clk.Advance(10 * s) // fourth at 34s, in flight when removed
	r.Remove("rs")

	starts, canceled := f.state()
	diff(t, "starts", []time.Duration{0, 10 * s, 24 * s, 34 * s}, starts)
	// Canceled: the expired probe and the one in flight at Remove; an
	// answered probe has ended, and costs its Starter no cancel.
	if canceled != 2 {
		t.Errorf("canceled %d probes, want 2", canceled)
	}
	diff(t, "events", []ev{{14 * s, false, 1, "c", "timeout after 3s"}, {24 * s, true, 1, "c", ""}}, events())
}

// TestRunnerStarterLateAnswer: a Starter's answer to a probe the Runner
// dropped (suspended, then resumed and probing again) carries the old
// probe's tag and changes nothing, though the same callback serves both
// probes; the new probe's answer counts.
func TestRunnerStarterLateAnswer(t *testing.T) {
	clk := clocktest.New(t0)
	r, f, events := runStarter(t, clk, Config{}, 0)
	clk.Advance(0) // probe 0
	r.Suspend("rs", true)
	r.Suspend("rs", false)
	clk.Advance(0) // probe 1, at once
	f.answer(0, Result{Reason: "probe 0, dropped"})
	f.answer(1, Result{Reason: "probe 1"})
	starts, _ := f.state()
	diff(t, "starts", []time.Duration{0, 0}, starts)
	diff(t, "events", []ev{{0, false, 1, "c", "probe 1"}}, events())
}
