package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// backend is a TCP or HTTP server on loopback that a test can stop and
// start again on the same address.
type backend struct {
	addr string
	http bool
	l    net.Listener
	srv  *http.Server
}

func newBackend(t *testing.T, addr string, isHTTP bool) *backend {
	b := &backend{addr: addr, http: isHTTP}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) start(t *testing.T) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if b.l, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if b.http {
		b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
		go b.srv.Serve(b.l)
		return
	}
	go func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(b.l)
}

func (b *backend) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
	if b.l != nil {
		b.l.Close()
		b.l = nil
	}
}

// waitTable polls ipvsadm -Ln until cond holds, returning how long it took.
func waitTable(t *testing.T, what string, limit time.Duration, cond func(string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, out, _ := runCmd(t, "ipvsadm", "-Ln")
		if cond(out) {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v; ipvsadm -Ln:\n%s", what, limit, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// destLine finds "-> ADDR ..." and returns its fields, or nil.
func destLine(out, addr string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "->" && f[1] == addr {
			return f
		}
	}
	return nil
}

func TestChecksEndToEnd(t *testing.T) {
	port, port2 := freePort(t), freePort(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "notify.log")
	notifySh := filepath.Join(dir, "notify.sh")
	os.WriteFile(notifySh, []byte("#!/bin/sh\necho \"$@\" >> "+log+"\n"), 0o755)
	weightSh := filepath.Join(dir, "weight.sh")
	os.WriteFile(weightSh, []byte("#!/bin/sh\nexit 9\n"), 0o755) // misc_dynamic: weight 9-2 = 7
	tcpA := newBackend(t, fmt.Sprintf("127.0.0.2:%d", port), false)
	httpB := newBackend(t, fmt.Sprintf("127.0.0.3:%d", port), true)
	tcpC := newBackend(t, fmt.Sprintf("127.0.0.4:%d", port), false)
	startDaemon(t, fmt.Sprintf(`
virtual_server 127.0.0.1 %[1]d {
    protocol TCP
    lvs_sched wrr
    delay_loop 0.3
    real_server 127.0.0.2 %[1]d {
        weight 2
        notify_up "%[2]s up A"
        notify_down "%[2]s down A"
        TCP_CHECK {
            connect_timeout 0.2
            retry 1
            delay_before_retry 0.1
            warmup 0
        }
    }
    real_server 127.0.0.3 %[1]d {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 0.2
            retry 0
            warmup 0
        }
    }
}
virtual_server 127.0.0.1 %[3]d {
    protocol TCP
    delay_loop 0.3
    quorum 2
    sorry_server 127.0.0.9 %[3]d
    real_server 127.0.0.4 %[1]d {
        weight 2
        TCP_CHECK {
            connect_timeout 0.2
            retry 0
            warmup 0
        }
    }
    real_server 127.0.0.5 %[1]d {
        weight 1
        MISC_CHECK {
            misc_path %[4]s
            misc_dynamic
            warmup 0
        }
    }
}
`, port, notifySh, port2, weightSh))
	a := fmt.Sprintf("127.0.0.2:%d", port)

	// misc_dynamic: exit 9 sets the weight to 7.
	waitTable(t, "misc_dynamic weight", 5*time.Second, func(out string) bool {
		f := destLine(out, fmt.Sprintf("127.0.0.5:%d", port))
		return f != nil && f[3] == "7"
	})

	// A stopped backend leaves within delay_loop + retry*(connect_timeout
	// + delay_before_retry) = 0.3 + 1*(0.2+0.1) = 0.6 s (plus the probe in
	// flight and our polling).
	tcpA.stop()
	took := waitTable(t, "stopped backend removed", 5*time.Second, func(out string) bool { return destLine(out, a) == nil })
	t.Logf("TCP_CHECK real server removed %v after its backend stopped (bound 0.6 s + one probe)", took)
	if took > 2*time.Second {
		t.Errorf("took %v, far beyond delay_loop + retry*(connect_timeout+delay_before_retry)", took)
	}
	tcpA.start(t)
	waitTable(t, "restarted backend back", 5*time.Second, func(out string) bool { return destLine(out, a) != nil })

	// inhibit_on_failure: the HTTP real server stays, at weight 0, and
	// gets its weight back when it answers again.
	b := fmt.Sprintf("127.0.0.3:%d", port)
	httpB.stop()
	waitTable(t, "inhibited real server at weight 0", 5*time.Second, func(out string) bool {
		f := destLine(out, b)
		return f != nil && f[3] == "0"
	})
	httpB.start(t)
	waitTable(t, "inhibited real server back at weight 3", 5*time.Second, func(out string) bool {
		f := destLine(out, b)
		return f != nil && f[3] == "3"
	})

	// Quorum 2 on the second service: the MISC_CHECK failing leaves weight
	// 2 alive (still quorate); stopping the last backend loses quorum and
	// brings the sorry server in; restarting it takes the sorry server out.
	sorry := fmt.Sprintf("127.0.0.9:%d", port2)
	c := fmt.Sprintf("127.0.0.4:%d", port)
	os.WriteFile(weightSh, []byte("#!/bin/sh\nexit 1\n"), 0o755)
	waitTable(t, "failed MISC_CHECK removed", 5*time.Second, func(out string) bool {
		return destLine(out, fmt.Sprintf("127.0.0.5:%d", port)) == nil && destLine(out, sorry) == nil
	})
	tcpC.stop()
	waitTable(t, "quorum lost: sorry server in", 5*time.Second, func(out string) bool {
		return destLine(out, sorry) != nil && destLine(out, c) == nil
	})
	tcpC.start(t)
	waitTable(t, "quorum regained: sorry server out", 5*time.Second, func(out string) bool {
		return destLine(out, sorry) == nil && destLine(out, c) != nil
	})

	// Notify scripts ran in order with their arguments.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := os.ReadFile(log)
		if strings.Contains(string(got), "down A\nup A\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notify log %q, want \"down A\" then \"up A\"", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
