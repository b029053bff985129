package ipvs

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
)

// fakeKernel is an IPVS table that answers as the kernel does, with its
// errnos: cloudflare/ipvs's Client for services and destinations, and a
// genltest handler for the requests this package encodes itself. It
// records every genetlink request it receives.
type fakeKernel struct {
	mu       sync.Mutex
	svcs     []*fakeSvc
	cfg      cfipvs.Config
	daemons  []map[uint16][]byte // nested daemon attributes, as received
	requests []genetlink.Message
}

type fakeSvc struct {
	s     cfipvs.Service
	pe    string
	stats cfipvs.Stats
	dests []cfipvs.DestinationExtended
}

const fakeFamily = 0x30

var fakeSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

func newFake() (*fakeKernel, *Dataplane) {
	k := &fakeKernel{cfg: cfipvs.Config{TCPTimeout: 900, TCPFinTimeout: 120, UDPTimeout: 300}}
	d := New(k, genltest.Dial(k.genl), fakeFamily)
	d.procDir = os.DevNull // no modules, no connections
	return k, d
}

func errno(e syscall.Errno) error { return &netlink.OpError{Op: "receive", Err: e} }

func sameKey(a, b cfipvs.Service) bool {
	if a.Family != b.Family {
		return false
	}
	if a.FWMark != 0 || b.FWMark != 0 {
		return a.FWMark == b.FWMark
	}
	return a.Protocol == b.Protocol && a.Address == b.Address && a.Port == b.Port
}

func (k *fakeKernel) find(s cfipvs.Service) *fakeSvc {
	for _, x := range k.svcs {
		if sameKey(x.s, s) {
			return x
		}
	}
	return nil
}

func (k *fakeKernel) Info() (cfipvs.Info, error) {
	return cfipvs.Info{Version: [3]int{1, 2, 1}, ConnectionTableSize: 4096}, nil
}

func (k *fakeKernel) Config() (cfipvs.Config, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cfg, nil
}

func (k *fakeKernel) SetConfig(c cfipvs.Config) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c.TCPTimeout != 0 {
		k.cfg.TCPTimeout = c.TCPTimeout
	}
	if c.TCPFinTimeout != 0 {
		k.cfg.TCPFinTimeout = c.TCPFinTimeout
	}
	if c.UDPTimeout != 0 {
		k.cfg.UDPTimeout = c.UDPTimeout
	}
	return nil
}

func (k *fakeKernel) Services() ([]cfipvs.ServiceExtended, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.svcs) == 0 {
		return nil, os.ErrNotExist // as cloudflare/ipvs says "empty"
	}
	var out []cfipvs.ServiceExtended
	for _, x := range k.svcs {
		s := x.s
		s.Flags |= cfipvs.ServiceHashed
		out = append(out, cfipvs.ServiceExtended{Service: s, Stats64: x.stats})
	}
	return out, nil
}

func (k *fakeKernel) Service(s cfipvs.Service) (cfipvs.ServiceExtended, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if x := k.find(s); x != nil {
		return cfipvs.ServiceExtended{Service: x.s, Stats64: x.stats}, nil
	}
	return cfipvs.ServiceExtended{}, errno(syscall.ESRCH)
}

func (k *fakeKernel) CreateService(s cfipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.createService(s, "")
}

func (k *fakeKernel) createService(s cfipvs.Service, pe string) error {
	if k.find(s) != nil {
		return errno(syscall.EEXIST)
	}
	if !slices.Contains(fakeSchedulers, s.Scheduler) || (pe != "" && pe != "sip") {
		return errno(syscall.ENOENT)
	}
	if s.Family == cfipvs.INET6 && (s.Netmask.Bits() < 1 || s.Netmask.Bits() > 128) {
		return errno(syscall.EINVAL)
	}
	k.svcs = append(k.svcs, &fakeSvc{s: s, pe: pe})
	return nil
}

func (k *fakeKernel) UpdateService(s cfipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.updateService(s, "")
}

func (k *fakeKernel) updateService(s cfipvs.Service, pe string) error {
	x := k.find(s)
	if x == nil {
		return errno(syscall.ESRCH)
	}
	if !slices.Contains(fakeSchedulers, s.Scheduler) {
		return errno(syscall.ENOENT)
	}
	x.s, x.pe = s, pe
	return nil
}

func (k *fakeKernel) RemoveService(s cfipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, x := range k.svcs {
		if sameKey(x.s, s) {
			k.svcs = slices.Delete(k.svcs, i, i+1)
			return nil
		}
	}
	return errno(syscall.ESRCH)
}

