package tcp

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
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
// least a half-open checker can cost here — then with the answers taken
// by the eBPF ingress program (its RSTs, no packet ring), then through
// the SynProber (eBPF where it loads): its cost on top of the kernel's.
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

	// Were the SYN-ACKs dropped at a listening socket of ours (a socket
	// filter: the kernel sends no RST) and the RSTs ours, sent in
	// batches too, there would be no packet tap on every IP packet the
	// host receives: what that would cost, the capture of the answers
	// aside (nothing reads them here).
	src := netip.MustParseAddr("127.0.0.1")
	tx := newBatch(ip4Len + synLen)
	if sink, err := dropListener(); err != nil {
		t.Logf("own RST: %v", err)
	} else {
		rsts := tcpStat(t, "TcpExt:", "EmbryonicRsts")
		per = measure(n/100, func() {
			isn := rand.Uint32()
			send100(t, sink.raw, tx, func(b []byte, dst netip.Addr, k int) int {
				ip4Header(b, src, dst, uint16(k+1), synLen)
				synSegment(b[ip4Len:], src, dst, sink.port, uint16(port), isn)
				return ip4Len + synLen
			})
			send100(t, sink.raw, tx, func(b []byte, dst netip.Addr, k int) int {
				ip4Header(b, src, dst, uint16(k+1), rstLen)
				rstSegment(b[ip4Len:], src, dst, sink.port, uint16(port), isn+1)
				return ip4Len + rstLen
			})
		})
		sink.close()
		if got := tcpStat(t, "TcpExt:", "EmbryonicRsts") - rsts; got < n*9/10 {
			t.Fatalf("own RST: %d of %d RSTs reset a listener's half-open connection", got, n)
		}
		per /= 100
		t.Logf("own RST:       %v CPU per probe -> %.0f%% of a core at 10,000 probes/s (SYN-ACK dropped by a socket filter, RSTs sent by us, no packet tap)", per, 100*per.Seconds()*10000)
	}

	// Bare batches: the SynProber's sockets, ports and ring, driven by
	// hand on this thread.
	bare := testSynProber(t, false, ReceiveRing)
	if bare.r4 == nil {
		t.Fatalf("no packet ring: %s", bare.Receive())
	}
	// sendSYNs sends 100 prebuilt SYNs with sequence number isn from the
	// pool's ports, batchMax a sendmmsg.
	sendSYNs := func(isn uint32) {
		send100(t, bare.fd4, tx, func(b []byte, dst netip.Addr, k int) int {
			ip4Header(b, src, dst, uint16(k+1), synLen)
			synSegment(b[ip4Len:], src, dst, bare.ports[k%len(bare.ports)], uint16(port), isn)
			return ip4Len + synLen
		})
	}
	acked := 0
	per = measure(n/100, func() {
		isn := rand.Uint32()
		sendSYNs(isn)
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

	// The same bare batches with the answers taken by the eBPF program on
	// loopback's ingress instead (no packet ring; its RSTs, not the
	// kernel's).
	if a, err := openTCAnswers(bare.ports[0], bare.ports[len(bare.ports)-1], false); err != nil {
		t.Logf("eBPF answers: %v", err)
	} else {
		defer a.close()
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.attach(lo); err != nil {
			t.Fatal(err)
		}
		bare.r4.close()
		bare.r4 = nil
		acked = 0
		rsts := tcpStat(t, "TcpExt:", "EmbryonicRsts")
		per = measure(n/100, func() {
			isn := rand.Uint32()
			sendSYNs(isn)
			a.read(func(rec []byte) {
				if binary.BigEndian.Uint32(rec[recAck:]) == isn+1 && rec[recFlags]&tcpSYN != 0 {
					acked++
				}
			})
		})
		if acked < n*9/10 {
			t.Fatalf("eBPF answers: %d SYN-ACKs for %d SYNs", acked, n)
		}
		if got := tcpStat(t, "TcpExt:", "EmbryonicRsts") - rsts; got < n*9/10 {
			t.Fatalf("eBPF answers: %d of %d RSTs reset a listener's half-open connection", got, n)
		}
		per /= 100
		t.Logf("SYN, eBPF:     %v CPU per probe -> %.0f%% of a core at 10,000 probes/s (bare: sendmmsg, answers and RSTs by the ingress program)", per, 100*per.Seconds()*10000)
	}

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

// send100 sends 100 packets on fd, to 127.1.0.1-100 in turn, batchMax
// a sendmmsg: build writes packet k to dst into b and returns its length.
func send100(t *testing.T, fd int, tx *batch, build func(b []byte, dst netip.Addr, k int) int) {
	for k := range 100 {
		dst := netip.AddrFrom4([4]byte{127, 1, 0, byte(1 + k)})
		tx.setSend(k%batchMax, build(tx.slot(k%batchMax), dst, k), dst, 0, nil)
		if k%batchMax == batchMax-1 || k == 99 {
			for i, m := 0, k%batchMax+1; i < m; {
				sent, err := tx.sendmmsg(fd, i, m)
				if err != nil {
					t.Fatal(err)
				}
				i += sent
			}
		}
	}
}

// rstSegment writes into b (rstLen bytes) a RST from src:sport to
// dst:dport with sequence number seq: what resets a listener's
// half-open connection after its SYN-ACK, without the kernel's help.
func rstSegment(b []byte, src, dst netip.Addr, sport, dport uint16, seq uint32) {
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], 0)
	b[12], b[13] = (rstLen/4)<<4, tcpRST
	clear(b[14:rstLen]) // window, checksum, urgent pointer
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(b[:rstLen], src, dst))
}

// sink is a listening socket on port that drops every segment it gets
// (a filter returning 0: no RST either), and an IPPROTO_RAW socket.
type sink struct {
	fd, raw int
	port    uint16
}

func dropListener() (*sink, error) {
	s := &sink{fd: -1, raw: -1}
	fail := func(err error) (*sink, error) { s.close(); return nil, err }
	var err error
	if s.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	drop := []unix.SockFilter{{Code: 0x06}} // ret #0
	if err := unix.SetsockoptSockFprog(s.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
		return fail(err)
	}
	if err := unix.Bind(s.fd, &unix.SockaddrInet4{}); err != nil {
		return fail(err)
	}
	if err := unix.Listen(s.fd, 16); err != nil {
		return fail(err)
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return fail(err)
	}
	s.port = uint16(sa.(*unix.SockaddrInet4).Port)
	if s.raw, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		return fail(err)
	}
	if err := unix.SetsockoptInt(s.raw, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *sink) close() {
	for _, fd := range []int{s.fd, s.raw} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
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

// tcpStat is a counter of the TCP statistics (/proc/net/snmp,
// /proc/net/netstat) of the calling thread's network namespace — the
// test's own when it runs locked in one (inNetns); /proc/net would be the
// process's first thread's: table "Tcp:" or "TcpExt:".
func tcpStat(t *testing.T, table, name string) int {
	for _, file := range []string{"/proc/thread-self/net/netstat", "/proc/thread-self/net/snmp"} {
		b, _ := os.ReadFile(file)
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != table {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			for i, nm := range names {
				if nm == name {
					v, _ := strconv.Atoi(f[i])
					return v
				}
			}
			names = nil
		}
	}
	t.Fatalf("no %s %s", table, name)
	return 0
}
