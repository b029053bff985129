package qemutest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/testbed/qemu"
)

// syncdScenario is one global_defs lvs_sync_daemon case, run by
// keepalived and by keepvs side by side, each in a network namespace of
// its own (the kernel's sync daemons are per namespace) with the same
// configuration on a veth eth0. The real ipvsadm lists the sync daemons
// (`ipvsadm -L --daemon`) in both at the same points: after start (the
// instance still BACKUP), once the instance is MASTER, after the action
// (a reload, the interface going down), and after both stopped. The
// listings must be the same byte for byte, but where keepvs differs on
// purpose.
type syncdScenario struct {
	name  string
	conf  string
	flags string // daemon flags both are given (-P, -C)
	// pre runs before the daemon starts ($NS is its namespace).
	pre string
	// next, when set, replaces the configuration at the action point and
	// the daemon is sent SIGHUP.
	next string
	// act runs at the action point ($NS is the namespace).
	act string
	// keepvs is what keepvs's namespace must list at these points, in
	// ipvsadm's words (syncdLine).
	keepvs map[string][]string
	// differs are the points where keepalived lists something else on
	// purpose, and why.
	differs map[string]string
}

// syncdInstance becomes MASTER alone: 3 x 5 s + 3 s of skew after it
// starts, which leaves time to see it BACKUP first on a loaded TCG VM.
const syncdInstance = `vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 5
    virtual_ipaddress {
        10.7.0.100/24
    }
}
`

// syncdVS makes keepalived run its health-checker process, which owns a
// sync daemon that follows no instance.
const syncdVS = `virtual_server 10.7.0.200 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.7.0.3 80 {
        weight 1
    }
}
`

func syncdGlobal(line string) string {
	if line == "" {
		return "global_defs {\n    router_id syncd\n}\n"
	}
	return "global_defs {\n    router_id syncd\n    " + line + "\n}\n"
}

// syncdLine is ipvsadm's line for a daemon with the kernel's defaults for
// what lvs_sync_daemon leaves out (a 1500-byte MTU on the veth).
func syncdLine(state string, id int) string {
	return fmt.Sprintf("%s sync daemon (mcast=eth0, syncid=%d, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)", state, id)
}

var (
	backup7 = []string{syncdLine("backup", 7)}
	master7 = []string{syncdLine("master", 7)}
	both7   = []string{syncdLine("master", 7), syncdLine("backup", 7)}
	none    = []string{}
)

const (
	whyStale = "keepvs stops the sync daemons it finds running when it takes charge; keepalived 2.2.7 does so only with no instance named, " +
		"else its start fails (\"Daemon has already run\") and the stale daemon stays"
	whyRemoved = "a reload that removes lvs_sync_daemon stops the daemons in keepvs; keepalived 2.2.7 leaves them running, even after it stops"
)

