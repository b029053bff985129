#!/usr/bin/env bash
# Two keepvs binaries checking the same 10,000 real servers at the same
# time, for a comparison this noisy machine's drift between runs does not
# swamp: each daemon in a network namespace of its own (created here) with
# its own nginx on that namespace's loopback (real servers 127.1.V.R:9000,
# as bench/checks-10k-syn.sh's "lo"), A pinned to CPU 0 and B to CPU 1,
# then the other way round (the two CPUs of a virtual machine need not
# cost the same). Prints each daemon's CPU (schedstat, all threads) over
# the window and B/A; the geometric mean of a round's two ratios is the
# comparison.
#
#   bash bench/checks-ab.sh BIN_A BIN_B [seconds] [rounds] [connect|syn]
#
# Needs root, nginx, taskset.
set -euo pipefail
A=$1 B=$2 DUR=${3:-15} ROUNDS=${4:-2} MODE=${5:-syn}
cd "$(dirname "$0")/.."
W=$(mktemp -d)
NS=kvab$$
cleanup() {
	set +e
	for d in $W/a $W/b; do
		[ -s $d/pid ] && kill $(cat $d/pid) 2>/dev/null
		[ -s $d/nginx.pid ] && kill $(cat $d/nginx.pid) 2>/dev/null
	done
	sleep 0.5
	ip netns del ${NS}a 2>/dev/null
	ip netns del ${NS}b 2>/dev/null
	rm -rf $W
}
trap cleanup EXIT
. bench/checks-common.sh
checks_conf 127.1 > $W/checks.conf

# start NS BIN CPU DIR
start() {
	mkdir -p $4
	ip netns add $1
	ip -n $1 link set lo up
	W=$4 checks_nginx_conf
	ip netns exec $1 taskset -c $3 nginx -c $4/nginx.conf
	ip netns exec $1 taskset -c $3 $2 -f $W/checks.conf -n -l -C --dataplane proxy --tcp-check=$MODE \
		-p $4/keepvs.pid --control-socket $4/keepvs.sock >$4/keepvs.log 2>&1 &
	echo $! > $4/pid
}
stop() {
	kill $(cat $2/pid) $(cat $2/nginx.pid) 2>/dev/null || true
	sleep 0.5
	rm -f $2/pid $2/nginx.pid
	ip netns del $1
}
cpu() { cat /proc/$1/task/*/schedstat | awk '{s+=$1} END {printf "%.0f", s}'; }
for r in $(seq $ROUNDS); do
	for ca in 0 1; do
		cb=$((1 - ca))
		start ${NS}a $A $ca $W/a
		start ${NS}b $B $cb $W/b
		sleep 10 # past the warm-up spread
		pa=$(cat $W/a/pid) pb=$(cat $W/b/pid)
		a0=$(cpu $pa) b0=$(cpu $pb)
		sleep $DUR
		a1=$(cpu $pa) b1=$(cpu $pb)
		python3 -c "print(f'round $r: A on CPU $ca {($a1-$a0)/1e7/$DUR:5.2f}%   B on CPU $cb {($b1-$b0)/1e7/$DUR:5.2f}%   B/A {($b1-$b0)/($a1-$a0):.3f}')"
		stop ${NS}a $W/a
		stop ${NS}b $W/b
	done
done
