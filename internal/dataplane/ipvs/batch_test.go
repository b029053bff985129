package ipvs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/keepvs/keepvs/internal/lvs"
)

// bulkTable is n services of two destinations each, and the kinds the
// kernel tells apart: IPv6, fwmark, a persistence engine, tunnels.
func bulkTable(n int) []lvs.ServiceStatus {
	var out []lvs.ServiceStatus
	for i := range n {
		out = append(out, lvs.ServiceStatus{
			Service: lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Port: 80},
				Scheduler: "wlc", Flags: lvs.FlagPersistent, Timeout: 300 * time.Second, Netmask: 0xffffff00},
			Dests: []lvs.DestStatus{
				{Destination: lvs.Destination{Addr: netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), Port: 8080, Weight: 3, Forward: lvs.Masq, UThreshold: 100, LThreshold: 10}},
				{Destination: lvs.Destination{Addr: netip.AddrFrom4([4]byte{172, 17, byte(i >> 8), byte(i)}), Port: 80, Weight: 1, Forward: lvs.Tunnel, TunType: lvs.TunGUE, TunPort: 6080, TunFlags: lvs.TunFlagCsum}},
			},
		})
	}
	return append(out,
		lvs.ServiceStatus{Service: lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.UDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53},
			Scheduler: "sh", Flags: lvs.FlagOnePacket | lvs.FlagSched1 | lvs.FlagSched2, Netmask: 64},
			Dests: []lvs.DestStatus{{Destination: lvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 53, Weight: 2, Forward: lvs.Route}}}},
		lvs.ServiceStatus{Service: lvs.Service{ServiceKey: lvs.ServiceKey{FWMark: 7, IPv6: true}, Scheduler: "mh", Netmask: 128},
			Dests: []lvs.DestStatus{{Destination: lvs.Destination{Addr: netip.MustParseAddr("2001:db8::3"), Weight: 2, Forward: lvs.Route}}}},
		lvs.ServiceStatus{Service: lvs.Service{ServiceKey: lvs.ServiceKey{FWMark: 8}, Scheduler: "rr", PEName: "sip", Flags: lvs.FlagPersistent, Timeout: 60 * time.Second, Netmask: 0xffffffff}},
	)
}

