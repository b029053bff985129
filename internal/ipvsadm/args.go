package ipvsadm

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/keepvs/keepvs/internal/lvs"
)

// Limits ipvsadm applies while parsing.
const (
	maxTimeout       = 86400 * 31 // persistence and --set timeouts
	defaultPersist   = 360        // -p without a value
	defaultScheduler = "wlc"
	defaultMcastIfn  = "eth0"
	schedNameMax     = 16 - 1 // strncpy into IP_VS_SCHEDNAME_MAXLEN
	peNameMax        = 16
	ifNameMax        = 16 - 1
	schedFlagsArgMax = 128 - 1
	maxSyncMaxlen    = 65535 - 20 - 8
	af4, af6         = 4, 6
	forwardDefault   = lvs.Route
	defaultV4Netmask = 0xffffffff
	defaultV6Netmask = 128
)

// entry is ipvsadm's ipvs_command_entry: the command and everything its
// options set, kept as ipvsadm keeps it until it is sent.
type entry struct {
	cmd     command
	options optSet
	format  format

	// the virtual service
	af       int // 0 until a service option is seen
	proto    lvs.Protocol
	addr     netip.Addr
	port     uint16
	fwmark   uint32
	sched    string
	flags    lvs.ServiceFlags
	timeout  uint32
	netmask  uint32
	pe       string
	schedArg string // -b, parsed once the scheduler is known

	// the real server
	destAF   int
	destAddr netip.Addr
	destPort uint16
	fwd      lvs.Forward
	weight   int
	uthresh  uint32
	lthresh  uint32
	tunType  int
	tunPort  uint16
	tunFlags uint16

	// --set
	timeouts [3]int64

	// the sync daemon
	daemon SyncDaemon
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (e *entry) setOption(o opt) error {
	if e.options.has(o) {
		return failf("multiple '%s' options specified", optNames[o])
	}
	e.options |= 1 << o
	return nil
}

// parse is parse_options. A non-nil error ends ipvsadm (fail, tryhelp,
// usage); status 255 is popt's complaint, which only ends this command.
func (c *Cmd) parse(ctx context.Context, argv []string) (*entry, int, error) {
	e := &entry{
		weight:  1,
		fwd:     forwardDefault,
		netmask: defaultV4Netmask,
	}
	p := newPopt(argv)
	prog := argv[0]

	first := p.nextOpt()
	if first < 0 {
		return nil, 0, c.tryHelp(prog)
	}
	switch first {
	case 'A':
		e.cmd = cmdAdd
	case 'E':
		e.cmd = cmdEdit
	case 'D':
		e.cmd = cmdDel
	case 'a':
		e.cmd = cmdAddDest
	case 'e':
		e.cmd = cmdEditDest
	case 'd':
		e.cmd = cmdDelDest
	case 'C':
		e.cmd = cmdFlush
	case 'L', 'l':
		e.cmd = cmdList
	case 'Z':
		e.cmd = cmdZero
	case tagSet:
		e.cmd = cmdTimeout
	case 'R':
		e.cmd = cmdRestore
	case 'S':
		e.cmd = cmdSave
	case tagStartDaemon, tagStopDaemon:
		e.cmd = cmdStartDaemon
		if first == tagStopDaemon {
			e.cmd = cmdStopDaemon
		}
		switch p.arg {
		case "master":
		case "backup":
			e.daemon.Backup = true
		default:
			if first == tagStartDaemon {
				return nil, 0, failf("illegal start-daemon parameter specified")
			}
			return nil, 0, failf("illegal start_daemon specified")
		}
	case 'h':
		c.usage(c.out, prog)
		return nil, 0, &exitError{code: 0}
	case 'v':
		c.version(c.out)
		return nil, 0, &exitError{code: 0}
	default:
		return nil, 0, c.tryHelp(prog)
	}

	var ch int
	for ch = p.nextOpt(); ch >= 0; ch = p.nextOpt() {
		if err := c.option(ctx, e, p, ch); err != nil {
			return nil, 0, err
		}
	}
	if ch < poptDone {
		c.out.Flush()
		fmt.Fprintf(c.Stderr, "%s: %s\n", p.badOption(), poptStrerror(ch))
		return nil, statusFailed, nil
	}

	if e.cmd == cmdTimeout {
		a0, ok0 := p.nextArg()
		a1, ok1 := p.nextArg()
		a2, ok2 := p.nextArg()
		if !ok0 || !ok1 || !ok2 {
			return nil, 0, failf("--set option requires 3 timeout values")
		}
		for i, a := range []string{a0, a1, a2} {
			v, err := parseTimeout(a, true, 0, maxTimeout)
			if err != nil {
				return nil, 0, err
			}
			e.timeouts[i] = v
		}
	}
	if a, ok := p.nextArg(); ok {
		return nil, 0, failf("unexpected argument %s", a)
	}
	if e.schedArg != "" {
		e.flags &^= schedFlagsMask
		f, msg, crash := parseSchedFlags(e.sched, e.schedArg)
		if crash {
			// ipvsadm dereferences NULL on a list of only commas.
			return nil, 0, &exitError{code: 139}
		}
		if msg != "" {
			return nil, 0, failf("%s", msg)
		}
		e.flags |= f
	}
	return e, 0, nil
}

// parseTimeout is parse_timeout; given is false for -p without a value.
func parseTimeout(s string, given bool, min, max int64) (int64, error) {
	if !given {
		return defaultPersist, nil
	}
	v := stringToNumber(s, min, max)
	if v == -1 {
		return 0, failf("invalid timeout value `%s' specified", s)
	}
	return v, nil
}

func optionProtocol(ch int) lvs.Protocol {
	switch ch {
	case 't':
		return lvs.TCP
	case 'u':
		return lvs.UDP
	case tagSCTPService:
		return lvs.SCTP
	}
	return 0
}

// option handles one option after the command.
func (c *Cmd) option(ctx context.Context, e *entry, p *popt, ch int) error {
	arg := p.arg
	switch ch {
	case 't', 'u', tagSCTPService:
		if err := e.setOption(optService); err != nil {
			return err
		}
		e.proto = optionProtocol(ch)
		ps := parsedService{addr: e.addr, port: e.port}
		r := parseService(ctx, c.names, arg, e.proto, &ps)
		if r&serviceAddr == 0 {
			return failf("illegal virtual server address[:port] specified")
		}
		e.addr, e.port = ps.addr, ps.port
		e.af = af4
		if ps.addr.Is6() {
			e.af = af6
			e.netmask = defaultV6Netmask
		}
	case 'f':
		if err := e.setOption(optService); err != nil {
			return err
		}
		e.af = af4
		e.proto = lvs.TCP
		m, ok := parseFwmark(arg)
		if !ok {
			return failf("invalid fwmark value `%s' specified", arg)
		}
		e.fwmark = m
	case 's':
		if err := e.setOption(optScheduler); err != nil {
			return err
		}
		e.sched = truncate(arg, schedNameMax)
	case 'p':
		if err := e.setOption(optPersistent); err != nil {
			return err
		}
		e.flags |= lvs.FlagPersistent
		v, err := parseTimeout(arg, p.hasArg, 1, maxTimeout)
		if err != nil {
			return err
		}
		e.timeout = uint32(v)
	case 'M':
		if err := e.setOption(optNetmask); err != nil {
			return err
		}
		if e.af != af6 {
			m, ok := parseNetmask(ctx, c.names, arg)
			if !ok {
				return failf("illegal virtual server persistent mask specified")
			}
			e.netmask = m
		} else {
			e.netmask = uint32(atoi(arg))
			if e.netmask < 1 || e.netmask > 128 {
				return failf("illegal ipv6 netmask specified")
			}
		}
	case 'r':
		if err := e.setOption(optServer); err != nil {
			return err
		}
		ps := parsedService{addr: e.addr, port: e.port}
		r := parseService(ctx, c.names, arg, e.proto, &ps)
		if r&serviceAddr == 0 {
			return failf("illegal real server address[:port] specified")
		}
		e.destAddr, e.destPort = ps.addr, ps.port
		e.destAF = af4
		if ps.addr.Is6() {
			e.destAF = af6
		}
		if r == serviceAddr {
			e.destPort = e.port
		}
	case 'i', 'g', 'm':
		if err := e.setOption(optForward); err != nil {
			return err
		}
		e.fwd = map[int]lvs.Forward{'i': lvs.Tunnel, 'g': lvs.Route, 'm': lvs.Masq}[ch]
	case 'w':
		if err := e.setOption(optWeight); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, math.MaxInt32)
		if v == -1 {
			return failf("illegal weight specified")
		}
		e.weight = int(v)
	case 'x':
		if err := e.setOption(optUThreshold); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, math.MaxInt32)
		if v == -1 {
			return failf("illegal u_threshold specified")
		}
		e.uthresh = uint32(v)
	case 'y':
		if err := e.setOption(optLThreshold); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, math.MaxInt32)
		if v == -1 {
			return failf("illegal l_threshold specified")
		}
		e.lthresh = uint32(v)
	case 'c':
		return e.setOption(optConnection)
	case 'n':
		e.format |= fmtNumeric
		return e.setOption(optNumeric)
	case tagMcastInterface:
		if err := e.setOption(optMcast); err != nil {
			return err
		}
		e.daemon.Interface = truncate(arg, ifNameMax)
	case tagSyncID:
		if err := e.setOption(optSyncID); err != nil {
			return err
		}
		v := stringToNumber(arg, 0, 255)
		if v == -1 {
			return failf("illegal syncid specified")
		}
		e.daemon.SyncID = uint8(v)
	case tagTimeout:
		return e.setOption(optTimeout)
	case tagDaemon:
		return e.setOption(optDaemon)
	case tagStats:
		e.format |= fmtStats
		return e.setOption(optStats)
	case tagRate:
		e.format |= fmtRate
		return e.setOption(optRate)
	case tagThresholds:
		e.format |= fmtThresholds
		return e.setOption(optThresholds)
	case tagPersistentConn:
		e.format |= fmtPersistentConn
		return e.setOption(optPersistentConn)
	case tagNoSort:
		e.format |= fmtNoSort
		return e.setOption(optNoSort)
	case tagSort:
		// sorting is the default; --sort stays for compatibility
	case 'X':
		e.format |= fmtExact
		return e.setOption(optExact)
	case '6':
		if e.fwmark == 0 {
			return failf("-6 used before -f\n")
		}
		e.af = af6
		e.netmask = defaultV6Netmask
	case 'o':
		if err := e.setOption(optOnePacket); err != nil {
			return err
		}
		e.flags |= lvs.FlagOnePacket
	case tagPersistenceEngine:
		if err := e.setOption(optPersistenceEngine); err != nil {
			return err
		}
		e.pe = truncate(arg, peNameMax)
	case 'b':
		if err := e.setOption(optSchedFlags); err != nil {
			return err
		}
		e.schedArg = truncate(arg, schedFlagsArgMax)
	case tagMcastGroup:
		if err := e.setOption(optMcastGroup); err != nil {
			return err
		}
		if strings.Contains(arg, ":") {
			a, ok := inetPton6(arg)
			if !ok || !a.IsMulticast() {
				return failf("invalid IPv6 mcast-group `%s'", arg)
			}
			e.daemon.Group = a
		} else {
			a, err := netip.ParseAddr(arg)
			if err != nil || !a.Is4() || !a.IsMulticast() {
				return failf("invalid IPv4 mcast-group `%s'", arg)
			}
			e.daemon.Group = a
		}
	case tagMcastPort:
		if err := e.setOption(optMcastPort); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 65535)
		if v == -1 {
			return failf("illegal mcast-port specified")
		}
		e.daemon.Port = uint16(v)
	case tagMcastTTL:
		if err := e.setOption(optMcastTTL); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 255)
		if v == -1 {
			return failf("illegal mcast-ttl specified")
		}
		e.daemon.TTL = uint8(v)
	case tagSyncMaxlen:
		if err := e.setOption(optSyncMaxlen); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, maxSyncMaxlen)
		if v == -1 {
			return failf("illegal sync-maxlen specified")
		}
		e.daemon.MaxLen = uint16(v)
	case tagTunInfo:
		e.format |= fmtTunInfo
		return e.setOption(optTunInfo)
	case tagTunType:
		if err := e.setOption(optTunType); err != nil {
			return err
		}
		t := parseTunType(arg)
		if t == -1 {
			return failf("illegal tunnel type specified")
		}
		e.tunType = t
	case tagTunPort:
		if err := e.setOption(optTunPort); err != nil {
			return err
		}
		v := stringToNumber(arg, 1, 65535)
		if v == -1 {
			return failf("illegal tunnel port specified")
		}
		e.tunPort = uint16(v)
	case tagTunNoCsum:
		return e.setOption(optTunNoCsum)
	case tagTunCsum:
		e.tunFlags |= lvs.TunFlagCsum
		return e.setOption(optTunCsum)
	case tagTunRemCsum:
		e.tunFlags |= lvs.TunFlagRemCsum
		return e.setOption(optTunRemCsum)
	default:
		return failf("invalid option `%s'", p.badOption())
	}
	return nil
}

