package ipvs

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

func adm(t *testing.T, d *Dataplane, args string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &ipvsadm.Cmd{Prog: "ipvsadm", Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, DP: d, Names: numericOnly{}}
	code := c.Run(context.Background(), strings.Fields(args))
	return out.String(), errb.String(), code
}

// numericOnly refuses every lookup: the tests list with -n.
type numericOnly struct{}

func (numericOnly) HostAddr(context.Context, string) (netip.Addr, bool) { return netip.Addr{}, false }
func (numericOnly) AddrName(context.Context, netip.Addr) (string, bool) { return "", false }
func (numericOnly) ServicePort(string, string) (uint16, bool)           { return 0, false }
func (numericOnly) PortName(uint16, string) (string, bool)              { return "", false }

// TestIpvsadmMessages runs ipvsadm commands against the fake kernel: each
// errno the kernel returns must come out as ipvsadm words it for that call.
func TestIpvsadmMessages(t *testing.T) {
	_, d := newFake()
	steps := []struct {
		args, stderr string
		code         int
	}{
		{"-A -t 10.0.0.1:80 -s rr", "", 0},
		{"-A -t 10.0.0.1:80 -s rr", "Service already exists\n", 255},
		{"-A -t 10.0.0.2:80 -s nosuch", "Scheduler or persistence engine not found\n", 255},
		{"-E -t 10.0.0.9:80 -s rr", "No such service\n", 255},
		{"-D -t 10.0.0.9:80", "No such service\n", 255},
		{"-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 3", "", 0},
		{"-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 3", "Destination already exists\n", 255},
		{"-a -t 10.0.0.9:80 -r 10.1.1.1:80 -m", "Service not defined\n", 255},
		{"-e -t 10.0.0.1:80 -r 10.1.1.2:80 -m", "No such destination\n", 255},
		{"-d -t 10.0.0.1:80 -r 10.1.1.2:80", "No such destination\n", 255},
		{"-d -t 10.0.0.9:80 -r 10.1.1.2:80", "Service not defined\n", 255},
		{"-Z -t 10.0.0.9:80", "No such service\n", 255},
		{"-Z -t 10.0.0.1:80", "", 0},
		{"-Z", "", 0},
		{"--start-daemon master --mcast-interface eth0 --syncid 7", "", 0},
		{"--start-daemon master --mcast-interface eth0", "Daemon has already run\n", 255},
		{"--stop-daemon backup", "No daemon is running\n", 255},
		{"--set 100 0 7", "", 0},
	}
	for _, s := range steps {
		_, stderr, code := adm(t, d, s.args)
		if stderr != s.stderr || code != s.code {
			t.Errorf("ipvsadm %s: got %q exit %d, want %q exit %d", s.args, stderr, code, s.stderr, s.code)
		}
	}
	out, _, _ := adm(t, d, "-S -n")
	want := "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 3\n"
	if out != want {
		t.Errorf("-S -n:\n%s\nwant\n%s", out, want)
	}
	out, _, _ = adm(t, d, "-L --timeout")
	if want := "Timeout (tcp tcpfin udp): 100 120 7\n"; out != want {
		t.Errorf("--timeout: %q, want %q", out, want)
	}
	out, _, _ = adm(t, d, "-L --daemon")
	if want := "master sync daemon (mcast=eth0, syncid=7)\n"; out != want {
		t.Errorf("--daemon: %q, want %q", out, want)
	}
	if _, stderr, code := adm(t, d, "--stop-daemon master"); code != 0 {
		t.Errorf("--stop-daemon master: %s", stderr)
	}
	if _, _, code := adm(t, d, "-C"); code != 0 {
		t.Error("-C failed")
	}
	if out, _, _ := adm(t, d, "-S -n"); out != "" {
		t.Errorf("after -C: %q", out)
	}
}

func TestErrorsCarryErrnoAndSentinel(t *testing.T) {
	_, d := newFake()
	ctx := context.Background()
	k := lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	err := d.DelService(ctx, k)
	var errno syscall.Errno
	if !errors.Is(err, lvs.ErrNoService) || !errors.As(err, &errno) || errno != syscall.ESRCH {
		t.Fatalf("DelService: %v", err)
	}
	if err := d.AddService(ctx, lvs.Service{ServiceKey: k, Scheduler: "wlc", Netmask: 0xffffffff}); err != nil {
		t.Fatal(err)
	}
	err = d.AddDest(ctx, k, lvs.Destination{Addr: netip.MustParseAddr("10.1.1.1"), Port: 80, Weight: -1})
	if !errors.Is(err, lvs.ErrRange) {
		t.Fatalf("negative weight: %v", err)
	}
}

// TestRoundTrip: what goes in comes back out, for every kind of service
// and destination field.
func TestRoundTrip(t *testing.T) {
	_, d := newFake()
	ctx := context.Background()
	svcs := []lvs.ServiceStatus{
		{Service: lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
			Scheduler: "wlc", Flags: lvs.FlagPersistent, Timeout: 300 * time.Second, Netmask: 0xffffff00},
			Dests: []lvs.DestStatus{
				{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.1.1"), Port: 8080, Weight: 3, Forward: lvs.Masq, UThreshold: 100, LThreshold: 10}},
				{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80, Weight: 0, Forward: lvs.Route}},
				{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.1.3"), Port: 80, Weight: 1, Forward: lvs.Tunnel, TunType: lvs.TunGUE, TunPort: 6080, TunFlags: lvs.TunFlagCsum}},
			}},
		{Service: lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.UDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53},
			Scheduler: "sh", Flags: lvs.FlagOnePacket | lvs.FlagSched1 | lvs.FlagSched2, Netmask: 64}},
		{Service: lvs.Service{ServiceKey: lvs.ServiceKey{FWMark: 7, IPv6: true}, Scheduler: "mh", Netmask: 128},
			Dests: []lvs.DestStatus{{Destination: lvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Weight: 2, Forward: lvs.Route}}}},
		{Service: lvs.Service{ServiceKey: lvs.ServiceKey{FWMark: 8}, Scheduler: "rr", PEName: "sip", Flags: lvs.FlagPersistent, Timeout: 60 * time.Second, Netmask: 0xffffffff}},
	}
	d.procDir = t.TempDir()
	writeFile(t, d.procDir+"/modules", "ip_vs_pe_sip 16384 0 - Live 0x0\n")
	ops, err := Reconcile(ctx, d, svcs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 8 {
		t.Errorf("%d ops, want 8: %v", len(ops), ops)
	}
	got, err := d.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(svcs) {
		t.Fatalf("got %d services", len(got))
	}
	for i := range got {
		got[i].Flags &^= lvs.FlagHashed
		if got[i].Service != svcs[i].Service {
			t.Errorf("service %d: got %+v\nwant %+v", i, got[i].Service, svcs[i].Service)
		}
		if len(got[i].Dests) != len(svcs[i].Dests) {
			t.Errorf("service %d: %d dests", i, len(got[i].Dests))
			continue
		}
		for j := range got[i].Dests {
			if got[i].Dests[j].Destination != svcs[i].Dests[j].Destination {
				t.Errorf("dest %d/%d: got %+v want %+v", i, j, got[i].Dests[j].Destination, svcs[i].Dests[j].Destination)
			}
		}
	}
	// The same table again is no request at all.
	before := d.Ops()
	if ops, err := Reconcile(ctx, d, svcs); err != nil || len(ops) != 0 {
		t.Errorf("second reconcile: %v %v", ops, err)
	}
	if c := d.Ops().Changes() - before.Changes(); c != 0 {
		t.Errorf("second reconcile sent %d changes", c)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
