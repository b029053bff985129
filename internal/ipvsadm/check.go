package ipvsadm

import "fmt"

// command is one of ipvsadm's commands, numbered as ipvsadm numbers them
// (the rows of its option table).
type command int

const (
	cmdNone command = iota
	cmdAdd
	cmdEdit
	cmdDel
	cmdFlush
	cmdList
	cmdAddDest
	cmdDelDest
	cmdEditDest
	cmdTimeout
	cmdStartDaemon
	cmdStopDaemon
	cmdRestore
	cmdSave
	cmdZero
)

var cmdNames = [...]string{
	cmdAdd:         "add-service",
	cmdEdit:        "edit-service",
	cmdDel:         "delete-service",
	cmdFlush:       "flush",
	cmdList:        "list",
	cmdAddDest:     "add-server",
	cmdDelDest:     "delete-server",
	cmdEditDest:    "edit-server",
	cmdTimeout:     "set",
	cmdStartDaemon: "start-daemon",
	cmdStopDaemon:  "stop-daemon",
	cmdRestore:     "restore",
	cmdSave:        "save",
	cmdZero:        "zero",
}

// opt is an option's bit number in ipvsadm's option set (its OPTC_*).
type opt int

const (
	optNumeric opt = iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optMcast
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optSyncID
	optExact
	optOnePacket
	optPersistenceEngine
	optSchedFlags
	optMcastGroup
	optMcastPort
	optMcastTTL
	optSyncMaxlen
	optTunInfo
	optTunType
	optTunPort
	optTunNoCsum
	optTunCsum
	optTunRemCsum
	numOpts
)

var optNames = [numOpts]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
	"sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
	"tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum",
	"tun-remcsum",
}

type optSet uint64

func (s optSet) has(o opt) bool { return s&(1<<o) != 0 }

// commandOptions says which options each command takes, one character per
// option in opt order: '+' required, 'x' illegal, '1' at most one of the
// '1's, ' ' optional. It is ipvsadm's commands_v_options.
//
//	n c s s p M r f w x y m t d s r t p s s e o p b g p t s i t t n c r
var commandOptions = [...]string{
	cmdAdd:         "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
	cmdEdit:        "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
	cmdDel:         "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdFlush:       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdList:        " 11xxxxxxxxx11       xxxxxxx xxxxx",
	cmdAddDest:     "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
	cmdDelDest:     "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdEditDest:    "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
	cmdTimeout:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdStartDaemon: "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
	cmdStopDaemon:  "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
	cmdRestore:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdSave:        " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	cmdZero:        "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}

// exitError ends ipvsadm with a message on stderr and a status: fail()'s
// status 2, popt's 255.
type exitError struct {
	msg  string // printed with a newline; none when empty
	code int
}

func (e *exitError) Error() string { return e.msg }

func failf(format string, a ...any) *exitError {
	return &exitError{msg: fmt.Sprintf(format, a...), code: 2}
}

// checkOptions is generic_opt_check.
func checkOptions(cmd command, options optSet) error {
	row := commandOptions[cmd]
	last, count := opt(0), 0
	for j := opt(0); j < numOpts; j++ {
		if !options.has(j) {
			if row[j] == '+' {
				return failf("You need to supply the '%s' option for the '%s' command", optNames[j], cmdNames[cmd])
			}
			continue
		}
		switch row[j] {
		case 'x':
			return failf("Illegal '%s' option with the '%s' command", optNames[j], cmdNames[cmd])
		case '1':
			count++
			if count == 1 {
				last = j
				continue
			}
			return failf("The option '%s' conflicts with the '%s' option in the '%s' command", optNames[j], optNames[last], cmdNames[cmd])
		}
	}
	return nil
}

// tunnelOptions is tunnel_types_v_options: for each tunnel type, the
// options tun-port, tun-nocsum, tun-csum, tun-remcsum.
var tunnelOptions = [...]string{
	"xxxx", // ipip
	"+111", // gue
	"x11x", // gre
}

var tunnelOpts = [...]opt{optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum}

// checkTunnel is tunnel_opt_check.
func checkTunnel(tunType int, options optSet) error {
	row := tunnelOptions[tunType]
	name := tunNames[tunType]
	last, count := opt(0), 0
	for j, k := range tunnelOpts {
		if !options.has(k) {
			if row[j] == '+' {
				return failf("You need to supply the '%s' option for the '%s' tunnel type", optNames[k], name)
			}
			continue
		}
		switch row[j] {
		case 'x':
			return failf("Illegal '%s' option with the '%s' tunnel type", optNames[k], name)
		case '1':
			count++
			if count == 1 {
				last = k
				continue
			}
			return failf("The option '%s' conflicts with the '%s' option in the '%s' tunnel type", optNames[k], optNames[last], name)
		}
	}
	return nil
}
