package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTCPCheckSyn: --tcp-check=syn probes half-open as root (and says
// so, and how it reads the answers: --syn-receive), falls back to connect
// with a warning without CAP_NET_RAW; either way a listening real server
// is up, a closed one down, and a stopped one leaves.
func TestTCPCheckSyn(t *testing.T) {
	for _, rx := range []struct{ flag, says string }{{"ring", "packet ring"}, {"ebpf", "eBPF program"}} {
		t.Run(rx.flag, func(t *testing.T) { testTCPCheckSyn(t, rx.flag, rx.says) })
	}
}

func testTCPCheckSyn(t *testing.T, receive, says string) {
	port := freePort(t)
	up := newBackend(t, fmt.Sprintf("127.0.0.2:%d", port), false)
	d := startDaemonD(t, fmt.Sprintf(`
virtual_server 127.0.0.1 %[1]d {
    protocol TCP
    delay_loop 0.2
    real_server 127.0.0.2 %[1]d {
        TCP_CHECK {
            connect_timeout 0.5
            retry 0
            warmup 0
        }
    }
    real_server 127.0.0.3 %[1]d {
        TCP_CHECK {
            connect_timeout 0.5
            retry 0
            warmup 0
        }
    }
}
`, port), "--tcp-check=syn", "--syn-receive="+receive)
	if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP); err == nil {
		unix.Close(fd)
		d.waitLogAny(t, "TCP_CHECK probes half-open", "cannot probe half-open")
		if receive == "ebpf" && strings.Contains(d.logs.String(), "cannot probe half-open") {
			t.Skipf("no eBPF here (CAP_BPF and a kernel with tcx, 6.6+, needed); log:\n%s", d.logs.String())
		}
		d.waitLog(t, `answers="`+says)
	} else {
		d.waitLog(t, "--tcp-check syn: cannot probe half-open; TCP_CHECK connects instead")
	}
	a, b := fmt.Sprintf("127.0.0.2:%d", port), fmt.Sprintf("127.0.0.3:%d", port)
	waitTable(t, "listening real server in, closed one out", 5*time.Second, func(out string) bool {
		return destLine(out, a) != nil && destLine(out, b) == nil
	})
	up.stop()
	waitTable(t, "stopped real server out", 5*time.Second, func(out string) bool { return destLine(out, a) == nil })
	up.start(t)
	waitTable(t, "restarted real server back", 5*time.Second, func(out string) bool { return destLine(out, a) != nil })
}

func TestTCPCheckFlag(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"keepvs", "-f", "/nonexistent", "-l", "--tcp-check=half"}, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `--tcp-check "half": want connect or syn`) {
		t.Errorf("exit %d, stderr %q; want 2 and the flag's error", code, stderr.String())
	}
	stderr.Reset()
	code = run(context.Background(), []string{"keepvs", "-f", "/nonexistent", "-l", "--tcp-check=syn", "--syn-receive=xdp"}, strings.NewReader(""), &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `--syn-receive "xdp": want auto, ebpf, ring or raw`) {
		t.Errorf("exit %d, stderr %q; want 2 and the flag's error", code, stderr.String())
	}
	var help bytes.Buffer
	run(context.Background(), []string{"keepvs", "--help"}, strings.NewReader(""), &help, &bytes.Buffer{})
	if !strings.Contains(help.String(), "--tcp-check=VALUE") {
		t.Errorf("--help does not list --tcp-check:\n%s", help.String())
	}
}
