package ipvsadm

import (
	"context"
	"math"
	"net/netip"
	"strings"

	"github.com/keepvs/keepvs/internal/lvs"
)

// The C library's number and address parsers, as ipvsadm relies on them:
// strtol's leading blanks and sign, inet_aton's shorthand forms
// ("10.1" is 10.0.0.1, "0x0a000001" too) and its tolerance of trailing
// blanks, inet_pton's strict IPv6.

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// strtol parses like strtol(s, &end, 10): ok is false when no digit was
// read, rest is what follows the number, overflow reports ERANGE (the value
// is then clamped like strtol's).
func strtol(s string) (v int64, rest string, ok, overflow bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			overflow = true
		} else {
			u = u*10 + d
		}
		i++
	}
	if i == start {
		return 0, s, false, false
	}
	switch {
	case !neg && (overflow || u > math.MaxInt64):
		return math.MaxInt64, s[i:], true, true
	case neg && (overflow || u > 1<<63):
		return math.MinInt64, s[i:], true, true
	case neg:
		return -int64(u), s[i:], true, false
	}
	return int64(u), s[i:], true, false
}

// stringToNumber is ipvsadm's string_to_number: the whole string must be a
// number within [min, max]; -1 otherwise.
func stringToNumber(s string, min, max int64) int64 {
	v, rest, ok, overflow := strtol(s)
	if !ok || rest != "" || overflow || v < min || v > max {
		return -1
	}
	return v
}

// atoi is C's atoi: strtol's value truncated to an int.
func atoi(s string) int32 {
	v, _, _, _ := strtol(s)
	return int32(v)
}

// strIsDigit is ipvsadm's str_is_digit: true for "" too.
func strIsDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// inetAton is glibc's inet_aton.
func inetAton(s string) (netip.Addr, bool) {
	var parts [4]uint64
	n := 0
	i := 0
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return netip.Addr{}, false
		}
		base := uint64(10)
		if s[i] == '0' {
			base = 8
			i++
			if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
				base = 16
				i++
			}
		}
		var v uint64
		digits := 0
		for i < len(s) {
			c := s[i]
			var d uint64
			switch {
			case c >= '0' && c <= '9':
				d = uint64(c - '0')
				if base == 8 && d > 7 {
					return netip.Addr{}, false
				}
			case base == 16 && c >= 'a' && c <= 'f':
				d = uint64(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				goto done
			}
			v = v*base + d
			digits++
			if v > math.MaxUint32 {
				return netip.Addr{}, false
			}
			i++
		}
	done:
		if base == 16 && digits == 0 {
			return netip.Addr{}, false // strtoul read "0", leaving "x"
		}
		if i < len(s) && s[i] == '.' {
			if n >= 3 || v > 0xff {
				return netip.Addr{}, false
			}
			parts[n] = v
			n++
			i++
			continue
		}
		parts[n] = v
		n++
		break
	}
	if i < len(s) && !isCSpace(s[i]) {
		return netip.Addr{}, false
	}
	var val uint64
	switch n {
	case 1:
		val = parts[0]
	case 2:
		if parts[1] > 0xffffff {
			return netip.Addr{}, false
		}
		val = parts[0]<<24 | parts[1]
	case 3:
		if parts[2] > 0xffff {
			return netip.Addr{}, false
		}
		val = parts[0]<<24 | parts[1]<<16 | parts[2]
	case 4:
		if parts[3] > 0xff {
			return netip.Addr{}, false
		}
		val = parts[0]<<24 | parts[1]<<16 | parts[2]<<8 | parts[3]
	}
	return addrFrom32(uint32(val)), true
}

