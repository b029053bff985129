package ipvsadm

import "strings"

// ipvsadm parses its argv with popt, and its grammar is popt's: short
// options cluster ("-Ln"), a short option's argument may follow it in the
// same word ("-p300", "-t=1.2.3.4:80") or be the next word, long options
// take "--name=value" or "--name value", an optional argument ("-p") is
// taken from the next word only when that word does not start with '-',
// "--" ends the options, and words that are not options are left over
// wherever they appear. This file reproduces exactly that much of popt.

type argKind int

const (
	argNone argKind = iota
	argRequired
	argOptional
)

// poptOption is one row of ipvsadm's popt table.
type poptOption struct {
	long  string
	short byte
	arg   argKind
	val   int
}

// Values ipvsadm's table returns for options without a short name; they
// are above the ASCII range so short names can serve as their own value.
const (
	tagSet = 128 + iota
	tagStartDaemon
	tagStopDaemon
	tagMcastInterface
	tagTimeout
	tagDaemon
	tagStats
	tagRate
	tagThresholds
	tagPersistentConn
	tagSort
	tagNoSort
	tagPersistenceEngine
	tagSCTPService
	tagMcastGroup
	tagMcastPort
	tagMcastTTL
	tagSyncMaxlen
	tagTunInfo
	tagTunType
	tagTunPort
	tagTunNoCsum
	tagTunCsum
	tagTunRemCsum
	tagSyncID = 'I' // --syncid has no short name but returns 'I'
)

// poptTable is ipvsadm 1.31's option table, in its order (popt returns the
// first match, which matters for "list", named twice).
var poptTable = []poptOption{
	{"add-service", 'A', argNone, 'A'},
	{"edit-service", 'E', argNone, 'E'},
	{"delete-service", 'D', argNone, 'D'},
	{"clear", 'C', argNone, 'C'},
	{"list", 'L', argNone, 'L'},
	{"list", 'l', argNone, 'l'},
	{"zero", 'Z', argNone, 'Z'},
	{"add-server", 'a', argNone, 'a'},
	{"edit-server", 'e', argNone, 'e'},
	{"delete-server", 'd', argNone, 'd'},
	{"set", 0, argNone, tagSet},
	{"help", 'h', argNone, 'h'},
	{"version", 'v', argNone, 'v'},
	{"restore", 'R', argNone, 'R'},
	{"save", 'S', argNone, 'S'},
	{"start-daemon", 0, argRequired, tagStartDaemon},
	{"stop-daemon", 0, argRequired, tagStopDaemon},
	{"tcp-service", 't', argRequired, 't'},
	{"udp-service", 'u', argRequired, 'u'},
	{"sctp-service", 0, argRequired, tagSCTPService},
	{"fwmark-service", 'f', argRequired, 'f'},
	{"scheduler", 's', argRequired, 's'},
	{"persistent", 'p', argOptional, 'p'},
	{"netmask", 'M', argRequired, 'M'},
	{"real-server", 'r', argRequired, 'r'},
	{"masquerading", 'm', argNone, 'm'},
	{"ipip", 'i', argNone, 'i'},
	{"gatewaying", 'g', argNone, 'g'},
	{"weight", 'w', argRequired, 'w'},
	{"u-threshold", 'x', argRequired, 'x'},
	{"l-threshold", 'y', argRequired, 'y'},
	{"numeric", 'n', argNone, 'n'},
	{"connection", 'c', argNone, 'c'},
	{"mcast-interface", 0, argRequired, tagMcastInterface},
	{"syncid", 0, argRequired, tagSyncID},
	{"timeout", 0, argNone, tagTimeout},
	{"daemon", 0, argNone, tagDaemon},
	{"stats", 0, argNone, tagStats},
	{"rate", 0, argNone, tagRate},
	{"thresholds", 0, argNone, tagThresholds},
	{"persistent-conn", 0, argNone, tagPersistentConn},
	{"nosort", 0, argNone, tagNoSort},
	{"sort", 0, argNone, tagSort},
	{"exact", 'X', argNone, 'X'},
	{"ipv6", '6', argNone, '6'},
	{"ops", 'o', argNone, 'o'},
	{"pe", 0, argRequired, tagPersistenceEngine},
	{"sched-flags", 'b', argRequired, 'b'},
	{"mcast-group", 0, argRequired, tagMcastGroup},
	{"mcast-port", 0, argRequired, tagMcastPort},
	{"mcast-ttl", 0, argRequired, tagMcastTTL},
	{"sync-maxlen", 0, argRequired, tagSyncMaxlen},
	{"tun-info", 0, argNone, tagTunInfo},
	{"tun-type", 0, argRequired, tagTunType},
	{"tun-port", 0, argRequired, tagTunPort},
	{"tun-nocsum", 0, argNone, tagTunNoCsum},
	{"tun-csum", 0, argNone, tagTunCsum},
	{"tun-remcsum", 0, argNone, tagTunRemCsum},
}