func (k *fakeKernel) Destinations(s cfipvs.Service) ([]cfipvs.DestinationExtended, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	x := k.find(s)
	if x == nil {
		return nil, errno(syscall.ESRCH)
	}
	if len(x.dests) == 0 {
		return nil, os.ErrNotExist
	}
	return slices.Clone(x.dests), nil
}

func (k *fakeKernel) destIndex(x *fakeSvc, d cfipvs.Destination) int {
	for i, y := range x.dests {
		if y.Address == d.Address && y.Port == d.Port {
			return i
		}
	}
	return -1
}

func (k *fakeKernel) CreateDestination(s cfipvs.Service, d cfipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.createDestination(s, d)
}

func (k *fakeKernel) createDestination(s cfipvs.Service, d cfipvs.Destination) error {
	x := k.find(s)
	switch {
	case x == nil:
		return errno(syscall.ESRCH)
	case int32(d.Weight) < 0:
		return errno(syscall.ERANGE)
	case k.destIndex(x, d) >= 0:
		return errno(syscall.EEXIST)
	}
	x.dests = append(x.dests, cfipvs.DestinationExtended{Destination: d})
	return nil
}

func (k *fakeKernel) UpdateDestination(s cfipvs.Service, d cfipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	x := k.find(s)
	if x == nil {
		return errno(syscall.ESRCH)
	}
	i := k.destIndex(x, d)
	if i < 0 {
		return errno(syscall.ENOENT)
	}
	x.dests[i].Destination = d
	return nil
}

func (k *fakeKernel) RemoveDestination(s cfipvs.Service, d cfipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	x := k.find(s)
	if x == nil {
		return errno(syscall.ESRCH)
	}
	i := k.destIndex(x, d)
	if i < 0 {
		return errno(syscall.ENOENT)
	}
	x.dests = slices.Delete(x.dests, i, i+1)
	return nil
}

// attrs decodes one level of attributes.
func attrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return out
	}
	for ad.Next() {
		out[ad.Type()] = slices.Clone(ad.Bytes())
	}
	return out
}

// svcFromAttrs is the kernel's ip_vs_genl_parse_service.
func svcFromAttrs(a map[uint16][]byte) (cfipvs.Service, string) {
	var s cfipvs.Service
	s.Family = cfipvs.AddressFamily(binary.NativeEndian.Uint16(a[svcAttrAF]))
	if b, ok := a[svcAttrFWMark]; ok {
		s.FWMark = binary.NativeEndian.Uint32(b)
	} else {
		s.Protocol = cfipvs.Protocol(binary.NativeEndian.Uint16(a[svcAttrProtocol]))
		addr := a[svcAttrAddr]
		if s.Family == cfipvs.INET {
			s.Address = netip.AddrFrom4([4]byte(addr[:4]))
		} else {
			s.Address = netip.AddrFrom16([16]byte(addr[:16]))
		}
		s.Port = binary.BigEndian.Uint16(a[svcAttrPort])
	}
	if b, ok := a[svcAttrSchedName]; ok {
		s.Scheduler = string(b[:len(b)-1])
	}
	if b, ok := a[svcAttrFlags]; ok {
		s.Flags = cfipvs.Flags(binary.NativeEndian.Uint32(b))
	}
	if b, ok := a[svcAttrTimeout]; ok {
		s.Timeout = binary.NativeEndian.Uint32(b)
	}
	pe := ""
	if b, ok := a[svcAttrPEName]; ok {
		pe = string(b[:len(b)-1])
	}
	return s, pe
}

