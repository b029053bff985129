package vrrpd_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrpd/netnstest"
)

// sniffed is one advert a sniffer saw, with the kernel's receive time.
type sniffed struct {
	at   time.Time
	src  netip.Addr
	prio uint8
}

// sniffer records every IPv4 VRRP advert on a host's eth0 with the
// kernel's receive timestamp (SO_TIMESTAMPNS), so a busy test process
// still measures the gaps the wire had, not its own scheduling.
type sniffer struct {
	fd   int
	mu   sync.Mutex
	got  []sniffed
	stop chan struct{}
	done chan struct{}
}

func sniff(t *testing.T, bed *netnstest.Bed, host string) *sniffer {
	t.Helper()
	s := &sniffer{fd: -1, stop: make(chan struct{}), done: make(chan struct{})}
	err := bed.Do(host, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, packet.Protocol)
		if err != nil {
			return err
		}
		s.fd = fd
		mreq := unix.IPMreqn{Multiaddr: packet.GroupIPv4.As4(), Ifindex: int32(ifi.Index)}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		return errors.Join(
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1),
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20),
			unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &mreq),
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		)
	})
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		t.Fatalf("sniffer on %s: %v", host, err)
	}
	go s.run()
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *sniffer) run() {
	defer close(s.done)
	buf, oob := make([]byte, 2048), make([]byte, 256)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(s.fd, buf, oob, 0)
		if err != nil {
			continue // SO_RCVTIMEO: look at stop again
		}
		meta, msg, r := packet.SplitIPv4(buf[:n])
		if r != packet.DropNone || len(msg) < packet.HeaderLen {
			continue
		}
		rec := sniffed{src: meta.Src, prio: msg[2]}
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SO_TIMESTAMPNS && len(cm.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := (*unix.Timespec)(unsafe.Pointer(&cm.Data[0]))
					rec.at = time.Unix(ts.Unix())
				}
			}
		}
		if rec.at.IsZero() {
			rec.at = time.Now()
		}
		s.mu.Lock()
		s.got = append(s.got, rec)
		s.mu.Unlock()
	}
}

// Stop ends the sniffer and returns what it saw.
func (s *sniffer) Stop() []sniffed {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
		unix.Close(s.fd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// advertStats sums up one sender's adverts between from and to.
type advertStats struct {
	count   int
	maxGap  time.Duration
	late    int // gaps over 1.5 intervals
	missing int // intervals with no advert: sum over gaps of gap/interval-1, rounded
}

func statsOf(recs []sniffed, src netip.Addr, from, to time.Time, interval time.Duration) advertStats {
	var st advertStats
	prev := from
	for _, r := range recs {
		if r.src != src || r.at.Before(from) || r.at.After(to) {
			continue
		}
		st.count++
		st.add(r.at.Sub(prev), interval)
		prev = r.at
	}
	st.add(to.Sub(prev), interval)
	return st
}

func (st *advertStats) add(gap, interval time.Duration) {
	st.maxGap = max(st.maxGap, gap)
	if gap > interval*3/2 {
		st.late++
		st.missing += int((gap+interval/2)/interval) - 1
	}
}

func (st advertStats) String() string {
	return fmt.Sprintf("%d adverts, max gap %v, %d gaps over 1.5 intervals (%d adverts missing)", st.count, st.maxGap.Round(100*time.Microsecond), st.late, st.missing)
}
