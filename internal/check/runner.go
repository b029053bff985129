package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/fifo"
)

// Spec is one checker of a real server with its resolved timing.
type Spec struct {
	Name    string // for logs and events, e.g. "TCP_CHECK 10.0.0.1:80"
	Checker Checker

	// Timeout bounds one probe: connect_timeout (misc_timeout for
	// MISC_CHECK). The probe's context has this deadline.
	Timeout          time.Duration
	DelayLoop        time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	// Warmup: the first probe comes after a random delay in [0, Warmup).
	Warmup time.Duration
	// Alpha: the checker starts down until its first success, else up.
	Alpha bool
	// Dynamic: a success sets the real server's weight to Result.Weight
	// (nil: the configured weight), as misc_dynamic does.
	Dynamic bool
	// FromStart: the next probe is timed from the start of the last one,
	// not its end (keepalived's MISC_CHECK).
	FromStart bool
}

// RealServer is a real server to check: up only while all its checkers are.
type RealServer struct {
	ID     string // the key events carry, e.g. "TCP 10.0.0.100:80 10.0.0.1:80"
	Weight int    // configured weight
	Checks []Spec
}

// Status is a real server's state as its checkers see it.
type Status struct {
	Up     bool
	Weight int
}

// Event reports a change of a real server's state or weight.
type Event struct {
	RealServer    string
	At            time.Time
	Up            bool
	Weight        int
	UpChanged     bool
	WeightChanged bool
	Check         string // the checker whose result made the change
	Reason        string // that result's reason when it failed
}

// Stats counts probes and how late they started.
type Stats struct {
	Probes  uint64        // probes started
	Late    uint64        // probes that started LateAfter or more after their due time
	MaxLate time.Duration // the latest start seen
}

// Config builds a Runner.
type Config struct {
	Clock clock.Clock // required
	// Rand returns a random number in [0, n); nil uses math/rand/v2.
	Rand func(n int64) int64
	// MaxProbes bounds the probes running at once; 0 means 1024.
	MaxProbes int
	// Grace is how long after a probe's deadline the Runner gives up on it
	// and counts a timeout, so a probe whose deadline is its verdict (a
	// UDP_CHECK without require_reply succeeds on silence) answers first.
	// Zero means none; DefaultGrace suits real probes.
	Grace time.Duration
	// LateAfter is the lateness Stats counts; 0 means 100ms.
	LateAfter time.Duration
	// Slack lets the timer start, with the probes due, those due within
	// Slack after them: at 10,000 checks a second spread over the
	// delay_loop, one wake-up per Slack instead of one per probe. Zero
	// starts each at its time exactly (the tests' fake clock).
	Slack time.Duration
	// Grid is a period (from Start) whose multiples the probes of
	// Aligned checkers are put on, so that those due about together
	// start in one wake-up: a first probe (at its random point of the
	// warmup) on the last grid line before it, or at once where that has
	// passed; a next one on the last line before keepalived's time for it
	// (delay_loop, or delay_before_retry, after the probe's end) where
	// that is at most a tenth of the wait early. Probes that start
	// together end about together, so they stay together, on time. Zero:
	// no grid.
	Grid time.Duration
	// OnEvent receives events in order, one at a time, never with a
	// Runner lock held.
	OnEvent func(Event)
	Logger  *slog.Logger
	// Go runs a probe; nil starts a goroutine. Tests run probes in line.
	Go func(probe func())
}

// DefaultSlack is the Slack for real probes: 10 ms, 1% of the shortest
// delay_loop keepalived configs use. Without a Grid, at 10,000 probes a
// second, its batches settle at ~34 a second (a Batcher's one system
// call each; five hundred at 2 ms cost ~1% of a core more).
const DefaultSlack = 10 * time.Millisecond

// DefaultGrid is the Grid for real probes: 100 ms, ten batches a second
// whatever the number of checks (at 10,000 a second, a thousand SYNs of
// a half-open probe each, which the prober paces to its receivers). Each
// wake-up of an otherwise idle CPU costs far more than its work on a
// virtual machine (caches and TLB cold after the halt): on loopback, at
// 10,000 probes a second, the Slack's ~34 batches a second cost ~10%
// more CPU than ten (docs/benchmarks.md, session 9). Probes start at
// most a tenth of their wait early, never late.
const DefaultGrid = 100 * time.Millisecond

// DefaultGrace is the Grace for real probes.
const DefaultGrace = 250 * time.Millisecond

