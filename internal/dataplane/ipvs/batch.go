package ipvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/keepvs/keepvs/internal/lvs"
)

// The destination attributes (include/uapi/linux/ip_vs.h, IPVS_DEST_ATTR_*).
const (
	destAttrAddr      = 1
	destAttrPort      = 2
	destAttrFwdMethod = 3
	destAttrWeight    = 4
	destAttrUThresh   = 5
	destAttrLThresh   = 6
	destAttrAF        = 11
	destAttrTunType   = 13
	destAttrTunPort   = 14
	destAttrTunFlags  = 15
)

// batchMax bounds the requests of one sendmsg. The kernel handles them all
// inside that sendmsg. Only the last request asks for an acknowledgement
// (NLM_F_ACK); the kernel answers every refused request all the same, with
// its errno (netlink_rcv_skb acks "if (nlh->nlmsg_flags & NLM_F_ACK ||
// err)"), so a batch costs one answer plus one per refusal, instead of
// one datagram per request to queue, wake up for and read. Each answer is
// a socket buffer of its own, up to about a KiB of truesize with an
// error's echoed request; what does not fit in the receive buffer is
// dropped, and a lost answer is a request whose fate is unknown. 128
// refusals stay well inside the default 208 KiB.
const batchMax = 128

// batchConn is the netlink socket the batches go through: rawConn over a
// *netlink.Conn, or a fake kernel. Send sends one datagram of many
// messages; Recv reads one datagram or more (the kernel queues each
// acknowledgement as a datagram of its own, of whole aligned messages, so
// datagrams read one after the other parse as one run of messages).
type batchConn interface {
	Send(b []byte) error
	Recv(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// batchReq is one request of a batch: what to encode and where its error
// goes.
type batchReq struct {
	cmd  uint8
	svc  *lvs.Service     // the service added, or the one of the destination
	key  []byte           // cmdNewDest: the service's key, encoded once
	dest *lvs.Destination // cmdNewDest
	err  *error
}

func (r *batchReq) appendAttrs(b []byte) []byte {
	if r.cmd == cmdNewService {
		return appendService(b, *r.svc)
	}
	return appendDest(b, r.key, *r.dest)
}

func (r *batchReq) words() (string, errMap) {
	if r.cmd == cmdNewService {
		return "add service", addServiceErrs
	}
	return "add destination", addDestErrs
}

// errBatchUnsupported means the batch path could send nothing: the caller
// sends the requests one by one instead.
var errBatchUnsupported = errors.New("batched requests not available")

// AddBulk adds services and their destinations, many requests per sendmsg:
// the services first, then the destinations of those the kernel took (a
// service it refused has its destinations left out, as adding them one by
// one would have stopped there). errs[i][0] is want[i]'s service's error,
// errs[i][1+j] that of want[i].Dests[j], each worded as AddService and
// AddDest word theirs. Without a batch socket, or once the kernel has
// answered a batch unexpectedly, it sends one request at a time.
func (d *Dataplane) AddBulk(ctx context.Context, want []lvs.ServiceStatus) [][]error {
	errs := make([][]error, len(want))
	reqs := make([]batchReq, 0, len(want))
	for i := range want {
		errs[i] = make([]error, 1+len(want[i].Dests))
		reqs = append(reqs, batchReq{cmd: cmdNewService, svc: &want[i].Service, err: &errs[i][0]})
	}
	d.sendBatches(ctx, reqs)
	reqs = reqs[:0]
	for i := range want {
		if errs[i][0] != nil {
			continue
		}
		key := appendKeyAttr(nil, want[i].ServiceKey)
		for j := range want[i].Dests {
			reqs = append(reqs, batchReq{cmd: cmdNewDest, svc: &want[i].Service, key: key, dest: &want[i].Dests[j].Destination, err: &errs[i][1+j]})
		}
	}
	d.sendBatches(ctx, reqs)
	return errs
}

// sendBatches sends reqs batchMax at a time and sets each one's error.
func (d *Dataplane) sendBatches(ctx context.Context, reqs []batchReq) {
	for len(reqs) > 0 {
		n := min(len(reqs), batchMax)
		b := reqs[:n]
		reqs = reqs[n:]
		if err := ctx.Err(); err != nil {
			for _, r := range b {
				*r.err = err
			}
			continue
		}
		for _, r := range b {
			if r.cmd == cmdNewService {
				d.ops.add(&d.ops.AddService)
			} else {
				d.ops.add(&d.ops.AddDest)
			}
		}
		if err := d.sendBatch(b); err != nil {
			// Nothing of this batch reached the kernel: one at a time.
			for i := range b {
				r := &b[i]
				_, err := d.execute(r.cmd, r.appendAttrs(nil), netlink.Request|netlink.Acknowledge)
				op, m := r.words()
				*r.err = kernelErr(op, err, m)
			}
		}
	}
}

// sendBatch sends b in one sendmsg, each request with its own sequence
// number, the last with NLM_F_ACK, and reads the answers. It returns an
// error when nothing was sent; once sent, every request gets its answer,
// or an error saying it had none.
func (d *Dataplane) sendBatch(b []batchReq) error {
	d.batchMu.Lock()
	defer d.batchMu.Unlock()
	if d.batch == nil || d.batchBroken {
		return errBatchUnsupported
	}
	buf := d.batchBuf[:0]
	first := d.batchSeq + 1
	for i := range b {
		d.batchSeq++
		buf = appendMsg(buf, d.family, d.batchSeq, &b[i], i == len(b)-1)
	}
	d.batchBuf = buf
	if err := d.batch.Send(buf); err != nil {
		d.batchBroken = true
		return err
	}
	d.ops.add(&d.ops.Batches)
	if cap(d.ackBuf) == 0 {
		d.ackBuf = make([]byte, 64<<10)
	}
	answered, surprise := decodeAcks(d.batch, d.ackBuf, b, first)
	if surprise != nil {
		// Never batch again on this socket; say which requests are unknown.
		d.batchBroken = true
		for i, r := range b {
			if !answered[i] {
				op, _ := r.words()
				*r.err = fmt.Errorf("ipvs: %s: no acknowledgement from the kernel: %w", op, surprise)
			}
		}
	}
	return nil
}

// appendMsg appends r as a netlink message: nlmsghdr, genlmsghdr, then
// its attributes. ack asks for an acknowledgement even on success.
func appendMsg(b []byte, family uint16, seq uint32, r *batchReq, ack bool) []byte {
	at := len(b)
	flags := netlink.Request
	if ack {
		flags |= netlink.Acknowledge
	}
	b = binary.NativeEndian.AppendUint32(b, 0) // length, below
	b = binary.NativeEndian.AppendUint16(b, family)
	b = binary.NativeEndian.AppendUint16(b, uint16(flags))
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel's
	b = append(b, r.cmd, genlVersion, 0, 0)
	b = r.appendAttrs(b)
	binary.NativeEndian.PutUint32(b[at:], uint32(len(b)-at))
	return b
}

// decodeAcks reads the answers to b, whose first request had sequence
// number first: an error for each request the kernel refused, in order,
// then the acknowledgement of the last request (an error if it too was
// refused), which says the kernel has handled them all. It sets each
// refused request's error and reports which requests' fate is known: all
// of them once the last one is answered. It stops at the first message it
// does not expect and returns why.
func decodeAcks(c batchConn, buf []byte, b []batchReq, first uint32) ([]bool, error) {
	answered := make([]bool, len(b))
	last := len(b) - 1
	// The kernel answered everything before sendmsg returned: a read that
	// waits is one that will never be answered.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	for {
		n, err := c.Recv(buf)
		if err != nil {
			return answered, err
		}
		for m := buf[:n]; len(m) > 0; {
			if len(m) < 16 {
				return answered, fmt.Errorf("netlink message of %d bytes", len(m))
			}
			l := int(binary.NativeEndian.Uint32(m))
			typ := binary.NativeEndian.Uint16(m[4:])
			seq := binary.NativeEndian.Uint32(m[8:])
			i := int(seq - first)
			if l < 20 || l > len(m) || typ != uint16(netlink.Error) || seq < first || i >= len(b) || answered[i] {
				return answered, fmt.Errorf("unexpected netlink message type %d sequence %d length %d", typ, seq, l)
			}
			code := int32(binary.NativeEndian.Uint32(m[16:]))
			if code == 0 && i != last {
				return answered, fmt.Errorf("unexpected acknowledgement of request %d of %d", i+1, len(b))
			}
			answered[i] = true
			if code != 0 {
				op, em := b[i].words()
				*b[i].err = kernelErr(op, &netlink.OpError{Op: "receive", Err: syscall.Errno(-code)}, em)
			}
			m = m[min(len(m), (l+3)&^3):]
			if i == last {
				// Every refusal came before this: the others went in.
				for j := range answered {
					answered[j] = true
				}
				if len(m) > 0 {
					return answered, fmt.Errorf("netlink messages after the last acknowledgement")
				}
				return answered, nil
			}
		}
	}
}

// The attributes, appended by hand: a load sends tens of thousands.

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendU16(b []byte, typ, v uint16) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint16(make([]byte, 0, 2), v))
}