var syncdScenarios = []syncdScenario{
	{name: "inst", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		keepvs: map[string][]string{"start": backup7, "master": master7, "after": master7, "stopped": none}},
	// The sync id defaults to the instance's virtual_router_id.
	{name: "vrid", conf: syncdGlobal("lvs_sync_daemon eth0 inst VI_1") + syncdInstance,
		keepvs: map[string][]string{"master": {syncdLine("master", 51)}}},
	{name: "params", conf: syncdGlobal("lvs_sync_daemon eth0 inst VI_1 id 12 maxlen 1400 port 8850 ttl 3 group 224.0.0.99") + syncdInstance,
		keepvs: map[string][]string{"master": {"master sync daemon (mcast=eth0, syncid=12, maxlen=1400, group=224.0.0.99, port=8850, ttl=3)"}}},
	// No instance: both daemons for the whole run, with the checkers.
	{name: "noinst", conf: syncdGlobal("lvs_sync_daemon eth0 id 7") + syncdInstance + syncdVS,
		keepvs: map[string][]string{"start": both7, "master": both7, "stopped": none}},
	{name: "noinst-novs", conf: syncdGlobal("lvs_sync_daemon eth0 id 7") + syncdInstance,
		keepvs: map[string][]string{"start": none, "master": none}},
	// -P and -C: the VRRP subsystem owns a daemon that follows an
	// instance, the checkers one that does not.
	{name: "inst-C", flags: "-C", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance + syncdVS,
		keepvs: map[string][]string{"start": none, "master": none}},
	{name: "inst-P", flags: "-P", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance + syncdVS,
		keepvs: map[string][]string{"start": backup7, "master": master7}},
	{name: "noinst-P", flags: "-P", conf: syncdGlobal("lvs_sync_daemon eth0 id 7") + syncdInstance + syncdVS,
		keepvs: map[string][]string{"start": none, "master": none}},
	{name: "noinst-C", flags: "-C", conf: syncdGlobal("lvs_sync_daemon eth0 id 7") + syncdInstance + syncdVS,
		keepvs: map[string][]string{"start": both7, "stopped": none}},
	// MASTER → FAULT: back to the backup daemon.
	{name: "fault", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance, act: "ip -n $NS link set eth0 down",
		keepvs: map[string][]string{"after": backup7, "stopped": none}},
	{name: "reload-id", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		next:   syncdGlobal("lvs_sync_daemon eth0 VI_1 id 9") + syncdInstance,
		keepvs: map[string][]string{"after": {syncdLine("master", 9)}, "stopped": none}},
	{name: "reload-same", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		next:   syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		keepvs: map[string][]string{"after": master7}},
	{name: "reload-remove", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		next:    syncdGlobal("") + syncdInstance,
		keepvs:  map[string][]string{"master": master7, "after": none, "stopped": none},
		differs: map[string]string{"after": whyRemoved, "stopped": whyRemoved}},
	{name: "reload-add", conf: syncdGlobal("") + syncdInstance,
		next:   syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		keepvs: map[string][]string{"master": none, "after": master7, "stopped": none}},
	// Daemons left running by someone else, on another interface.
	{name: "stale", conf: syncdGlobal("lvs_sync_daemon eth0 VI_1 id 7") + syncdInstance,
		pre:     "ip netns exec $NS ipvsadm --start-daemon master --mcast-interface eth1 --syncid 99; ip netns exec $NS ipvsadm --start-daemon backup --mcast-interface eth1 --syncid 98",
		keepvs:  map[string][]string{"start": backup7, "master": master7, "after": master7, "stopped": none},
		differs: map[string]string{"start": whyStale, "master": whyStale, "after": whyStale}},
	{name: "noinst-stale", conf: syncdGlobal("lvs_sync_daemon eth0 id 7") + syncdInstance + syncdVS,
		pre:    "ip netns exec $NS ipvsadm --start-daemon master --mcast-interface eth1 --syncid 99",
		keepvs: map[string][]string{"start": both7}},
}

// syncdDaemons are the two programs, by the short name their namespaces
// and sections carry.
var syncdDaemons = []string{"ka", "kv"}

// The sampling points, in order.
var syncdPoints = []string{"start", "master", "after", "stopped"}

func syncdNS(i int, d string) string { return fmt.Sprintf("s%d%s", i, d) }

