package qemutest

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/testbed/qemu"
)

// The sequence both programs are given, one ipvsadm command line each:
// every scheduler and flag, every forwarding method, weights, thresholds,
// persistence with masks, TCP, UDP, SCTP, fwmark and IPv6, and the
// errors the kernel answers.
var commands = []string{
	"-A -t 10.0.0.1:80 -s rr",
	"-A -t 10.0.0.1:80 -s rr",
	"-A -t 10.0.0.2:80 -s wrr -p 300 -M 255.255.255.0",
	"-A -t 10.0.0.3:443 -s lc -p",
	"-A -t 10.0.0.4:80 -s wlc",
	"-A -t 10.0.0.5:80 -s lblc",
	"-A -t 10.0.0.6:80 -s lblcr",
	"-A -t 10.0.0.7:80 -s dh",
	"-A -t 10.0.0.8:80 -s sh -b sh-fallback,sh-port",
	"-A -t 10.0.0.9:80 -s sed",
	"-A -t 10.0.0.10:80 -s nq",
	"-A -t 10.0.0.11:80 -s fo",
	"-A -t 10.0.0.12:80 -s ovf",
	"-A -t 10.0.0.13:80 -s mh -b mh-fallback,mh-port",
	"-A -t 10.0.0.14:80 -s twos",
	"-A -t 10.0.0.15:0 -s rr -p 600",
	"-A -u 10.0.0.1:53 -s rr -o",
	"-A -u 10.0.0.2:5060 -s rr -p 60 --pe sip",
	"-A -f 1 -s wrr -p 120",
	"-A -f 2 -6 -s rr -p 60 -M 64",
	"-A -t [2001:db8::1]:80 -s wlc",
	"-A -u [2001:db8::1]:53 -s sh -b sh-port -p 30 -M 96",
	"-A --sctp-service 10.0.0.20:9 -s rr",
	"-A -t 10.0.0.99:80 -s nosuch",
	"-E -t 10.0.0.1:80 -s wrr",
	"-E -t 10.0.0.98:80 -s wrr",
	"-E -u 10.0.0.2:5060 -s rr -p 90",
	"-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 3",
	"-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 0 -x 100 -y 50",
	"-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m",
	"-a -t 10.0.0.2:80 -r 192.168.2.1 -g -w 2",
	"-a -t 10.0.0.2:80 -r 192.168.2.2 -i -w 5",
	"-a -t 10.0.0.3:443 -r 192.168.3.1 -i --tun-type gue --tun-port 6080 --tun-nocsum",
	"-a -t 10.0.0.3:443 -r 192.168.3.2 -i --tun-type gue --tun-port 6081 --tun-csum",
	"-a -t 10.0.0.3:443 -r 192.168.3.3 -i --tun-type gre --tun-remcsum",
	"-a -t 10.0.0.4:80 -r 127.0.0.1:80",
	"-a -t 10.0.0.4:80 -r 192.168.4.4:80 -m -x 10",
	"-a -f 1 -r 192.168.4.1 -g -w 1",
	"-a -f 2 -6 -r 2001:db8::10 -g",
	"-a -t [2001:db8::1]:80 -r [2001:db8::20]:80 -m -w 7",
	"-a -u [2001:db8::1]:53 -r 192.168.5.5:53 -i",
	"-a -u 10.0.0.1:53 -r 192.168.5.6:53 -m -w 65535",
	"-a --sctp-service 10.0.0.20:9 -r 192.168.5.7:9 -g",
	"-a -t 10.0.0.98:80 -r 192.168.1.1",
	"-e -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 4 -x 200 -y 0",
	"-e -t 10.0.0.1:80 -r 192.168.1.9:8080 -m",
	"-d -t 10.0.0.1:80 -r 192.168.1.9:8080",
	"-d -t 10.0.0.98:80 -r 192.168.1.9:8080",
	"-a -t 10.0.0.5:80 -r 192.168.6.1 -w -1",
	"-D -t 10.0.0.14:80",
	"-D -t 10.0.0.14:80",
	"-Z -t 10.0.0.1:80",
	"-Z -t 10.0.0.97:80",
	"-Z",
	"--set 100 60 30",
	"--set 0 0 0",
	"--start-daemon master --mcast-interface d0 --syncid 5",
	"--start-daemon master --mcast-interface d0",
	"--start-daemon backup --mcast-interface d0 --syncid 9 --sync-maxlen 1400 --mcast-group 224.0.0.99 --mcast-port 8849 --mcast-ttl 2",
	"--stop-daemon backup",
	"--stop-daemon backup",
}

