# Sourced by bench/checks-10k.sh and bench/checks-10k-syn.sh, from the
# repository's root with W set to the work directory: what both need.

# checks_prepare builds keepvs (or copies KEEPVS_BIN) and the ipvsadm
# oracle's LD_PRELOAD stand-in for the kernel's IPVS socket options, which
# lets keepalived's checker run where the kernel has no IPVS.
checks_prepare() {
	if [ -n "${KEEPVS_BIN:-}" ]; then cp "$KEEPVS_BIN" $W/keepvs; else CGO_ENABLED=0 go build -o $W/keepvs ./cmd/keepvs; fi
	gcc -shared -fPIC -O1 -o $W/ipvsshim.so internal/ipvsadm/testdata/oracle/ipvsshim.c -ldl
	touch $W/ipvs.state
}

# checks_conf PREFIX: 100 virtual servers x 100 real servers PREFIX.V.R:9000,
# TCP_CHECK at delay_loop 1, connect_timeout 3.
checks_conf() {
	python3 - "$1" <<'EOP'
import sys
p = sys.argv[1]
print("global_defs {\n router_id bench\n}")
for v in range(100):
    print(f"virtual_server 127.0.0.1 {20000+v} {{\n protocol TCP\n delay_loop 1")
    for r in range(100):
        print(f" real_server {p}.{v}.{r+1} 9000 {{\n  TCP_CHECK {{\n   connect_timeout 3\n  }}\n }}")
    print("}")
EOP
}

# checks_nginx_conf [SERVER]: one nginx worker answering 204 on
# 0.0.0.0:9000 with a deep backlog, plus the server block given.
checks_nginx_conf() {
	cat > $W/nginx.conf <<EOC
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 20000; }
http {
  access_log off;
  server { listen 0.0.0.0:9000 backlog=8192; return 204; }
  ${1:-}
}
EOC
}
