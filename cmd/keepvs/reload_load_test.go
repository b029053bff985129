package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestReloadUnderLoad reloads the configuration 50 times while HTTP clients
// run through a virtual service: each reload changes one real server's
// weight and an unrelated virtual server. No request may fail, and the
// unchanged real server is never removed: its connection counter (which a
// removed and re-added destination would restart from zero) only grows.
func TestReloadUnderLoad(t *testing.T) {
	port, other := freePort(t), freePort(t)
	newBackend(t, fmt.Sprintf("127.0.0.2:%d", port), true)
	newBackend(t, fmt.Sprintf("127.0.0.3:%d", port), true)
	conf := func(i int) string {
		scheds := []string{"rr", "wlc", "sh"}
		extra := ""
		if i%2 == 1 {
			extra = fmt.Sprintf("    real_server 127.0.0.5 %d {\n    }\n", other)
		}
		return fmt.Sprintf(`
virtual_server 127.0.0.1 %[1]d {
    protocol TCP
    lvs_sched wrr
    delay_loop 0.2
    real_server 127.0.0.2 %[1]d {
        weight %[3]d
    }
    real_server 127.0.0.3 %[1]d {
        weight 5
        TCP_CHECK {
            connect_timeout 0.5
            warmup 0
        }
    }
}
virtual_server 127.0.0.1 %[2]d {
    protocol TCP
    lvs_sched %[4]s
    real_server 127.0.0.4 %[2]d {
    }
%[5]s}
`, port, other, 1+i%5, scheds[i%3], extra)
	}
	d := startDaemonD(t, conf(0))
	stableRS := fmt.Sprintf("127.0.0.3:%d", port)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := func(keepAlive bool) {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				continue
			}
			ok.Add(1)
		}
	}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go client(i%3 == 0)
	}

	var lastConns uint64
	for i := 1; i <= 50; i++ {
		if err := os.WriteFile(d.config, []byte(conf(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		d.waitLogCount(t, "reload done", i)
		_, out, _ := runCmd(t, "ipvsadm", "-Ln", "--stats")
		f := destLine(out, stableRS)
		if f == nil {
			t.Fatalf("reload %d removed the unchanged real server:\n%s", i, out)
		}
		conns, _ := strconv.ParseUint(f[2], 10, 64)
		if conns < lastConns {
			t.Fatalf("reload %d: the unchanged real server's connection count went back from %d to %d (it was removed and re-added)", i, lastConns, conns)
		}
		lastConns = conns
	}
	close(stop)
	wg.Wait()
	t.Logf("50 reloads under load: %d requests, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during reloads; first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests went through: the load did not run", ok.Load())
	}
	if strings.Contains(d.logs.String(), "reload applied with errors") {
		t.Errorf("a reload had errors:\n%s", d.logs.String())
	}
}
