package ipvsadm

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/keepvs/keepvs/internal/lvs"
)

// format is ipvsadm's FMT_* set: how a listing looks.
type format uint

const (
	fmtNone           format = 0
	fmtNumeric        format = 0x0001
	fmtRule           format = 0x0002
	fmtStats          format = 0x0004
	fmtRate           format = 0x0008
	fmtThresholds     format = 0x0010
	fmtPersistentConn format = 0x0020
	fmtNoSort         format = 0x0040
	fmtExact          format = 0x0080
	fmtTunInfo        format = 0x0100
)

// addrLen is the buffer addrport_to_anyname prints into (60 bytes with
// the NUL); longer names are cut.
const addrLen = 60 - 1

func (c *Cmd) printf(format string, a ...any) { fmt.Fprintf(c.out, format, a...) }

// fatal ends a listing as ipvsadm does: the message (if any) and status 1.
func (c *Cmd) fatal(msg string) error { return &exitError{code: 1, msg: msg} }

func (c *Cmd) listAll(ctx context.Context, f format) error {
	if f&fmtRule == 0 {
		c.printf("IP Virtual Server version %d.%d.%d (size=%d)\n",
			c.ipvs.major, c.ipvs.minor, c.ipvs.patch, c.ipvs.size)
	}
	svcs, err := c.DP.Services(ctx)
	if err != nil {
		return c.fatal(errText(opGetServices, err))
	}
	svcs = append([]lvs.ServiceStatus(nil), svcs...)
	if f&fmtNoSort == 0 {
		msort(svcs, cmpServices)
	}
	c.printTitle(f)
	for i := range svcs {
		c.printService(ctx, &svcs[i], f)
	}
	if len(svcs) > 0 {
		c.lastOp = opGetDests
	}
	return nil
}

func (c *Cmd) listService(ctx context.Context, k lvs.ServiceKey, f format) error {
	c.lastOp = opGetService
	svcs, err := c.DP.Services(ctx)
	if err != nil {
		return c.fatal(errText(opGetService, err))
	}
	for i := range svcs {
		if sameService(svcs[i].ServiceKey, k) {
			c.printTitle(f)
			c.printService(ctx, &svcs[i], f)
			c.lastOp = opGetDests
			return nil
		}
	}
	return c.fatal(errText(opGetService, lvs.ErrNoService))
}

// sameService matches a service as the kernel looks one up: a fwmark by
// family and mark, others by protocol, address and port.
func sameService(s, k lvs.ServiceKey) bool {
	if k.FWMark != 0 {
		return s.FWMark == k.FWMark && s.Is6() == k.IPv6
	}
	return s.FWMark == 0 && s.Proto == k.Proto && s.Addr == k.Addr && s.Port == k.Port
}