// syncdHead: each daemon is driven by a shell of its own, which samples
// its namespace when its own log says it got there: keepalived starts
// seconds later than keepvs on a loaded TCG VM, so one clock for all
// would catch one BACKUP and the other MASTER.
const syncdHead = `
# waitfor SECONDS CMD...: until CMD succeeds, at most SECONDS (a look
# every half second: thirty-two of these share one emulated CPU).
waitfor() {
	n=$(($1 * 2)); shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.5; n=$((n - 1)); done
	return 1
}
haslog() { grep -q "$2" $1 2>/dev/null; }
hasfile() { [ -e $1 ]; }
nofile() { [ ! -e $1 ]; }
# snap NS OUT [SOCK]: ipvsadm -L --daemon in NS, as run() writes a
# section; with SOCK (keepvs's control socket) also keepvs adm -L
# --daemon, through the daemon while it runs, to OUT-adm.
snap() {
	ip netns exec $1 ipvsadm -L --daemon >/tmp/o.$1 2>/tmp/e.$1; rc=$?
	{ cat /tmp/o.$1; echo "--- stderr"; cat /tmp/e.$1; echo "--- rc=$rc"; } >$2
	[ -n "$3" ] || return 0
	KEEPVS_SOCKET=$3 ip netns exec $1 /usr/sbin/keepvs adm -L --daemon >/tmp/o.$1 2>/tmp/e.$1; rc=$?
	{ cat /tmp/o.$1; echo "--- stderr"; cat /tmp/e.$1; echo "--- rc=$rc"; } >$2-adm
}
# drive NS NAME KIND VRRP NEXT ACT: start the daemon, sample after start
# (its instance BACKUP), once MASTER, after the reload or action, after
# it stopped.
drive() {
	ns=$1; name=$2; kind=$3; vrrp=$4; next=$5; act=$6
	out=/tmp/syncd/$name/$kind; mkdir -p $out; log=/tmp/$ns.log; pid=/run/$ns.pid; sock=
	if [ $kind = ka ]; then
		backup="Entering BACKUP STATE"; master="Entering MASTER STATE"; fault="Entering FAULT STATE"
		reloaded="Reload complete"; ready=/run/$ns.chk.pid
		ip netns exec $ns keepalived -n -l -D $FLAGS -f /syncd/$ns.conf -p $pid -c /run/$ns.chk.pid -r /run/$ns.vrrp.pid >$log 2>&1 &
	else
		backup="to=BACKUP"; master="to=MASTER"; fault="to=FAULT"; reloaded="reload done"; ready=/run/$ns.sock; sock=/run/$ns.sock
		mkdir -p /run/$ns
		# Normal scheduling: sixteen realtime VRRP threads on one emulated
		# CPU starve these shells (the VM did not finish in 4 minutes), and
		# under TCG a 10 ms RLIMIT_RTTIME is met on cold code, so the kernel
		# killed keepvs (seen on SIGHUP).
		KEEPVS_VRRP_REALTIME=off KEEPVS_STATE_DIR=/run/$ns ip netns exec $ns /usr/sbin/keepvs -n -l $FLAGS -f /syncd/$ns.conf --dataplane ipvs --control-socket /run/$ns.sock -p $pid >$log 2>&1 &
	fi
	if [ $vrrp = 1 ]; then waitfor 90 haslog $log "$backup"; else waitfor 90 hasfile $ready; fi
	sleep 2; snap $ns $out/start $sock
	if [ $vrrp = 1 ]; then waitfor 90 haslog $log "$master"; else sleep 3; fi
	sleep 2; snap $ns $out/master $sock
	if [ -n "$next" ]; then
		cp /syncd/$ns.next /syncd/$ns.conf; kill -HUP $(cat $pid)
		waitfor 30 haslog $log "$reloaded"
	fi
	if [ -n "$act" ]; then NS=$ns; eval "$act"; waitfor 30 haslog $log "$fault"; fi
	sleep 2; snap $ns $out/after $sock
	kill $(cat $pid); waitfor 30 nofile $pid; sleep 0.5
	snap $ns $out/stopped $sock
	touch /tmp/syncd/done.$ns
}
`

// shq quotes s for sh, as one word that expands nothing.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func syncdScript(scen []syncdScenario) string {
	var b strings.Builder
	// The kernel's warnings (a keepalived reload asks for a daemon on an
	// empty interface) would land in the middle of the sections.
	b.WriteString("dmesg -n 1\necho \"=== phase-time $(cut -d' ' -f1 /proc/uptime)\"\necho '=== phase syncd'\n")
	b.WriteString(syncdHead)
	for i, s := range scen {
		for _, d := range syncdDaemons {
			n := syncdNS(i, d)
			fmt.Fprintf(&b, "ip netns add %s; ip -n %s link set lo up\n", n, n)
			fmt.Fprintf(&b, "ip -n %s link add eth0 type veth peer name eth1\n", n)
			fmt.Fprintf(&b, "ip -n %s addr add 10.7.0.1/24 dev eth0; ip -n %s link set eth0 up; ip -n %s link set eth1 up\n", n, n, n)
			if s.pre != "" {
				fmt.Fprintf(&b, "NS=%s; %s\n", n, s.pre)
			}
		}
	}
	var done []string
	for i, s := range scen {
		vrrp := 1
		if s.flags == "-C" {
			vrrp = 0
		}
		reload := ""
		if s.next != "" {
			reload = "1"
		}
		for _, d := range syncdDaemons {
			n := syncdNS(i, d)
			fmt.Fprintf(&b, "FLAGS=%s drive %s %s %s %d %s %s &\n", shq(s.flags), n, s.name, d, vrrp, shq(reload), shq(s.act))
			done = append(done, "/tmp/syncd/done."+n)
		}
	}
	fmt.Fprintf(&b, "for i in $(seq 300); do n=0; for f in %s; do [ -e $f ] && n=$((n+1)); done; [ $n -eq %d ] && break; sleep 1; done\n", strings.Join(done, " "), len(done))
	for i, s := range scen {
		for _, d := range syncdDaemons {
			for _, p := range syncdPoints {
				fmt.Fprintf(&b, "echo '=== syncd/%s/%s/%s'; cat /tmp/syncd/%s/%s/%s\n", s.name, d, p, s.name, d, p)
				if d == "kv" {
					fmt.Fprintf(&b, "echo '=== syncd/%s/%s/%s-adm'; cat /tmp/syncd/%s/%s/%s-adm\n", s.name, d, p, s.name, d, p)
				}
			}
			fmt.Fprintf(&b, "echo '=== syncd/%s/%s/log'; cat /tmp/%s.log\n", s.name, d, syncdNS(i, d))
		}
	}
	b.WriteString("echo '=== syncd/dmesg'; dmesg | grep -v -E 'IPVS: (Unknown mcast interface|sync thread|stopping)' | tail -20\n")
	return b.String()
}

