package tcp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/check"
)

// testTCAnswers loads the program for source ports [lo, hi], or skips.
func testTCAnswers(t *testing.T, lo, hi uint16, kernelRST bool) *tcAnswers {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the eBPF answer program needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	a, err := openTCAnswers(lo, hi, kernelRST)
	if err != nil {
		t.Skipf("no eBPF here (CAP_BPF and a kernel with tcx, 6.6+, needed): %v", err)
	}
	t.Cleanup(a.close)
	return a
}

// synAck is an Ethernet frame (zero destination address, as loopback's)
// carrying a SYN-ACK from src:80 to dst:port with ack and the options a
// listener's has, so the program must cut them off.
func synAck(src, dst netip.Addr, port uint16, ack uint32, flags byte) []byte {
	const opts = 20 // MSS, SACK permitted, timestamps, window scale
	seg := make([]byte, 20+opts)
	binary.BigEndian.PutUint16(seg[0:], 80)
	binary.BigEndian.PutUint16(seg[2:], port)
	binary.BigEndian.PutUint32(seg[4:], 7777)
	binary.BigEndian.PutUint32(seg[8:], ack)
	seg[12], seg[13] = (20+opts)/4<<4, flags
	binary.BigEndian.PutUint16(seg[14:], 65483)
	copy(seg[20:], []byte{2, 4, 0xff, 0xd7, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 3, 7})
	binary.BigEndian.PutUint16(seg[16:], tcpChecksum(seg, src, dst))
	frame := make([]byte, ethLen, 128)
	copy(frame[6:], []byte{2, 0, 0, 0, 0, 1}) // source MAC
	if src.Is4() {
		binary.BigEndian.PutUint16(frame[12:], unix.ETH_P_IP)
		ip := make([]byte, ip4Len)
		ip4Header(ip, src, dst, 1, len(seg))
		binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
		frame = append(frame, ip...)
	} else {
		binary.BigEndian.PutUint16(frame[12:], unix.ETH_P_IPV6)
		ip := make([]byte, ip6Len)
		ip6Header(ip, src, dst, len(seg))
		frame = append(frame, ip...)
	}
	return append(frame, seg...)
}

