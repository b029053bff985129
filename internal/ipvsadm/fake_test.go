package ipvsadm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
)

// fakeDP is an in-memory data plane that answers as the kernel does and
// records every change it is asked for, one line per call, in the words
// of the oracle shim's log (testdata/oracle/ipvsshim.c).
type fakeDP struct {
	info     lvs.Info
	svcs     []lvs.ServiceStatus
	conns    []lvs.Conn
	timeouts lvs.Timeouts
	daemons  []SyncDaemon
	// fail, when set, is returned by every change.
	fail error
	// lenient accepts every change without looking, like the oracle's
	// shim.
	lenient bool
	calls   []string
}

func newFake() *fakeDP {
	return &fakeDP{
		info:     lvs.Info{Version: "1.2.1", ConnTableSize: 4096},
		timeouts: lvs.DefaultTimeouts,
	}
}

var knownSchedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true,
	"dh": true, "sh": true, "sed": true, "nq": true, "fo": true, "ovf": true,
	"mh": true, "twos": true,
}

func (f *fakeDP) Name() string                                   { return "fake" }
func (f *fakeDP) Close() error                                   { return nil }
func (f *fakeDP) Info(context.Context) (lvs.Info, error)         { return f.info, nil }
func (f *fakeDP) Conns(context.Context) ([]lvs.Conn, error)      { return f.conns, nil }
func (f *fakeDP) Timeouts(context.Context) (lvs.Timeouts, error) { return f.timeouts, nil }

func (f *fakeDP) Services(context.Context) ([]lvs.ServiceStatus, error) {
	out := make([]lvs.ServiceStatus, len(f.svcs))
	for i, s := range f.svcs {
		out[i] = s
		out[i].Dests = append([]lvs.DestStatus(nil), s.Dests...)
	}
	return out, nil
}

func keyString(k lvs.ServiceKey) string {
	if k.FWMark != 0 {
		return fmt.Sprintf("fwmark=%d ipv6=%v", k.FWMark, k.IPv6)
	}
	return fmt.Sprintf("proto=%d addr=%s port=%d", k.Proto, k.Addr, k.Port)
}

func svcString(s lvs.Service) string {
	mask := addrFrom32(s.Netmask).String()
	if s.Is6() {
		mask = strconv.Itoa(int(s.Netmask))
	}
	return fmt.Sprintf("%s sched=%s flags=0x%x timeout=%d netmask=%s pe=%s",
		keyString(s.ServiceKey), s.Scheduler, uint32(s.Flags), int(s.Timeout.Seconds()), mask, s.PEName)
}

func destString(d lvs.Destination) string {
	return fmt.Sprintf("dest=%s fwd=%d weight=%d uth=%d lth=%d tun=%d/%d/%d",
		d.AddrPort(), d.Forward, d.Weight, d.UThreshold, d.LThreshold, d.TunType, d.TunPort, d.TunFlags)
}

func (f *fakeDP) done(err error) error {
	if errors.Is(err, errLenient) {
		return nil
	}
	return err
}

// errLenient stops a lenient fake after recording.
var errLenient = errors.New("lenient")

func (f *fakeDP) record(format string, a ...any) error {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	if f.fail == nil && f.lenient {
		return errLenient
	}
	return f.fail
}

func (f *fakeDP) find(k lvs.ServiceKey) int {
	for i := range f.svcs {
		if sameService(f.svcs[i].ServiceKey, k) {
			return i
		}
	}
	return -1
}

func (f *fakeDP) AddService(_ context.Context, s lvs.Service) error {
	if err := f.record("ADD %s", svcString(s)); err != nil {
		return f.done(err)
	}
	if f.find(s.ServiceKey) >= 0 {
		return lvs.ErrServiceExists
	}
	if !knownSchedulers[s.Scheduler] {
		return lvs.ErrNoScheduler
	}
	if s.PEName != "" && s.PEName != "sip" {
		return lvs.ErrNoPE
	}
	f.svcs = append(f.svcs, lvs.ServiceStatus{Service: s})
	return nil
}

func (f *fakeDP) EditService(_ context.Context, s lvs.Service) error {
	if err := f.record("EDIT %s", svcString(s)); err != nil {
		return f.done(err)
	}
	i := f.find(s.ServiceKey)
	if i < 0 {
		return lvs.ErrNoService
	}
	if !knownSchedulers[s.Scheduler] {
		return lvs.ErrNoScheduler
	}
	f.svcs[i].Service = s
	return nil
}

