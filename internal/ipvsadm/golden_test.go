package ipvsadm

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// richState adds to listState what only the netlink interface carries:
// IPv6 services and destinations, tunnels of every type, a persistence
// engine, an IPv6 fwmark service, sched flags on every scheduler kind.
func richState(t *testing.T) *fakeDP {
	t.Helper()
	dp := newFake()
	must(t, dp.loadState(listState))
	v6 := netip.MustParseAddr
	dp.svcs = append(dp.svcs,
		lvs.ServiceStatus{
			Service: lvs.Service{
				ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: v6("2001:db8::1"), Port: 80},
				Scheduler:  "wrr", Flags: lvs.FlagPersistent, Timeout: 900 * time.Second, Netmask: 64,
			},
			Stats: lvs.Stats{Conns: 1000000, InPkts: 123456789, OutPkts: 5, InBytes: 1 << 40, OutBytes: 7},
			Rates: lvs.Rates{CPS: 3, InPPS: 4, OutPPS: 5, InBPS: 100000000, OutBPS: 99999999},
			Dests: []lvs.DestStatus{
				{Destination: lvs.Destination{Addr: v6("2001:db8:1::20"), Port: 8080, Weight: 5, Forward: lvs.Masq}, ActiveConns: 2, InactConns: 1, PersistConns: 4,
					Stats: lvs.Stats{Conns: 10, InPkts: 20, OutPkts: 30, InBytes: 40, OutBytes: 50}},
				{Destination: lvs.Destination{Addr: v6("2001:db8:1::10"), Port: 80, Weight: 1, Forward: lvs.Tunnel, TunType: lvs.TunGUE, TunPort: 6080, TunFlags: lvs.TunFlagRemCsum}},
				{Destination: lvs.Destination{Addr: v6("::ffff:192.0.2.1"), Port: 80, Weight: 1, Forward: lvs.Route}},
				{Destination: lvs.Destination{Addr: v6("192.0.2.7"), Port: 80, Weight: 2, Forward: lvs.Tunnel, TunType: lvs.TunGRE, TunFlags: lvs.TunFlagCsum}},
			},
		},
		lvs.ServiceStatus{
			Service: lvs.Service{
				ServiceKey: lvs.ServiceKey{Proto: lvs.UDP, Addr: v6("2001:db8::2"), Port: 5060},
				Scheduler:  "rr", Flags: lvs.FlagPersistent | lvs.FlagOnePacket, Timeout: 60 * time.Second, Netmask: 128, PEName: "sip",
			},
			Dests: []lvs.DestStatus{
				{Destination: lvs.Destination{Addr: v6("10.20.0.1"), Port: 5060, Weight: 1, Forward: lvs.Tunnel, TunType: lvs.TunIPIP}},
				{Destination: lvs.Destination{Addr: v6("10.20.0.2"), Port: 5060, Weight: 1, Forward: lvs.Tunnel, TunType: lvs.TunGUE, TunPort: 5555}},
				{Destination: lvs.Destination{Addr: v6("10.20.0.3"), Port: 5060, Weight: 1, Forward: lvs.Tunnel, TunType: lvs.TunGRE, TunFlags: lvs.TunFlagNoCsum}},
				{Destination: lvs.Destination{Addr: v6("2001:db8:3::4"), Port: 5060, Weight: 1, Forward: lvs.Local}},
			},
		},
		lvs.ServiceStatus{
			Service: lvs.Service{
				ServiceKey: lvs.ServiceKey{FWMark: 5, IPv6: true},
				Scheduler:  "sh", Flags: lvs.FlagSched3, Netmask: 128,
			},
			Dests: []lvs.DestStatus{{Destination: lvs.Destination{Addr: v6("2001:db8:2::1"), Weight: 3, Forward: lvs.Route}}},
		},
		lvs.ServiceStatus{
			Service: lvs.Service{
				ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: v6("::1.2.3.4"), Port: 443},
				Scheduler:  "mh", Flags: lvs.FlagSched1 | lvs.FlagSched2, Netmask: 128,
			},
		},
		lvs.ServiceStatus{
			Service: lvs.Service{
				ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: v6("10.0.0.100"), Port: 8443},
				Scheduler:  "fo", Flags: lvs.FlagPersistent, Timeout: 360 * time.Second, Netmask: 0xffffffff, PEName: "sip",
			},
			Dests: []lvs.DestStatus{{Destination: lvs.Destination{Addr: v6("2001:db8:ffff:ffff:ffff:ffff:ffff:1"), Port: 8443, Weight: 1, Forward: lvs.Tunnel}}},
		},
	)
	dp.conns = []lvs.Conn{
		{Proto: lvs.TCP, Client: netip.MustParseAddrPort("10.0.0.2:50000"), Virtual: netip.MustParseAddrPort("10.0.0.1:80"), Dest: netip.MustParseAddrPort("192.168.1.1:80"), State: "ESTABLISHED", Expires: 899*time.Second + 500*time.Millisecond},
		{Proto: lvs.TCP, Client: netip.MustParseAddrPort("10.0.0.2:0"), Virtual: netip.MustParseAddrPort("10.0.0.1:80"), Dest: netip.MustParseAddrPort("192.168.1.1:80"), State: "NONE", Expires: 6000 * time.Second, Template: true},
		{Proto: 0, Client: netip.MustParseAddrPort("10.0.0.4:0"), Dest: netip.MustParseAddrPort("192.168.2.1:0"), State: "NONE", Expires: 59 * time.Second, Template: true, FWMark: 5},
		{Proto: 0, Client: netip.MustParseAddrPort("[2001:db8::99]:0"), Dest: netip.MustParseAddrPort("[2001:db8:2::1]:0"), State: "NONE", Expires: time.Second, Template: true, FWMark: 5},
		{Proto: lvs.UDP, Client: netip.MustParseAddrPort("[2001:db8::99]:5060"), Virtual: netip.MustParseAddrPort("[2001:db8::2]:5060"), Dest: netip.MustParseAddrPort("10.20.0.1:5060"), State: "UDP", Expires: 3 * time.Second},
		{Proto: lvs.SCTP, Client: netip.MustParseAddrPort("127.0.0.1:1234"), Virtual: netip.MustParseAddrPort("10.0.0.3:9"), Dest: netip.MustParseAddrPort("192.168.1.1:9"), State: "ESTABLISHED", Expires: -time.Second},
	}
	dp.daemons = []SyncDaemon{
		{Interface: "eth0", SyncID: 0, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1},
		{Backup: true, Interface: "bond0", SyncID: 9},
	}
	return dp
}