// TestTCAnswerProgram runs the program on crafted frames (the kernel's
// test run: nothing is sent): a SYN-ACK to a reserved port is recorded and
// becomes, byte for byte, the RST the kernel would send, addressed back
// (Ethernet addresses too) and redirected; a RST is recorded and dropped;
// anything else passes to the next program untouched and unrecorded.
func TestTCAnswerProgram(t *testing.T) {
	a := testTCAnswers(t, 40000, 40100, false)
	prog := a.progs[ethLen]
	run := func(frame []byte) (int32, []byte) {
		out := make([]byte, 256)
		opts := &ebpf.RunOptions{Data: frame, DataOut: out}
		ret, err := prog.Run(opts)
		if err != nil {
			t.Fatal(err)
		}
		return int32(ret), opts.DataOut
	}
	records := func() []reply {
		var rs []reply
		a.read(func(rec []byte) {
			r, _ := parseRecord(rec)
			rs = append(rs, r)
		})
		return rs
	}
	for _, fam := range []struct{ remote, local string }{{"192.0.2.7", "192.0.2.1"}, {"2001:db8::7", "2001:db8::1"}} {
		remote, local := netip.MustParseAddr(fam.remote), netip.MustParseAddr(fam.local)
		l3 := ip4Len
		if remote.Is6() {
			l3 = ip6Len
		}
		t.Run(fam.remote, func(t *testing.T) {
			ret, out := run(synAck(remote, local, 40050, 0xdeadbeef, tcpSYN|tcpACK))
			if ret != 7 { // TC_ACT_REDIRECT
				t.Fatalf("SYN-ACK: returned %d, want a redirect (7)", ret)
			}
			want := make([]byte, ethLen+l3+rstLen)
			copy(want[0:], []byte{2, 0, 0, 0, 0, 1}) // back to the sender
			copy(want[12:], synAck(remote, local, 0, 0, 0)[12:14])
			if remote.Is4() {
				ip4Header(want[ethLen:], local, remote, 0, rstLen)
				binary.BigEndian.PutUint16(want[ethLen+10:], checksum(want[ethLen:ethLen+ip4Len], 0))
			} else {
				ip6Header(want[ethLen:], local, remote, rstLen)
			}
			rstSegment(want[ethLen+l3:], local, remote, 40050, 80, 0xdeadbeef)
			if string(out) != string(want) {
				t.Errorf("the RST:\n got % x\nwant % x", out, want)
			}
			if rs := records(); len(rs) != 1 || rs[0] != (reply{netip.AddrPortFrom(remote, 80), 40050, 0xdeadbeef, tcpSYN | tcpACK}) {
				t.Errorf("records %+v, want the SYN-ACK's", rs)
			}

			// Where connection tracking is on, the SYN-ACK goes on to the
			// kernel, untouched, recorded all the same.
			k := testTCAnswers(t, 40000, 40100, true)
			in := synAck(remote, local, 40050, 0xdeadbeef, tcpSYN|tcpACK)
			kopts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, 256)}
			if ret, err := k.progs[ethLen].Run(kopts); err != nil || int32(ret) != tcActOK || string(kopts.DataOut) != string(in) {
				t.Errorf("kernel's RST: returned %d, %v, frame changed %v; want it passed (0) untouched", int32(ret), err, string(kopts.DataOut) != string(in))
			}
			var krecs []reply
			k.read(func(rec []byte) { r, _ := parseRecord(rec); krecs = append(krecs, r) })
			if len(krecs) != 1 || krecs[0].ack != 0xdeadbeef || krecs[0].flags != tcpSYN|tcpACK {
				t.Errorf("kernel's RST: records %+v, want the SYN-ACK's", krecs)
			}

			if ret, _ := run(synAck(remote, local, 40100, 5, tcpRST|tcpACK)); ret != tcActShot {
				t.Errorf("RST: returned %d, want a drop (%d)", ret, tcActShot)
			}
			if rs := records(); len(rs) != 1 || rs[0].flags != tcpRST|tcpACK || rs[0].localPort != 40100 || rs[0].ack != 5 {
				t.Errorf("records %+v, want the RST's", rs)
			}

			if remote.Is4() {
				// IP options (4 bytes: NOP NOP NOP EOL): recorded, and
				// left to the kernel, untouched.
				f := synAck(remote, local, 40077, 42, tcpSYN|tcpACK)
				opt := slices.Concat(f[:ethLen+ip4Len], []byte{1, 1, 1, 0}, f[ethLen+ip4Len:])
				ip := opt[ethLen:]
				ip[0] = 0x46
				binary.BigEndian.PutUint16(ip[2:], binary.BigEndian.Uint16(ip[2:])+4)
				binary.BigEndian.PutUint16(ip[10:], 0)
				binary.BigEndian.PutUint16(ip[10:], checksum(ip[:24], 0))
				if ret, out := run(opt); ret != tcActOK || string(out) != string(opt) {
					t.Errorf("SYN-ACK with IP options: returned %d (want %d, the kernel's), frame changed: %v", ret, tcActOK, string(out) != string(opt))
				}
				if rs := records(); len(rs) != 1 || rs[0] != (reply{netip.AddrPortFrom(remote, 80), 40077, 42, tcpSYN | tcpACK}) {
					t.Errorf("SYN-ACK with IP options: records %+v, want its", rs)
				}
			}

			for _, other := range []struct {
				name  string
				frame []byte
			}{
				{"port below the pool", synAck(remote, local, 39999, 1, tcpSYN|tcpACK)},
				{"port above the pool", synAck(remote, local, 40101, 1, tcpSYN|tcpACK)},
				{"no ACK (a SYN)", synAck(remote, local, 40050, 1, tcpSYN)},
				{"no SYN or RST (data)", synAck(remote, local, 40050, 1, tcpACK)},
			} {
				if ret, out := run(other.frame); ret != tcxNext || string(out) != string(other.frame) {
					t.Errorf("%s: returned %d (want %d, the next program), frame changed: %v", other.name, ret, tcxNext, string(out) != string(other.frame))
				}
			}
			if rs := records(); len(rs) != 0 {
				t.Errorf("records %+v of packets not ours", rs)
			}
		})
	}
}

// TestConntrackOn: the kernel resets SYN-ACKs where connection tracking
// holds entries, the program where it holds none or is not there.
func TestConntrackOn(t *testing.T) {
	defer func(f string) { conntrackCount = f }(conntrackCount)
	for _, tt := range []struct {
		content string
		want    bool
	}{{"0\n", false}, {"17\n", true}, {"", false}, {"-", false}} {
		conntrackCount = t.TempDir() + "/count"
		if tt.content != "-" {
			os.WriteFile(conntrackCount, []byte(tt.content), 0o644)
		}
		if got := conntrackOn(); got != tt.want {
			t.Errorf("count file %q: conntrackOn() = %v, want %v", tt.content, got, tt.want)
		}
	}
}

