#!/usr/bin/env bash
# 10,000 real servers with TCP_CHECK at delay_loop 1: keepvs --tcp-check=connect,
# keepvs --tcp-check=syn (half-open) and keepalived 2.2.7's checker, one after
# the other in the same run, in two setups, both inside network namespaces
# this script creates (the host's own namespace gets no address, route or
# traffic):
#
#   lo    one namespace: the checker and nginx (0.0.0.0:9000) on its
#         loopback, real servers 127.1.V.R. The listener's half of every
#         handshake runs in the checker's own softirq, so it is charged to it.
#   veth  the checker in namespace P, nginx in namespace L, joined by a veth
#         pair; real servers 10.1.V.R are local addresses of L (one
#         "local 10.1.0.0/16" route), routed from P via the veth. RPS steers
#         L's receive processing to CPU 1 and P's to CPU 0; the checker is
#         pinned to CPU 0 and nginx to CPU 1. The listener's half then runs
#         on CPU 1, as a remote real server's would on its own machine —
#         but every packet costs an IPI, a VM exit on a virtual machine.
#   napi  the same namespaces, the veth ends with NAPI in a kernel thread
#         each (GRO on, TSO off so every segment takes it, "threaded"):
#         napi/<L's end> pinned to CPU 1 does the listener's half, and
#         napi/<P's end> pinned to CPU 0 does the checker's receive work
#         (answers in, the kernel's RST or ACK out), as a NIC's softirq
#         does on a director. Its CPU is reported next to the checker's
#         ("rx thread"); "director" is the two together.
#
# CPU is the scheduler's run time of every thread (/proc/PID/task/*/
# schedstat, nanoseconds by the clock; keepalived's parent and checker
# child) over the window after a warm-up. This kernel has no
# CONFIG_IRQ_TIME_ACCOUNTING, so a thread's run time includes the softirq
# work done while it runs (all of the loopback handshake in "lo"; its own
# receive work in "veth"); softirq work the kernel defers to ksoftirqd,
# or does on an interrupt while CPU 0 idles, is charged to no process.
# "busy" bounds that: all of CPU 0's time but idle over the window (the
# checker is pinned there, and in "lo" so is all of the loopback's
# softirq work). "cpu0 softirq" is CPU 0's softirq time from /proc/stat,
# sampled at the tick: an undercount (see cpu0idle).
# Checks made are counted in the listener's namespace from its kernel's
# counters: Tcp PassiveOpens (handshakes completed: connect probes) plus
# TcpExt EmbryonicRsts (RSTs to a SYN_RECV: half-open probes).
#
#   bash bench/checks-10k-syn.sh [seconds] [rounds] [lo|veth|napi|both|all]
#
# both is lo and veth; all is the three. KEEPVS_BENCH_ONLY="syn keepalived"
# runs only those programs (connect, syn, keepalived).
#
# Needs root, gcc, nginx, keepalived, taskset (ethtool for napi). KEEPVS_BIN=path measures
# that binary instead of building ./cmd/keepvs.
set -euo pipefail
DUR=${1:-30}
ROUNDS=${2:-1}
SETUPS=${3:-both}
[ "$SETUPS" = both ] && SETUPS="lo veth"
[ "$SETUPS" = all ] && SETUPS="lo veth napi"
ONLY=${KEEPVS_BENCH_ONLY:-connect syn keepalived}
WARM=${KEEPVS_BENCH_WARM:-20}   # keepalived takes ~15 s to reach its full rate
cd "$(dirname "$0")/.."
W=$(mktemp -d)
NS=kvsb$$
P=${NS}p L=${NS}l
cleanup() {
	set +e
	for p in $W/*.pid; do [ -s "$p" ] && kill $(cat "$p") 2>/dev/null; done
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	for n in $P $L; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null; done
	sleep 0.5
	ip netns del $P 2>/dev/null
	ip netns del $L 2>/dev/null
	rm -rf $W
}
trap cleanup EXIT

. bench/checks-common.sh
checks_prepare

checks_nginx_conf


napis() { ps -eo pid=,comm= | awk '$2 ~ /^napi\// {print $1}' | sort; }
# newthread CMD...: runs CMD, prints the NAPI kernel thread it started.
newthread() {
	local before
	before=$(napis)
	"$@"
	sleep 0.2
	comm -13 <(echo "$before") <(napis) | head -1
}

# setup lo|veth|napi: namespaces, nginx; sets PNS (the checker's) and LNS (nginx's).
setup() {
	ip netns add $P
	ip -n $P link set lo up
	RXT=
	if [ "$1" = lo ]; then
		PNS=$P LNS=$P
		checks_conf 127.1 > $W/checks.conf
	else
		ip netns add $L
		ip -n $L link set lo up
		ip link add ${NS}a netns $P type veth peer name ${NS}b netns $L
		ip -n $P addr add 10.255.0.1/30 dev ${NS}a
		ip -n $L addr add 10.255.0.2/30 dev ${NS}b
		ip -n $P link set ${NS}a up
		ip -n $L link set ${NS}b up
		ip -n $P route add 10.1.0.0/16 via 10.255.0.2
		ip -n $L route add local 10.1.0.0/16 dev lo
		if [ "$1" = veth ]; then
			ip netns exec $L sh -c "echo 2 > /sys/class/net/${NS}b/queues/rx-0/rps_cpus"
			ip netns exec $P sh -c "echo 1 > /sys/class/net/${NS}a/queues/rx-0/rps_cpus"
		else
			ip netns exec $P ethtool -K ${NS}a gro on tso off >/dev/null
			ip netns exec $L ethtool -K ${NS}b gro on tso off >/dev/null
			# A kernel thread's name is cut at 15 characters: each end's
			# thread is the one that appears when it is made threaded.
			RXT=$(newthread ip netns exec $P sh -c "echo 1 > /sys/class/net/${NS}a/threaded")
			local lt
			lt=$(newthread ip netns exec $L sh -c "echo 1 > /sys/class/net/${NS}b/threaded")
			[ -n "$RXT" ] && [ -n "$lt" ] || { echo "no threaded NAPI on the veth pair" >&2; exit 1; }
			taskset -p 1 "$RXT" >/dev/null
			taskset -p 2 "$lt" >/dev/null
		fi
		PNS=$P LNS=$L
		checks_conf 10.1 > $W/checks.conf
	fi
	ip netns exec $LNS taskset -c 1 nginx -c $W/nginx.conf
}

teardown() {
	[ -s $W/nginx.pid ] && kill $(cat $W/nginx.pid) 2>/dev/null
	sleep 0.5
	rm -f $W/nginx.pid
	ip netns del $P 2>/dev/null || true
	ip netns del $L 2>/dev/null || true
}

ticks=$(getconf CLK_TCK)
# cpu PID...: run time of all their threads, in ns
cpu() { cat $(for p in "$@"; do echo /proc/$p/task/*/schedstat; done) | awk '{s += $1} END {printf "%.0f", s}'; }
rss() { local t=0; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/{print $2}' /proc/$p/status))); done; echo $t; }
# handshakes seen by the listeners: completed + reset while half-open
made() {
	ip netns exec $LNS awk '
		FILENAME ~ /snmp/ && $1 == "Tcp:" { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else p = $c["PassiveOpens"] }
		FILENAME ~ /netstat/ && $1 == "TcpExt:" { if (!e) { for (i = 1; i <= NF; i++) d[$i] = i; e = 1 } else r = $d["EmbryonicRsts"] }
		END { print p + r }' /proc/net/snmp /proc/net/netstat
}
cpu0softirq() { awk '$1 == "cpu0" {print $8}' /proc/stat; }
# CPU 0's idle time, in ticks. Its busy time is the rest of the window:
# the kernel measures idle periods by the clock, but samples user,
# system and softirq time at the tick, and a checker waking for a few
# hundred microseconds every 10 ms between ticks is mostly missed.
cpu0idle() { awk '$1 == "cpu0" {print $5 + $6}' /proc/stat; }

# measure NAME PID...: CPU share of one core over DUR seconds, RSS in MB
measure() {
	local name=$1; shift
	sleep $WARM
	local c0 t0 c1 t1 a0 a1 s0 s1 b0 b1 r0=0 r1=0
	c0=$(cpu "$@"); t0=$(date +%s.%N); a0=$(made); s0=$(cpu0softirq); b0=$(cpu0idle)
	[ -n "$RXT" ] && r0=$(cpu $RXT)
	sleep "$DUR"
	c1=$(cpu "$@"); t1=$(date +%s.%N); a1=$(made); s1=$(cpu0softirq); b1=$(cpu0idle)
	[ -n "$RXT" ] && r1=$(cpu $RXT)
	python3 -c "
c=($c1-$c0)/1e9; r=($r1-$r0)/1e9; w=$t1-$t0; n=$a1-$a0; s=($s1-$s0)/$ticks; b=w-($b1-$b0)/$ticks
rx = f'   rx thread %4.1f%%   director %5.1f%%, %5.1f us per check' % (100*r/w, 100*(c+r)/w, 1e6*(c+r)/max(n,1)) if '$RXT' else ''
print(f'%-5s %-16s CPU %5.1f%% of one core   RSS %4.0f MB   checks made %6.0f/s   CPU per check %5.1f us   cpu0 softirq %4.1f%% busy %5.1f%%' % ('$setup', '$name', 100*c/w, $(rss "$@")/1024, n/w, 1e6*c/max(n,1), 100*s/w, 100*b/w) + rx)"
}

run_keepvs() { # run_keepvs connect|syn
	ip netns exec $PNS taskset -c 0 $W/keepvs -f $W/checks.conf -n -l -C --dataplane proxy --tcp-check=$1 \
		-p $W/keepvs.pid --control-socket $W/keepvs.sock >$W/keepvs.log 2>&1 &
	local kp=$!
	measure "keepvs $1" $kp
	local down
	down=$(grep -c "up=false" $W/keepvs.log || true)
	grep -h -- "--tcp-check\|probes half-open" $W/keepvs.log | sed 's/^/      /' || true
	# The first reports of a real server down, with their reasons.
	grep -m3 "up=false" $W/keepvs.log | sed 's/^/      /' || true
	# Since the start: probes started, and how late (the Runner's count).
	KEEPVS_SOCKET=$W/keepvs.sock $W/keepvs status | grep '^checks:' | sed 's/^/      /' || true
	kill $kp; wait $kp 2>/dev/null || true
	echo "      real servers reported down: $down"
}

run_keepalived() {
	ip netns exec $PNS env LD_PRELOAD=$W/ipvsshim.so IPVSSHIM_STATE=$W/ipvs.state taskset -c 0 \
		keepalived -f $W/checks.conf -C -n -l -D -p $W/ka.pid -c $W/kachk.pid >$W/ka.log 2>&1 &
	local ka=$!
	for _ in $(seq 50); do [ -s $W/kachk.pid ] && break; sleep 0.1; done
	measure keepalived $ka "$(cat $W/kachk.pid)"
	local down
	down=$(grep -c "failed\." $W/ka.log || true)
	kill $ka; wait $ka 2>/dev/null || true
	rm -f $W/kachk.pid $W/ka.pid
	echo "      real servers reported down: $down"
}

# Fresh namespaces for every run: a connect checker leaves ~500,000
# TIME_WAIT connections behind (10,000/s for 60 s), which would hold every
# port of the local range in its namespace for the next program.
for setup in $SETUPS; do
	for round in $(seq "$ROUNDS"); do
		echo "== $setup round $round"
		for prog in $ONLY; do
			setup $setup
			case $prog in
			connect | syn) run_keepvs $prog ;;
			keepalived) run_keepalived ;;
			*) echo "KEEPVS_BENCH_ONLY: unknown program $prog" >&2; exit 1 ;;
			esac
			teardown
		done
	done
done