// check is what process_options verifies once the options are parsed.
func (e *entry) check() error {
	if err := checkOptions(e.cmd, e.options); err != nil {
		return err
	}
	switch e.cmd {
	case cmdAdd, cmdEdit:
		if e.fwmark == 0 && e.port == 0 && e.flags&lvs.FlagPersistent == 0 {
			return failf("Zero port specified for non-persistent service")
		}
		if e.flags&lvs.FlagOnePacket != 0 && e.fwmark == 0 && e.proto != lvs.UDP {
			return failf("One-Packet Scheduling is only for UDP virtual services")
		}
		if e.sched == "" {
			e.sched = defaultScheduler
		}
	case cmdStartDaemon:
		if e.daemon.Interface == "" {
			e.daemon.Interface = defaultMcastIfn
		}
	case cmdAddDest, cmdEditDest:
		// DR and tunnels cannot change the port.
		if e.fwmark == 0 && (e.fwd == lvs.Tunnel || e.fwd == lvs.Route) {
			e.destPort = e.port
		}
		if e.destAF != e.af && e.fwd != lvs.Tunnel {
			return failf("Different address family is allowed only for tunneling servers")
		}
		tunOpts := optSet(1<<optTunType | 1<<optTunPort | 1<<optTunNoCsum | 1<<optTunCsum | 1<<optTunRemCsum)
		if e.options&tunOpts != 0 && e.fwd != lvs.Tunnel {
			return failf("Tunnel options conflict with forward method")
		}
		return checkTunnel(e.tunType, e.options)
	case cmdList:
		o := e.options
		connLike := o.has(optConnection) || o.has(optTimeout) || o.has(optDaemon)
		statLike := o.has(optStats) || o.has(optRate) || o.has(optThresholds)
		if (connLike && statLike) || ((o.has(optTimeout) || o.has(optDaemon)) && o.has(optPersistentConn)) {
			return failf("options conflicts in the list command")
		}
	}
	return nil
}

// key is the virtual service the entry names.
func (e *entry) key() lvs.ServiceKey {
	if e.fwmark != 0 {
		return lvs.ServiceKey{FWMark: e.fwmark, IPv6: e.af == af6}
	}
	return lvs.ServiceKey{Proto: e.proto, Addr: e.addr, Port: e.port}
}

func (e *entry) service() lvs.Service {
	return lvs.Service{
		ServiceKey: e.key(),
		Scheduler:  e.sched,
		Flags:      e.flags,
		Timeout:    secs(int64(e.timeout)),
		Netmask:    e.netmask,
		PEName:     e.pe,
	}
}

func (e *entry) destination() lvs.Destination {
	return lvs.Destination{
		Addr:       e.destAddr,
		Port:       e.destPort,
		Weight:     e.weight,
		Forward:    e.fwd,
		UThreshold: e.uthresh,
		LThreshold: e.lthresh,
		TunType:    uint8(e.tunType),
		TunPort:    e.tunPort,
		TunFlags:   e.tunFlags,
	}
}