// inNetns moves the test's goroutine, locked to its thread, into a new
// network namespace with its loopback up, until the test ends.
func inNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Skipf("no network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // the thread is in the wrong namespace for good
		}
		orig.Close()
		runtime.UnlockOSThread()
	})
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSynEBPFResets: with the eBPF receive, every probe's RST is the
// program's — each resets the listener's half-open connection
// (EmbryonicRsts) and the kernel's TCP sends none (OutRsts) — where the
// packet ring leaves the RST to the kernel. In a namespace of its own,
// whose counters nothing else moves.
func TestSynEBPFResets(t *testing.T) {
	inNetns(t)
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	targets := []check.Target{{Addr: netip.MustParseAddrPort(ln4.Addr().String())}}
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer ln6.Close()
		targets = append(targets, check.Target{Addr: netip.MustParseAddrPort(ln6.Addr().String())})
	} else {
		t.Logf("IPv6: skipped, no ::1 (%v)", err)
	}
	const n = 20
	for _, mode := range []struct {
		m          ReceiveMode
		kernelRsts int
	}{{ReceiveEBPF, 0}, {ReceiveRing, 1}} {
		p := testSynProber(t, true, mode.m)
		emb, out := tcpStat(t, "TcpExt:", "EmbryonicRsts"), tcpStat(t, "Tcp:", "OutRsts")
		for range n {
			for _, tg := range targets {
				if r := synProbe(t, p, tg, 3*time.Second); !r.OK {
					t.Fatalf("%s: probe of %v = %+v, want up", p.Receive(), tg.Addr, r)
				}
			}
		}
		probes := n * len(targets)
		// The last RST may still be on its way through the backlog.
		for deadline := time.Now().Add(2 * time.Second); tcpStat(t, "TcpExt:", "EmbryonicRsts")-emb < probes && time.Now().Before(deadline); {
			runtime.Gosched()
		}
		if got := tcpStat(t, "TcpExt:", "EmbryonicRsts") - emb; got != probes {
			t.Errorf("%s: %d half-open connections reset, want %d", p.Receive(), got, probes)
		}
		if got := tcpStat(t, "Tcp:", "OutRsts") - out; got != probes*mode.kernelRsts {
			t.Errorf("%s: the kernel sent %d RSTs, want %d", p.Receive(), got, probes*mode.kernelRsts)
		}
	}
}

// TestSynEBPFClose: closing the prober takes the program off every
// interface (a daemon's stop leaves nothing behind; a crash neither: the
// links die with the process's descriptors).
func TestSynEBPFClose(t *testing.T) {
	inNetns(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	programs := func() int {
		t.Helper()
		q, err := link.QueryPrograms(link.QueryOptions{Target: lo.Attrs().Index, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			t.Fatal(err)
		}
		return len(q.Programs)
	}
	p, err := OpenSynProber(SynOptions{Ports: 16, Receive: ReceiveEBPF})
	if errors.Is(err, errNoTC) || errors.Is(err, ErrRawSocket) {
		t.Skipf("no eBPF receive here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := programs(); n != 1 {
		t.Errorf("%d programs on lo's ingress with the prober open, want 1", n)
	}
	p.Close()
	if n := programs(); n != 0 {
		t.Errorf("%d programs on lo's ingress after Close, want none", n)
	}
}

// TestSynEBPFInterfaces: the program goes on interfaces that appear
// after the prober opened (Ethernet: a veth pair; L3: a tun) and lets go
// of those removed; one it cannot read is let be while down, an error
// once up.
func TestSynEBPFInterfaces(t *testing.T) {
	inNetns(t)
	p := testSynProber(t, true, ReceiveEBPF)
	wait := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !f(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the program is on %d interfaces", what, p.tc.interfaces())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	on := func(name string) bool {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return false
		}
		p.tc.mu.Lock()
		defer p.tc.mu.Unlock()
		_, ok := p.tc.links[l.Attrs().Index]
		return ok
	}
	if n := p.tc.interfaces(); n != 1 {
		t.Fatalf("on %d interfaces at first, want 1 (lo)", n)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "kvveth0"}, PeerName: "kvveth1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Skipf("no veth: %v", err)
	}
	wait("veth pair added", func() bool { return on("kvveth0") && on("kvveth1") })
	tun := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "kvtun0"}, Mode: netlink.TUNTAP_MODE_TUN}
	if err := netlink.LinkAdd(tun); err != nil {
		t.Logf("tun: skipped (%v)", err)
	} else {
		wait("tun added", func() bool { return on("kvtun0") })
		p.tc.mu.Lock()
		l3 := p.tc.progs[0] != nil
		p.tc.mu.Unlock()
		if !l3 {
			t.Error("the tun got the Ethernet program")
		}
	}
	// A link type the program does not read (IPIP: this kernel may have
	// none to make, so a link as rtnetlink would describe one) is no
	// matter while it is down, and an error once it is up: answers
	// through it would go unseen (watch warns with it).
	ipip := &netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: "kvipip0", Index: 999, EncapType: "ipip"}, LinkType: "ipip"}
	if err := p.tc.attach(ipip); err != nil {
		t.Errorf("an IPIP tunnel that is down: %v, want nothing to do", err)
	}
	ipip.Flags |= net.FlagUp
	if err := p.tc.attach(ipip); !errors.Is(err, errFraming) || !strings.Contains(err.Error(), "kvipip0 (ipip)") {
		t.Errorf("an IPIP tunnel that is up: %v, want %v naming it", err, errFraming)
	}
	if err := netlink.LinkDel(veth); err != nil {
		t.Fatal(err)
	}
	wait("veth pair removed", func() bool {
		return !on("kvveth0") && !on("kvveth1") && p.tc.interfaces() == 1+map[bool]int{true: 1}[on("kvtun0")]
	})
}

