package vrrpd

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Keeping the Go scheduler out of the VRRP thread's way.
//
// A realtime thread is only as prompt as the goroutine locked to it.
// That goroutine lives forever, so the runtime's monitor (sysmon) sees
// its P run the same goroutine for more than 10 ms and asks it to yield.
// A locked goroutine that yields cannot simply continue: it goes to the
// global run queue, its thread sleeps, and another thread — an ordinary
// one, which under CPU load waits its turn like every other — must pick
// the goroutine up and wake the locked thread again. Traced with every
// core busy (perf sched events), 7% of the loop's wake-ups went through
// such a hand-off and the worst took 22 ms; a master at advert_int 0.01
// that is 28 ms late makes its backup take over.
//
// So the loop runs pinned (runtime.procPin: the runtime defers any
// preemption until it unpins) and unpins only inside epollWaitPinned,
// between calls that never split the stack, where it also hands its P
// back before it sleeps (entersyscallblock, as gVisor does for blocking
// calls): asleep, the loop holds no P for sysmon to watch; awake, it
// takes an idle P and runs to its next sleep without a stop. With it the
// loop's wake-ups by other keepvs threads went from 142 to 7 in 20 s
// under a similar load (the 7: tracker events through the inbox). These
// four runtime functions are reached by linkname; the runtime keeps them
// linkable for such users (the "hall of shame" notes in runtime/proc.go),
// and TestRealtimeThread and TestLoopDoesNotAllocate run this path.
//
// What remains: taking an idle P on wake-up uses the scheduler's lock,
// and when no P is idle (all held by other keepvs threads) the loop waits
// for one; a garbage collection's stop-the-world does the same. Both
// depend on ordinary threads and are rare; the loop's own work does not
// allocate, so it does not bring collections on.
//
// Pinned, the loop must not park: no blocking channel operation, no
// contended sync.Mutex, no slog handler, no time.Sleep (a parked pinned
// goroutine is a fatal runtime error). Everything it hands out goes
// through the worker's lock-free ring or a non-blocking channel send; a
// function run by Node.call runs pinned too.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// The two calls are made from frames of the same depth, so the runtime's
// check of the system call's stack pointer holds.

//go:nosplit
func callEntersyscallblock() { entersyscallblock() }

//go:nosplit
func callExitsyscall() { exitsyscall() }

// epollWaitPinned is epoll_wait(epfd, events, n, -1) for a pinned
// goroutine: unpinned and without a P only while the kernel has it
// (epoll_pwait without a mask is epoll_wait on every architecture). It
// stores in woke the CLOCK_MONOTONIC time at which the kernel returned,
// before the runtime gave the thread a P back: the caller measures how
// long the Go scheduler kept it.
//
//go:nosplit
//go:norace
func epollWaitPinned(epfd int, events unsafe.Pointer, n int, woke *unix.Timespec) (int, syscall.Errno) {
	procUnpin()
	callEntersyscallblock()
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(events), uintptr(n), ^uintptr(0), 0, 0)
	syscall.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(woke)), 0)
	callExitsyscall()
	procPin()
	return int(r), e
}