// Runner runs the checkers of many real servers on one clock timer and a
// bounded number of concurrent probes.
type Runner struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger
	sem chan struct{}

	mu       sync.Mutex
	ctx      context.Context // parent of probes, from Start
	running  bool
	servers  map[string]*rsState
	queue    schedule
	seq      uint64
	added    uint64
	epoch    time.Time // Start's time: the Grid's origin
	tm       clock.Timer
	hard     fifo.Lanes[expiry] // the Runner's own deadline of each probe in flight
	armed    bool
	armedAt  time.Time
	batch    []*checkState // fire's checkers due
	touch    uint64        // fire's sink for the touches
	events   []Event
	emitting bool
	probes   sync.WaitGroup

	nProbes atomic.Uint64
	nLate   atomic.Uint64
	maxLate atomic.Int64
}

type rsState struct {
	id        string
	order     uint64 // when it was added: its memory's place among the others'
	suspended bool   // ha_suspend: its virtual server's address is not here
	weight    int    // configured
	checks    []*checkState
	up        bool
	base      *int // weight set by a dynamic checker; nil: configured
	eff       int
}

type checkState struct {
	rs *rsState
	// What launching a probe reads and writes, together at the start:
	// a checkState is cold when its turn comes, once a second.
	gen      uint64 // bumped per probe; stale results carry an old one
	inflight bool
	slot     int32 // in the schedule's dense arrays; 0 before its first push
	seq      uint64
	due      time.Time
	started  time.Time
	cancel   context.CancelFunc
	done     Done // a Starter's probes report here
	spec     Spec
	grid     bool // its probes go on the Grid (Aligned)

	v      verdict
	weight *int // last weight from this dynamic checker
	offset int  // weight offset while up (FILE_CHECK)
}

// NewRunner returns a Runner; it starts nothing until Start or Run.
func NewRunner(cfg Config) *Runner {
	if cfg.Clock == nil {
		panic("check: NewRunner needs a Clock")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Int64N
	}
	if cfg.MaxProbes <= 0 {
		cfg.MaxProbes = 1024
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = 100 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		cfg:     cfg,
		clk:     cfg.Clock,
		log:     log,
		sem:     make(chan struct{}, cfg.MaxProbes),
		servers: map[string]*rsState{},
	}
	r.hard = fifo.NewLanes(func(e expiry) bool { return !r.queue.launched(e.slot, e.seq) }, expiry.before)
	return r
}

// SetOnEvent sets where events go, for an owner built after the Runner.
// Call it before Start or Run.
func (r *Runner) SetOnEvent(f func(Event)) {
	r.mu.Lock()
	r.cfg.OnEvent = f
	r.mu.Unlock()
}

// SetWeight changes a real server's configured weight (a configuration
// reload that changed nothing else), keeping its check state. It returns
// the new status.
func (r *Runner) SetWeight(id string, w int) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.servers[id]
	if !ok {
		return Status{}, false
	}
	s.weight = w
	s.up, s.eff = s.state()
	return Status{Up: s.up, Weight: s.eff}, true
}

// Add starts checking a real server (at once if the Runner is running,
// else when it starts) and returns its initial status: down if any checker
// has alpha, else up.
func (r *Runner) Add(rs RealServer) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.servers[rs.ID]; dup {
		return Status{}, fmt.Errorf("real server %s: already checked", rs.ID)
	}
	for _, sp := range rs.Checks {
		if sp.Checker == nil || sp.DelayLoop <= 0 || sp.Timeout <= 0 {
			return Status{}, fmt.Errorf("real server %s: checker %q needs a Checker, a delay_loop and a timeout", rs.ID, sp.Name)
		}
	}
	// The real server and its checkers in one allocation (with one
	// checker, the usual case, the list of them too): a probe touches
	// them all, once a second, long after they left the cache — one page
	// and adjacent lines instead of places all over the heap.
	block := &struct {
		rs     rsState
		checks [1]checkState
		ptrs   [1]*checkState
		more   []checkState
	}{}
	s := &block.rs
	*s = rsState{id: rs.ID, weight: rs.Weight, checks: block.ptrs[:min(len(rs.Checks), 1)]}
	if len(rs.Checks) > 1 {
		block.more = make([]checkState, len(rs.Checks)-1)
		s.checks = make([]*checkState, len(rs.Checks))
	}
	for i, sp := range rs.Checks {
		c := &block.checks[0]
		if i > 0 {
			c = &block.more[i-1]
		}
		*c = checkState{rs: s, spec: sp, v: verdict{up: !sp.Alpha}}
		_, c.grid = sp.Checker.(Aligned)
		if _, ok := sp.Checker.(Starter); ok {
			// One callback for all of the checker's probes: the
			// generation it was started with tells a late one.
			c.done = func(gen uint64, res Result) { r.complete(c, gen, res, false) }
		}
		s.checks[i] = c
	}
	s.up, s.eff = s.state()
	r.added++
	s.order = r.added
	r.servers[rs.ID] = s
	if r.running {
		r.startLocked(s, 0, 1)
		r.armLocked()
	}
	return Status{Up: s.up, Weight: s.eff}, nil
}