func appendU32(b []byte, typ uint16, v uint32) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint32(make([]byte, 0, 4), v))
}

func appendBE16(b []byte, typ, v uint16) []byte {
	return appendAttr(b, typ, binary.BigEndian.AppendUint16(make([]byte, 0, 2), v))
}

// appendNested appends typ's nested attributes, as fn appends them.
func appendNested(b []byte, typ uint16, fn func([]byte) []byte) []byte {
	at := len(b)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ|netlink.Nested)
	b = fn(b)
	binary.NativeEndian.PutUint16(b[at:], uint16(len(b)-at))
	return b
}

// appendKey is packKey's attributes.
func appendKey(b []byte, k lvs.ServiceKey) []byte {
	af := uint16(afInet)
	if k.Is6() {
		af = afInet6
	}
	b = appendU16(b, svcAttrAF, af)
	if k.FWMark != 0 {
		return appendU32(b, svcAttrFWMark, k.FWMark)
	}
	b = appendU16(b, svcAttrProtocol, uint16(k.Proto))
	b = appendAttr(b, svcAttrAddr, addr16(k.Addr))
	return appendBE16(b, svcAttrPort, k.Port)
}

// appendKeyAttr is a service's key as the service attribute of a
// destination's request.
func appendKeyAttr(b []byte, k lvs.ServiceKey) []byte {
	return appendNested(b, cmdAttrService, func(b []byte) []byte { return appendKey(b, k) })
}

