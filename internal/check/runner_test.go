package check

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/clock/clocktest"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const s = time.Second

// probeStep is one scripted probe: a verdict at once, or a hang until the
// Runner gives up on the probe.
type probeStep struct {
	ok     bool
	hang   bool
	reason string
	weight *int
	offset int
}

var (
	ok   = probeStep{ok: true}
	fail = probeStep{reason: "refused"}
	hang = probeStep{hang: true}
)

func weight(w int) *int { return &w }

// script is a fake Checker playing its steps in order, then the last one
// for ever, and recording when it was called.
type script struct {
	h     *harness
	mu    sync.Mutex
	steps []probeStep
	calls []time.Duration
}

func (sc *script) Check(ctx context.Context) Result {
	sc.mu.Lock()
	i := len(sc.calls)
	sc.calls = append(sc.calls, sc.h.clk.Now().Sub(t0))
	st := sc.steps[min(i, len(sc.steps)-1)]
	sc.mu.Unlock()
	if st.hang {
		sc.h.parked <- struct{}{}
		<-ctx.Done()
		return Result{OK: true, Reason: "late answer, ignored"}
	}
	return Result{OK: st.ok, Reason: st.reason, Weight: st.weight, WeightOffset: st.offset}
}

func (sc *script) times() []time.Duration {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]time.Duration(nil), sc.calls...)
}

// harness runs a Runner on a fake clock with probes run in line, so every
// state change happens inside clock.Advance: a probe either answers at
// once or parks until the Runner times it out on the clock.
type harness struct {
	t      *testing.T
	clk    *clocktest.Fake
	r      *Runner
	parked chan struct{}

	mu     sync.Mutex
	events []ev
	rands  []int64
}

// ev is an Event with its time from t0, for compact tables.
type ev struct {
	At     time.Duration
	Up     bool
	Weight int
	Check  string
	Reason string
}

func (e ev) String() string {
	return fmt.Sprintf("{%v up=%v w=%d %s %q}", e.At, e.Up, e.Weight, e.Check, e.Reason)
}

func newHarness(t *testing.T, rnd func(n int64) int64) *harness {
	h := &harness{t: t, clk: clocktest.New(t0), parked: make(chan struct{})}
	if rnd == nil {
		rnd = func(n int64) int64 { return 0 }
	}
	h.r = NewRunner(Config{
		Clock: h.clk,
		Rand: func(n int64) int64 {
			h.mu.Lock()
			h.rands = append(h.rands, n)
			h.mu.Unlock()
			return rnd(n)
		},
		OnEvent: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, ev{e.At.Sub(t0), e.Up, e.Weight, e.Check, e.Reason})
			h.mu.Unlock()
		},
		Go: func(probe func()) {
			done := make(chan struct{})
			go func() {
				probe()
				close(done)
			}()
			select {
			case <-done:
			case <-h.parked:
			}
		},
	})
	return h
}

func (h *harness) script(steps ...probeStep) *script { return &script{h: h, steps: steps} }

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.r.Start(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		cancel()
		h.r.Stop()
	})
}

func (h *harness) got() []ev {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ev(nil), h.events...)
}

func spec(name string, c Checker) Spec {
	return Spec{Name: name, Checker: c, Timeout: 3 * s, DelayLoop: 10 * s, Retry: 1, DelayBeforeRetry: 2 * s}
}

func diff[T any](t *testing.T, what string, want, got []T) {
	t.Helper()
	if !reflect.DeepEqual(want, got) && !(len(want) == 0 && len(got) == 0) {
		t.Errorf("%s (-want +got):\n-%v\n+%v", what, want, got)
	}
}