func (k *fakeKernel) genl(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests = append(k.requests, greq)
	top := attrs(greq.Data)
	reply := []genetlink.Message{{Header: greq.Header}}
	switch greq.Header.Command {
	case cmdFlush:
		k.svcs = nil
	case cmdZero:
		if b, ok := top[cmdAttrService]; ok {
			s, _ := svcFromAttrs(attrs(b))
			x := k.find(s)
			if x == nil {
				return nil, genltest.Error(int(syscall.ESRCH))
			}
			x.stats = cfipvs.Stats{}
			for i := range x.dests {
				x.dests[i].Stats64 = cfipvs.Stats{}
			}
			break
		}
		for _, x := range k.svcs {
			x.stats = cfipvs.Stats{}
			for i := range x.dests {
				x.dests[i].Stats64 = cfipvs.Stats{}
			}
		}
	case cmdNewService, cmdSetService:
		sa := attrs(top[cmdAttrService])
		s, pe := svcFromAttrs(sa)
		s.Netmask = cfNetmask(s.Family, sa[svcAttrNetmask])
		var err error
		if greq.Header.Command == cmdNewService {
			err = k.createService(s, pe)
		} else {
			err = k.updateService(s, pe)
		}
		if err != nil {
			return nil, genltest.Error(int(err.(*netlink.OpError).Err.(syscall.Errno)))
		}
	case cmdNewDest:
		s, _ := svcFromAttrs(attrs(top[cmdAttrService]))
		if err := k.createDestination(s, destFromAttrs(attrs(top[cmdAttrDest]))); err != nil {
			return nil, genltest.Error(int(err.(*netlink.OpError).Err.(syscall.Errno)))
		}
	case cmdGetService:
		reply = nil
		for _, x := range k.svcs {
			ae := netlink.NewAttributeEncoder()
			ae.Nested(cmdAttrService, func(ae *netlink.AttributeEncoder) error {
				packKeyCF(ae, x.s)
				if x.pe != "" {
					ae.String(svcAttrPEName, x.pe)
				}
				return nil
			})
			b, _ := ae.Encode()
			reply = append(reply, genetlink.Message{Header: greq.Header, Data: b})
		}
	case cmdNewDaemon:
		da := attrs(top[cmdAttrDaemon])
		state := binary.NativeEndian.Uint32(da[daemonAttrState])
		for _, x := range k.daemons {
			if binary.NativeEndian.Uint32(x[daemonAttrState]) == state {
				return nil, genltest.Error(int(syscall.EEXIST))
			}
		}
		k.daemons = append(k.daemons, da)
	case cmdDelDaemon:
		da := attrs(top[cmdAttrDaemon])
		state := binary.NativeEndian.Uint32(da[daemonAttrState])
		i := slices.IndexFunc(k.daemons, func(x map[uint16][]byte) bool {
			return binary.NativeEndian.Uint32(x[daemonAttrState]) == state
		})
		if i < 0 {
			return nil, genltest.Error(int(syscall.ESRCH))
		}
		k.daemons = slices.Delete(k.daemons, i, i+1)
	case cmdGetDaemon:
		reply = nil
		for _, x := range k.daemons {
			ae := netlink.NewAttributeEncoder()
			ae.Nested(cmdAttrDaemon, func(ae *netlink.AttributeEncoder) error {
				for _, t := range []uint16{daemonAttrState, daemonAttrMcastIfn, daemonAttrSyncID, daemonAttrSyncMaxLen, daemonAttrMcastGroup, daemonAttrMcastGroup6, daemonAttrMcastPort, daemonAttrMcastTTL} {
					if b, ok := x[t]; ok {
						ae.Bytes(t, b)
					}
				}
				return nil
			})
			b, _ := ae.Encode()
			reply = append(reply, genetlink.Message{Header: greq.Header, Data: b})
		}
	default:
		return nil, genltest.Error(int(syscall.EOPNOTSUPP))
	}
	if len(reply) == 0 {
		return nil, io.EOF // an empty dump
	}
	return reply, nil
}

// destFromAttrs is the kernel's ip_vs_genl_parse_dest.
func destFromAttrs(a map[uint16][]byte) cfipvs.Destination {
	d := cfipvs.Destination{
		Family:         cfipvs.AddressFamily(binary.NativeEndian.Uint16(a[destAttrAF])),
		Port:           binary.BigEndian.Uint16(a[destAttrPort]),
		FwdMethod:      cfipvs.ForwardType(binary.NativeEndian.Uint32(a[destAttrFwdMethod])),
		Weight:         binary.NativeEndian.Uint32(a[destAttrWeight]),
		UpperThreshold: binary.NativeEndian.Uint32(a[destAttrUThresh]),
		LowerThreshold: binary.NativeEndian.Uint32(a[destAttrLThresh]),
		TunnelType:     cfipvs.TunnelType(a[destAttrTunType][0]),
		TunnelPort:     binary.BigEndian.Uint16(a[destAttrTunPort]),
		TunnelFlags:    cfipvs.TunnelFlags(binary.NativeEndian.Uint16(a[destAttrTunFlags])),
	}
	addr := a[destAttrAddr]
	if d.Family == cfipvs.INET {
		d.Address = netip.AddrFrom4([4]byte(addr[:4]))
	} else {
		d.Address = netip.AddrFrom16([16]byte(addr[:16]))
	}
	return d
}

// fakeBatch is the fake kernel's netlink socket for batches: every
// request of a sendmsg is handled in turn, as netlink_rcv_skb does, and
// answered, when it failed or asked for it (NLM_F_ACK), with an
// acknowledgement carrying its errno and the request's header, one
// datagram each. tamper, when set, may change the answers before they are
// read.
type fakeBatch struct {
	k      *fakeKernel
	tamper func([]netlink.Message) []netlink.Message
	acks   [][]byte
}