// loadOneByOne is the table AddService and AddDest make, one request each.
func loadOneByOne(t *testing.T, want []lvs.ServiceStatus) []lvs.ServiceStatus {
	t.Helper()
	ctx := context.Background()
	_, d := newFake()
	for _, s := range want {
		if err := d.AddService(ctx, s.Service); err != nil {
			t.Fatal(err)
		}
		for _, x := range s.Dests {
			if err := d.AddDest(ctx, s.ServiceKey, x.Destination); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := d.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAddBulk: many requests per sendmsg make the table one request per
// sendmsg makes, batchMax at a time.
func TestAddBulk(t *testing.T) {
	ctx := context.Background()
	want := bulkTable(300)
	k, d := newFake()
	d.batch = k.batchDial(nil)
	for i, es := range d.AddBulk(ctx, want) {
		for j, err := range es {
			if err != nil {
				t.Errorf("%d/%d: %v", i, j, err)
			}
		}
	}
	got, err := d.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w := loadOneByOne(t, want); !reflect.DeepEqual(got, w) {
		t.Errorf("batched table differs from the one-by-one table:\n%+v\n%+v", got, w)
	}
	if k.svcs[len(k.svcs)-1].pe != "sip" {
		t.Errorf("persistence engine not sent: %q", k.svcs[len(k.svcs)-1].pe)
	}
	nsvc, ndest := int64(len(want)), int64(300*2+2)
	ops := d.Ops()
	if ops.AddService != nsvc || ops.AddDest != ndest {
		t.Errorf("ops %s, want %d services, %d destinations", ops, nsvc, ndest)
	}
	if w := (nsvc+batchMax-1)/batchMax + (ndest+batchMax-1)/batchMax; ops.Batches != w {
		t.Errorf("%d sendmsg, want %d", ops.Batches, w)
	}
}

// TestAddBulkErrors: the kernel refuses requests in the middle of a batch;
// each error lands on its request, worded as the one-by-one path words it,
// and the requests around it go in.
func TestAddBulkErrors(t *testing.T) {
	ctx := context.Background()
	want := bulkTable(10)
	want[3].Scheduler = "nosuch"                                     // ENOENT: no scheduler
	want[5].Dests[1] = want[5].Dests[0]                              // EEXIST: the destination again
	want[6].Dests[0].Weight = -1                                     // ERANGE
	want = append(want, lvs.ServiceStatus{Service: want[7].Service}) // EEXIST: the service again
	k, d := newFake()
	d.batch = k.batchDial(nil)
	errs := d.AddBulk(ctx, want)

	_, one := newFake()
	check := func(i, j int, sentinel error, oneByOne error) {
		t.Helper()
		err := errs[i][j]
		if !errors.Is(err, sentinel) {
			t.Errorf("%d/%d: got %v, want %v", i, j, err, sentinel)
			return
		}
		var ke *KernelError
		if !errors.As(err, &ke) || oneByOne == nil || err.Error() != oneByOne.Error() {
			t.Errorf("%d/%d: %v, one by one: %v", i, j, err, oneByOne)
		}
	}
	one.AddService(ctx, want[0].Service)
	one.AddDest(ctx, want[0].ServiceKey, want[0].Dests[0].Destination)
	check(3, 0, lvs.ErrNoScheduler, one.AddService(ctx, want[3].Service))
	check(5, 2, lvs.ErrDestExists, one.AddDest(ctx, want[0].ServiceKey, want[0].Dests[0].Destination))
	check(6, 1, lvs.ErrRange, one.AddDest(ctx, want[0].ServiceKey, lvs.Destination{Addr: netip.MustParseAddr("10.9.9.9"), Weight: -1}))
	check(len(want)-1, 0, lvs.ErrServiceExists, one.AddService(ctx, want[0].Service))
	var n int
	for _, es := range errs {
		for _, err := range es {
			if err != nil {
				n++
			}
		}
	}
	// A refused service's destinations are not sent: no ESRCH for them.
	if n != 4 {
		t.Errorf("%d errors, want 4: %v", n, errs)
	}
	got, _ := d.Services(ctx)
	if len(got) != len(want)-2 {
		t.Errorf("%d services in the kernel, want %d", len(got), len(want)-2)
	}
	if len(got[4].Dests) != 1 || len(got[5].Dests) != 1 || len(got[6].Dests) != 2 {
		t.Errorf("destinations around the refused ones: %d %d %d", len(got[4].Dests), len(got[5].Dests), len(got[6].Dests))
	}
}

// TestAddBulkSurprise: an answer the batch did not ask for ends batching:
// the refusal read before it stands, the requests whose fate it leaves
// unknown say so, and the next AddBulk goes one request at a time.
func TestAddBulkSurprise(t *testing.T) {
	ctx := context.Background()
	want := bulkTable(4)
	want[1].Scheduler = "nosuch"
	k, d := newFake()
	d.batch = k.batchDial(func(acks []netlink.Message) []netlink.Message {
		// The refusal of service 1, then the last one's acknowledgement
		// with a sequence number the batch did not send.
		if len(acks) == 2 {
			acks[1].Header.Sequence += 1000
		}
		return acks
	})
	errs := d.AddBulk(ctx, want[:4])
	if !errors.Is(errs[1][0], lvs.ErrNoScheduler) {
		t.Errorf("service 1: %v", errs[1][0])
	}
	for _, i := range []int{0, 2, 3} {
		if errs[i][0] == nil || !strings.Contains(errs[i][0].Error(), "no acknowledgement") {
			t.Errorf("service %d: %v", i, errs[i][0])
		}
	}
	if !d.batchBroken {
		t.Fatal("batching goes on after a surprise")
	}
	before := d.Ops()
	for i, es := range d.AddBulk(ctx, want[4:]) {
		for j, err := range es {
			if err != nil {
				t.Errorf("after the surprise, %d/%d: %v", i, j, err)
			}
		}
	}
	if b := d.Ops().Batches - before.Batches; b != 0 {
		t.Errorf("%d batches after the surprise", b)
	}
	if got, _ := d.Services(ctx); len(got) != 3+3 {
		t.Errorf("%d services", len(got))
	}
}

// failSend is a batch socket whose sendmsg fails: nothing reached the
// kernel, and the requests go one by one.
type failSend struct{ batchConn }

func (failSend) Send([]byte) error { return syscall.EMSGSIZE }

func TestAddBulkSendFails(t *testing.T) {
	ctx := context.Background()
	want := bulkTable(3)
	want[1].Scheduler = "nosuch"
	k, d := newFake()
	d.batch = failSend{k.batchDial(nil)}
	errs := d.AddBulk(ctx, want)
	if !errors.Is(errs[1][0], lvs.ErrNoScheduler) {
		t.Errorf("refused service one by one: %v", errs[1][0])
	}
	got, _ := d.Services(ctx)
	if w := loadOneByOne(t, append(want[:1:1], want[2:]...)); !reflect.DeepEqual(got, w) {
		t.Errorf("one-by-one fallback:\n%+v\nwant\n%+v", got, w)
	}
}

// TestOwnerAddBulk: adopted services are edited as AddService does, new
// ones batched, and Owner remembers both.
func TestOwnerAddBulk(t *testing.T) {
	ctx := context.Background()
	want := bulkTable(3)
	k, d := newFake()
	d.batch = k.batchDial(nil)
	if err := d.AddService(ctx, want[0].Service); err != nil {
		t.Fatal(err)
	}
	if err := d.AddDest(ctx, want[0].ServiceKey, want[0].Dests[0].Destination); err != nil {
		t.Fatal(err)
	}
	o := NewOwner(d)
	if err := o.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	before := d.Ops()
	for i, es := range o.AddBulk(ctx, want) {
		for j, err := range es {
			if err != nil {
				t.Errorf("%d/%d: %v", i, j, err)
			}
		}
	}
	after := d.Ops()
	// The adopted service: nothing for itself and its first destination,
	// one add for its second; the others batched.
	if a := after.AddService - before.AddService; a != int64(len(want)-1) {
		t.Errorf("%d services added, want %d", a, len(want)-1)
	}
	if o.Owned() != len(want) {
		t.Errorf("owner owns %d, want %d", o.Owned(), len(want))
	}
	got, _ := d.Services(ctx)
	if w := loadOneByOne(t, want); !reflect.DeepEqual(got, w) {
		t.Errorf("owner bulk load:\n%+v\nwant\n%+v", got, w)
	}
}

func ExampleDataplane_AddBulk() {
	k, d := newFake()
	d.batch = k.batchDial(nil)
	s := lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "rr", Netmask: 0xffffffff}
	x := lvs.DestStatus{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.1.1"), Port: 80, Weight: 1}}
	errs := d.AddBulk(context.Background(), []lvs.ServiceStatus{{Service: s, Dests: []lvs.DestStatus{x, x}}})
	fmt.Println(errs[0][0], errs[0][1], errs[0][2])
	fmt.Println(d.Ops().Batches)
	// Output:
	// <nil> <nil> ipvs: add destination: destination already exists
	// 2
}

// TestAppendMatchesAttributeEncoder: the hand-made attributes are the
// bytes netlink.AttributeEncoder makes of the same service (packService,
// which the one-request path sends) and destination (the attributes
// cloudflare/ipvs's packDest sends, with the address as libipvs pads it).
func TestAppendMatchesAttributeEncoder(t *testing.T) {
	for _, s := range bulkTable(2) {
		ae := netlink.NewAttributeEncoder()
		ae.Nested(cmdAttrService, func(ae *netlink.AttributeEncoder) error { packService(ae, s.Service); return nil })
		want, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got := appendService(nil, s.Service); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", s.ServiceKey, got, want)
		}
		for _, x := range s.Dests {
			ae := netlink.NewAttributeEncoder()
			ae.Nested(cmdAttrService, func(ae *netlink.AttributeEncoder) error { packKey(ae, s.ServiceKey); return nil })
			ae.Nested(cmdAttrDest, func(ae *netlink.AttributeEncoder) error {
				af := uint16(afInet)
				if x.Addr.Is6() {
					af = afInet6
				}
				ae.Uint16(destAttrAF, af)
				ae.Bytes(destAttrAddr, addr16(x.Addr))
				ae.Bytes(destAttrPort, binary.BigEndian.AppendUint16(nil, x.Port))
				ae.Uint32(destAttrFwdMethod, uint32(x.Forward))
				ae.Uint32(destAttrWeight, uint32(x.Weight))
				ae.Uint32(destAttrUThresh, x.UThreshold)
				ae.Uint32(destAttrLThresh, x.LThreshold)
				ae.Uint8(destAttrTunType, x.TunType)
				ae.Bytes(destAttrTunPort, binary.BigEndian.AppendUint16(nil, x.TunPort))
				ae.Uint16(destAttrTunFlags, x.TunFlags)
				return nil
			})
			want, err := ae.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if got := appendDest(nil, appendKeyAttr(nil, s.ServiceKey), x.Destination); !bytes.Equal(got, want) {
				t.Errorf("%s %s:\n got %x\nwant %x", s.ServiceKey, x.AddrPort(), got, want)
			}
		}
	}
}
