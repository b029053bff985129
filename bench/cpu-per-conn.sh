#!/usr/bin/env bash
# CPU per proxied new connection: keepvs's userspace data plane against
# HAProxy (mode tcp) on loopback, the same nginx backends and the same
# `wrk -t1 -c50 -H "Connection: close"` against each. CPU is the proxy
# process's utime+stime from /proc/PID/stat (all threads) over the run,
# divided by the requests wrk completed: on a shared, noisy machine this is
# steadier than requests/s.
#
#   bash bench/cpu-per-conn.sh [seconds] [threads] [rounds]
#
# Needs nginx, haproxy, wrk (apt-get install -y nginx-light haproxy wrk).
# threads: HAProxy nbthread and keepvs GOMAXPROCS (default 1). rounds
# alternates the two proxies that many times (default 3).
# KEEPVS_BIN=path measures that binary instead of building ./cmd/keepvs.
set -euo pipefail
DUR=${1:-8}
THREADS=${2:-1}
ROUNDS=${3:-3}
cd "$(dirname "$0")/.."
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -f $W/haproxy.pid ] && kill $(cat $W/haproxy.pid) 2>/dev/null; nginx -c $W/nginx.conf -s stop 2>/dev/null; wait 2>/dev/null; rm -rf $W' EXIT

if [ -n "${KEEPVS_BIN:-}" ]; then cp "$KEEPVS_BIN" $W/keepvs; else CGO_ENABLED=0 go build -o $W/keepvs ./cmd/keepvs; fi
mkdir -p $W/www && head -c 612 /dev/urandom | base64 > $W/www/index.html
chmod -R a+rX $W    # nginx's workers run unprivileged
cat > $W/nginx.conf <<EOC
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:18181 backlog=4096; listen 127.0.0.1:18182 backlog=4096; root $W/www; }
}
EOC
nginx -c $W/nginx.conf
cat > $W/haproxy.cfg <<EOC
global
  nbthread $THREADS
  maxconn 5000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend f
  bind 127.0.0.1:18190
  default_backend b
backend b
  balance roundrobin
  server s1 127.0.0.1:18181
  server s2 127.0.0.1:18182
EOC
haproxy -f $W/haproxy.cfg -D -p $W/haproxy.pid
cat > $W/keepvs.conf <<EOC
virtual_server 127.0.0.1 18191 {
  protocol TCP
  lvs_sched rr
  real_server 127.0.0.1 18181 {
  }
  real_server 127.0.0.1 18182 {
  }
}
EOC
GOMAXPROCS=$THREADS $W/keepvs -f $W/keepvs.conf --control-socket $W/k.sock -n 2>$W/keepvs.log &
KPID=$!
for i in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18191/ && break; sleep 0.1; done
for i in $(seq 50); do [ -s $W/haproxy.pid ] && curl -fs -o /dev/null http://127.0.0.1:18190/ && break; sleep 0.1; done
HPID=$(head -1 $W/haproxy.pid)
TCK=$(getconf CLK_TCK)

ticks() { awk '{print $14+$15}' /proc/$1/stat; }
measure() { # pid port -> "us/conn req/s"
  local pid=$1 port=$2 t0 t1 req rps
  t0=$(ticks $pid)
  wrk -t1 -c50 -d${DUR}s -H "Connection: close" http://127.0.0.1:$port/ > $W/out 2>&1 || true
  t1=$(ticks $pid)
  if grep -q "Non-2xx\|Socket errors" $W/out; then echo "errors:" >&2; cat $W/out >&2; fi
  req=$(awk '/requests in/ {print $1}' $W/out)
  rps=$(awk '/Requests\/sec/ {print $2}' $W/out)
  python3 -c "print(f'{($t1-$t0)/$TCK*1e6/$req:.1f} {$rps:.0f}')"
}

printf "| round (%ss, wrk -t1 -c50 Connection: close, %s thread) | HAProxy µs/conn | keepvs µs/conn | HAProxy req/s | keepvs req/s | keepvs/HAProxy req/s |\n|---|---|---|---|---|---|\n" "$DUR" "$THREADS"
for r in $(seq $ROUNDS); do
  read -r hus hrps <<<"$(measure $HPID 18190)"
  read -r kus krps <<<"$(measure $KPID 18191)"
  echo "| $r | $hus | $kus | $hrps | $krps | $(python3 -c "print(f'{$krps/$hrps:.2f}x')") |"
done