// Remove stops checking a real server; a probe in flight is canceled and
// its result dropped.
func (r *Runner) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.servers[id]
	if !ok {
		return
	}
	for _, c := range s.checks {
		r.queue.release(c)
		r.abortLocked(c)
	}
	delete(r.servers, id)
}

// Suspend stops (suspended) or resumes the checks of a real server, for
// ha_suspend: its virtual server's address is not on this host. A
// suspended real server keeps its state; a probe in flight is canceled
// and its result dropped. Resumed, its checks run at once.
func (r *Runner) Suspend(id string, suspended bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.servers[id]
	if !ok || s.suspended == suspended {
		return
	}
	s.suspended = suspended
	if suspended {
		for _, c := range s.checks {
			r.queue.remove(c)
			r.abortLocked(c)
		}
		return
	}
	if r.running {
		now := r.clk.Now()
		for _, c := range s.checks {
			r.enqueueLocked(c, now)
		}
		r.armLocked()
	}
}

// Status is a real server's current status.
func (r *Runner) Status(id string) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.servers[id]
	if !ok {
		return Status{}, false
	}
	return Status{Up: s.up, Weight: s.eff}, true
}

// Stats reports the probes started so far and how late they were.
func (r *Runner) Stats() Stats {
	return Stats{Probes: r.nProbes.Load(), Late: r.nLate.Load(), MaxLate: time.Duration(r.maxLate.Load())}
}

// Run checks until ctx is done, then stops every probe and returns.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	r.Stop()
	return nil
}

// Start schedules every real server's first probes (each after its
// warmup) and returns; probes run under ctx.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return errors.New("check: runner already started")
	}
	r.ctx, r.running, r.epoch = ctx, true, r.clk.Now()
	servers := slices.SortedFunc(maps.Values(r.servers), func(a, b *rsState) int { return cmp.Compare(a.order, b.order) })
	for i, s := range servers {
		r.startLocked(s, i, len(servers))
	}
	r.armLocked()
	return nil
}

// Stop cancels the schedule and the probes in flight, and waits for the
// probes the Runner started.
func (r *Runner) Stop() {
	r.mu.Lock()
	r.running = false
	if r.tm != nil {
		r.tm.Stop()
		r.armed = false
	}
	for _, s := range r.servers {
		for _, c := range s.checks {
			r.queue.remove(c)
			r.abortLocked(c)
		}
	}
	r.mu.Unlock()
	r.probes.Wait()
}

func (r *Runner) startLocked(s *rsState, i, n int) {
	if s.suspended {
		return
	}
	now := r.clk.Now()
	for _, c := range s.checks {
		var d time.Duration
		if w := int64(c.spec.Warmup); w > 0 {
			d = time.Duration(w*int64(i)/int64(n) + r.cfg.Rand(max(w/int64(n), 1)))
		}
		at := now.Add(d)
		if c.grid {
			at = maxTime(r.gridLine(at), now)
		}
		r.enqueueLocked(c, at)
	}
}

// gridLine is the last line of the Grid at or before at (at itself
// without a grid).
func (r *Runner) gridLine(at time.Time) time.Time {
	if g := r.cfg.Grid; g > 0 {
		return r.epoch.Add(at.Sub(r.epoch) / g * g)
	}
	return at
}

func (r *Runner) enqueueLocked(c *checkState, due time.Time) {
	r.seq++
	c.due, c.seq = due, r.seq
	r.queue.push(c)
}

// armLocked points the one timer at the head of the schedule or the
// earliest deadline of a probe in flight. A timer set for earlier is left
// alone: fire re-arms it.
func (r *Runner) armLocked() {
	if !r.running {
		return
	}
	var head time.Time
	e, ok := r.hard.Next()
	if ok {
		head = e.at
	}
	if due, queued := r.queue.next(); queued && (!ok || due.Before(head)) {
		head, ok = due, true
	}
	if !ok {
		return
	}
	if r.armed && !head.Before(r.armedAt) {
		return
	}
	d := max(head.Sub(r.clk.Now()), 0)
	if r.tm == nil {
		r.tm = r.clk.AfterFunc(d, r.fire)
	} else {
		r.tm.Reset(d)
	}
	r.armed, r.armedAt = true, head
}