func TestRunnerOneChecker(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*Spec)
		steps     []probeStep
		run       time.Duration
		initialUp bool
		calls     []time.Duration
		events    []ev
	}{{
		name:      "up stays up",
		steps:     []probeStep{ok},
		run:       25 * s,
		initialUp: true,
		calls:     []time.Duration{0, 10 * s, 20 * s},
	}, {
		// Worst case: the last success at 10s, the next probe a delay_loop
		// later, each try hanging for connect_timeout, delay_before_retry
		// between: down at 10+10+3+2+3 = 28s.
		name:      "down after 1+retry timeouts",
		steps:     []probeStep{ok, ok, hang, hang, ok},
		run:       40 * s,
		initialUp: true,
		calls:     []time.Duration{0, 10 * s, 20 * s, 25 * s, 38 * s},
		events: []ev{
			{28 * s, false, 1, "c", "timeout after 3s"},
			{38 * s, true, 1, "c", ""},
		},
	}, {
		name:      "refusals go down at once per try",
		steps:     []probeStep{fail, fail, fail},
		run:       15 * s,
		initialUp: true,
		calls:     []time.Duration{0, 2 * s, 12 * s},
		events:    []ev{{2 * s, false, 1, "c", "refused"}},
	}, {
		name:      "one failure retried recovers without a transition",
		steps:     []probeStep{fail, ok},
		run:       15 * s,
		initialUp: true,
		calls:     []time.Duration{0, 2 * s, 12 * s},
	}, {
		name:      "retry 0 goes down on the first failure",
		edit:      func(sp *Spec) { sp.Retry = 0 },
		steps:     []probeStep{ok, fail, ok},
		run:       25 * s,
		initialUp: true,
		calls:     []time.Duration{0, 10 * s, 20 * s},
		events:    []ev{{10 * s, false, 1, "c", "refused"}, {20 * s, true, 1, "c", ""}},
	}, {
		name:      "retry 3 with delay_before_retry spacing",
		edit:      func(sp *Spec) { sp.Retry = 3; sp.DelayBeforeRetry = 4 * s },
		steps:     []probeStep{ok, fail},
		run:       50 * s,
		initialUp: true,
		calls:     []time.Duration{0, 10 * s, 14 * s, 18 * s, 22 * s, 32 * s, 42 * s},
		events:    []ev{{22 * s, false, 1, "c", "refused"}},
	}, {
		name:   "alpha starts down until the first success",
		edit:   func(sp *Spec) { sp.Alpha = true },
		steps:  []probeStep{ok},
		run:    15 * s,
		calls:  []time.Duration{0, 10 * s},
		events: []ev{{0, true, 1, "c", ""}},
	}, {
		name:   "alpha spends its retries on the first run, then delay_loop",
		edit:   func(sp *Spec) { sp.Alpha = true; sp.Retry = 2 },
		steps:  []probeStep{fail, fail, fail, fail, ok},
		run:    30 * s,
		calls:  []time.Duration{0, 2 * s, 4 * s, 14 * s, 24 * s},
		events: []ev{{24 * s, true, 1, "c", ""}},
	}, {
		name:      "misc timing: next probe from the start of the last",
		edit:      func(sp *Spec) { sp.FromStart = true; sp.Retry = 0 },
		steps:     []probeStep{ok, hang, ok},
		run:       25 * s,
		initialUp: true,
		calls:     []time.Duration{0, 10 * s, 20 * s},
		events:    []ev{{13 * s, false, 1, "c", "timeout after 3s"}, {20 * s, true, 1, "c", ""}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			sc := h.script(tt.steps...)
			sp := spec("c", sc)
			if tt.edit != nil {
				tt.edit(&sp)
			}
			st, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{sp}})
			if err != nil {
				t.Fatal(err)
			}
			if st.Up != tt.initialUp {
				t.Errorf("initial up = %v, want %v", st.Up, tt.initialUp)
			}
			h.start()
			h.clk.Advance(tt.run)
			diff(t, "probe times", tt.calls, sc.times())
			diff(t, "events", tt.events, h.got())
		})
	}
}