func (f *fakeDP) DelService(_ context.Context, k lvs.ServiceKey) error {
	if err := f.record("DEL %s", keyString(k)); err != nil {
		return f.done(err)
	}
	i := f.find(k)
	if i < 0 {
		return lvs.ErrNoService
	}
	f.svcs = append(f.svcs[:i], f.svcs[i+1:]...)
	return nil
}

func (f *fakeDP) Flush(context.Context) error {
	if err := f.record("FLUSH"); err != nil {
		return f.done(err)
	}
	f.svcs = nil
	return nil
}

func (f *fakeDP) destIndex(si int, a netip.AddrPort) int {
	for j, d := range f.svcs[si].Dests {
		if d.AddrPort() == a {
			return j
		}
	}
	return -1
}

func (f *fakeDP) AddDest(_ context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	if err := f.record("ADDDEST %s %s", keyString(k), destString(d)); err != nil {
		return f.done(err)
	}
	i := f.find(k)
	if i < 0 {
		return lvs.ErrNoService
	}
	if f.destIndex(i, d.AddrPort()) >= 0 {
		return lvs.ErrDestExists
	}
	f.svcs[i].Dests = append(f.svcs[i].Dests, lvs.DestStatus{Destination: d})
	return nil
}

func (f *fakeDP) EditDest(_ context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	if err := f.record("EDITDEST %s %s", keyString(k), destString(d)); err != nil {
		return f.done(err)
	}
	i := f.find(k)
	if i < 0 {
		return lvs.ErrNoService
	}
	j := f.destIndex(i, d.AddrPort())
	if j < 0 {
		return lvs.ErrNoDest
	}
	f.svcs[i].Dests[j].Destination = d
	return nil
}

func (f *fakeDP) DelDest(_ context.Context, k lvs.ServiceKey, a netip.AddrPort) error {
	if err := f.record("DELDEST %s dest=%s", keyString(k), a); err != nil {
		return f.done(err)
	}
	i := f.find(k)
	if i < 0 {
		return lvs.ErrNoService
	}
	j := f.destIndex(i, a)
	if j < 0 {
		return lvs.ErrNoDest
	}
	f.svcs[i].Dests = append(f.svcs[i].Dests[:j], f.svcs[i].Dests[j+1:]...)
	return nil
}

func (f *fakeDP) Zero(_ context.Context, k *lvs.ServiceKey) error {
	if k == nil {
		if err := f.record("ZERO all"); err != nil {
			return f.done(err)
		}
		for i := range f.svcs {
			f.zero(i)
		}
		return nil
	}
	if err := f.record("ZERO %s", keyString(*k)); err != nil {
		return f.done(err)
	}
	i := f.find(*k)
	if i < 0 {
		return lvs.ErrNoService
	}
	f.zero(i)
	return nil
}

func (f *fakeDP) zero(i int) {
	f.svcs[i].Stats, f.svcs[i].Rates = lvs.Stats{}, lvs.Rates{}
	for j := range f.svcs[i].Dests {
		f.svcs[i].Dests[j].Stats, f.svcs[i].Dests[j].Rates = lvs.Stats{}, lvs.Rates{}
	}
}

func (f *fakeDP) SetTimeouts(_ context.Context, t lvs.Timeouts) error {
	if err := f.record("TIMEOUT tcp=%d tcpfin=%d udp=%d", int(t.TCP.Seconds()), int(t.TCPFin.Seconds()), int(t.UDP.Seconds())); err != nil {
		return f.done(err)
	}
	if t.TCP != 0 {
		f.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		f.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		f.timeouts.UDP = t.UDP
	}
	return nil
}

func (f *fakeDP) StartDaemon(_ context.Context, d SyncDaemon) error {
	if err := f.record("STARTDAEMON backup=%v ifn=%s syncid=%d maxlen=%d group=%s port=%d ttl=%d",
		d.Backup, d.Interface, d.SyncID, d.MaxLen, d.Group, d.Port, d.TTL); err != nil {
		return f.done(err)
	}
	for _, x := range f.daemons {
		if x.Backup == d.Backup {
			return ErrDaemonRunning
		}
	}
	f.daemons = append(f.daemons, d)
	return nil
}

func (f *fakeDP) StopDaemon(_ context.Context, backup bool) error {
	if err := f.record("STOPDAEMON backup=%v", backup); err != nil {
		return f.done(err)
	}
	for i, x := range f.daemons {
		if x.Backup == backup {
			f.daemons = append(f.daemons[:i], f.daemons[i+1:]...)
			return nil
		}
	}
	return ErrNoDaemon
}

func (f *fakeDP) Daemons(context.Context) ([]SyncDaemon, error) { return f.daemons, nil }