// TestSynEBPFTun: through an L3 interface (a tun whose other end is this
// test), a probe's SYN goes out, the SYN-ACK written back comes in, the
// program reports it (the probe is up) and sends the RST back out the
// tun: sequence number the SYN-ACK's ack, from the probe's port.
func TestSynEBPFTun(t *testing.T) {
	inNetns(t)
	fd, _ := testTun(t, "kvtun1", "10.99.0.1/24")
	p := testSynProber(t, true, ReceiveEBPF)
	local, remote := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	// next is the next TCP segment out of the tun (IPv4 only: the
	// kernel's own IPv6 chatter is skipped).
	buf := make([]byte, 2048)
	next := func() []byte {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); ; {
			pkt := readTun(t, fd, buf, deadline)
			if pkt == nil {
				t.Fatal("nothing came out of the tun")
			}
			if len(pkt) >= ip4Len+rstLen && pkt[0] == 0x45 && pkt[9] == unix.IPPROTO_TCP {
				return pkt
			}
		}
	}
	ch := make(chan check.Result, 1)
	p.Start(check.Target{Addr: netip.AddrPortFrom(remote, 80)}, 3*time.Second, func(r check.Result) { ch <- r })
	syn := next()
	seg := syn[ip4Len:]
	sport, isn := binary.BigEndian.Uint16(seg[0:]), binary.BigEndian.Uint32(seg[4:])
	if seg[13] != tcpSYN || binary.BigEndian.Uint16(seg[2:]) != 80 {
		t.Fatalf("out of the tun: % x, want the SYN", syn)
	}
	answer := synAck(remote, local, sport, isn+1, tcpSYN|tcpACK)[ethLen:]
	if _, err := unix.Write(fd, answer); err != nil {
		t.Fatal(err)
	}
	rst := next()
	want := make([]byte, ip4Len+rstLen)
	ip4Header(want, local, remote, 0, rstLen)
	binary.BigEndian.PutUint16(want[10:], checksum(want[:ip4Len], 0))
	rstSegment(want[ip4Len:], local, remote, sport, 80, isn+1)
	if string(rst) != string(want) {
		t.Errorf("out of the tun after the SYN-ACK:\n got % x\nwant % x (the RST)", rst, want)
	}
	if r := result(t, ch, 3*time.Second); !r.OK {
		t.Errorf("probe = %+v, want up", r)
	}
	if s := p.Receive(); !strings.HasPrefix(s, "eBPF") {
		t.Errorf("Receive() = %q", s)
	}
}

