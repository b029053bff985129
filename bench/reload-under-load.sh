#!/usr/bin/env bash
# wrk through a keepvs virtual service while its configuration is reloaded
# 50 times (one real server's weight and an unrelated virtual server change
# each time). Prints wrk's summary: socket errors and non-2xx must be absent.
#
#   bash bench/reload-under-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d); chmod 755 $W
trap 'kill $(jobs -p) 2>/dev/null; nginx -c $W/nginx.conf -s stop 2>/dev/null; wait 2>/dev/null; rm -rf $W' EXIT
CGO_ENABLED=0 go build -o $W/keepvs ./cmd/keepvs
mkdir -p $W/www && echo hello > $W/www/index.html && chmod -R a+rX $W
cat > $W/nginx.conf <<EOC
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.2:18081; listen 127.0.0.3:18081; listen 127.0.0.4:18082; root $W/www; } }
EOC
nginx -c $W/nginx.conf
conf() { cat <<EOC
virtual_server 127.0.0.1 18091 {
  protocol TCP
  lvs_sched wrr
  real_server 127.0.0.2 18081 {
    weight $((1 + $1 % 5))
  }
  real_server 127.0.0.3 18081 {
    weight 5
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
virtual_server 127.0.0.1 18092 {
  protocol TCP
  lvs_sched $( [ $(( $1 % 2 )) = 0 ] && echo rr || echo wlc )
  real_server 127.0.0.4 18082 {
  }
}
EOC
}
conf 0 > $W/k.conf
$W/keepvs -f $W/k.conf --control-socket $W/k.sock -n -l 2>$W/keepvs.log &
KP=$!
for i in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:18091/ && break; sleep 0.1; done
wrk -t1 -c20 -d12s http://127.0.0.1:18091/ > $W/wrk.keepalive &
wrk -t1 -c20 -d12s -H "Connection: close" http://127.0.0.1:18091/ > $W/wrk.newconn &
sleep 1
for i in $(seq 1 50); do conf $i > $W/k.conf; kill -HUP $KP; sleep 0.2; done
wait %2 %3 2>/dev/null || true
echo "reloads done: $(grep -c 'reload done' $W/keepvs.log) of 50; refused or failed: $(grep -c 'reload refused\|applied with errors' $W/keepvs.log || true)"
echo "== wrk keep-alive"; cat $W/wrk.keepalive
echo "== wrk new connection per request"; cat $W/wrk.newconn