// listings are read by both programs from both tables.
var listings = []string{
	"-Ln",
	"-Ln --stats",
	"-Ln --rate",
	"-Ln --thresholds",
	"-Ln --persistent-conn",
	"-Ln --exact --stats",
	"-Ln --tun-info",
	"-Lnc",
	"-Lnc --persistent-conn",
	"-L --timeout",
	"-S -n",
	"-L --daemon",
	"-Ln -t 10.0.0.1:80",
	"-Ln -f 2 -6",
	"-Ln -u [2001:db8::1]:53",
}

// The two programs: keepvs's ipvsadm front end (keepvs adm, as argv[0]
// ipvsadm so that its messages name the same program) driving the kernel
// with no daemon, and the real one.
const theirs = "/usr/sbin/ipvsadm"

const scriptHead = `
set +e
# busybox's sh prefers its own applets to PATH: iproute2's ip (for netns)
# by its path.
ip() { /usr/local/bin/ip "$@"; }
KV=/opt/kv/ipvsadm
export KEEPVS_SOCKET=/nonexistent
# run LABEL NS PROG ARGS...: a section with stdout, stderr and the status.
run() {
	label=$1; ns=$2; prog=$3; shift 3
	echo "=== $label"
	ip netns exec $ns $prog "$@" >/tmp/o 2>/tmp/e; rc=$?
	cat /tmp/o; echo "--- stderr"; cat /tmp/e; echo "--- rc=$rc"
}
# runin LABEL NS PROG FILE: the same with FILE on standard input.
runin() {
	label=$1; ns=$2; prog=$3; f=$4
	echo "=== $label"
	ip netns exec $ns $prog -R <$f >/tmp/o 2>/tmp/e; rc=$?
	cat /tmp/o; echo "--- stderr"; cat /tmp/e; echo "--- rc=$rc"
}
newns() {
	ip netns add $1
	ip -n $1 link set lo up
	ip -n $1 link add d0 type dummy
	ip -n $1 link set d0 up
}
mkdir -p /www/ok; echo ok >/www/ok/index.html
# keepalived logs to syslog, else (LOG_CONS) over the console's output.
syslogd -O /tmp/syslog
`

