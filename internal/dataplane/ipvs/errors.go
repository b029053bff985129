package ipvs

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

const (
	errnoEEXIST = syscall.EEXIST
	errnoESRCH  = syscall.ESRCH
	errnoENOENT = syscall.ENOENT
)

// errMap says what an errno means for one kind of request: EEXIST is a
// service that exists when adding a service and a destination that exists
// when adding a destination; ENOENT is a missing scheduler for a service and
// a missing destination for a destination; ESRCH is always the service.
type errMap map[syscall.Errno]error

var (
	addServiceErrs  = errMap{syscall.EEXIST: lvs.ErrServiceExists, syscall.ENOENT: lvs.ErrNoScheduler}
	editServiceErrs = errMap{syscall.ESRCH: lvs.ErrNoService, syscall.ENOENT: lvs.ErrNoScheduler}
	delServiceErrs  = errMap{syscall.ESRCH: lvs.ErrNoService}
	addDestErrs     = errMap{syscall.ESRCH: lvs.ErrNoService, syscall.EEXIST: lvs.ErrDestExists}
	editDestErrs    = errMap{syscall.ESRCH: lvs.ErrNoService, syscall.ENOENT: lvs.ErrNoDest}
	daemonErrs      = errMap{syscall.EEXIST: ipvsadm.ErrDaemonRunning, syscall.ESRCH: ipvsadm.ErrNoDaemon}
	commonErrs      = errMap{syscall.EINVAL: lvs.ErrInvalid, syscall.ERANGE: lvs.ErrRange}
)

// KernelError is an error the kernel returned for a request: errors.Is
// matches the lvs (or ipvsadm) sentinel it means, and errors.As finds the
// errno.
type KernelError struct {
	Op       string
	Errno    syscall.Errno
	Sentinel error // nil when the errno has no meaning of its own here
	err      error
}

func (e *KernelError) Error() string {
	if e.Sentinel != nil {
		return fmt.Sprintf("ipvs: %s: %v", e.Op, e.Sentinel)
	}
	return fmt.Sprintf("ipvs: %s: %v", e.Op, e.err)
}

func (e *KernelError) Is(target error) bool { return e.Sentinel != nil && target == e.Sentinel }

func (e *KernelError) Unwrap() error { return e.err }

// kernelErr words err from the request op with the meanings in m.
func kernelErr(op string, err error, m errMap) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("ipvs: %s: %w", op, err)
	}
	s := m[errno]
	if s == nil {
		s = commonErrs[errno]
	}
	return &KernelError{Op: op, Errno: errno, Sentinel: s, err: err}
}