func TestRunnerGraceLetsTheProbeAnswer(t *testing.T) {
	h := newHarness(t, nil)
	h.r.cfg.Grace = 500 * time.Millisecond
	sc := h.script(ok, hang)
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{spec("c", sc)}}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.clk.Advance(20 * s)
	want := []ev{{10*s + 3*s + 500*time.Millisecond + 2*s + 3*s + 500*time.Millisecond, false, 1, "c", "timeout after 3s"}}
	diff(t, "events", want, h.got())
}

func TestRunnerCheckersAreANDed(t *testing.T) {
	h := newHarness(t, nil)
	a := h.script(ok)
	b := h.script(ok, fail, fail, fail, fail, ok)
	bs := spec("b", b)
	bs.DelayLoop = 5 * s
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 3, Checks: []Spec{spec("a", a), bs}}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.clk.Advance(30 * s)
	// b: ok 0, fail 5, retry 7 -> down, 12 fail, 17 fail, 22 ok -> up.
	diff(t, "b probes", []time.Duration{0, 5 * s, 7 * s, 12 * s, 17 * s, 22 * s, 27 * s}, b.times())
	diff(t, "a probes", []time.Duration{0, 10 * s, 20 * s, 30 * s}, a.times())
	diff(t, "events", []ev{{7 * s, false, 3, "b", "refused"}, {22 * s, true, 3, "b", ""}}, h.got())
	if st, _ := h.r.Status("rs"); !st.Up || st.Weight != 3 {
		t.Errorf("status = %+v, want up weight 3", st)
	}
}

func TestRunnerAlphaOnOneCheckerHoldsTheServerDown(t *testing.T) {
	h := newHarness(t, nil)
	a := h.script(ok)
	b := h.script(fail, fail, ok)
	as, bs := spec("a", a), spec("b", b)
	bs.Alpha = true
	st, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{as, bs}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Up {
		t.Fatal("a real server with an alpha checker starts up")
	}
	h.start()
	h.clk.Advance(15 * s)
	// b: fail 0, retry 2 fails -> verdict down (no event), ok at 12 -> up.
	diff(t, "events", []ev{{12 * s, true, 1, "b", ""}}, h.got())
}

func TestRunnerDynamicWeights(t *testing.T) {
	h := newHarness(t, nil)
	misc := h.script(probeStep{ok: true, weight: weight(5)}, probeStep{ok: true, weight: weight(5)}, fail, fail, probeStep{ok: true}, probeStep{ok: true, weight: weight(0)})
	sp := spec("misc", misc)
	sp.Dynamic, sp.Retry = true, 0
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 10, Checks: []Spec{sp}}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.clk.Advance(55 * s)
	diff(t, "events", []ev{
		{0, true, 5, "misc", ""},              // exit 7: weight 5
		{20 * s, false, 5, "misc", "refused"}, // a failure keeps the weight
		{40 * s, true, 10, "misc", ""},        // exit 0: the configured weight again
		{50 * s, true, 0, "misc", ""},         // exit 2: weight 0, still up
	}, h.got())
}

func TestRunnerWeightOffsets(t *testing.T) {
	h := newHarness(t, nil)
	file := h.script(probeStep{ok: true, offset: 3}, probeStep{ok: true, offset: -20}, probeStep{reason: "fault"}, probeStep{ok: true, offset: 1})
	sp := spec("file", file)
	sp.Retry = 0
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 10, Checks: []Spec{sp}}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.clk.Advance(35 * s)
	diff(t, "events", []ev{
		{0, true, 13, "file", ""},
		{10 * s, true, 0, "file", ""}, // 10-20 is kept at 0
		{20 * s, false, 10, "file", "fault"},
		{30 * s, true, 11, "file", ""},
	}, h.got())
}

