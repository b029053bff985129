package ipvsadm

import (
	"errors"
	"strings"
	"syscall"

	"github.com/keepvs/keepvs/internal/lvs"
)

// op is the libipvs call an error came from: ipvs_strerror words some
// errors by the call that failed.
type op int

const (
	opInit op = iota
	opOther
	opAddService
	opEditService
	opDelService
	opZeroService
	opAddDest
	opEditDest
	opDelDest
	opStartDaemon
	opStopDaemon
	opGetServices
	opGetDests
	opGetService
)

// errnoOf is the errno the kernel would have returned for err.
func errnoOf(err error) (syscall.Errno, bool) {
	switch {
	case errors.Is(err, lvs.ErrServiceExists), errors.Is(err, lvs.ErrDestExists), errors.Is(err, ErrDaemonRunning):
		return syscall.EEXIST, true
	case errors.Is(err, lvs.ErrNoService), errors.Is(err, ErrNoDaemon):
		return syscall.ESRCH, true
	case errors.Is(err, lvs.ErrNoDest), errors.Is(err, lvs.ErrNoScheduler), errors.Is(err, lvs.ErrNoPE):
		return syscall.ENOENT, true
	case errors.Is(err, lvs.ErrInvalid):
		return syscall.EINVAL, true
	case errors.Is(err, lvs.ErrRange):
		return syscall.ERANGE, true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno, true
	}
	return 0, false
}

// strerrorTable is libipvs's ipvs_strerror table; opOther rows apply to
// every call.
var strerrorTable = []struct {
	op    op
	errno syscall.Errno
	msg   string
}{
	{opAddService, syscall.EEXIST, "Service already exists"},
	{opAddService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{opEditService, syscall.ESRCH, "No such service"},
	{opEditService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{opDelService, syscall.ESRCH, "No such service"},
	{opZeroService, syscall.ESRCH, "No such service"},
	{opAddDest, syscall.ESRCH, "Service not defined"},
	{opAddDest, syscall.EEXIST, "Destination already exists"},
	{opEditDest, syscall.ESRCH, "Service not defined"},
	{opEditDest, syscall.ENOENT, "No such destination"},
	{opDelDest, syscall.ESRCH, "Service not defined"},
	{opDelDest, syscall.ENOENT, "No such destination"},
	{opStartDaemon, syscall.EEXIST, "Daemon has already run"},
	{opStopDaemon, syscall.ESRCH, "No daemon is running"},
	{opGetServices, syscall.ESRCH, "No such service"},
	{opGetDests, syscall.ESRCH, "No such service"},
	{opGetService, syscall.ESRCH, "No such service"},
	{opOther, syscall.EPERM, "Permission denied (you must be root)"},
	{opOther, syscall.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."},
	{opOther, syscall.ENOPROTOOPT, "Protocol not available"},
	{opOther, syscall.ENOMEM, "Memory allocation problem"},
	{opOther, syscall.EOPNOTSUPP, "Operation not supported with IPv6"},
	{opOther, syscall.EAFNOSUPPORT, "Operation not supported with specified address family"},
	{opOther, syscall.EMSGSIZE, "Module is wrong version"},
}

// errText is how ipvsadm words err from call o. An error that carries no
// errno (a data plane that cannot do something, a lost control socket) is
// printed as it is, capitalised like strerror's messages.
func errText(o op, err error) string {
	errno, ok := errnoOf(err)
	if !ok {
		return capitalize(err.Error())
	}
	for _, row := range strerrorTable {
		if (row.op == opOther || row.op == o) && row.errno == errno {
			return row.msg
		}
	}
	// strerror: Go's texts are glibc's, lower-cased.
	return capitalize(errno.Error())
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