// armForLocked is armLocked after queuing a checker for at: when the
// timer is armed for no later, nothing needs a look (applyLocked runs for
// every probe's end, and the schedule's head and the deadlines' are
// cold by then: a cache miss each).
func (r *Runner) armForLocked(at time.Time) {
	if r.armed && !at.Before(r.armedAt) {
		return
	}
	r.armLocked()
}

// fire starts the probes that are due.
func (r *Runner) fire() {
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		return
	}
	r.armed = false
	now := r.clk.Now()
	r.hard.PopDue(func(e expiry) bool { return !e.at.After(now) }, func(e expiry) { r.expireLocked(e.c) })
	var due []func()
	var flush []Flusher
	// The checkers due, popped first (the entries and the slots, dense),
	// then touched in a loop of independent loads, so the CPU fetches
	// their cold lines together rather than one miss per launch.
	r.batch = r.queue.popUntil(now.Add(r.cfg.Slack), r.batch[:0])
	for _, c := range r.batch {
		r.touch += c.gen + uint64(c.spec.Timeout)
	}
	for _, c := range r.batch {
		if p := r.launchLocked(c, now, &flush); p != nil {
			due = append(due, p)
		}
	}
	clear(r.batch)
	r.armLocked()
	if r.cfg.Go == nil {
		// Counted under the lock, so a Stop that follows waits for them:
		// an Add after Stop's Wait began would race it.
		r.probes.Add(len(due))
	}
	events := len(r.events) > 0
	r.mu.Unlock()
	if events {
		r.emit()
	}
	// After the unlock: on loopback a flush runs the real servers' half
	// of the handshakes too, and the answers' callbacks need the lock.
	for _, f := range flush {
		f.Flush()
	}
	for _, p := range due {
		if r.cfg.Go != nil {
			r.cfg.Go(p)
			continue
		}
		go func() {
			defer r.probes.Done()
			p()
		}()
	}
}

// launchLocked marks c in flight and returns the probe to run, or starts
// it itself and returns nil (a Starter; a Batcher's Flusher is added to
// flush once). The probe's deadline is its Timeout; Grace later the
// Runner counts a timeout itself, on the clock, whatever the probe does.
func (r *Runner) launchLocked(c *checkState, now time.Time, flush *[]Flusher) func() {
	c.gen++
	gen, due := c.gen, c.due
	c.inflight, c.started = true, now
	r.hard.Push(c.spec.Timeout+r.cfg.Grace, expiry{at: now.Add(c.spec.Timeout + r.cfg.Grace), c: c, seq: c.seq, slot: c.slot})
	if st, ok := c.spec.Checker.(Starter); ok && r.cfg.Go == nil {
		// Started here, under the lock: Start never calls back before
		// it returns, and costs no goroutine.
		r.countStart(now.Sub(due))
		c.cancel = st.Start(c.spec.Timeout, gen, c.done)
		if b, ok := st.(Batcher); ok {
			if f := b.Flusher(); !slices.Contains(*flush, f) {
				*flush = append(*flush, f)
			}
		}
		return nil
	}
	pctx, cancel := context.WithCancel(r.ctx)
	ctx := deadlineCtx{pctx, now.Add(c.spec.Timeout)}
	c.cancel = cancel
	return func() {
		r.sem <- struct{}{}
		start := r.clk.Now()
		r.countStart(start.Sub(due))
		res := c.spec.Checker.Check(ctx)
		<-r.sem
		if res.Duration == 0 {
			res.Duration = r.clk.Now().Sub(start)
		}
		r.complete(c, gen, res, true)
	}
}

func (r *Runner) countStart(late time.Duration) {
	r.nProbes.Add(1)
	if late >= r.cfg.LateAfter {
		r.nLate.Add(1)
	}
	for {
		m := r.maxLate.Load()
		if int64(late) <= m || r.maxLate.CompareAndSwap(m, int64(late)) {
			return
		}
	}
}

// abortLocked drops c's probe in flight, if any.
func (r *Runner) abortLocked(c *checkState) {
	c.gen++
	if !c.inflight {
		return
	}
	c.inflight = false
	c.cancel()
}