// testTun makes a tun interface with address cidr, up, in the test's
// namespace (inNetns); fd is its other end, nonblocking.
func testTun(t *testing.T, name, cidr string) (int, netlink.Link) {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no tun: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Skipf("no tun: %v", err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr(cidr)
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return fd, l
}

// readTun is the next packet out of the tun whose other end is fd, read
// into buf, or nil when none came by deadline.
func readTun(t *testing.T, fd int, buf []byte, deadline time.Time) []byte {
	t.Helper()
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	return nil
}

// TestSynSendBufferFull: SYNs the kernel will not take because the raw
// socket's send buffer is full of earlier ones still queued (here behind a
// tun nobody reads; on a director behind a veth whose other end lags) are
// neither failed nor lost: they go as the queue drains. Each came back
// "resource temporarily unavailable" and its real server was reported
// down (105 of them in one run of bench/checks-10k-syn.sh's veth setup).
func TestSynSendBufferFull(t *testing.T) {
	inNetns(t)
	fd, l := testTun(t, "kvtun2", "10.98.0.1/16")
	// A qdisc that holds the SYNs (a tun drops what its reader leaves):
	// a token bucket at 1 KB/s, then at 1 GB/s.
	tbf := func(rate uint64) *netlink.Tbf {
		return &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}, Rate: rate, Limit: 1 << 20, Buffer: netlink.Xmittime(rate, 1600)}
	}
	if err := netlink.QdiscAdd(tbf(1000)); err != nil {
		t.Skipf("no tbf qdisc: %v", err)
	}
	p := testSynProber(t, true)
	p.mu.Lock()
	setSendBuffer(p.fd4, 4096) // a few SYNs' worth
	p.mu.Unlock()
	const n = 60
	want := map[netip.Addr]bool{}
	ch := make(chan check.Result, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 98, 1, byte(1 + i)})
		want[a] = true
		p.Queue(check.Target{Addr: netip.AddrPortFrom(a, 80)}, 1500*time.Millisecond, func(r check.Result) { ch <- r })
	}
	p.Flush()
	p.mu.Lock()
	blocked := p.blocked
	p.mu.Unlock()
	if err := netlink.QdiscReplace(tbf(1 << 30)); err != nil {
		t.Fatal(err)
	}
	// Nobody read the tun so far; now every SYN must come out of it.
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(time.Second); len(want) > 0; {
		pkt := readTun(t, fd, buf, deadline)
		if pkt == nil {
			break
		}
		if len(pkt) >= ip4Len+synLen && pkt[0] == 0x45 && pkt[9] == unix.IPPROTO_TCP && pkt[ip4Len+13] == tcpSYN {
			delete(want, netip.AddrFrom4([4]byte(pkt[16:20])))
		}
	}
	for range n {
		if r := result(t, ch, 3*time.Second); r.OK || !strings.HasSuffix(r.Reason, "timeout") {
			t.Fatalf("probe = %+v, want a timeout (nobody answers), not a failed send", r)
		}
	}
	if len(want) > 0 {
		t.Errorf("%d of %d SYNs never left (%d were blocked at first)", len(want), n, blocked)
	}
	if blocked == 0 {
		t.Error("the send buffer never filled: the test tested nothing")
	}
}

// TestSynPacing: a burst of SYNs stops once a window of them are
// unanswered (here: behind a tun whose other end, the test, answers
// only some), the answers that come let as many more go, and a burst
// that got none goes on after the pause — silent real servers do not
// hold the rest back. A thousand SYNs at once overflowed the NAPI ring
// of the veth in bench/checks-10k-syn.sh's napi setup (256 packets):
// 10-12 real servers falsely down.
func TestSynPacing(t *testing.T) { receiveModes(t, testSynPacing) }

