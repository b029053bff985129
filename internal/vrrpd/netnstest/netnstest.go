// Package netnstest builds test beds of network namespaces: hosts on a
// bridge, each with one veth "eth0", as notes/testbeds.md describes. It
// needs root; New skips the test without it. Everything a bed creates
// is removed by t.Cleanup, whether the test passed or not.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Bed is one bridge and the hosts on it.
type Bed struct {
	t      testing.TB
	Suffix string
	Bridge string
	hosts  []string
}

var seq atomic.Int64

// New creates a bridge; names carry a suffix unique to this process and
// test, so parallel runs do not collide.
func New(t testing.TB) *Bed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth and a bridge (run the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2")
	}
	b := &Bed{t: t, Suffix: fmt.Sprintf("%d%d", os.Getpid()%10000, seq.Add(1))}
	b.Bridge = "kvbr" + b.Suffix
	b.MustRun("", "ip", "link", "add", b.Bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", b.Bridge).Run() })
	// No STP delays, no multicast snooping surprises.
	b.MustRun("", "ip", "link", "set", b.Bridge, "type", "bridge", "forward_delay", "0", "mcast_snooping", "0")
	b.MustRun("", "ip", "link", "set", b.Bridge, "up")
	return b
}

// NS is the namespace name of host h.
func (b *Bed) NS(h string) string { return h + b.Suffix }

// Veth is the bridge side of host h's cable.
func (b *Bed) Veth(h string) string { return "kv" + h + b.Suffix }

// Host adds a namespace with eth0 on the bridge and the given addresses
// (prefixes like "10.77.0.1/24" or "fd00::1/64"). IPv6 duplicate address
// detection is off so addresses work at once.
func (b *Bed) Host(h string, addrs ...string) {
	b.t.Helper()
	ns := b.NS(h)
	b.MustRun("", "ip", "netns", "add", ns)
	b.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	veth := b.Veth(h)
	b.MustRun("", "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	b.t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	b.MustRun("", "ip", "link", "set", veth, "master", b.Bridge, "up")
	for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad", "net.ipv6.conf.all.dad_transmits", "net.ipv6.conf.default.dad_transmits", "net.ipv6.conf.eth0.accept_dad", "net.ipv6.conf.eth0.dad_transmits"} {
		b.Run(h, "sysctl", "-qw", k+"=0")
	}
	b.MustRun(h, "ip", "link", "set", "lo", "up")
	b.MustRun(h, "ip", "link", "set", "eth0", "up")
	for _, a := range addrs {
		args := []string{"ip", "addr", "add", a, "dev", "eth0"}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		b.MustRun(h, args...)
	}
	b.hosts = append(b.hosts, h)
}

// Run runs a command on host h ("" for the root namespace) and returns
// its combined output.
func (b *Bed) Run(h string, args ...string) (string, error) {
	if h != "" {
		args = append([]string{"ip", "netns", "exec", b.NS(h)}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// MustRun is Run that fails the test on error.
func (b *Bed) MustRun(h string, args ...string) string {
	b.t.Helper()
	out, err := b.Run(h, args...)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Command is an exec.Cmd running on host h.
func (b *Bed) Command(h string, args ...string) *exec.Cmd {
	args = append([]string{"ip", "netns", "exec", b.NS(h)}, args...)
	return exec.Command(args[0], args[1:]...)
}

// Do runs fn with the calling thread in host h's namespace, so sockets
// and netlink handles fn opens belong to h (they stay there after).
func (b *Bed) Do(h string, fn func() error) error {
	return Do(b.NS(h), fn)
}

// Do runs fn in the named network namespace (/run/netns/NAME).
func Do(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with the goroutine.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
