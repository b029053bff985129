#!/usr/bin/env bash
# 10,000 real servers with TCP_CHECK at delay_loop 1 (100 virtual servers x
# 100 real servers, 127.1.V.R:9000, one nginx accepting on 0.0.0.0:9000):
# keepvs's daemon against keepalived 2.2.7's checker, one after the other in
# the same run. CPU is utime+stime from /proc/PID/stat (all threads; for
# keepalived the parent and its checker child) over the measured window,
# after a warm-up; memory is VmRSS at the end (summed for keepalived).
#
#   bash bench/checks-10k.sh [seconds] [rounds]
#
# keepalived's checker exits on a kernel without IPVS ("IPVS: Can't
# initialize ipvs"); here it runs with the LD_PRELOAD stand-in for the
# kernel's IPVS socket options that the ipvsadm oracle test uses
# (internal/ipvsadm/testdata/oracle/ipvsshim.c: gets answer "empty table",
# sets succeed and are dropped), so both programs check the same servers
# and neither programs a kernel. Needs gcc, nginx, keepalived.
# KEEPVS_BIN=path measures that binary instead of building ./cmd/keepvs.
set -euo pipefail
DUR=${1:-30}
ROUNDS=${2:-1}
WARM=${KEEPVS_BENCH_WARM:-20}   # keepalived takes ~15 s to reach its full rate
cd "$(dirname "$0")/.."
W=$(mktemp -d)
trap 'set +e; kill $(jobs -p) 2>/dev/null; for p in $W/*.pid; do [ -f "$p" ] && kill $(cat "$p") 2>/dev/null; done; wait 2>/dev/null; rm -rf $W' EXIT

. bench/checks-common.sh
checks_prepare

checks_nginx_conf 'server { listen 127.0.0.1:9099; location / { stub_status; } }'
nginx -c $W/nginx.conf

checks_conf 127.1 > $W/checks.conf

ticks=$(getconf CLK_TCK)
accepts() { curl -s http://127.0.0.1:9099/ | awk 'NR==3{print $1}'; }
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
rss() { local t=0; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/{print $2}' /proc/$p/status))); done; echo $t; }

# measure NAME PID...: CPU share of one core over DUR seconds, RSS in MB
measure() {
	local name=$1; shift
	sleep $WARM
	local c0 t0 c1 t1
	c0=$(cpu "$@"); t0=$(date +%s.%N); a0=$(accepts)
	sleep "$DUR"
	c1=$(cpu "$@"); t1=$(date +%s.%N); a1=$(accepts)
	python3 -c "c=($c1-$c0)/$ticks; w=$t1-$t0; n=$a1-$a0; print(f'%-10s CPU %5.1f%% of one core   RSS %4.0f MB   checks made %6.0f/s   CPU per check %5.1f us' % ('$name', 100*c/w, $(rss "$@")/1024, n/w, 1e6*c/max(n,1)))"
	echo "$name $c0 $c1 $t0 $t1 $(rss "$@")" >> $W/results
}

for round in $(seq "$ROUNDS"); do
	$W/keepvs -f $W/checks.conf -n -l -C --dataplane proxy -p $W/keepvs.pid --control-socket $W/keepvs.sock >$W/keepvs.log 2>&1 &
	kp=$!
	measure keepvs $kp
	down=$(grep -c "up=false" $W/keepvs.log || true)
	kill $kp; wait $kp 2>/dev/null || true
	echo "           real servers reported down: $down"

	LD_PRELOAD=$W/ipvsshim.so IPVSSHIM_STATE=$W/ipvs.state keepalived -f $W/checks.conf -C -n -l -D \
		-p $W/ka.pid -c $W/kachk.pid >$W/ka.log 2>&1 &
	ka=$!
	for _ in $(seq 50); do [ -s $W/kachk.pid ] && break; sleep 0.1; done
	measure keepalived $ka "$(cat $W/kachk.pid)"
	down=$(grep -c "failed\." $W/ka.log || true)
	kill $ka; wait $ka 2>/dev/null || true
	echo "           real servers reported down: $down"
	rm -f $W/kachk.pid
done