func (c *Cmd) printTitle(f format) {
	switch {
	case f&fmtStats != 0:
		c.printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f&fmtRate != 0:
		c.printf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f&fmtThresholds != 0:
		c.printf("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case f&fmtPersistentConn != 0:
		c.printf("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case f&fmtTunInfo != 0:
		c.printf("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	case f&fmtRule == 0:
		c.printf("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// largeNum is print_largenum: a 9-column number, scaled by K, M, G or T
// past 100 million unless --exact.
func largeNum(i uint64, f format) string {
	if f&fmtExact != 0 {
		s := strconv.FormatUint(i, 10)
		w := len(s) + 1
		if len(s) <= 8 {
			w = 9
		}
		return fmt.Sprintf("%*d", w, i)
	}
	switch {
	case i < 100000000:
		return fmt.Sprintf("%9d", i)
	case i < 1000000000:
		return fmt.Sprintf("%8dK", i/1000)
	case i < 100000000000:
		return fmt.Sprintf("%8dM", i/1000000)
	case i < 100000000000000:
		return fmt.Sprintf("%8dG", i/1000000000)
	}
	return fmt.Sprintf("%8dT", i/1000000000000)
}

func protocolName(p lvs.Protocol) string {
	switch p {
	case lvs.TCP:
		return "TCP"
	case lvs.UDP:
		return "UDP"
	case lvs.SCTP:
		return "SCTP"
	}
	return "?"
}

func protocolOption(p lvs.Protocol) string {
	switch p {
	case lvs.TCP:
		return "-t"
	case lvs.UDP:
		return "-u"
	case lvs.SCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

func fwdName(f lvs.Forward) string {
	switch f {
	case lvs.Masq, lvs.Local, lvs.Tunnel, lvs.Route:
		return f.String()
	}
	return "(null)"
}

func fwdSwitch(f lvs.Forward) string {
	switch f {
	case lvs.Masq:
		return "-m"
	case lvs.Tunnel:
		return "-i"
	case lvs.Local, lvs.Route:
		return "-g"
	}
	return "(null)"
}

var tunFlagNames = [...]string{"-c", "+c", "r+c"}
var tunFlagOpts = [...]string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}

func indexName(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return "(null)"
}

// tunInfo is fwd_tun_info: "n/a" unless the destination is a tunnel.
func tunInfo(d *lvs.DestStatus) string {
	if d.Forward != lvs.Tunnel {
		return "n/a"
	}
	switch d.TunType {
	case lvs.TunIPIP:
		return "ipip"
	case lvs.TunGUE:
		return fmt.Sprintf("gue:%d:%s", d.TunPort, indexName(tunFlagNames[:], int(d.TunFlags)))
	case lvs.TunGRE:
		return "gre:" + indexName(tunFlagNames[:], int(d.TunFlags))
	}
	return "n/a"
}

// schedFlags is print_sched_flags: names by scheduler.
func schedFlags(s *lvs.Service) string {
	var names []string
	switch s.Scheduler {
	case "sh", "mh":
		if s.Flags&lvs.FlagSched1 != 0 {
			names = append(names, s.Scheduler+"-fallback")
		}
		if s.Flags&lvs.FlagSched2 != 0 {
			names = append(names, s.Scheduler+"-port")
		}
	default:
		for i, fl := range []lvs.ServiceFlags{lvs.FlagSched1, lvs.FlagSched2, lvs.FlagSched3} {
			if s.Flags&fl != 0 {
				names = append(names, fmt.Sprintf("flag-%d", i+1))
			}
		}
	}
	return strings.Join(names, ",")
}

func maskString(m uint32) string { return addrFrom32(m).String() }

// printService is print_service_entry.
func (c *Cmd) printService(ctx context.Context, s *lvs.ServiceStatus, f format) {
	is6 := s.Is6()
	var name string
	switch {
	case s.FWMark != 0 && f&fmtRule != 0:
		name = fmt.Sprintf("-f %d", int32(s.FWMark))
		if is6 {
			name += " -6"
		}
	case s.FWMark != 0:
		name = fmt.Sprintf("FWM  %d", int32(s.FWMark))
		if is6 {
			name += " IPv6"
		}
	default:
		vname := c.addrPort(ctx, s.Addr, s.Port, s.Proto, f)
		if f&fmtRule != 0 {
			name = protocolOption(s.Proto) + " " + vname
		} else {
			name = fmt.Sprintf("%-4s %s", protocolName(s.Proto), vname)
			if !is6 {
				name = truncate(name, 33)
			}
		}
	}
	proto := s.Proto
	if s.FWMark != 0 {
		proto = 0 // the kernel reports no protocol for a fwmark service
	}

	var b strings.Builder
	persistent := s.Flags&lvs.FlagPersistent != 0
	hasSchedFlags := s.Flags&schedFlagsMask != 0
	timeout := uint32(s.Timeout.Seconds())
	switch {
	case f&fmtRule != 0:
		fmt.Fprintf(&b, "-A %s -s %s", name, s.Scheduler)
		if persistent {
			fmt.Fprintf(&b, " -p %d", timeout)
			if !is6 && s.Netmask != defaultV4Netmask {
				fmt.Fprintf(&b, " -M %s", maskString(s.Netmask))
			}
			if is6 && s.Netmask != defaultV6Netmask {
				fmt.Fprintf(&b, " -M %d", int32(s.Netmask))
			}
		}
		if s.PEName != "" {
			fmt.Fprintf(&b, " --pe %s", s.PEName)
		}
		if s.Flags&lvs.FlagOnePacket != 0 {
			b.WriteString(" -o")
		}
		if hasSchedFlags {
			b.WriteString(" -b " + schedFlags(&s.Service))
		}
	case f&fmtStats != 0:
		fmt.Fprintf(&b, "%-33s", name)
		for _, v := range []uint64{s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts, s.Stats.InBytes, s.Stats.OutBytes} {
			b.WriteString(largeNum(v, f))
		}
	case f&fmtRate != 0:
		fmt.Fprintf(&b, "%-33s", name)
		for _, v := range []uint64{s.Rates.CPS, s.Rates.InPPS, s.Rates.OutPPS, s.Rates.InBPS, s.Rates.OutBPS} {
			b.WriteString(largeNum(v, f))
		}
	default:
		fmt.Fprintf(&b, "%s %s", name, s.Scheduler)
		if hasSchedFlags {
			b.WriteString(" (" + schedFlags(&s.Service) + ")")
		}
		if persistent {
			fmt.Fprintf(&b, " persistent %d", timeout)
			if !is6 && s.Netmask != defaultV4Netmask {
				fmt.Fprintf(&b, " mask %s", maskString(s.Netmask))
			}
			if is6 && s.Netmask != defaultV6Netmask {
				fmt.Fprintf(&b, " mask %d", int32(s.Netmask))
			}
			if s.PEName != "" {
				fmt.Fprintf(&b, " pe %s", s.PEName)
			}
		}
		if s.Flags&lvs.FlagOnePacket != 0 {
			b.WriteString(" ops")
		}
	}
	b.WriteByte('\n')
	c.out.WriteString(b.String())

	dests := append([]lvs.DestStatus(nil), s.Dests...)
	if f&fmtNoSort == 0 {
		msort(dests, cmpDests)
	}
	for i := range dests {
		c.printDest(ctx, name, proto, &dests[i], f)
	}
}

func (c *Cmd) printDest(ctx context.Context, svcName string, proto lvs.Protocol, d *lvs.DestStatus, f format) {
	dname := c.addrPort(ctx, d.Addr, d.Port, proto, f)
	if f&fmtRule == 0 && !d.Addr.Is6() {
		dname = truncate(dname, 28)
	}
	switch {
	case f&fmtRule != 0:
		c.printf("-a %s -r %s %s -w %d", svcName, dname, fwdSwitch(d.Forward), d.Weight)
		if d.Forward == lvs.Tunnel {
			switch d.TunType {
			case lvs.TunGUE:
				c.printf(" --tun-type %s --tun-port %d %s", tunNames[d.TunType], d.TunPort,
					indexName(tunFlagOpts[:], int(d.TunFlags)))
			case lvs.TunIPIP:
				c.printf(" --tun-type %s", tunNames[d.TunType])
			case lvs.TunGRE:
				c.printf(" --tun-type %s %s", tunNames[d.TunType], indexName(tunFlagOpts[:], int(d.TunFlags)))
			}
		}
		c.printf("\n")
	case f&fmtStats != 0:
		c.printf("  -> %-28s", dname)
		for _, v := range []uint64{d.Stats.Conns, d.Stats.InPkts, d.Stats.OutPkts, d.Stats.InBytes, d.Stats.OutBytes} {
			c.out.WriteString(largeNum(v, f))
		}
		c.printf("\n")
	case f&fmtRate != 0:
		// The per-destination packet rates are never scaled.
		c.printf("  -> %-28s %8d %8d %8d", dname, d.Rates.CPS, d.Rates.InPPS, d.Rates.OutPPS)
		c.out.WriteString(largeNum(d.Rates.InBPS, f))
		c.out.WriteString(largeNum(d.Rates.OutBPS, f))
		c.printf("\n")
	case f&fmtThresholds != 0:
		c.printf("  -> %-28s %-10d %-10d %-10d %-10d\n", dname,
			d.UThreshold, d.LThreshold, d.ActiveConns, d.InactConns)
	case f&fmtPersistentConn != 0:
		c.printf("  -> %-28s %-9d %-11d %-10d %-10d\n", dname,
			uint32(d.Weight), d.PersistConns, d.ActiveConns, d.InactConns)
	case f&fmtTunInfo != 0:
		c.printf("  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname, fwdName(d.Forward),
			tunInfo(d), int32(d.Weight), d.ActiveConns, d.InactConns)
	default:
		c.printf("  -> %-28s %-7s %-6d %-10d %-10d\n", dname, fwdName(d.Forward),
			int32(d.Weight), d.ActiveConns, d.InactConns)
	}
}

// addrPort is addrport_to_anyname: "addr:port", "[v6]:port", with names
// unless -n.
func (c *Cmd) addrPort(ctx context.Context, a netip.Addr, port uint16, proto lvs.Protocol, f format) string {
	open, close := "", ""
	if a.Is6() {
		open, close = "[", "]"
	}
	var s string
	if f&fmtNumeric != 0 {
		s = fmt.Sprintf("%s%s%s:%d", open, inetNtop(a), close, port)
	} else {
		host := inetNtop(a)
		if n, ok := c.names.AddrName(ctx, a); ok {
			host = n
		}
		ps := strconv.Itoa(int(port))
		if db := protoDBName(proto); db != "" {
			if n, ok := c.names.PortName(port, db); ok {
				ps = n
			}
		}
		s = open + host + close + ":" + ps
	}
	return truncate(s, addrLen)
}

// inetNtop is glibc's inet_ntop, which writes ::a.b.c.d for IPv4-compatible
// addresses where netip does not.
func inetNtop(a netip.Addr) string {
	if !a.IsValid() {
		return "0.0.0.0"
	}
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	bestStart, bestLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			bestStart, bestLen = i, j-i
		}
		i = j
	}
	if bestLen < 2 {
		bestStart = -1
	}
	var s strings.Builder
	for i := 0; i < 8; i++ {
		if bestStart >= 0 && i >= bestStart && i < bestStart+bestLen {
			if i == bestStart {
				s.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			s.WriteByte(':')
		}
		if i == 6 && bestStart == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			fmt.Fprintf(&s, "%d.%d.%d.%d", b[12], b[13], b[14], b[15])
			break
		}
		fmt.Fprintf(&s, "%x", w[i])
	}
	if bestStart >= 0 && bestStart+bestLen == 8 {
		s.WriteByte(':')
	}
	return s.String()
}

func (c *Cmd) listTimeout(ctx context.Context) error {
	c.lastOp = opOther
	t, err := c.DP.Timeouts(ctx)
	if err != nil {
		return c.fatal("")
	}
	c.printf("Timeout (tcp tcpfin udp): %d %d %d\n",
		int32(t.TCP.Seconds()), int32(t.TCPFin.Seconds()), int32(t.UDP.Seconds()))
	return nil
}

func (c *Cmd) listDaemons(ctx context.Context) error {
	sd, ok := c.DP.(SyncDaemons)
	if !ok {
		return nil
	}
	c.lastOp = opOther
	ds, err := sd.Daemons(ctx)
	if err != nil {
		return c.fatal("")
	}
	for _, d := range ds {
		kind := "master"
		if d.Backup {
			kind = "backup"
		}
		c.printf("%s sync daemon (mcast=%s, syncid=%d", kind, d.Interface, d.SyncID)
		if d.MaxLen != 0 {
			c.printf(", maxlen=%d", d.MaxLen)
		}
		if d.Group.IsValid() {
			c.printf(", group=%s", inetNtop(d.Group))
		}
		if d.Port != 0 {
			c.printf(", port=%d", d.Port)
		}
		if d.TTL != 0 {
			c.printf(", ttl=%d", d.TTL)
		}
		c.printf(")\n")
	}
	return nil
}