type goldenCase struct {
	name  string
	args  string
	stdin string
	setup func(*fakeDP)
	names Names // fakeNames unless set
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{name: "list-n", args: "-Ln"},
		{name: "list-names", args: "-L"},
		{name: "list-noargs", args: ""},
		{name: "list-nosort", args: "-Ln --nosort"},
		{name: "stats", args: "-Ln --stats"},
		{name: "stats-exact", args: "-Ln --stats --exact"},
		{name: "rate", args: "-Ln --rate"},
		{name: "rate-exact", args: "-Ln --rate --exact"},
		{name: "thresholds", args: "-Ln --thresholds"},
		{name: "persistent-conn", args: "-Ln --persistent-conn"},
		{name: "tun-info", args: "-Ln --tun-info"},
		{name: "conns", args: "-Lnc"},
		{name: "conns-names", args: "-Lc"},
		{name: "conns-persistent-conn", args: "-Lnc --persistent-conn"},
		{name: "timeout", args: "-L --timeout"},
		{name: "daemon", args: "-L --daemon"},
		{name: "save-n", args: "-S -n"},
		{name: "save-names", args: "-S"},
		{name: "one-v6", args: "-Ln -t [2001:db8::1]:80"},
		{name: "one-v6-names", args: "-L -t [2001:db8::1]:http"},
		{name: "one-fwmark-v6", args: "-Ln -f 5 -6"},
		{name: "one-fwmark-v4", args: "-Ln -f 5"},
		{name: "one-missing", args: "-Ln -u 10.0.0.1:80"},
		{name: "help", args: "-h"},
		{name: "version", args: "-v"},
		{name: "add-v6", args: "-A -t [2001:db8::5]:443 -s mh -b mh-fallback,mh-port -p 30 -M 48 --pe sip"},
		{name: "add-fwmark-v6", args: "-A -f 9 -6 -p"},
		{name: "add-tunnels", args: "-a -t [2001:db8::1]:80 -r 10.30.0.1 -i --tun-type gue --tun-port 6080 --tun-remcsum -x 10 -y 5"},
		{name: "add-gre", args: "-a -t [2001:db8::1]:80 -r 10.30.0.2 -i --tun-type gre --tun-csum"},
		{name: "err-service-exists", args: "-A -t 10.0.0.1:80"},
		{name: "err-no-scheduler", args: "-A -t 10.0.0.9:80 -s nosuch"},
		{name: "err-no-pe", args: "-A -t 10.0.0.9:80 -p --pe nosuch"},
		{name: "err-edit-missing", args: "-E -t 10.0.0.9:80"},
		{name: "err-del-missing", args: "-D -t 10.0.0.9:80"},
		{name: "err-zero-missing", args: "-Z -t 10.0.0.9:80"},
		{name: "err-dest-no-service", args: "-a -t 10.0.0.9:80 -r 1.1.1.1"},
		{name: "err-dest-exists", args: "-a -t 10.0.0.1:80 -r 192.168.1.1 -m"},
		{name: "err-dest-missing", args: "-e -t 10.0.0.1:80 -r 192.168.9.9"},
		{name: "err-deldest-missing", args: "-d -t 10.0.0.1:80 -r 192.168.9.9"},
		{name: "err-daemon-running", args: "--start-daemon master"},
		{name: "err-no-daemon", args: "--stop-daemon master", setup: func(f *fakeDP) { f.daemons = nil }},
		{name: "err-range", args: "-a -t 10.0.0.1:80 -r 1.1.1.1", setup: func(f *fakeDP) { f.fail = lvs.ErrRange }},
		{name: "err-invalid", args: "-A -t 10.0.0.9:80", setup: func(f *fakeDP) { f.fail = lvs.ErrInvalid }},
		{name: "err-other", args: "-C", setup: func(f *fakeDP) { f.fail = fmt.Errorf("dial unix /run/keepvs.sock: connect: connection refused") }},
		{name: "restore-save-roundtrip", args: "-R", stdin: "-A -t 10.9.0.1:80 -s rr -p 20 -M 255.255.255.0\n-a -t 10.9.0.1:80 -r 192.168.9.1:80 -m -w 3\n-A -u [2001:db8::9]:53 -s sh -b sh-port -o\n-a -u [2001:db8::9]:53 -r 10.9.9.9:53 -i --tun-type gue --tun-port 6080 --tun-csum\n-A -f 77 -6 -s wlc\n-S -n\n"},
		{name: "set-then-list", args: "-R", stdin: "--set 100 0 30\n-L --timeout\n"},
		{name: "zero-then-stats", args: "-R", stdin: "-Z -t 10.0.0.1:80\n-Ln --stats -t 10.0.0.1:80\n"},
		{name: "edit-server", args: "-R", stdin: "-e -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 0 -x 9\n-Ln --thresholds -t 10.0.0.1:80\n"},
		{name: "daemons-start-stop", args: "-R", stdin: "--stop-daemon master\n--stop-daemon backup\n--start-daemon backup --mcast-interface eth7 --syncid 4 --mcast-group ff02::81 --mcast-port 9000 --mcast-ttl 2 --sync-maxlen 1400\n-L --daemon\n"},
	}
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			dp := richState(t)
			if c.setup != nil {
				c.setup(dp)
			}
			names := c.names
			if names == nil {
				names = fakeNames{}
			}
			var stdout, stderr bytes.Buffer
			cmd := &Cmd{Prog: "ipvsadm", Stdin: strings.NewReader(c.stdin), Stdout: &stdout, Stderr: &stderr, DP: dp, Names: names}
			code := cmd.Run(context.Background(), strings.Fields(c.args))
			var got strings.Builder
			fmt.Fprintf(&got, "$ ipvsadm %s\n", c.args)
			if c.stdin != "" {
				fmt.Fprintf(&got, "-- stdin --\n%s", c.stdin)
			}
			fmt.Fprintf(&got, "-- stdout --\n%s-- stderr --\n%s-- exit %d --\n", stdout.String(), stderr.String(), code)
			if len(dp.calls) > 0 {
				fmt.Fprintf(&got, "-- requests --\n%s\n", strings.Join(dp.calls, "\n"))
			}
			path := filepath.Join("testdata", "golden", c.name+".golden")
			if *update {
				must(t, os.MkdirAll(filepath.Dir(path), 0o755))
				must(t, os.WriteFile(path, []byte(got.String()), 0o644))
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("%s differs (-want +got):\n-%s\n+%s", path, want, got.String())
			}
		})
	}
}