// loadState fills f from the oracle shim's state format, so that one
// table drives both the real ipvsadm and this front end:
//
//	info <hex version> <size>
//	timeout <tcp> <tcpfin> <udp>
//	svc <proto> <addr> <port> <fwmark> <sched> <hex flags> <timeout> <mask> <10 counters>
//	dest <addr> <port> <fwd> <weight> <uth> <lth> <active> <inact> <persist> <10 counters>
//
// Counters are conns inpkts outpkts inbytes outbytes cps inpps outpps
// inbps outbps.
func (f *fakeDP) loadState(state string) error {
	sc := bufio.NewScanner(strings.NewReader(state))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		n := func(i int) uint64 {
			if i >= len(fs) {
				return 0
			}
			v, _ := strconv.ParseUint(fs[i], 10, 64)
			return v
		}
		switch fs[0] {
		case "info":
			v, _ := strconv.ParseUint(fs[1], 16, 32)
			f.info = lvs.Info{Version: fmt.Sprintf("%d.%d.%d", v>>16, v>>8&0xff, v&0xff), ConnTableSize: int(n(2))}
		case "timeout":
			f.timeouts = lvs.Timeouts{TCP: secs(int64(n(1))), TCPFin: secs(int64(n(2))), UDP: secs(int64(n(3)))}
		case "svc":
			flags, _ := strconv.ParseUint(fs[6], 16, 32)
			mask, err := netip.ParseAddr(fs[8])
			if err != nil {
				return err
			}
			s := lvs.ServiceStatus{Service: lvs.Service{
				Scheduler: fs[5],
				Flags:     lvs.ServiceFlags(flags),
				Timeout:   time.Duration(n(7)) * time.Second,
				Netmask:   addrTo32(mask),
			}}
			if m := n(4); m != 0 {
				s.FWMark = uint32(m)
			} else {
				s.Proto = lvs.Protocol(n(1))
				s.Addr = netip.MustParseAddr(fs[2])
				s.Port = uint16(n(3))
			}
			s.Stats = lvs.Stats{Conns: n(9), InPkts: n(10), OutPkts: n(11), InBytes: n(12), OutBytes: n(13)}
			s.Rates = lvs.Rates{CPS: n(14), InPPS: n(15), OutPPS: n(16), InBPS: n(17), OutBPS: n(18)}
			f.svcs = append(f.svcs, s)
		case "dest":
			d := lvs.DestStatus{
				Destination: lvs.Destination{
					Addr:       netip.MustParseAddr(fs[1]),
					Port:       uint16(n(2)),
					Forward:    lvs.Forward(n(3)),
					Weight:     int(int32(n(4))),
					UThreshold: uint32(n(5)),
					LThreshold: uint32(n(6)),
				},
				ActiveConns:  uint32(n(7)),
				InactConns:   uint32(n(8)),
				PersistConns: uint32(n(9)),
				Stats:        lvs.Stats{Conns: n(10), InPkts: n(11), OutPkts: n(12), InBytes: n(13), OutBytes: n(14)},
				Rates:        lvs.Rates{CPS: n(15), InPPS: n(16), OutPPS: n(17), InBPS: n(18), OutBPS: n(19)},
			}
			last := &f.svcs[len(f.svcs)-1]
			last.Dests = append(last.Dests, d)
		default:
			return fmt.Errorf("state: unknown line %q", sc.Text())
		}
	}
	return sc.Err()
}

// fakeNames is a name service with a few fixed answers.
type fakeNames struct{}

var fakeHosts = map[string]netip.Addr{
	"localhost": netip.MustParseAddr("127.0.0.1"),
	"web1":      netip.MustParseAddr("192.168.10.1"),
	"vip":       netip.MustParseAddr("10.0.0.1"),
}

var fakeServices = map[string]uint16{"http/tcp": 80, "https/tcp": 443, "domain/udp": 53, "domain/tcp": 53}

func (fakeNames) HostAddr(_ context.Context, name string) (netip.Addr, bool) {
	a, ok := fakeHosts[name]
	return a, ok
}

func (fakeNames) AddrName(_ context.Context, a netip.Addr) (string, bool) {
	for n, x := range fakeHosts {
		if x == a {
			return n, true
		}
	}
	if a == netip.MustParseAddr("2001:db8::1") {
		return "v6vip.example", true
	}
	return "", false
}

func (fakeNames) ServicePort(name, proto string) (uint16, bool) {
	p, ok := fakeServices[name+"/"+proto]
	return p, ok
}

func (fakeNames) PortName(port uint16, proto string) (string, bool) {
	for k, p := range fakeServices {
		if p == port && strings.HasSuffix(k, "/"+proto) {
			return strings.TrimSuffix(k, "/"+proto), true
		}
	}
	return "", false
}