func addrFrom32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addrTo32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// inetPton6 is inet_pton(AF_INET6): no zones, no plain IPv4.
func inetPton6(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// parse_service's result bits.
const (
	serviceNone = 0
	serviceAddr = 1
	servicePort = 2
)

// parsedService is what parse_service fills in.
type parsedService struct {
	addr netip.Addr
	port uint16
}

// parseService is ipvsadm's parse_service: host[:port] or [v6]:port, names
// resolved through n; proto picks the services database for a port name.
func parseService(ctx context.Context, n Names, buf string, proto lvs.Protocol, ps *parsedService) int {
	if strIsDigit(buf) {
		return serviceNone
	}
	portStr, hasPort := "", false
	if buf[0] == '[' {
		buf = buf[1:]
		i := strings.IndexByte(buf, ']')
		if i < 0 {
			return serviceNone
		}
		rest := buf[i+1:]
		buf = buf[:i]
		if rest == "" || rest[0] != ':' {
			return serviceNone
		}
		portStr, hasPort = rest[1:], true
	}
	if a, ok := inetPton6(buf); ok {
		ps.addr = a
	} else {
		// The port is searched again in what is left, so "[1.2.3.4]:80"
		// loses its port, as in ipvsadm.
		portStr, hasPort = "", false
		if i := strings.LastIndexByte(buf, ':'); i >= 0 {
			portStr, hasPort = buf[i+1:], true
			buf = buf[:i]
		}
		if a, ok := inetAton(buf); ok {
			ps.addr = a
		} else if a, ok := n.HostAddr(ctx, buf); ok {
			ps.addr = a
		} else {
			return serviceNone
		}
	}
	result := serviceAddr
	if hasPort {
		result |= servicePort
		if p := stringToNumber(portStr, 0, 65535); p != -1 {
			ps.port = uint16(p)
		} else if p, ok := n.ServicePort(portStr, protoDBName(proto)); ok {
			ps.port = p
		} else {
			return serviceNone
		}
	}
	return result
}

// protoDBName is the services database's name for a protocol ("" for
// none: ipvsadm looks names up for TCP, UDP and SCTP only).
func protoDBName(p lvs.Protocol) string {
	switch p {
	case lvs.TCP:
		return "tcp"
	case lvs.UDP:
		return "udp"
	case lvs.SCTP:
		return "sctp"
	}
	return ""
}

// parseNetmask is parse_netmask: an IPv4 mask, dotted or a host name.
func parseNetmask(ctx context.Context, n Names, buf string) (uint32, bool) {
	if a, ok := inetAton(buf); ok {
		return addrTo32(a), true
	}
	if a, ok := n.HostAddr(ctx, buf); ok {
		return addrTo32(a), true
	}
	return 0, false
}

// parseFwmark is parse_fwmark: 1..UINT_MAX.
func parseFwmark(buf string) (uint32, bool) {
	v, rest, ok, overflow := strtol(buf)
	if !ok || rest != "" || overflow || v <= 0 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// Scheduler flag bits by their ipvsadm names.
const (
	schedFlagsMask = lvs.FlagSched1 | lvs.FlagSched2 | lvs.FlagSched3
)

// parseSchedFlags is parse_sched_flags. It returns the message of the
// failure, if any. crash reports ipvsadm's NULL dereference on a list of
// only commas.
func parseSchedFlags(sched, arg string) (flags lvs.ServiceFlags, errMsg string, crash bool) {
	if sched == "" {
		sched = defaultScheduler
	}
	toks := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' })
	if len(toks) == 0 {
		return 0, "", true
	}
	for _, f := range toks {
		switch f {
		case "flag-1":
			flags |= lvs.FlagSched1
		case "flag-2":
			flags |= lvs.FlagSched2
		case "flag-3":
			flags |= lvs.FlagSched3
		case "sh-fallback", "sh-port", "mh-fallback", "mh-port":
			if strings.HasSuffix(f, "-fallback") {
				flags |= lvs.FlagSched1
			} else {
				flags |= lvs.FlagSched2
			}
			if sched != f[:2] {
				return 0, "incompatible scheduler flag `" + f + "'", false
			}
		default:
			return 0, "invalid scheduler flag `" + f + "'", false
		}
	}
	return flags, "", false
}

// Tunnel types by ipvsadm's names, indexed by lvs.Tun* values.
var tunNames = [...]string{lvs.TunIPIP: "ipip", lvs.TunGUE: "gue", lvs.TunGRE: "gre"}

func parseTunType(s string) int {
	for i, n := range tunNames {
		if n == s {
			return i
		}
	}
	return -1
}
