package tcp

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/check"
)

// TestKernelFloor measures what the kernel alone charges a checker per
// TCP probe of a loopback listener, with no checker logic around it: a
// tight loop on one locked thread, its own CPU (RUSAGE_THREAD, which
// includes the loopback softirq work done on its behalf — the listener's
// half of each handshake). Two probes:
//
//   - connect: nonblocking socket, connect, wait writable, close — what
//     any TCP_CHECK (keepalived's or keepvs's) does;
//   - SYN only (root): one raw SYN, the listener's SYN-ACK read back, the
//     kernel's RST — the least a TCP probe can cost.
//
// Then the SYN probe in batches of 100 (as the Runner's 10 ms tick
// gathers them at 10,000 a second): first bare — prebuilt SYNs in
// sendmmsg, the answers read from a packet ring, no bookkeeping: the
// least a half-open checker can cost here — then through the SynProber:
// its cost on top of the kernel's.
//
// It puts the "10,000 checks a second under 10% of a core" in
// numbers on this machine: KEEPVS_CHECKBENCH=1 go test -run TestKernelFloor -v ./internal/check/tcp/
func TestKernelFloor(t *testing.T) {
	if os.Getenv("KEEPVS_CHECKBENCH") == "" {
		t.Skip("set KEEPVS_CHECKBENCH=1 to measure the kernel's cost per TCP probe")
	}
	// Any address, so the probes spread over 127.1.0.1-100 as checks of
	// many real servers do (one destination would pile its TIME_WAITs on
	// one 4-tuple space and measure the port search instead).
	ln := acceptAndClose(t, "0.0.0.0:0")
	port := ln.Addr().(*net.TCPAddr).Port
	const n = 20000

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	i := 0
	per := measure(n, func() {
		i++
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 1, 0, byte(1 + i%100)}})
		unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)})
		ev := make([]unix.EpollEvent, 1)
		unix.EpollWait(ep, ev, 1000)
		unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		unix.Close(fd)
		time.Sleep(50 * time.Microsecond) // let the listener keep up
	})
	t.Logf("connect+close: %v CPU per probe -> %.0f%% of a core at 10,000 probes/s", per, 100*per.Seconds()*10000)

	raw, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		t.Logf("SYN only: needs root for a raw socket (%v)", err)
		return
	}
	defer unix.Close(raw)
	unix.SetsockoptTimeval(raw, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	// A bound, unconnected socket reserves the source port, so the SYN-ACK
	// finds no socket and the kernel answers it with a RST.
	hold, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(hold)
	unix.Bind(hold, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa, _ := unix.Getsockname(hold)
	sport := sa.(*unix.SockaddrInet4).Port
	pkt, buf := make([]byte, 20), make([]byte, 1500)
	got := 0
	per = measure(n, func() {
		seq := rand.Uint32()
		binary.BigEndian.PutUint16(pkt[0:], uint16(sport))
		binary.BigEndian.PutUint16(pkt[2:], uint16(port))
		binary.BigEndian.PutUint32(pkt[4:], seq)
		binary.BigEndian.PutUint32(pkt[8:], 0)
		pkt[12], pkt[13] = 5<<4, 0x02 // header length, SYN
		binary.BigEndian.PutUint16(pkt[14:], 65535)
		binary.BigEndian.PutUint32(pkt[16:], 0)
		// Pseudo header 127.0.0.1 -> 127.0.0.1, TCP, 20 bytes.
		binary.BigEndian.PutUint16(pkt[16:], checksum(pkt, 2*0x7f00+2*0x0001+unix.IPPROTO_TCP+20))
		unix.Sendto(raw, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		for {
			m, _, err := unix.Recvfrom(raw, buf, 0)
			if err != nil {
				return
			}
			ihl := int(buf[0]&0xf) * 4
			if m >= ihl+20 && int(binary.BigEndian.Uint16(buf[ihl+2:])) == sport &&
				buf[ihl+13]&0x12 == 0x12 && binary.BigEndian.Uint32(buf[ihl+8:]) == seq+1 {
				got++
				return
			}
		}
	})
	if got < n*9/10 {
		t.Fatalf("SYN only: %d SYN-ACKs for %d SYNs", got, n)
	}
	t.Logf("SYN only:      %v CPU per probe -> %.0f%% of a core at 10,000 probes/s", per, 100*per.Seconds()*10000)

	// Bare batches: the SynProber's sockets, ports and ring, driven by
	// hand on this thread.
	bare := testSynProber(t, false)
	if bare.r4 == nil {
		t.Fatalf("no packet ring: %s", bare.Receive())
	}
	src := netip.MustParseAddr("127.0.0.1")
	tx := newBatch(ip4Len + synLen)
	acked := 0
	per = measure(n/100, func() {
		isn := rand.Uint32()
		for k := range 100 {
			dst := netip.AddrFrom4([4]byte{127, 1, 0, byte(1 + k)})
			b := tx.slot(k % batchMax)
			ip4Header(b, src, dst, uint16(k+1), synLen)
			synSegment(b[ip4Len:], src, dst, bare.ports[k%len(bare.ports)], uint16(port), isn)
			tx.setSend(k%batchMax, ip4Len+synLen, dst, 0, nil)
			if k%batchMax == batchMax-1 || k == 99 {
				for i, m := 0, k%batchMax+1; i < m; {
					sent, err := tx.sendmmsg(bare.fd4, i, m)
					if err != nil {
						t.Fatal(err)
					}
					i += sent
				}
			}
		}
		// On loopback the answers are in the ring when the send returns.
		bare.r4.read(func(pkt []byte) {
			if r, ok := parseReply4(pkt); ok && r.ack == isn+1 && r.flags&tcpSYN != 0 {
				acked++
			}
		})
	})
	if acked < n*9/10 {
		t.Fatalf("bare batches: %d SYN-ACKs for %d SYNs", acked, n)
	}
	per /= 100
	t.Logf("SYN, batched:  %v CPU per probe -> %.0f%% of a core at 10,000 probes/s (bare: sendmmsg, packet ring)", per, 100*per.Seconds()*10000)

	// The same probes through the SynProber, 100 queued per Flush (as the
	// Runner's tick queues them): the prober's own cost on top of the
	// kernel's, no Runner. Process CPU (the reader runs on its own
	// goroutine), so the machine should be otherwise quiet.
	p := testSynProber(t, true)
	var wg sync.WaitGroup
	var ok atomic.Int64
	var r0, r1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &r0)
	for range n / 100 {
		wg.Add(100)
		for k := range 100 {
			tg := check.Target{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(1 + k)}), uint16(port))}
			p.Queue(tg, time.Second, func(r check.Result) {
				if r.OK {
					ok.Add(1)
				}
				wg.Done()
			})
		}
		p.Flush()
		wg.Wait()
	}
	unix.Getrusage(unix.RUSAGE_SELF, &r1)
	if ok.Load() < n*9/10 {
		t.Fatalf("SynProber: %d up of %d probes", ok.Load(), n)
	}
	per = time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) / n
	t.Logf("SynProber:     %v CPU per probe -> %.0f%% of a core at 10,000 probes/s (batches of 100)", per, 100*per.Seconds()*10000)
}

// measure runs probe n times and returns the calling thread's CPU per run.
func measure(n int, probe func()) time.Duration {
	var r0, r1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &r0)
	for range n {
		probe()
	}
	unix.Getrusage(unix.RUSAGE_THREAD, &r1)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	return cpu / time.Duration(n)
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
