package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrpd"
)

// VRRP in a process of its own.
//
// keepalived runs VRRP in a child process, apart from its health checkers,
// and keepvs does the same (KEEPVS_VRRP_PROCESS=same keeps it in the
// daemon's process). The reason is the Go scheduler, measured: the VRRP
// loop (internal/vrrpd) runs on a realtime thread, but after each
// epoll_wait it needs one of the runtime's Ps to run Go code again. In a
// process that also checks real servers, proxies connections and answers
// its API, every P can be held by ordinary threads that a loaded machine
// makes wait their turn; with a load average of 6 per core and the daemon
// busy answering its API, the loop waited up to 21 ms for a P ("vrrp
// thread waited for the Go scheduler" in the log), and a backup at
// advert_int 0.01 took over from a live master in two of three 10 s
// windows (docs/benchmarks.md). The child runs the loop, its worker and
// little else, with more Ps than it has goroutines to run
// (vrrpChildSpareP), so a P is idle whenever the loop wakes; and it
// collects garbage only when its heap reaches vrrpChildHeapLimit, so no
// collection's stop-the-world holds the loop either.
//
// The parent starts the child with its own command line (passed in the
// environment, so a test binary can be a child too) and one end of a
// socketpair as descriptor 3. The child reads the configuration itself and
// keeps only its VRRP half, as -P would. Over the socket, one JSON object
// per line, the parent asks for status and tells the child to reload or
// stop, and the child reports every state change (lvs_sync_daemon follows
// them in the parent). A child that dies is started again after a second,
// as keepalived restarts its children. A parent that dies takes its child
// with it (end of file on the socket, and PR_SET_PDEATHSIG): the child
// stops as on SIGTERM, so a master sends priority 0 and removes its VIPs.

const (
	// vrrpChildFDEnv, set in a child's environment, names its control
	// descriptor; vrrpChildArgsEnv holds the daemon's options as JSON.
	vrrpChildFDEnv   = "KEEPVS_VRRP_CHILD_FD"
	vrrpChildArgsEnv = "KEEPVS_VRRP_CHILD_ARGS"
	// vrrpChildHeapLimit is the heap at which the child collects garbage.
	// Its steady state allocates nothing; status answers, state changes
	// and reloads allocate a little, so a collection is rare.
	vrrpChildHeapLimit = 64 << 20
	// vrrpChildSpareP is how many more Ps than CPUs the child has. Its
	// goroutines besides the loop are few (the worker, the control
	// socket's reader, trackers), so with these a P is idle when the loop
	// wakes even while all of them run: measured under heavy load, the
	// loop waited for a P 10-43 times in 10 s with GOMAXPROCS at the
	// number of CPUs, 0-1 times with 8 (docs/benchmarks.md).
	vrrpChildSpareP = 6
	// vrrpRestartDelay is how long the parent waits before starting a
	// child that died again.
	vrrpRestartDelay = time.Second
	// vrrpStopWait bounds a child's clean stop before it is killed.
	vrrpStopWait = 15 * time.Second
	// vrrpStatusWait bounds a status question to the child.
	vrrpStatusWait = 2 * time.Second
)

// childMsg is one line on the control socket. Parent to child: Op is
// "status" (with ID), "reload" or "stop". Child to parent: the answer to
// a status (ID and Status), or a Transition.
type childMsg struct {
	Op         string                 `json:"op,omitempty"`
	ID         uint64                 `json:"id,omitempty"`
	Status     []vrrpd.InstanceStatus `json:"status,omitempty"`
	Transition *childTransition       `json:"transition,omitempty"`
}

type childTransition struct {
	Instance string     `json:"instance"`
	From     vrrp.State `json:"from"`
	To       vrrp.State `json:"to"`
}

// vrrpInSameProcess reports whether VRRP runs in the daemon's process.
func vrrpInSameProcess() bool { return os.Getenv("KEEPVS_VRRP_PROCESS") == "same" }

// vrrpProcess is the parent's side: it starts, watches and talks to the
// child.
type vrrpProcess struct {
	ctx          context.Context
	log          *slog.Logger
	argv         []string
	stderr       io.Writer
	onTransition func(instance string, from, to vrrp.State)

	mu       sync.Mutex
	conn     *os.File      // the control socket; nil while no child runs
	up       chan struct{} // closed once conn is set (renewed when the child ends)
	child    *os.Process
	nextID   uint64
	waiting  map[uint64]chan []vrrpd.InstanceStatus
	stopping bool
	running  bool // supervise has started

	stopCh chan struct{} // closed by stop
	done   chan struct{} // closed when supervise has returned (or stop, if it never started)
}