func TestRunnerWarmup(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rnd   func(n int64) int64
		first time.Duration
	}{
		{"earliest", func(n int64) int64 { return 0 }, 0},
		{"latest", func(n int64) int64 { return n - 1 }, 7*s - 1},
		{"middle", func(n int64) int64 { return n / 2 }, 3500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.rnd)
			sc := h.script(ok)
			sp := spec("c", sc)
			sp.Warmup = 7 * s
			if _, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{sp}}); err != nil {
				t.Fatal(err)
			}
			h.start()
			h.clk.Advance(20 * s)
			diff(t, "probe times", []time.Duration{tt.first, tt.first + 10*s}, sc.times()[:2])
			diff(t, "random bounds asked", []int64{int64(7 * s)}, h.rands)
		})
	}
}

// addWarm adds n real servers "0".."n-1" with one succeeding checker
// each (Aligned with aligned), warmup w, and returns their scripts.
func addWarm(t *testing.T, h *harness, n int, w time.Duration, aligned bool) []*script {
	t.Helper()
	var scripts []*script
	for i := range n {
		sc := h.script(ok)
		scripts = append(scripts, sc)
		sp := spec("c", sc)
		if aligned {
			sp.Checker = alignedScript{sc}
		}
		sp.Warmup = w
		if _, err := h.r.Add(RealServer{ID: fmt.Sprint(i), Weight: 1, Checks: []Spec{sp}}); err != nil {
			t.Fatal(err)
		}
	}
	return scripts
}

// TestRunnerWarmupSpread: the real servers there at Start get their
// first probes in the order they were added (the order of their memory,
// so the probes sweep it rather than jump around), each at a random
// point of its own equal share of the warmup; one added later gets a
// random point of the whole warmup.
func TestRunnerWarmupSpread(t *testing.T) {
	h := newHarness(t, func(n int64) int64 { return n - 1 })
	scripts := addWarm(t, h, 10, 10*s, false)
	h.start()
	late := h.script(ok)
	sp := spec("c", late)
	sp.Warmup = 10 * s
	h.r.Add(RealServer{ID: "late", Weight: 1, Checks: []Spec{sp}})
	h.clk.Advance(10 * s)
	for i, sc := range scripts {
		diff(t, fmt.Sprint("first probe of ", i), []time.Duration{time.Duration(i+1)*s - 1}, sc.times()[:1])
	}
	diff(t, "added later", []time.Duration{10*s - 1}, late.times())
	want := slices.Repeat([]int64{int64(s)}, 10)
	diff(t, "random bounds asked", append(want, int64(10*s)), h.rands)
}

// TestRunnerGrid: with a Grid, first probes (spread over the warmup as
// without) start on the last grid line before their time; later ones on
// the last line before keepalived's time (the wait after the probe's
// end) where that is at most a tenth of the wait early — so probes that
// started together stay together — and at keepalived's time where not.
// None is ever late.
func TestRunnerGrid(t *testing.T) {
	h := newHarness(t, func(n int64) int64 { return n - 1 })
	h.r.cfg.Grid = s
	scripts := addWarm(t, h, 4, 8*s, true)
	slow := h.script(ok, hang, hang, ok)
	sp := spec("slow", alignedScript{slow})
	sp.Timeout = 2500 * time.Millisecond
	h.r.Add(RealServer{ID: "slow", Weight: 1, Checks: []Spec{sp}})
	h.start()
	h.clk.Advance(3700 * time.Millisecond)
	late, plain := h.script(ok), h.script(ok)
	h.r.Add(RealServer{ID: "late", Weight: 1, Checks: []Spec{spec("late", alignedScript{late})}})
	h.r.Add(RealServer{ID: "plain", Weight: 1, Checks: []Spec{spec("plain", plain)}})
	h.clk.Advance(30 * s)
	// Five real servers at Start: shares of 1.6 s of the warmup, the
	// latest point of each (1.6 s - 1ns, 3.2 s - 1ns...), on the line
	// before it; then every delay_loop (10 s) on the grid.
	for i, sc := range scripts {
		at := []time.Duration{1 * s, 3 * s, 4 * s, 6 * s}[i]
		diff(t, fmt.Sprint("probes of ", i), []time.Duration{at, at + 10*s, at + 20*s, at + 30*s}[:len(sc.times())], sc.times())
		if len(sc.times()) < 3 {
			t.Errorf("checker %d probed %d times in 33.7 s", i, len(sc.times()))
		}
	}
	ms := time.Millisecond
	// 0: up; 10: hangs till 12.5, its retry due 2 s later, 14.5: the line
	// before, 14, is more than a tenth of the wait early; 14.5 hangs till
	// 17, down, then delay_loop: 27 (on the grid).
	diff(t, "slow", []time.Duration{0, 10 * s, 14500 * ms, 27 * s}, slow.times())
	// Added at 3.7 s without warmup: at once, then 13.7 s moved back to
	// 13 (0.7 s early, a tenth of the delay_loop is 1 s), then the grid.
	diff(t, "added later", []time.Duration{3700 * ms, 13 * s, 23 * s, 33 * s}, late.times())
	// A checker that is not Aligned keeps keepalived's times.
	diff(t, "not aligned", []time.Duration{3700 * ms, 13700 * ms, 23700 * ms, 33700 * ms}, plain.times())
}