// popt's error codes, as poptGetNextOpt returns them.
const (
	poptDone          = -1
	poptErrNoArg      = -10
	poptErrBadOpt     = -11
	poptErrUnwanted   = -12
	poptErrUnreported = -99
)

func poptStrerror(code int) string {
	switch code {
	case poptErrNoArg:
		return "missing argument"
	case poptErrBadOpt:
		return "unknown option"
	case poptErrUnwanted:
		return "option does not take an argument"
	}
	return "unknown error"
}

// popt walks argv (argv[0] is the program and is skipped) the way
// poptGetNextOpt does.
type popt struct {
	argv      []string
	next      int    // index of the next word
	charArg   string // rest of a short-option cluster
	inCluster bool
	rest      bool // after "--": everything is left over
	leftovers []string
	leftIdx   int
	// arg is the current option's argument; hasArg is false when an
	// optional argument was absent (popt stores NULL).
	arg    string
	hasArg bool
}

func newPopt(argv []string) *popt { return &popt{argv: argv, next: 1} }

// badOption is poptBadOption(con, POPT_BADOPTION_NOALIAS): the last word
// consumed.
func (p *popt) badOption() string {
	if p.next > 0 && p.next-1 < len(p.argv) {
		return p.argv[p.next-1]
	}
	return ""
}

// nextArg returns the next left-over argument (poptGetArg).
func (p *popt) nextArg() (string, bool) {
	if p.leftIdx >= len(p.leftovers) {
		return "", false
	}
	s := p.leftovers[p.leftIdx]
	p.leftIdx++
	return s, true
}

func findLong(name string) *poptOption {
	for i := range poptTable {
		if poptTable[i].long == name {
			return &poptTable[i]
		}
	}
	return nil
}

func findShort(c byte) *poptOption {
	if c == 0 {
		return nil
	}
	for i := range poptTable {
		if poptTable[i].short == c {
			return &poptTable[i]
		}
	}
	return nil
}

// nextOpt returns the next option's value, poptDone at the end, or a
// negative popt error code.
func (p *popt) nextOpt() int {
	p.arg, p.hasArg = "", false
	for {
		var opt *poptOption
		longArg, hasLongArg := "", false
		if !p.inCluster {
			if p.next >= len(p.argv) {
				return poptDone
			}
			word := p.argv[p.next]
			p.next++
			if p.rest || !strings.HasPrefix(word, "-") || word == "-" {
				p.leftovers = append(p.leftovers, word)
				continue
			}
			if word == "--" {
				p.rest = true
				continue
			}
			if strings.HasPrefix(word, "--") {
				name := word[2:]
				if i := strings.IndexByte(name, '='); i >= 0 {
					longArg, hasLongArg = name[i+1:], true
					name = name[:i]
				}
				if opt = findLong(name); opt == nil {
					return poptErrBadOpt
				}
			} else {
				// A single dash starts a cluster of short options
				// (none of ipvsadm's long options allow one dash).
				p.charArg, p.inCluster = word[1:], true
			}
		}
		if opt == nil {
			c := p.charArg[0]
			rest := p.charArg[1:]
			p.charArg, p.inCluster = "", false
			if opt = findShort(c); opt == nil {
				return poptErrBadOpt
			}
			switch {
			case strings.HasPrefix(rest, "="):
				// "-t=addr", "-p=": what follows '=' is the
				// argument, even when empty, and ends the cluster.
				longArg, hasLongArg = rest[1:], true
			case rest != "":
				p.charArg, p.inCluster = rest, true
			}
		}
		switch opt.arg {
		case argNone:
			if hasLongArg {
				return poptErrUnwanted
			}
		default:
			switch {
			case hasLongArg:
				p.arg, p.hasArg = longArg, true
			case p.inCluster:
				p.arg, p.hasArg = p.charArg, true
				p.charArg, p.inCluster = "", false
			case p.next >= len(p.argv):
				if opt.arg != argOptional {
					return poptErrNoArg
				}
			case opt.arg == argOptional && strings.HasPrefix(p.argv[p.next], "-"):
				// an optional argument never starts with '-'
			default:
				p.arg, p.hasArg = p.argv[p.next], true
				p.next++
			}
		}
		return opt.val
	}
}
