package vrrpd

import (
	"log/slog"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// job is an action the loop hands to the worker because it may block or
// take long. It carries what the worker needs of the instance at the
// time, so the worker never reads the state machine, which belongs to
// the loop.
type job struct {
	i *inst // nil for a sync group's transition and the loop's own logs
	// m is i's configuration when the action happened (a reload may
	// have given i another since), g the sync group's.
	m     *model.Instance
	g     *model.SyncGroup
	a     vrrp.Action
	prio  uint8      // the instance's priority when the action happened
	state vrrp.State // and its state
	drop  packet.DropReason
	err   error
	count uint64
	// late and grace: a master down timer that ran late (loop.fireDue).
	late, grace time.Duration
	// A reload's work: removed, the instance's transition to STOP is its
	// removal; addrs, the VIPs and routes it took away and added;
	// deleteVMAC, a VMAC no instance uses now.
	removed    bool
	addrs      *addrChange
	deleteVMAC string
}

// droppable jobs only log.
func (j *job) droppable() bool { return j.a.Kind == vrrp.ActLog }

// jobRing is how many jobs may wait for the worker.
const jobRing = 512

// worker runs jobs in order on an ordinary goroutine: VIPs and routes
// over netlink, gratuitous ARP, notify scripts, the FIFO and logs. The
// loop is its only producer and hands jobs over through a lock-free
// ring and a bell that never blocks, so it never parks (see pin.go).
type worker struct {
	ring       [jobRing]job
	head, tail atomic.Uint64 // head: the worker's next job; tail: the loop's next slot
	dropped    atomic.Uint64
	bell       chan struct{}
	quit       chan struct{}
	done       chan struct{}
}

func newWorker() *worker {
	return &worker{bell: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// push queues j; only the loop calls it. With the ring full — the worker
// stuck for hundreds of jobs — a log is dropped and counted, and any
// other job waits for room: VIP changes are never lost or reordered.
func (w *worker) push(j job) {
	t := w.tail.Load()
	for t-w.head.Load() >= jobRing {
		if j.droppable() {
			w.dropped.Add(1)
			return
		}
		napRaw(100 * time.Microsecond)
	}
	w.ring[t%jobRing] = j
	w.tail.Store(t + 1)
	select {
	case w.bell <- struct{}{}:
	default:
	}
}

// run runs jobs with do until stop; it runs the last ones before it
// returns.
func (w *worker) run(do func(job), log *slog.Logger) {
	defer close(w.done)
	reported := uint64(0)
	for {
		quit := false
		select {
		case <-w.bell:
		case <-w.quit:
			quit = true
		}
		for h := w.head.Load(); h != w.tail.Load(); h++ {
			j := w.ring[h%jobRing]
			w.ring[h%jobRing] = job{}
			w.head.Store(h + 1)
			do(j)
		}
		if d := w.dropped.Load(); d != reported {
			log.Warn("vrrp log lines dropped: the worker fell behind", "dropped", d-reported)
			reported = d
		}
		if quit {
			return
		}
	}
}

// stop runs what is queued and waits until the worker is done.
func (w *worker) stop() {
	close(w.quit)
	<-w.done
}

// napRaw sleeps without leaving the P or the pin: the thread sleeps, the
// goroutine stays running.
func napRaw(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