// started reports whether the child has been started (it may be between
// two lives).
func (p *vrrpProcess) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// vrrpHalf is the daemon's VRRP: in a child process, or in this one.
type vrrpHalf interface {
	// reload applies a configuration the daemon has accepted; the first
	// one with vrrp_instances starts them.
	reload(cfg *model.Config)
	// stop stops the instances (a master sends priority 0 and removes its
	// VIPs) and waits until that is done.
	stop()
}

// startVRRP runs cfg's VRRP instances, if it has any, in a child process
// (or in this one with KEEPVS_VRRP_PROCESS=same), and adds them to srv's
// status; onTransition is told their state changes, in order.
func startVRRP(ctx context.Context, cfg *model.Config, opts parsed, log *slog.Logger, stderr io.Writer, srv *api.Server, onTransition func(instance string, from, to vrrp.State)) vrrpHalf {
	if vrrpInSameProcess() {
		r := runVRRP(ctx, cfg, log, onTransition)
		addVRRPStatus(srv, r.status)
		return r
	}
	p := &vrrpProcess{
		ctx: ctx, log: log, argv: opts.argv, stderr: stderr, onTransition: onTransition,
		waiting: map[uint64]chan []vrrpd.InstanceStatus{},
		stopCh:  make(chan struct{}), done: make(chan struct{}),
	}
	addVRRPStatus(srv, func() ([]vrrpd.InstanceStatus, bool) {
		if !p.started() {
			return nil, false
		}
		return p.status(), true
	})
	p.reload(cfg)
	return p
}

// supervise runs the child, and again after it dies, until stop or ctx.
func (p *vrrpProcess) supervise(ctx context.Context) {
	// PR_SET_PDEATHSIG fires when the thread that started the child ends,
	// not the process: this goroutine keeps its thread for the children's
	// lifetime (and the thread ends with it).
	runtime.LockOSThread()
	defer close(p.done)
	for {
		err := p.runChild()
		select {
		case <-p.stopCh:
			return
		case <-ctx.Done():
			return
		default:
		}
		p.log.Error("vrrp process ended; starting it again", "err", err, "in", vrrpRestartDelay)
		select {
		case <-time.After(vrrpRestartDelay):
		case <-p.stopCh:
			return
		case <-ctx.Done():
			return
		}
	}
}

// runChild starts one child and returns when it has ended.
func (p *vrrpProcess) runChild() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	// Non-blocking, the parent's end gets deadlines from the runtime.
	unix.SetNonblock(fds[0], true)
	mine, theirs := os.NewFile(uintptr(fds[0]), "vrrp-control"), os.NewFile(uintptr(fds[1]), "vrrp-control")
	defer mine.Close()
	args, _ := json.Marshal(p.argv)
	exe, err := os.Executable()
	if err != nil {
		theirs.Close()
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), vrrpChildFDEnv+"=3", vrrpChildArgsEnv+"="+string(args))
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.stopping {
		// stop came while the child started: it has missed the message.
		cmd.Process.Signal(syscall.SIGTERM)
	}
	p.conn, p.child = mine, cmd.Process
	close(p.up)
	p.mu.Unlock()
	p.log.Info("vrrp process started", "pid", cmd.Process.Pid)

	read := make(chan struct{})
	go func() {
		defer close(read)
		p.read(mine)
	}()
	err = cmd.Wait()
	mine.Close()
	<-read
	p.mu.Lock()
	p.conn, p.child = nil, nil
	p.up = make(chan struct{})
	for id, ch := range p.waiting {
		close(ch)
		delete(p.waiting, id)
	}
	p.mu.Unlock()
	if err == nil {
		err = errors.New("exited")
	}
	return err
}

// read handles the child's lines until the socket closes.
func (p *vrrpProcess) read(conn io.Reader) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m childMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			p.log.Error("vrrp process: unreadable message", "err", err)
			continue
		}
		switch {
		case m.Transition != nil:
			if p.onTransition != nil {
				p.onTransition(m.Transition.Instance, m.Transition.From, m.Transition.To)
			}
		case m.ID != 0:
			p.mu.Lock()
			ch := p.waiting[m.ID]
			delete(p.waiting, m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m.Status
			}
		}
	}
}

// send writes one message to the child, if one runs; p.mu is held.
func (p *vrrpProcess) send(m childMsg) error {
	if p.conn == nil {
		return errors.New("no vrrp process")
	}
	b, _ := json.Marshal(m)
	p.conn.SetWriteDeadline(time.Now().Add(vrrpStatusWait))
	_, err := p.conn.Write(append(b, '\n'))
	return err
}

// status asks the child for its instances; nil when it does not answer.
func (p *vrrpProcess) status() []vrrpd.InstanceStatus {
	// A child just started, or started again, answers once connected.
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	select {
	case <-up:
	case <-time.After(vrrpStatusWait):
		return nil
	}
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan []vrrpd.InstanceStatus, 1)
	if err := p.send(childMsg{Op: "status", ID: id}); err != nil {
		p.mu.Unlock()
		return nil
	}
	p.waiting[id] = ch
	p.mu.Unlock()
	select {
	case st := <-ch:
		return st
	case <-time.After(vrrpStatusWait):
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
		return nil
	}
}