func testSynPacing(t *testing.T, mode ReceiveMode) {
	inNetns(t)
	fd, _ := testTun(t, "kvtun3", "10.97.0.1/16")
	p := testSynProber(t, true, mode)
	p.mu.Lock()
	p.pause = time.Hour // only answers let more go, until the end
	window := p.window
	p.mu.Unlock()
	local := netip.MustParseAddr("10.97.0.1")
	n := 2*window + 10
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 97, 1 + byte(i/250), byte(1 + i%250)})
		p.Queue(check.Target{Addr: netip.AddrPortFrom(a, 80)}, time.Minute, func(check.Result) {})
	}
	p.Flush()
	// syns reads k SYNs out of the tun (the RSTs for the answers, and
	// the kernel's own IPv6 chatter, skipped).
	buf := make([]byte, 2048)
	type sent struct {
		remote netip.Addr
		port   uint16
		isn    uint32
	}
	syns := func(k int) []sent {
		t.Helper()
		var got []sent
		for deadline := time.Now().Add(3 * time.Second); len(got) < k; {
			pkt := readTun(t, fd, buf, deadline)
			if pkt == nil {
				t.Fatalf("%d of %d SYNs came out of the tun", len(got), k)
			}
			if len(pkt) >= ip4Len+synLen && pkt[0] == 0x45 && pkt[9] == unix.IPPROTO_TCP && pkt[ip4Len+13] == tcpSYN {
				seg := pkt[ip4Len:]
				got = append(got, sent{netip.AddrFrom4([4]byte(pkt[16:20])), binary.BigEndian.Uint16(seg[0:]), binary.BigEndian.Uint32(seg[4:])})
			}
		}
		return got
	}
	// waiting is how many SYNs the prober holds back.
	waiting := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.pending)
	}
	first := syns(window)
	if w := waiting(); w != n-window {
		t.Fatalf("after the first window: %d SYNs wait, want %d", w, n-window)
	}
	const k = 20
	for _, s := range first[:k] {
		if _, err := unix.Write(fd, synAck(s.remote, local, s.port, s.isn+1, tcpSYN|tcpACK)[ethLen:]); err != nil {
			t.Fatal(err)
		}
	}
	syns(k)
	if w := waiting(); w != n-window-k {
		t.Fatalf("after %d answers: %d SYNs wait, want %d", k, w, n-window-k)
	}
	// No more answers: after the pause the rest go, in a new burst.
	p.mu.Lock()
	p.pause = 10 * time.Millisecond
	p.wake()
	p.mu.Unlock()
	syns(n - window - k)
	if w := waiting(); w != 0 {
		t.Fatalf("after the pause: %d SYNs wait, want none", w)
	}
}

// TestSynEBPFConntrack: where connection tracking is on (an nftables
// rule that uses it, in a namespace of the test's own), the program only
// records the SYN-ACKs and the kernel resets them, through netfilter —
// so each probe's entry ends closed, none left half-open as the
// program's own RSTs, below netfilter, would leave them. Tracking turned
// on while the prober runs swaps the program on every interface.
func TestSynEBPFConntrack(t *testing.T) {
	inNetns(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (nftables) to turn connection tracking on")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tg := check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}
	const n = 20
	// probes runs n probes and checks how many RSTs the kernel sent.
	probes := func(p *SynProber, kernelRsts int) {
		t.Helper()
		out := tcpStat(t, "Tcp:", "OutRsts")
		for range n {
			if r := synProbe(t, p, tg, 3*time.Second); !r.OK {
				t.Fatalf("probe = %+v, want up", r)
			}
		}
		if got := tcpStat(t, "Tcp:", "OutRsts") - out; got != kernelRsts {
			t.Errorf("%s: the kernel sent %d RSTs, want %d", p.Receive(), got, kernelRsts)
		}
	}

	p := testSynProber(t, true, ReceiveEBPF)
	if p.Receive() != "eBPF program" {
		t.Fatalf("no tracking yet: Receive() = %q, want the program's RSTs", p.Receive())
	}
	probes(p, 0)

	nft := exec.Command("nft", "-f", "-")
	nft.Stdin = strings.NewReader("table inet kvsct {\n chain out {\n  type filter hook output priority 0;\n  ct state new counter\n }\n}\n")
	if out, err := nft.CombinedOutput(); err != nil {
		t.Skipf("nft: %v: %s", err, out)
	}
	// A connection, so the table holds an entry when the prober looks.
	if c, err := net.Dial("tcp4", ln.Addr().String()); err == nil {
		c.Close()
	}
	if err := p.tc.setKernelRST(conntrackOn()); err != nil { // what watch does every 10 s
		t.Fatal(err)
	}
	if !strings.Contains(p.Receive(), "RSTs by the kernel") {
		t.Fatalf("tracking on: Receive() = %q, want the kernel's RSTs", p.Receive())
	}
	probes(p, n)
	b, err := os.ReadFile("/proc/thread-self/net/nf_conntrack")
	if err != nil {
		t.Skipf("no conntrack table to read: %v", err)
	}
	port := "dport=" + strconv.Itoa(int(tg.Addr.Port()))
	closed := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, port) {
			continue
		}
		if strings.Contains(line, "SYN_SENT") || strings.Contains(line, "SYN_RECV") {
			t.Errorf("a probe's entry left half-open: %s", line)
		}
		if strings.Contains(line, " CLOSE ") {
			closed++
		}
	}
	if closed < n {
		t.Errorf("%d closed entries for %d probes:\n%s", closed, n, b)
	}
}