func parseSections(s string) map[string]string {
	out := map[string]string{}
	var name string
	var b strings.Builder
	flush := func() {
		if name != "" {
			out[name] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if l, ok := strings.CutPrefix(line, "=== "); ok {
			flush()
			name = strings.TrimSpace(l)
			continue
		}
		b.WriteString(line)
	}
	flush()
	return out
}

func comparisonScript() string {
	var b strings.Builder
	b.WriteString("echo \"=== phase-time $(cut -d' ' -f1 /proc/uptime)\"\necho '=== phase compare'\nnewns ka\nnewns ri\n")
	for i, c := range commands {
		fmt.Fprintf(&b, "run cmd/%d/ours ka %q %s\n", i, "/opt/kv/ipvsadm", c)
		fmt.Fprintf(&b, "run cmd/%d/theirs ri %s %s\n", i, theirs, c)
	}
	for i, l := range listings {
		for _, ns := range []string{"ka", "ri"} {
			fmt.Fprintf(&b, "run list/%d/%s/ours %s /opt/kv/ipvsadm %s\n", i, ns, ns, l)
			fmt.Fprintf(&b, "run list/%d/%s/theirs %s %s %s\n", i, ns, ns, theirs, l)
		}
	}
	// -R: the saved table, restored by each program into a fresh table.
	b.WriteString(`ip netns exec ri ipvsadm -S -n >/tmp/saved
newns r1; newns r2
runin restore/ours r1 /opt/kv/ipvsadm /tmp/saved
runin restore/theirs r2 /usr/sbin/ipvsadm /tmp/saved
run restored/r1/ours r1 /opt/kv/ipvsadm -S -n
run restored/r1/theirs r1 /usr/sbin/ipvsadm -S -n
run restored/r2/ours r2 /opt/kv/ipvsadm -S -n
run restored/r2/theirs r2 /usr/sbin/ipvsadm -S -n
run flushed/ours ka /opt/kv/ipvsadm -C
run flushed/theirs ri /usr/sbin/ipvsadm -C
run flushed/list/ours ka /opt/kv/ipvsadm -Ln
run flushed/list/theirs ri /usr/sbin/ipvsadm -Ln
`)
	return b.String()
}

// trafficScript: a client, a director and three real servers, one per
// forwarding method, in namespaces on a bridge (and a second network
// behind the director for NAT). keepvs adm programs the director.
const trafficScript = `
echo "=== phase-time $(cut -d' ' -f1 /proc/uptime)"
echo '=== phase traffic'
ip link add br0 type bridge; ip link set br0 up
for n in c lb rs1 rs2 rs3; do ip netns add $n; ip -n $n link set lo up; done
for n in c lb rs2 rs3; do
	ip link add v-$n type veth peer name eth0 netns $n
	ip link set v-$n master br0 up
	ip -n $n link set eth0 up
done
ip -n c addr add 10.9.0.10/24 dev eth0
ip -n lb addr add 10.9.0.1/24 dev eth0
ip -n lb addr add 10.9.0.100/32 dev eth0
ip netns exec lb sysctl -qw net.ipv4.ip_forward=1
# NAT: rs1 behind the director, on 10.8.0.0/24
ip link add n-rs1 type veth peer name eth0 netns rs1
ip link set n-rs1 netns lb
ip -n lb addr add 10.8.0.1/24 dev n-rs1; ip -n lb link set n-rs1 up
ip -n rs1 addr add 10.8.0.21/24 dev eth0; ip -n rs1 link set eth0 up
ip -n rs1 route add default via 10.8.0.1
# DR: rs2 holds the VIP on lo and answers no ARP for it
ip -n rs2 addr add 10.9.0.22/24 dev eth0
ip -n rs2 addr add 10.9.0.100/32 dev lo
for n in rs2 rs3; do
	ip netns exec $n sysctl -qw net.ipv4.conf.all.arp_ignore=1
	ip netns exec $n sysctl -qw net.ipv4.conf.all.arp_announce=2
	ip netns exec $n sysctl -qw net.ipv4.conf.all.rp_filter=0
	ip netns exec $n sysctl -qw net.ipv4.conf.default.rp_filter=0
done
# TUN: rs3 decapsulates IPIP on tunl0, which holds the VIP
ip -n rs3 addr add 10.9.0.23/24 dev eth0
ip -n rs3 link set tunl0 up
ip -n rs3 addr add 10.9.0.100/32 dev tunl0
ip netns exec rs3 sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
for i in 1 2 3; do mkdir -p /www/rs$i; echo "real server rs$i" >/www/rs$i/index.html; done
ip netns exec rs1 httpd -p 80 -h /www/rs1
ip netns exec rs2 httpd -p 81 -h /www/rs2
ip netns exec rs3 httpd -p 82 -h /www/rs3
run traffic/setup1 lb $KV -A -t 10.9.0.100:80 -s rr
run traffic/setup2 lb $KV -a -t 10.9.0.100:80 -r 10.8.0.21:80 -m
run traffic/setup3 lb $KV -A -t 10.9.0.100:81 -s wlc
run traffic/setup4 lb $KV -a -t 10.9.0.100:81 -r 10.9.0.22:81 -g
run traffic/setup5 lb $KV -A -t 10.9.0.100:82 -s rr -p 60
run traffic/setup6 lb $KV -a -t 10.9.0.100:82 -r 10.9.0.23:82 -i
for i in 1 2 3; do
	run traffic/nat/$i c timeout 10 wget -q -O - http://10.9.0.100:80/
	run traffic/dr/$i c timeout 10 wget -q -O - http://10.9.0.100:81/
	run traffic/tun/$i c timeout 10 wget -q -O - http://10.9.0.100:82/
done
# The kernel folds its per-CPU counters into the totals on the estimator's
# 2 s tick: let the traffic's counts settle before reading them.
sleep 5
# The counters, rates and connections, read by keepvs, ipvsadm, keepvs:
# what ipvsadm printed must be one of the two reads around it (the kernel
# may tick between reads).
for l in "-Ln --stats" "-Ln --rate" "-Lnc" "-Ln --persistent-conn" "-Lnc --persistent-conn" "-Ln"; do
	n=$(echo "$l" | tr ' ' '_')
	run "traffic/list/$n/ours1" lb $KV $l
	run "traffic/list/$n/theirs" lb /usr/sbin/ipvsadm $l
	run "traffic/list/$n/ours2" lb $KV $l
done
`

var realServerRE = regexp.MustCompile(`(?m)^\s*real_server\s+(\S+)\s+(\d+)`)

// seedScript runs keepvs and keepalived (checker only) on each seed
// configuration, each in its own namespace with its real servers up
// (their addresses on a dummy eth0, busybox httpd on their ports), then
// reads both tables with ipvsadm -S -n, stops both and reads again.
func seedScript(t *testing.T, seeds []string) string {
	var b strings.Builder
	b.WriteString("echo \"=== phase-time $(cut -d' ' -f1 /proc/uptime)\"\necho '=== phase seeds'\n")
	for i, s := range seeds {
		src, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		var addrs, ports []string
		for _, m := range realServerRE.FindAllStringSubmatch(string(src), -1) {
			if !slices.Contains(addrs, m[1]) {
				addrs = append(addrs, m[1])
			}
			if !slices.Contains(ports, m[2]) {
				ports = append(ports, m[2])
			}
		}
		for _, ns := range []string{fmt.Sprintf("kd%d", i), fmt.Sprintf("kv%d", i)} {
			fmt.Fprintf(&b, "ip netns add %s; ip -n %s link set lo up; ip -n %s link add eth0 type dummy; ip -n %s link set eth0 up\n", ns, ns, ns, ns)
			for _, a := range addrs {
				fmt.Fprintf(&b, "ip -n %s addr add %s/32 dev eth0\n", ns, a)
			}
			for _, p := range ports {
				fmt.Fprintf(&b, "ip netns exec %s httpd -p %s -h /www/ok\n", ns, p)
			}
		}
		conf := "/seeds/" + filepath.Base(s)
		fmt.Fprintf(&b, "ip netns exec kd%d keepalived -C -n -l -D -f %s -p /run/kd%d.pid -c /run/kd%d.chk.pid -r /run/kd%d.vrrp.pid >/tmp/kd%d.log 2>&1 &\n", i, conf, i, i, i, i)
		fmt.Fprintf(&b, "ip netns exec kv%d /usr/sbin/keepvs -n -l -f %s --dataplane ipvs --control-socket /run/kv%d.sock -p /run/kv%d.pid >/tmp/kv%d.log 2>&1 &\n", i, conf, i, i, i)
	}
	b.WriteString("sleep 4\n")
	for i := range seeds {
		fmt.Fprintf(&b, "run seed/%d/keepalived kd%d %s -S -n\n", i, i, theirs)
		fmt.Fprintf(&b, "run seed/%d/keepvs kv%d %s -S -n\n", i, i, theirs)
	}
	for i := range seeds {
		fmt.Fprintf(&b, "kill $(cat /run/kv%d.pid 2>/dev/null) 2>/dev/null\n", i)
		fmt.Fprintf(&b, "kill $(cat /run/kd%d.pid 2>/dev/null) 2>/dev/null\n", i)
	}
	b.WriteString("sleep 2\n")
	for i := range seeds {
		fmt.Fprintf(&b, "run seed/%d/keepvs-stopped kv%d %s -S -n\n", i, i, theirs)
		fmt.Fprintf(&b, "echo '=== seed/%d/keepvs-log'; cat /tmp/kv%d.log\n", i, i)
	}
	return b.String()
}

// benchScript times the 2,000 x 20 configuration into the kernel: the
// engine alone from the guest test binary (with its netlink request
// counts), then each daemon from its start to the full table, watched the
// same way for both by TestGuestWatch (the kernel asked every 50 ms over
// netlink). rounds alternates keepalived and keepvs that many times;
// baseline, when set, is another keepvs binary timed in the same rounds
// (before and after a change, in one VM); profile takes CPU profiles of
// keepvs's first round and of the guest test and prints them base64.
func benchScript(rounds int, baseline, profile bool) string {
	var b strings.Builder
	if profile {
		b.WriteString("GUESTPROF=-test.cpuprofile=/tmp/guest.prof\n")
	}
	b.WriteString(`
echo "=== phase-time $(cut -d' ' -f1 /proc/uptime)"
echo '=== phase bench'
ip netns add gb; ip -n gb link set lo up
echo '=== bench/guest'
# go test -v's "=== RUN" would start a section here.
KEEPVS_QEMU_GUEST=1 ip netns exec gb /guest.test -test.run 'TestGuestLarge|TestGuestBulkErrors' -test.v $GUESTPROF 2>&1 | sed 's/^===/:::/'
ip netns del gb
watch() { # NAME NS PIDFILE COMMAND...
	name=$1; ns=$2; pid=$3; shift 3
	ip netns add $ns; ip -n $ns link set lo up
	echo "=== bench/$name"
	KEEPVS_QEMU_GUEST=1 KEEPVS_WATCH_VS=2000 KEEPVS_WATCH_RS=20 KEEPVS_WATCH_LOG=/tmp/$name.log KEEPVS_WATCH_CMD="$*" \
		ip netns exec $ns /guest.test -test.run TestGuestWatch 2>&1 | grep -E '^WATCH|FAIL|Error'
	# SIGTERM when a profile is to be written, else -9 (keepalived
	# keeps a checker child: its pid file too).
	p=$(cat $pid 2>/dev/null)
	kill -${SIG:-9} $p 2>/dev/null
	i=0; while kill -0 $p 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done
	kill -9 $p $(cat ${pid%.pid}.chk.pid 2>/dev/null) 2>/dev/null
	# Empty the table here: a namespace deleted with 42,000 entries is
	# cleaned up by a kernel worker while the next daemon is being timed.
	ip netns exec $ns /usr/sbin/ipvsadm -C
	ip netns del $ns
	sleep 1
}
`)
	// The configuration test alone (keepalived -t): start-up, read,
	// parse and validate.
	b.WriteString(`echo '=== bench/config-test'
for i in 1 2 3; do
	t0=$(cut -d' ' -f1 /proc/uptime); /usr/sbin/keepvs -t -f /large.conf >/dev/null 2>&1
	t1=$(cut -d' ' -f1 /proc/uptime); keepalived -t -f /large.conf -l -n >/dev/null 2>&1
	t2=$(cut -d' ' -f1 /proc/uptime); echo "CONFIGTEST keepvs=$t0-$t1 keepalived=$t1-$t2"
done
`)
	for r := 0; r < rounds; r++ {
		fmt.Fprintf(&b, "watch keepalived-%d kb%d /run/kb%d.pid keepalived -C -n -f /large.conf -p /run/kb%d.pid -c /run/kb%d.chk.pid -r /run/kb%d.vrrp.pid\n", r, r, r, r, r, r)
		if profile && r == 0 {
			b.WriteString("SIG=TERM; export KEEPVS_CPUPROFILE=/tmp/kv.prof\n")
		}
		fmt.Fprintf(&b, "watch keepvs-%d kv%d /run/kv%d.pid /usr/sbin/keepvs -n -l -f /large.conf --dataplane ipvs --control-socket /run/kv%d.sock -p /run/kv%d.pid\n", r, r, r, r, r)
		if profile && r == 0 {
			b.WriteString("unset SIG KEEPVS_CPUPROFILE\n")
		}
		fmt.Fprintf(&b, "echo '=== bench/keepvs-%d-log'; cat /tmp/keepvs-%d.log\n", r, r)
		if baseline {
			fmt.Fprintf(&b, "watch keepvs-base-%d kw%d /run/kw%d.pid /usr/sbin/keepvs-base -n -l -f /large.conf --dataplane ipvs --control-socket /run/kw%d.sock -p /run/kw%d.pid\n", r, r, r, r, r)
		}
	}
	if profile {
		b.WriteString("echo '=== bench/keepvs-profile'; base64 /tmp/kv.prof\n")
		b.WriteString("echo '=== bench/guest-profile'; base64 /tmp/guest.prof\n")
	}
	return b.String()
}

// newImage skips unless qemu, Debian's kernel and the real tools are here
// (and not -short; long says how long the VM runs), and returns an
// initramfs holding a fresh static keepvs as /usr/sbin/keepvs and the real
// ipvsadm, keepalived and ip; dir is its scratch directory.
func newImage(t *testing.T, long string) (qemu.Host, *qemu.Image, string) {
	t.Helper()
	h, err := qemu.Find()
	if err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skipf("boots a VM for %s; skipped with -short", long)
	}
	for _, p := range []string{"/usr/sbin/ipvsadm", "/usr/sbin/keepalived", "/usr/bin/ip"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not installed (apt-get install -y ipvsadm keepalived iproute2)", p)
		}
	}
	dir := t.TempDir()
	goBuild(t, "build", "-buildvcs=false", "-o", filepath.Join(dir, "keepvs"), "github.com/keepvs/keepvs/cmd/keepvs")
	im, err := qemu.NewImage(h, filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	must := mustFunc(t)
	must(im.AddFile(filepath.Join(dir, "keepvs"), "/usr/sbin/keepvs", 0o755))
	must(im.AddBinary("/usr/sbin/ipvsadm", ""))
	must(im.AddBinary("/usr/sbin/keepalived", ""))
	must(im.AddBinary("/usr/bin/ip", "/usr/local/bin/ip"))
	return h, im, dir
}

