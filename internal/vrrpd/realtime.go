package vrrpd

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The VRRP thread's scheduling.
//
// A backup at advert_int 0.01 takes over when it hears nothing for about
// 38 ms. With every core busy, a thread of normal (CFS) priority can wait
// that long for a CPU, on either side, and the backup takes the VIP from
// a live master. So by default the VRRP thread asks for the lowest
// realtime priority, SCHED_RR 1: above every normal task, below every
// other realtime one (threaded interrupts run at 50). keepalived goes
// realtime only when vrrp_rt_priority is written; keepvs does by default
// because its realtime part is one thread that sleeps between adverts
// and runs microseconds at a time, not a whole process.
//
// Realtime needs CAP_SYS_NICE or an RLIMIT_RTPRIO that allows the
// priority; without it (not root, most containers, a cgroup without
// realtime runtime) the thread keeps normal scheduling and the node says
// so once, at warning level. vrrp_priority (a nice value) then applies
// to the thread, as keepalived applies it to its VRRP process when it is
// not realtime. Options.NoRealtime (KEEPVS_VRRP_REALTIME=off for the
// daemon) asks for normal scheduling.
//
// A runaway realtime thread would starve its CPU, so RLIMIT_RTTIME is
// set to vrrp_rlimit_rttime of CPU time without sleeping (default 1 s,
// not keepalived's 10 ms: see DefaultRlimitRTTime), soft and hard alike,
// so the kernel's answer is SIGKILL at the limit. A lower limit already in
// force with a soft part below it (one this process cannot raise) sends
// SIGXCPU first, which watchRTTime logs.
// The limit belongs to the process but the kernel counts it per thread,
// and only for realtime threads: only the VRRP thread is one (threads
// and processes started from it begin in normal scheduling,
// SCHED_RESET_ON_FORK). The loop itself naps when it finds itself busy
// for a quarter of the limit (a flood of protocol 112), so the kill is
// kept for a thread that is truly stuck. Raising the limit above one
// already in force needs CAP_SYS_RESOURCE; without it the lower limit
// stays, with a warning, and the loop paces itself by it.

const (
	// DefaultRTPriority is the VRRP thread's SCHED_RR priority when
	// global_defs has no vrrp_rt_priority.
	DefaultRTPriority = 1
	// DefaultRlimitRTTime is the limit, in microseconds, when global_defs
	// has no vrrp_rlimit_rttime. keepalived's 10000 (10 ms) got keepvs
	// SIGKILLed on a slow machine (qemu TCG) right after becoming MASTER,
	// so keepvs guards only against a true runaway: one second of
	// real-time CPU without sleeping.
	DefaultRlimitRTTime = 1000000
)

// schedule sets the calling thread's scheduling, which must be locked
// to its goroutine for good, and returns how long the loop may run
// without sleeping (0: no limit, normal scheduling).
func (n *Node) schedule() time.Duration {
	g := n.cfg.Global
	tid := unix.Gettid()
	if n.opt.NoRealtime {
		n.log.Info("vrrp thread in normal scheduling: realtime turned off")
		n.nice(tid)
		return 0
	}
	prio := g.VRRPRTPriority
	if prio == 0 {
		prio = DefaultRTPriority
	}
	rttime := g.VRRPRlimitRTTime
	if rttime == 0 {
		rttime = DefaultRlimitRTTime
	}
	attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: uint32(prio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		n.log.Warn("vrrp thread in normal scheduling: realtime refused; under CPU load adverts can be late and a backup can take over falsely",
			"policy", "SCHED_RR", "priority", prio, "err", err)
		n.nice(tid)
		return 0
	}
	lim := unix.Rlimit{Cur: uint64(rttime), Max: uint64(rttime)}
	if err := unix.Setrlimit(unix.RLIMIT_RTTIME, &lim); err != nil {
		// Raising a hard limit needs CAP_SYS_RESOURCE: the process's
		// limit (an earlier node's, or the service manager's) stays.
		var cur unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_RTTIME, &cur)
		n.log.Warn("vrrp_rlimit_rttime not applied; the process's limit stays", "rlimit_rttime_us", rttime, "limit_us", int64(cur.Max), "err", err)
		if cur.Max != unix.RLIM_INFINITY {
			rttime = int(cur.Max)
		}
	}
	n.log.Info("vrrp thread realtime", "policy", "SCHED_RR", "priority", prio, "rlimit_rttime_us", rttime, "configured", g.VRRPRTPriority != 0)
	return max(time.Duration(rttime)*time.Microsecond/4, 100*time.Microsecond)
}

// unschedule puts the calling thread back in normal scheduling. The
// thread normally ends with the loop's goroutine, but not if it is the
// process's main thread, which Go parks for good instead.
func unschedule() {
	attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
	unix.SchedSetAttr(unix.Gettid(), &attr, 0)
}

// nice applies vrrp_priority to the thread (setpriority on a thread id
// changes that thread only).
func (n *Node) nice(tid int) {
	p := n.cfg.Global.VRRPPriority
	if p == 0 {
		return
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, p); err != nil {
		n.log.Warn("vrrp_priority not applied to the vrrp thread", "priority", p, "err", err)
	}
}

// watchRTTime logs the SIGXCPU the kernel sends when the VRRP thread
// passes a soft RLIMIT_RTTIME below the hard one (only a limit inherited
// and not raised has one), until stop is closed.
func (n *Node) watchRTTime(stop <-chan struct{}) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGXCPU)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				n.log.Warn("vrrp thread near its realtime cpu limit (vrrp_rlimit_rttime); at the limit the kernel kills keepvs")
			case <-stop:
				return
			}
		}
	}()
}