// complete applies the result of c's probe gen. A Starter's probe has
// ended when it reports (cancel false); a Checker's context is canceled.
func (r *Runner) complete(c *checkState, gen uint64, res Result, cancel bool) {
	r.mu.Lock()
	if c.gen != gen || !c.inflight {
		r.mu.Unlock()
		return
	}
	c.inflight = false
	if cancel {
		c.cancel()
	}
	if res.Duration == 0 {
		res.Duration = r.clk.Now().Sub(c.started)
	}
	r.applyLocked(c, res)
	events := len(r.events) > 0
	r.mu.Unlock()
	if events {
		r.emit()
	}
}

// expireLocked counts c's probe in flight, which outlived its Timeout
// and Grace, as failed.
func (r *Runner) expireLocked(c *checkState) {
	c.inflight = false
	c.cancel()
	r.applyLocked(c, Result{Reason: fmt.Sprintf("timeout after %v", c.spec.Timeout), Duration: c.spec.Timeout + r.cfg.Grace})
}

// applyLocked is the one place a probe result changes state: the
// checker's verdict, the real server's state and weight, the events, and
// the next probe.
func (r *Runner) applyLocked(c *checkState, res Result) {
	now := r.clk.Now()
	s := c.rs
	wasUp, wasEff := s.up, s.eff
	prev := c.v
	var next wait
	c.v, next = step(c.v, res.OK, c.spec.Retry)
	if res.OK {
		if c.spec.Dynamic && !sameWeight(c.weight, res.Weight) {
			c.weight = copyWeight(res.Weight)
			s.base = copyWeight(res.Weight)
		}
		c.offset = res.WeightOffset
	} else {
		c.offset = 0
	}
	s.up, s.eff = s.state()

	switch {
	case res.OK && c.v.up && (!prev.up || !prev.hasRun):
		r.log.Info("checker up", "rs", s.id, "check", c.spec.Name)
	case !c.v.up && prev.up:
		r.log.Info("checker down", "rs", s.id, "check", c.spec.Name, "reason", res.Reason, "retries", c.spec.Retry)
	case !res.OK:
		r.log.Debug("probe failed", "rs", s.id, "check", c.spec.Name, "reason", res.Reason, "retry", c.v.retries)
	}
	if s.up != wasUp || s.eff != wasEff {
		ev := Event{
			RealServer: s.id, At: now, Up: s.up, Weight: s.eff,
			UpChanged: s.up != wasUp, WeightChanged: s.eff != wasEff,
			Check: c.spec.Name,
		}
		if !res.OK {
			ev.Reason = res.Reason
		}
		r.events = append(r.events, ev)
	}

	d := c.spec.DelayLoop
	if next == waitRetry {
		d = c.spec.DelayBeforeRetry
	}
	from := now
	if c.spec.FromStart {
		from = c.started
	}
	due := maxTime(from.Add(d), now)
	if c.grid {
		if g := r.gridLine(due); due.Sub(g) <= d/10 && !g.Before(now) {
			due = g
		}
	}
	r.enqueueLocked(c, due)
	r.armForLocked(c.due)
}

// state is whether every checker is up, and the weight: the configured
// one, or a dynamic checker's, plus the offsets of the checkers up, kept
// to IPVS's 0..65535.
func (s *rsState) state() (bool, int) {
	up := true
	w := s.weight
	if s.base != nil {
		w = *s.base
	}
	for _, c := range s.checks {
		up = up && c.v.up
		if c.v.up {
			w += c.offset
		}
	}
	return up, min(max(w, 0), 65535)
}

// emit hands the queued events to OnEvent, in order, from one goroutine at
// a time.
func (r *Runner) emit() {
	r.mu.Lock()
	if r.emitting || len(r.events) == 0 {
		r.mu.Unlock()
		return
	}
	r.emitting = true
	for len(r.events) > 0 {
		evs := r.events
		r.events = nil
		r.mu.Unlock()
		for _, e := range evs {
			r.log.Info("real server", "rs", e.RealServer, "up", e.Up, "weight", e.Weight, "check", e.Check, "reason", e.Reason)
			if r.cfg.OnEvent != nil {
				r.cfg.OnEvent(e)
			}
		}
		r.mu.Lock()
	}
	r.emitting = false
	r.mu.Unlock()
}

func sameWeight(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func copyWeight(w *int) *int {
	if w == nil {
		return nil
	}
	v := *w
	return &v
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// deadlineCtx gives a probe its deadline on the Runner's clock; the Runner
// cancels it when it stops waiting.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