// alignedScript is a script the Runner puts on its Grid.
type alignedScript struct{ *script }

func (alignedScript) Aligned() {}

func TestRunnerAddWhileRunningAndRemove(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.clk.Advance(5 * s)
	sc := h.script(ok, hang)
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{spec("c", sc)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{spec("c", sc)}}); err == nil {
		t.Error("adding a real server twice: no error")
	}
	h.clk.Advance(16 * s) // probes at 5 and 15, which hangs till 18; its retry at 20 hangs too
	h.r.Remove("rs")
	h.clk.Advance(60 * s)
	diff(t, "probe times", []time.Duration{5 * s, 15 * s, 20 * s}, sc.times())
	diff(t, "events", nil, h.got())
	if _, ok := h.r.Status("rs"); ok {
		t.Error("removed real server still has a status")
	}
}

func TestRunnerManyServersOneTimer(t *testing.T) {
	h := newHarness(t, nil)
	scripts := addWarm(t, h, 100, 10*s, false)
	h.start()
	if p := h.clk.Pending(); p != 1 {
		t.Errorf("%d timers pending for 100 idle checkers, want 1", p)
	}
	h.clk.Advance(99950 * time.Millisecond) // the last first probe is at 9.9 s
	for i, sc := range scripts {
		if n := len(sc.times()); n != 10 {
			t.Errorf("checker %d probed %d times in 100s, want 10", i, n)
		}
	}
	if st := h.r.Stats(); st.Probes != 1000 || st.Late != 0 {
		t.Errorf("stats = %+v, want 1000 probes none late", st)
	}
}

func TestRunnerRejectsIncompleteSpecs(t *testing.T) {
	r := NewRunner(Config{Clock: clocktest.New(t0)})
	_, err := r.Add(RealServer{ID: "rs", Checks: []Spec{{Name: "x"}}})
	if err == nil || !strings.Contains(err.Error(), "needs a Checker") {
		t.Errorf("err = %v", err)
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		in    verdict
		ok    bool
		retry int
		out   verdict
		wait  wait
	}{
		{verdict{up: true, hasRun: true}, true, 1, verdict{up: true, hasRun: true}, waitLoop},
		{verdict{up: true, hasRun: true}, false, 1, verdict{up: true, hasRun: true, retries: 1}, waitRetry},
		{verdict{up: true, hasRun: true, retries: 1}, false, 1, verdict{hasRun: true}, waitLoop},
		{verdict{hasRun: true}, false, 1, verdict{hasRun: true}, waitLoop},
		{verdict{}, false, 1, verdict{retries: 1}, waitRetry},
		{verdict{retries: 1}, false, 1, verdict{hasRun: true}, waitLoop},
		{verdict{hasRun: true}, true, 1, verdict{up: true, hasRun: true}, waitLoop},
		{verdict{up: true}, false, 0, verdict{hasRun: true}, waitLoop},
	}
	for _, tt := range tests {
		out, w := step(tt.in, tt.ok, tt.retry)
		if out != tt.out || w != tt.wait {
			t.Errorf("step(%+v, ok=%v, retry=%d) = %+v, %v; want %+v, %v", tt.in, tt.ok, tt.retry, out, w, tt.out, tt.wait)
		}
	}
}