// reload starts the child with the first configuration that has
// vrrp_instances or static addresses, routes or rules; later ones it tells the child to read (the child reads
// the files itself, the parent having accepted them).
func (p *vrrpProcess) reload(cfg *model.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopping:
	case !p.running:
		if hasVRRP(cfg) {
			p.running = true
			p.up = make(chan struct{})
			go p.supervise(p.ctx)
		}
	default:
		if err := p.send(childMsg{Op: "reload"}); err != nil {
			p.log.Error("vrrp process not told to reload", "err", err)
		}
	}
}

// stop stops the child and waits for it (killing it after vrrpStopWait).
func (p *vrrpProcess) stop() {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		close(p.stopCh)
		if !p.running {
			close(p.done)
		} else if err := p.send(childMsg{Op: "stop"}); err != nil && p.child != nil {
			p.child.Signal(syscall.SIGTERM)
		}
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(vrrpStopWait):
		p.mu.Lock()
		if p.child != nil {
			p.log.Error("vrrp process did not stop; killing it", "pid", p.child.Pid)
			p.child.Kill()
		}
		p.mu.Unlock()
		<-p.done
	}
}

// vrrpChildMain is the child: the daemon's options from the environment,
// the configuration's VRRP half, and the control socket on descriptor 3.
func vrrpChildMain(ctx context.Context, stderr io.Writer) int {
	ctl := os.NewFile(3, "vrrp-control")
	var argv []string
	if err := json.Unmarshal([]byte(os.Getenv(vrrpChildArgsEnv)), &argv); err != nil {
		fmt.Fprintf(stderr, "keepvs vrrp process: %s: %v\n", vrrpChildArgsEnv, err)
		return 2
	}
	opts, err := parseOptions(daemonOptions, argv)
	if err != nil {
		fmt.Fprintf(stderr, "keepvs vrrp process: %v\n", err)
		return 2
	}
	log, closeLog, err := newLogger(opts, stderr, localSyslog)
	if err != nil {
		fmt.Fprintf(stderr, "keepvs vrrp process: %v\n", err)
		return 2
	}
	defer closeLog()
	log = log.With("process", "vrrp")
	// The parent reloads on SIGHUP and tells the child; a SIGHUP sent to
	// every keepvs process must not kill this one.
	signal.Ignore(syscall.SIGHUP)
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(vrrpChildHeapLimit)
	runtime.GOMAXPROCS(runtime.NumCPU() + vrrpChildSpareP)

	cfg := loadVRRPHalf(opts, log)
	if cfg == nil {
		return 4
	}
	if pid := opts.get("vrrp_pid", ""); pid != "" {
		// keepalived -r: the VRRP child's pid file.
		if err := os.WriteFile(pid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("vrrp pid file", "err", err)
		} else {
			defer os.Remove(pid)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wmu sync.Mutex
	send := func(m childMsg) {
		b, _ := json.Marshal(m)
		wmu.Lock()
		defer wmu.Unlock()
		if _, err := ctl.Write(append(b, '\n')); err != nil {
			cancel() // the parent is gone
		}
	}
	vr := runVRRP(ctx, cfg, log, func(instance string, from, to vrrp.State) {
		send(childMsg{Transition: &childTransition{Instance: instance, From: from, To: to}})
	})
	go func() {
		defer cancel() // end of file: the parent is gone
		sc := bufio.NewScanner(ctl)
		for sc.Scan() {
			var m childMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m.Op {
			case "status":
				st, _ := vr.status()
				send(childMsg{ID: m.ID, Status: st})
			case "reload":
				if cfg := loadVRRPHalf(opts, log); cfg != nil {
					vr.reload(cfg)
				}
			case "stop":
				return
			}
		}
	}()
	<-ctx.Done()
	vr.stop()
	return 0
}

// loadVRRPHalf reads the configuration as the daemon's options name it
// and keeps only VRRP. The parent has accepted it; errors now mean the
// file changed in between.
func loadVRRPHalf(opts parsed, log *slog.Logger) *model.Config {
	path, src, err := configSource(opts.get("use-file", ""))
	if err != nil {
		log.Error("configuration not read", "err", err)
		return nil
	}
	cfg, diags := loadConfig(path, src, confOptions(opts.get("config-id", "")))
	if diags.HasErrors() {
		for _, d := range diags.Errors() {
			log.Error(d.String())
		}
		log.Error("configuration rejected; vrrp not started", "config", path)
		return nil
	}
	cfg.LVS = model.LVS{}
	return cfg
}
