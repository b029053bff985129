#!/usr/bin/env bash
# keepvs's userspace data plane against HAProxy (mode tcp) on loopback: the
# same nginx backends, the same wrk commands, one run. Prints a markdown
# table of requests/s, transfer/s and p99 latency, and the ratios.
#
#   bash bench/proxy-vs-haproxy.sh [seconds] [threads]
#
# Needs nginx, haproxy, wrk (apt-get install -y nginx-light haproxy wrk).
# threads: HAProxy nbthread and keepvs GOMAXPROCS (default 1, as in
# ../shared/notes/testbeds.md's measurements).
set -euo pipefail
DUR=${1:-10}
THREADS=${2:-1}
cd "$(dirname "$0")/.."
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; nginx -c $W/nginx.conf -s stop 2>/dev/null; wait 2>/dev/null; rm -rf $W' EXIT

CGO_ENABLED=0 go build -o $W/keepvs ./cmd/keepvs
mkdir -p $W/www && head -c 612 /dev/urandom | base64 > $W/www/index.html && head -c 100000000 /dev/zero > $W/www/100m.bin
chmod -R a+rX $W    # nginx's workers run unprivileged
cat > $W/nginx.conf <<EOC
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:18081 backlog=4096; listen 127.0.0.1:18082 backlog=4096; root $W/www; }
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
  bind 127.0.0.1:18090
  default_backend b
backend b
  balance roundrobin
  server s1 127.0.0.1:18081
  server s2 127.0.0.1:18082
EOC
haproxy -f $W/haproxy.cfg -D -p $W/haproxy.pid
cat > $W/keepvs.conf <<EOC
virtual_server 127.0.0.1 18091 {
  protocol TCP
  lvs_sched rr
  real_server 127.0.0.1 18081 {
  }
  real_server 127.0.0.1 18082 {
  }
}
EOC
GOMAXPROCS=$THREADS $W/keepvs -f $W/keepvs.conf --control-socket $W/k.sock -n 2>$W/keepvs.log &
for i in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18091/ && break; sleep 0.1; done

run() { # name url wrk-args...
  local name=$1 url=$2; shift 2
  wrk -t1 -c50 -d${DUR}s --latency "$@" "$url" > $W/out.$name 2>&1 || true
  if grep -q "Non-2xx" $W/out.$name; then echo "error responses in $name:" >&2; cat $W/out.$name >&2; exit 1; fi
  local rps tps p99
  rps=$(awk '/Requests\/sec/ {print $2}' $W/out.$name)
  tps=$(awk '/Transfer\/sec/ {print $2}' $W/out.$name)
  p99=$(awk '$1=="99%" {print $2}' $W/out.$name)
  echo "$rps $tps $p99"
}
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
tobytes() { python3 -c "
s='$1'; m={'B':1,'KB':1e3,'MB':1e6,'GB':1e9}
for k in ('GB','MB','KB','B'):
    if s.endswith(k): print(float(s[:-len(k)])*m[k]); break
"; }

printf "| test (%ss, wrk -t1, %s thread) | direct nginx | HAProxy 2.6 | keepvs proxy | keepvs / HAProxy |\n|---|---|---|---|---|\n" "$DUR" "$THREADS"
for t in keepalive newconn bulk; do
  case $t in
    keepalive) args=(); path=/ ;;
    newconn) args=(-H "Connection: close"); path=/ ;;
    bulk) args=(-c4); path=/100m.bin ;;
  esac
  read -r d_rps d_tps d_p99 <<<"$(run d$t http://127.0.0.1:18081$path "${args[@]}")"
  read -r h_rps h_tps h_p99 <<<"$(run h$t http://127.0.0.1:18090$path "${args[@]}")"
  read -r k_rps k_tps k_p99 <<<"$(run k$t http://127.0.0.1:18091$path "${args[@]}")"
  if [ $t = bulk ]; then
    hb=$(tobytes $h_tps); kb=$(tobytes $k_tps)
    echo "| bulk 100 MB transfer/s | $d_tps | $h_tps | $k_tps | $(ratio $kb $hb) |"
  else
    echo "| $t requests/s | $d_rps | $h_rps | $k_rps | $(ratio $k_rps $h_rps) |"
    echo "| $t p99 latency | $d_p99 | $h_p99 | $k_p99 | |"
  fi
done
kill -TERM $(cat $W/haproxy.pid) 2>/dev/null || true