// addr16 is a as the kernel's union nf_inet_addr, as libipvs sends it.
func addr16(a netip.Addr) []byte {
	var x [16]byte
	if a.Is4() {
		b := a.As4()
		copy(x[:], b[:])
	} else if a.IsValid() {
		x = a.As16()
	}
	return x[:]
}

// appendService is IPVS_CMD_NEW_SERVICE's attributes, byte for byte what
// packService encodes.
func appendService(b []byte, s lvs.Service) []byte {
	return appendNested(b, cmdAttrService, func(b []byte) []byte {
		b = appendKey(b, s.ServiceKey)
		b = appendAttr(b, svcAttrSchedName, append([]byte(s.Scheduler), 0))
		flags := binary.NativeEndian.AppendUint32(nil, uint32(s.Flags))
		b = appendAttr(b, svcAttrFlags, binary.NativeEndian.AppendUint32(flags, ^uint32(0)))
		b = appendU32(b, svcAttrTimeout, uint32(s.Timeout/time.Second))
		if s.Is6() {
			b = appendU32(b, svcAttrNetmask, s.Netmask)
		} else {
			b = appendAttr(b, svcAttrNetmask, binary.BigEndian.AppendUint32(nil, s.Netmask))
		}
		if s.PEName != "" {
			b = appendAttr(b, svcAttrPEName, append([]byte(s.PEName), 0))
		}
		return b
	})
}

// appendDest is IPVS_CMD_NEW_DEST's attributes: the service's key (key,
// from appendKeyAttr), then the destination, with the attributes
// cloudflare/ipvs sends.
func appendDest(b []byte, key []byte, x lvs.Destination) []byte {
	b = append(b, key...)
	return appendNested(b, cmdAttrDest, func(b []byte) []byte {
		af := uint16(afInet)
		if x.Addr.Is6() {
			af = afInet6
		}
		b = appendU16(b, destAttrAF, af)
		b = appendAttr(b, destAttrAddr, addr16(x.Addr))
		b = appendBE16(b, destAttrPort, x.Port)
		b = appendU32(b, destAttrFwdMethod, uint32(x.Forward))
		b = appendU32(b, destAttrWeight, uint32(x.Weight))
		b = appendU32(b, destAttrUThresh, x.UThreshold)
		b = appendU32(b, destAttrLThresh, x.LThreshold)
		b = appendAttr(b, destAttrTunType, []byte{x.TunType})
		b = appendBE16(b, destAttrTunPort, x.TunPort)
		return appendU16(b, destAttrTunFlags, x.TunFlags)
	})
}

// packService is a service in full: its key, scheduler, flags (with the
// mask of every flag, so that they are set as given), timeout, netmask and
// persistence engine.
func packService(ae *netlink.AttributeEncoder, s lvs.Service) {
	packKey(ae, s.ServiceKey)
	ae.String(svcAttrSchedName, s.Scheduler)
	flags := binary.NativeEndian.AppendUint32(nil, uint32(s.Flags))
	flags = binary.NativeEndian.AppendUint32(flags, ^uint32(0))
	ae.Bytes(svcAttrFlags, flags)
	ae.Uint32(svcAttrTimeout, uint32(s.Timeout/time.Second))
	if s.Is6() {
		ae.Uint32(svcAttrNetmask, s.Netmask)
	} else {
		ae.Bytes(svcAttrNetmask, binary.BigEndian.AppendUint32(nil, s.Netmask))
	}
	if s.PEName != "" {
		ae.String(svcAttrPEName, s.PEName)
	}
}
