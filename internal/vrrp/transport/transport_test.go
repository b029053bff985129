package transport_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
	"github.com/keepvs/keepvs/internal/vrrp/transport"
	"github.com/keepvs/keepvs/internal/vrrpd/netnstest"
)

func advert(t *testing.T, v uint8, fam packet.Family, src, dst netip.Addr, vips ...netip.Addr) []byte {
	t.Helper()
	a := packet.Advert{Version: v, Type: packet.TypeAdvertisement, VRID: 7, Priority: 100, Addrs: vips, CountIPAddrs: uint8(len(vips))}
	if v == 2 {
		a.AdvertInt = 1
	} else {
		a.AdvertInt = 100
	}
	b, err := a.Marshal(packet.EncodeOptions{Family: fam, Src: src, Dst: dst})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func expect(v uint8, fam packet.Family, unicast bool, vips ...netip.Addr) *packet.Expect {
	d := time.Second
	return &packet.Expect{Version: v, Family: fam, VRID: 7, AdvertInterval: d, VIPs: vips, Unicast: unicast}
}

func recv(t *testing.T, c transport.Conn) ([]byte, packet.RecvMeta) {
	t.Helper()
	type res struct {
		b    []byte
		meta packet.RecvMeta
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		b := make([]byte, 1500)
		n, meta, err := c.ReadFrom(b)
		ch <- res{b[:n], meta, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.b, r.meta
	case <-time.After(3 * time.Second):
		t.Fatal("nothing received within 3s")
	}
	return nil, packet.RecvMeta{}
}

func TestHub(t *testing.T) {
	h := transport.NewHub()
	a1, a2, a3 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	c1, c2, c3 := h.Conn(a1, packet.GroupIPv4), h.Conn(a2, packet.GroupIPv4), h.Conn(a3, netip.Addr{})
	vip := netip.MustParseAddr("10.0.0.100")
	msg := advert(t, 2, packet.IPv4, a1, packet.GroupIPv4, vip)
	if err := c1.WriteTo(msg, packet.GroupIPv4); err != nil {
		t.Fatal(err)
	}
	b, meta := recv(t, c2)
	if _, r := packet.Validate(b, meta, expect(2, packet.IPv4, false, vip)); r != packet.DropNone || meta.Src != a1 {
		t.Fatalf("multicast: %v from %v", r, meta.Src)
	}
	// Unicast reaches only its destination; c3 (no group) got nothing.
	c1.WriteTo(msg, a3)
	if _, meta := recv(t, c3); meta.Dst != a3 {
		t.Fatalf("unicast dst %v", meta.Dst)
	}
	c2.SetDown(true)
	c1.WriteTo(msg, packet.GroupIPv4)
	c2.SetDown(false)
	c1.WriteTo(msg, a2)
	if _, meta := recv(t, c2); meta.Dst != a2 {
		t.Fatalf("a down conn received: got dst %v first", meta.Dst)
	}
	c2.Close()
	if _, _, err := c2.ReadFrom(make([]byte, 10)); err != transport.ErrClosed {
		t.Fatalf("read after close: %v", err)
	}
}

// TestRawSockets sends adverts between two namespaces over real raw
// sockets: multicast and unicast, IPv4 (VRRPv2) and IPv6 (VRRPv3), and
// checks what Validate needs arrives: source, destination, TTL 255.
func TestRawSockets(t *testing.T) {
	bed := netnstest.New(t)
	bed.Host("a", "10.77.1.1/24", "fd77::1/64")
	bed.Host("b", "10.77.1.2/24", "fd77::2/64")
	a4, b4 := netip.MustParseAddr("10.77.1.1"), netip.MustParseAddr("10.77.1.2")
	a6 := netip.MustParseAddr("fd77::1")
	open := func(h string, o transport.Options) transport.Conn {
		var c transport.Conn
		if err := bed.Do(h, func() (err error) {
			c, err = transport.Listen(context.Background(), o)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	vip4, vip6 := netip.MustParseAddr("10.77.1.100"), netip.MustParseAddr("fd77::100")

	ca := open("a", transport.Options{Interface: "eth0", Family: packet.IPv4, Src: a4, Group: packet.GroupIPv4})
	cb := open("b", transport.Options{Interface: "eth0", Family: packet.IPv4, Src: b4, Group: packet.GroupIPv4})
	if err := ca.WriteTo(advert(t, 2, packet.IPv4, a4, packet.GroupIPv4, vip4), packet.GroupIPv4); err != nil {
		t.Fatal(err)
	}
	b, meta := recv(t, cb)
	if meta.Src != a4 || meta.Dst != packet.GroupIPv4 || meta.TTL != 255 {
		t.Fatalf("ipv4 multicast meta %+v", meta)
	}
	if _, r := packet.Validate(b, meta, expect(2, packet.IPv4, false, vip4)); r != packet.DropNone {
		t.Fatalf("ipv4 multicast: %v", r)
	}
	// Unicast, v3 (pseudo-header checksum over the real addresses).
	ca.WriteTo(advert(t, 3, packet.IPv4, a4, b4, vip4), b4)
	b, meta = recv(t, cb)
	if meta.Dst != b4 || meta.TTL != 255 {
		t.Fatalf("ipv4 unicast meta %+v", meta)
	}
	e := expect(3, packet.IPv4, true, vip4)
	if _, r := packet.Validate(b, meta, e); r != packet.DropNone {
		t.Fatalf("ipv4 unicast: %v", r)
	}

	c6a := open("a", transport.Options{Interface: "eth0", Family: packet.IPv6, Src: a6, Group: packet.GroupIPv6})
	c6b := open("b", transport.Options{Interface: "eth0", Family: packet.IPv6, Group: packet.GroupIPv6})
	if err := c6a.WriteTo(advert(t, 3, packet.IPv6, a6, packet.GroupIPv6, vip6), packet.GroupIPv6); err != nil {
		t.Fatal(err)
	}
	b, meta = recv(t, c6b)
	if meta.Src != a6 || meta.Dst != packet.GroupIPv6 || meta.TTL != 255 {
		t.Fatalf("ipv6 multicast meta %+v", meta)
	}
	if _, r := packet.Validate(b, meta, expect(3, packet.IPv6, false, vip6)); r != packet.DropNone {
		t.Fatalf("ipv6 multicast: %v", r)
	}
}

// readNow polls a Poller until a message arrives.
func readNow(t *testing.T, c transport.Conn) ([]byte, packet.RecvMeta) {
	t.Helper()
	p, ok := c.(transport.Poller)
	if !ok {
		t.Fatalf("%T is not a Poller", c)
	}
	b := make([]byte, 1500)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n, meta, err := p.ReadNow(b)
		if err == transport.ErrWouldBlock {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return b[:n], meta
	}
	t.Fatal("nothing received within 3s")
	return nil, packet.RecvMeta{}
}

// TestPoller reads with ReadNow what WriteTo sent, IPv4 and IPv6, and
// checks that neither allocates: the VRRP thread relies on both.
func TestPoller(t *testing.T) {
	bed := netnstest.New(t)
	bed.Host("a", "10.77.2.1/24", "fd77:2::1/64")
	bed.Host("b", "10.77.2.2/24", "fd77:2::2/64")
	a4, a6 := netip.MustParseAddr("10.77.2.1"), netip.MustParseAddr("fd77:2::1")
	open := func(h string, o transport.Options) transport.Conn {
		var c transport.Conn
		if err := bed.Do(h, func() (err error) {
			c, err = transport.Listen(context.Background(), o)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, tc := range []struct {
		name  string
		v     uint8
		fam   packet.Family
		src   netip.Addr
		group netip.Addr
	}{
		{"ipv4", 2, packet.IPv4, a4, packet.GroupIPv4},
		{"ipv6", 3, packet.IPv6, a6, packet.GroupIPv6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := open("a", transport.Options{Interface: "eth0", Family: tc.fam, Src: tc.src, Group: tc.group})
			cb := open("b", transport.Options{Interface: "eth0", Family: tc.fam, Group: tc.group})
			vip := netip.MustParseAddr("10.77.2.100")
			if tc.fam == packet.IPv6 {
				vip = netip.MustParseAddr("fd77:2::100")
			}
			msg := advert(t, tc.v, tc.fam, tc.src, tc.group, vip)
			if _, _, err := cb.(transport.Poller).ReadNow(make([]byte, 1500)); err != transport.ErrWouldBlock {
				t.Fatalf("ReadNow on an empty socket: %v", err)
			}
			if err := ca.WriteTo(msg, tc.group); err != nil {
				t.Fatal(err)
			}
			b, meta := readNow(t, cb)
			if meta.Src != tc.src || meta.Dst != tc.group || meta.TTL != 255 {
				t.Fatalf("meta %+v", meta)
			}
			if _, r := packet.Validate(b, meta, expect(tc.v, tc.fam, false, vip)); r != packet.DropNone {
				t.Fatalf("validate: %v", r)
			}
			buf := make([]byte, 1500)
			p := cb.(transport.Poller)
			allocs := testing.AllocsPerRun(50, func() {
				if err := ca.WriteTo(msg, tc.group); err != nil {
					t.Fatal(err)
				}
				for {
					if _, _, err := p.ReadNow(buf); err != transport.ErrWouldBlock {
						break
					}
				}
			})
			if allocs != 0 {
				t.Errorf("WriteTo and ReadNow: %v allocations per message, want 0", allocs)
			}
			ca.Close()
			if err := ca.WriteTo(msg, tc.group); err != transport.ErrClosed {
				t.Errorf("WriteTo after Close: %v", err)
			}
		})
	}
}

// TestCloseWakesReadFrom: ReadFrom waits in poll(2); Close must end the
// wait at once, not after poll's timeout.
func TestCloseWakesReadFrom(t *testing.T) {
	bed := netnstest.New(t)
	bed.Host("a", "10.77.3.1/24")
	var c transport.Conn
	if err := bed.Do("a", func() (err error) {
		c, err = transport.Listen(context.Background(), transport.Options{Interface: "eth0", Family: packet.IPv4, Group: packet.GroupIPv4})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 1500))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	c.Close()
	select {
	case err := <-done:
		if err != transport.ErrClosed {
			t.Fatalf("ReadFrom after Close: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("ReadFrom returned %v after Close", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("ReadFrom still waiting 3s after Close")
	}
}