// mustFunc fails t on a non-nil error.
func mustFunc(t *testing.T) func(error) {
	return func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func goBuild(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var (
	bulkOnly   = flag.Bool("bulk", false, "boot for the 2,000 x 20 bulk load benchmark alone")
	bulkRounds = flag.Int("bulk-rounds", 1, "how many times the bulk load benchmark times keepalived and keepvs in the one VM")
	bulkIcount = flag.Bool("bulk-icount", false, "run the VM with a clock that counts instructions (qemu.Icount): times independent of the host's load")
)

// TestKernel boots once and checks everything the issue asks of the kernel
// data plane; the subtests read their parts of the VM's output.
func TestKernel(t *testing.T) {
	h, im, dir := newImage(t, "about two minutes")
	goBuild(t, "test", "-c", "-o", filepath.Join(dir, "guest.test"), "github.com/keepvs/keepvs/internal/dataplane/ipvs/qemutest")
	must := mustFunc(t)
	must(im.AddFile(filepath.Join(dir, "guest.test"), "/guest.test", 0o755))
	must(os.MkdirAll(filepath.Join(dir, "root/opt/kv"), 0o755))
	must(os.Symlink("/usr/sbin/keepvs", filepath.Join(dir, "root/opt/kv/ipvsadm")))
	must(im.AddModules(qemu.IPVSModules...))
	must(im.AddData("/large.conf", largeConfig(2000, 20), 0o644))
	seeds, _ := filepath.Glob("../../../model/testdata/seeds/*.conf")
	var withVS []string
	for _, s := range seeds {
		src, _ := os.ReadFile(s)
		if regexp.MustCompile(`(?m)^\s*virtual_server\s`).Match(src) {
			withVS = append(withVS, s)
			must(im.AddFile(s, "/seeds/"+filepath.Base(s), 0o644))
		}
	}
	// KEEPVS_QEMU_BASELINE: another keepvs binary (the code before a
	// change) timed in the same rounds. KEEPVS_QEMU_PROFILE=PATH: a CPU
	// profile of keepvs's first round (from the loaded configuration on)
	// to PATH, and of the guest test (parse included) to PATH.guest.
	baseline := os.Getenv("KEEPVS_QEMU_BASELINE")
	if baseline != "" {
		must(im.AddFile(baseline, "/usr/sbin/keepvs-base", 0o755))
	}
	profile := os.Getenv("KEEPVS_QEMU_PROFILE")
	bench := benchScript(*bulkRounds, baseline != "", profile != "")
	script := scriptHead + comparisonScript() + trafficScript + seedScript(t, withVS) + bench
	if *bulkOnly {
		script = scriptHead + bench
	}
	initrd, err := im.Pack(script, []string{"veth", "dummy", "bridge", "ipip"})
	must(err)

	start := time.Now()
	var out string
	if replay := os.Getenv("KEEPVS_QEMU_REPLAY"); replay != "" {
		// Re-check a saved run's output without booting.
		b, rerr := os.ReadFile(replay)
		out, err = string(b), rerr
	} else {
		var extra []string
		if *bulkIcount {
			extra = qemu.Icount
		}
		out, err = qemu.Boot(context.Background(), h, initrd, 1024, time.Duration(5+*bulkRounds)*time.Minute, extra...)
	}
	t.Logf("VM ran for %s", time.Since(start).Round(time.Second))
	if path := os.Getenv("KEEPVS_QEMU_OUT"); path != "" {
		os.WriteFile(path, []byte(out), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	sec := parseSections(out)

	t.Run("commands", func(t *testing.T) {
		skipIfBulk(t)
		for i, c := range commands {
			o, th := sec[fmt.Sprintf("cmd/%d/ours", i)], sec[fmt.Sprintf("cmd/%d/theirs", i)]
			if o != th {
				t.Errorf("ipvsadm %s:\n--- keepvs adm\n%s--- ipvsadm\n%s", c, o, th)
			}
		}
	})
	t.Run("listings", func(t *testing.T) {
		skipIfBulk(t)
		for i, l := range listings {
			want := sec[fmt.Sprintf("list/%d/ri/theirs", i)]
			if want == "" {
				t.Errorf("%s: no output", l)
				continue
			}
			for _, k := range []string{"ka/ours", "ka/theirs", "ri/ours"} {
				if got := sec[fmt.Sprintf("list/%d/%s", i, k)]; got != want {
					t.Errorf("ipvsadm %s, %s:\n%s--- the real ipvsadm on the real ipvsadm's table:\n%s", l, k, got, want)
				}
			}
		}
	})
	t.Run("restore", func(t *testing.T) {
		skipIfBulk(t)
		if o, th := sec["restore/ours"], sec["restore/theirs"]; o != th {
			t.Errorf("-R:\n--- keepvs adm\n%s--- ipvsadm\n%s", o, th)
		}
		want := sec["restored/r2/theirs"]
		if !strings.Contains(want, "-A -t 10.0.0.1:80 -s wrr") {
			t.Errorf("ipvsadm -R restored too little:\n%s", want)
		}
		for _, k := range []string{"restored/r1/ours", "restored/r1/theirs", "restored/r2/ours"} {
			if sec[k] != want {
				t.Errorf("%s:\n%s--- want\n%s", k, sec[k], want)
			}
		}
		if o, th := sec["flushed/list/ours"], sec["flushed/list/theirs"]; o != th {
			t.Errorf("after -C:\n%s--- want\n%s", o, th)
		}
	})
	t.Run("traffic", func(t *testing.T) {
		skipIfBulk(t)
		for i := 1; i <= 6; i++ {
			if s := sec[fmt.Sprintf("traffic/setup%d", i)]; !strings.HasSuffix(s, "--- rc=0\n") {
				t.Errorf("setup %d: %s", i, s)
			}
		}
		for _, m := range []struct{ name, rs string }{{"nat", "rs1"}, {"dr", "rs2"}, {"tun", "rs3"}} {
			for i := 1; i <= 3; i++ {
				s := sec[fmt.Sprintf("traffic/%s/%d", m.name, i)]
				if !strings.HasPrefix(s, "real server "+m.rs+"\n") {
					t.Errorf("%s request %d through the VIP: %q", m.name, i, s)
				}
			}
		}
		for _, l := range []string{"-Ln --stats", "-Ln --rate", "-Lnc", "-Ln --persistent-conn", "-Lnc --persistent-conn", "-Ln"} {
			n := strings.ReplaceAll(l, " ", "_")
			th := sec["traffic/list/"+n+"/theirs"]
			o1, o2 := sec["traffic/list/"+n+"/ours1"], sec["traffic/list/"+n+"/ours2"]
			if strings.HasPrefix(l, "-Lnc") {
				// Each entry's timer ticks on its own between reads: the
				// expiry column is left out, all else must match.
				th, o1, o2 = maskExpire(th), maskExpire(o1), maskExpire(o2)
			}
			if th == "" || (th != o1 && th != o2) {
				t.Errorf("ipvsadm %s with traffic:\n--- keepvs adm before\n%s--- ipvsadm\n%s--- keepvs adm after\n%s", l, o1, th, o2)
			}
		}
		t.Logf("after traffic, ipvsadm -Ln --stats:\n%s", sec["traffic/list/-Ln_--stats/theirs"])
	})
	t.Run("seeds", func(t *testing.T) {
		skipIfBulk(t)
		for i, s := range withVS {
			kd, kv := sec[fmt.Sprintf("seed/%d/keepalived", i)], sec[fmt.Sprintf("seed/%d/keepvs", i)]
			name := filepath.Base(s)
			log := sec[fmt.Sprintf("seed/%d/keepvs-log", i)]
			if strings.Contains(log, "configuration rejected") {
				// keepvs refuses what keepalived runs with its typos
				// ignored: it must then have installed nothing.
				if kv != "--- stderr\n--- rc=0\n" {
					t.Errorf("%s: rejected, yet:\n%s", name, kv)
				}
				t.Logf("%s: keepvs rejects the configuration (keepalived runs it as:\n%s)", name, kd)
				continue
			}
			if kd != kv {
				t.Errorf("%s: ipvsadm -S -n\n--- keepalived\n%s--- keepvs\n%s--- keepvs log\n%s", name, kd, kv, sec[fmt.Sprintf("seed/%d/keepvs-log", i)])
				continue
			}
			if !strings.Contains(kv, "-A -t ") {
				t.Errorf("%s: no service:\n%s", name, kv)
			}
			if st := sec[fmt.Sprintf("seed/%d/keepvs-stopped", i)]; st != "--- stderr\n--- rc=0\n" {
				t.Errorf("%s: after keepvs stopped:\n%s", name, st)
			}
		}
	})
	t.Run("bench", func(t *testing.T) {
		g := sec["bench/guest"]
		if !strings.Contains(g, "--- PASS: TestGuestLarge") || !strings.Contains(g, "--- PASS: TestGuestBulkErrors") {
			t.Errorf("guest tests:\n%s", g)
		}
		for _, l := range strings.Split(g, "\n") {
			if strings.HasPrefix(l, "BENCH") {
				t.Log(l)
			}
		}
		for _, l := range strings.Split(sec["bench/config-test"], "\n") {
			var a0, a1, b0, b1 float64
			if _, err := fmt.Sscanf(l, "CONFIGTEST keepvs=%f-%f keepalived=%f-%f", &a0, &a1, &b0, &b1); err == nil {
				t.Logf("config test (-t) of the 2,000 x 20 file: keepvs %.2fs, keepalived %.2fs", a1-a0, b1-b0)
			}
		}
		// Each round: keepalived, then keepvs (then the baseline keepvs).
		clock := "qemu TCG"
		if *bulkIcount {
			clock = "qemu TCG, -icount clock"
		}
		var kdSum, kvSum float64
		for r := 0; r < *bulkRounds; r++ {
			kd, kdFirst, ok1 := watched(sec[fmt.Sprintf("bench/keepalived-%d", r)])
			kv, kvFirst, ok2 := watched(sec[fmt.Sprintf("bench/keepvs-%d", r)])
			if !ok1 || !ok2 {
				// A timing round, not a correctness check (TestGuestLarge and
				// TestGuestBulkErrors are): on a loaded host it may not finish.
				t.Logf("round %d: not measured, table not complete:\n--- keepalived\n%s--- keepvs\n%s", r, sec[fmt.Sprintf("bench/keepalived-%d", r)], sec[fmt.Sprintf("bench/keepvs-%d", r)])
				continue
			}
			kdSum, kvSum = kdSum+kd, kvSum+kv
			t.Logf("round %d, 2,000 x 20 from start to the full kernel table (%s, watched every 50 ms): keepalived %.2fs (first service at %.2fs), keepvs %.2fs (first service at %.2fs), ratio keepalived/keepvs %.2f",
				r, clock, kd, kdFirst, kv, kvFirst, kd/kv)
			t.Logf("keepvs %s; its log:\n%s", strings.TrimSpace(sec[fmt.Sprintf("bench/keepvs-%d", r)]), sec[fmt.Sprintf("bench/keepvs-%d-log", r)])
			if baseline != "" {
				kb, kbFirst, _ := watched(sec[fmt.Sprintf("bench/keepvs-base-%d", r)])
				t.Logf("round %d, baseline keepvs %.2fs (first service at %.2fs): baseline/keepvs %.2f", r, kb, kbFirst, kb/kv)
			}
		}
		if kvSum > 0 {
			t.Logf("over %d rounds: keepalived/keepvs %.2f", *bulkRounds, kdSum/kvSum)
		}
		if profile != "" {
			// The daemon's, and the guest test's (TestGuestLarge) beside it.
			for name, path := range map[string]string{"keepvs": profile, "guest": profile + ".guest"} {
				b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sec["bench/"+name+"-profile"]), ""))
				if err != nil {
					t.Errorf("%s profile: %v", name, err)
				} else if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Error(err)
				}
			}
		}
	})
}

// watched reads TestGuestWatch's line: the seconds to the full table and
// to the first service.
func watched(s string) (done, first float64, ok bool) {
	for _, l := range strings.Split(s, "\n") {
		if _, err := fmt.Sscanf(l, "WATCH first=%f done=%f", &first, &done); err == nil {
			return done, first, done > 0
		}
	}
	return 0, 0, false
}

func skipIfBulk(t *testing.T) {
	if *bulkOnly {
		t.Skip("-bulk: the bulk load benchmark alone")
	}
}

var expireRE = regexp.MustCompile(`(?m)^(\S+\s+)\d\d:\d\d `)

// maskExpire blanks the expire column of ipvsadm -c's entries.
func maskExpire(s string) string { return expireRE.ReplaceAllString(s, "${1}mm:ss ") }