// okChecker succeeds at once.
type okChecker struct{}

func (okChecker) Check(context.Context) Result { return Result{OK: true} }

// TestStopWhileFiring stops a Runner on the real clock again and again while
// its timer is starting probes: Stop must wait for every probe it let start
// (the race detector checks the WaitGroup's use).
func TestStopWhileFiring(t *testing.T) {
	for round := 0; round < 20; round++ {
		r := NewRunner(Config{Clock: clock.Real{}})
		for i := 0; i < 50; i++ {
			r.Add(RealServer{ID: fmt.Sprint(i), Weight: 1, Checks: []Spec{{Name: "ok", Checker: okChecker{}, Timeout: time.Second, DelayLoop: time.Millisecond}}})
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunnerSuspend (ha_suspend): a suspended real server is not probed
// and keeps its state; a probe in flight is dropped; resumed, it is
// probed at once and on its delay_loop again. Suspended before Start, it
// is never probed until resumed.
func TestRunnerSuspend(t *testing.T) {
	h := newHarness(t, nil)
	sc := h.script(ok, fail, fail, hang)
	idle := h.script(ok)
	if _, err := h.r.Add(RealServer{ID: "rs", Weight: 1, Checks: []Spec{spec("c", sc)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.Add(RealServer{ID: "idle", Weight: 1, Checks: []Spec{spec("c", idle)}}); err != nil {
		t.Fatal(err)
	}
	h.r.Suspend("idle", true)
	h.start()               // rs probed at 0 (ok)
	h.clk.Advance(10 * s)   // and at 10 (fails: its retry is due at 12)
	h.r.Suspend("rs", true) // the retry never happens
	h.clk.Advance(30 * s)   // 40
	if st, _ := h.r.Status("rs"); !st.Up {
		t.Errorf("suspended real server changed state: %+v", st)
	}
	h.r.Suspend("rs", false) // probed at 40 (fails: down, its retry spent)
	h.clk.Advance(10 * s)    // 50: the next probe hangs
	h.r.Suspend("rs", true)  // and its late answer is dropped
	h.clk.Advance(20 * s)
	diff(t, "probe times", []time.Duration{0, 10 * s, 40 * s, 50 * s}, sc.times())
	diff(t, "events", []ev{{40 * s, false, 1, "c", "refused"}}, h.got())
	diff(t, "suspended from the start", nil, idle.times())
	h.r.Suspend("idle", false)
	h.clk.Advance(0)
	diff(t, "resumed", []time.Duration{70 * s}, idle.times())
}

// TestRunnerSlack: with Slack, the timer that starts a due probe also
// starts those due within Slack after it, so two probes 1.5 s apart under
// a 2 s slack share one wake-up.
func TestRunnerSlack(t *testing.T) {
	h := newHarness(t, nil)
	h.r.cfg.Slack = 2 * s
	a, b := h.script(ok), h.script(ok)
	h.r.Add(RealServer{ID: "a", Weight: 1, Checks: []Spec{spec("c", a)}})
	h.start() // a at 0, then every 10 s
	h.clk.Advance(1500 * time.Millisecond)
	h.r.Add(RealServer{ID: "b", Weight: 1, Checks: []Spec{spec("c", b)}}) // b at 1.5, then 11.5
	h.clk.Advance(8500 * time.Millisecond)                                // 10: a's timer starts b's 11.5 too
	diff(t, "a", []time.Duration{0, 10 * s}, a.times())
	diff(t, "b", []time.Duration{1500 * time.Millisecond, 10 * s}, b.times())
}