// TestKernelSyncDaemon runs global_defs lvs_sync_daemon in keepvs's daemon
// with --dataplane ipvs and in Debian's keepalived, in the same VM, and
// compares what the real ipvsadm lists of the kernel's sync daemons.
func TestKernelSyncDaemon(t *testing.T) {
	h, im, _ := newImage(t, "about a minute")
	must := mustFunc(t)
	modules := []string{"veth"}
	must(im.AddModules(append(slices.Clone(qemu.IPVSModules), modules...)...))
	for i, s := range syncdScenarios {
		for _, d := range syncdDaemons {
			n := syncdNS(i, d)
			must(im.AddData("/syncd/"+n+".conf", s.conf, 0o644))
			if s.next != "" {
				must(im.AddData("/syncd/"+n+".next", s.next, 0o644))
			}
		}
	}
	initrd, err := im.Pack(scriptHead+syncdScript(syncdScenarios), modules)
	must(err)
	start := time.Now()
	out, err := qemu.Boot(context.Background(), h, initrd, 1024, 4*time.Minute)
	t.Logf("VM ran for %s", time.Since(start).Round(time.Second))
	if path := os.Getenv("KEEPVS_QEMU_OUT"); path != "" {
		os.WriteFile(path, []byte(out), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	sec := parseSections(out)
	const ok = "--- stderr\n--- rc=0\n"
	for _, s := range syncdScenarios {
		failed := false
		for _, p := range syncdPoints {
			ka, kv := sec["syncd/"+s.name+"/ka/"+p], sec["syncd/"+s.name+"/kv/"+p]
			// keepvs adm -L --daemon, through keepvs's daemon while it
			// runs (the kernel directly once it stopped), lists what the
			// real ipvsadm does.
			if adm := sec["syncd/"+s.name+"/kv/"+p+"-adm"]; adm != kv {
				t.Errorf("%s, %s: keepvs adm -L --daemon\n%s--- ipvsadm -L --daemon\n%s", s.name, p, adm, kv)
				failed = true
			}
			if !strings.HasSuffix(ka, ok) || !strings.HasSuffix(kv, ok) {
				t.Errorf("%s, %s: ipvsadm -L --daemon failed\n--- keepalived\n%s--- keepvs\n%s", s.name, p, ka, kv)
				failed = true
				continue
			}
			if want, set := s.keepvs[p]; set {
				w := strings.Join(want, "\n")
				if w != "" {
					w += "\n"
				}
				if got := strings.TrimSuffix(kv, ok); got != w {
					t.Errorf("%s, %s: keepvs's namespace lists\n%s--- want\n%s", s.name, p, got, w)
					failed = true
				}
			}
			why, differs := s.differs[p]
			switch {
			case differs && ka == kv:
				t.Errorf("%s, %s: keepalived lists what keepvs does, where it was expected to differ (%s):\n%s", s.name, p, why, ka)
				failed = true
			case differs:
				t.Logf("%s, %s: differs on purpose (%s)\n--- keepalived\n%s--- keepvs\n%s", s.name, p, why, ka, kv)
			case ka != kv:
				t.Errorf("%s, %s: ipvsadm -L --daemon\n--- keepalived\n%s--- keepvs\n%s", s.name, p, ka, kv)
				failed = true
			}
		}
		if failed {
			t.Logf("%s: keepalived's log\n%s", s.name, sec["syncd/"+s.name+"/ka/log"])
			t.Logf("%s: keepvs's log\n%s", s.name, sec["syncd/"+s.name+"/kv/log"])
		}
	}
	if t.Failed() {
		t.Logf("dmesg:\n%s", sec["syncd/dmesg"])
	}
}