func (k *fakeKernel) batchDial(tamper func([]netlink.Message) []netlink.Message) *fakeBatch {
	return &fakeBatch{k: k, tamper: tamper}
}

// splitMessages is the kernel's walk over a sendmsg's messages.
func splitMessages(b []byte) ([]netlink.Message, error) {
	var out []netlink.Message
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("%d bytes left", len(b))
		}
		l := int(binary.NativeEndian.Uint32(b))
		if l < 16 || l > len(b) {
			return nil, fmt.Errorf("message of %d bytes in %d", l, len(b))
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b[:l]); err != nil {
			return nil, err
		}
		out = append(out, m)
		b = b[min(len(b), (l+3)&^3):]
	}
	return out, nil
}

func ackBytes(m netlink.Message) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(16+len(m.Data)))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Type))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Flags))
	b = binary.NativeEndian.AppendUint32(b, m.Header.Sequence)
	b = binary.NativeEndian.AppendUint32(b, m.Header.PID)
	return append(b, m.Data...)
}

func (f *fakeBatch) Send(b []byte) error {
	reqs, err := splitMessages(b)
	if err != nil {
		return err
	}
	var out []netlink.Message
	for _, req := range reqs {
		if req.Header.Flags&^netlink.Acknowledge != netlink.Request || req.Header.Type != fakeFamily {
			return fmt.Errorf("request header %+v", req.Header)
		}
		var gm genetlink.Message
		if err := gm.UnmarshalBinary(req.Data); err != nil {
			return err
		}
		code := int32(0)
		if _, err := f.k.genl(gm, req); err != nil {
			var n int
			if _, serr := fmt.Sscanf(err.Error(), "genltest errno: %d", &n); serr != nil {
				return err
			}
			code = -int32(n)
		}
		if code == 0 && req.Header.Flags&netlink.Acknowledge == 0 {
			continue
		}
		h := req.Header // echoed after the errno
		data := binary.NativeEndian.AppendUint32(nil, uint32(code))
		data = binary.NativeEndian.AppendUint32(data, h.Length)
		data = binary.NativeEndian.AppendUint16(data, uint16(h.Type))
		data = binary.NativeEndian.AppendUint16(data, uint16(h.Flags))
		data = binary.NativeEndian.AppendUint32(data, h.Sequence)
		data = binary.NativeEndian.AppendUint32(data, h.PID)
		out = append(out, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: h.Sequence}, Data: data})
	}
	if f.tamper != nil {
		out = f.tamper(out)
	}
	for _, m := range out {
		f.acks = append(f.acks, ackBytes(m))
	}
	return nil
}

func (f *fakeBatch) Recv(b []byte) (int, error) {
	if len(f.acks) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(b, f.acks[0])
	f.acks = f.acks[1:]
	return n, nil
}

func (f *fakeBatch) SetReadDeadline(time.Time) error { return nil }
func (f *fakeBatch) Close() error                    { return nil }

func cfNetmask(af cfipvs.AddressFamily, b []byte) netmask.Mask {
	if af == cfipvs.INET6 {
		return netmask.MaskFrom(int(binary.NativeEndian.Uint32(b)), 128)
	}
	return netmask.MaskFrom4([4]byte(b))
}

func packKeyCF(ae *netlink.AttributeEncoder, s cfipvs.Service) {
	ae.Uint16(svcAttrAF, uint16(s.Family))
	if s.FWMark != 0 {
		ae.Uint32(svcAttrFWMark, s.FWMark)
		return
	}
	ae.Uint16(svcAttrProtocol, uint16(s.Protocol))
	a := [16]byte{}
	copy(a[:], s.Address.AsSlice())
	ae.Bytes(svcAttrAddr, a[:])
	ae.Bytes(svcAttrPort, binary.BigEndian.AppendUint16(nil, s.Port))
}

// nullBatch acknowledges every request that asks for it without looking
// at it.
type nullBatch struct{ acks [][]byte }

func (f *nullBatch) Send(b []byte) error {
	reqs, err := splitMessages(b)
	for _, r := range reqs {
		if r.Header.Flags&netlink.Acknowledge != 0 {
			f.acks = append(f.acks, ackBytes(netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: r.Header.Sequence}, Data: make([]byte, 20)}))
		}
	}
	return err
}

func (f *nullBatch) Recv(b []byte) (int, error) {
	n := copy(b, f.acks[0])
	f.acks = f.acks[1:]
	return n, nil
}

func (f *nullBatch) SetReadDeadline(time.Time) error { return nil }
func (f *nullBatch) Close() error                    { return nil }
