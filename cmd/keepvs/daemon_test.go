package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is a keepvs running in-process for a test.
type daemon struct {
	sock, config string
	logs         *lockedWriter
}

// waitLog waits until the daemon's log has s.
func (d *daemon) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon never logged %q; log:\n%s", s, d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLogAny waits until the daemon's log has one of ss.
func (d *daemon) waitLogAny(t *testing.T, ss ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(ss, func(s string) bool { return strings.Contains(d.logs.String(), s) }) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon never logged any of %q; log:\n%s", ss, d.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLogCount waits until the daemon's log has s at least n times.
func (d *daemon) waitLogCount(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(d.logs.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("daemon logged %q %d times, want %d; log:\n%s", s, strings.Count(d.logs.String(), s), n, d.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startDaemon runs `keepvs -f` on a configuration in-process and returns its
// control socket; the daemon stops when the test ends. startDaemonD adds
// flags to the command line.
func startDaemon(t *testing.T, config string) string { return startDaemonD(t, config).sock }

func startDaemonD(t *testing.T, config string, flags ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "k.sock")
	t.Setenv("KEEPVS_SOCKET", sock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	go func() {
		done <- run(ctx, append([]string{"keepvs", "-f", cfg, "-n", "-l"}, flags...), strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("daemon exited %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop within 10s of SIGTERM")
		}
		if _, err := os.Stat(sock); err == nil {
			t.Error("control socket left behind after a clean stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return &daemon{sock: sock, config: cfg, logs: logs}
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("daemon exited %d before serving:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not open its control socket in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestAdmAgainstDaemon(t *testing.T) {
	port := freePort(t)
	startDaemon(t, fmt.Sprintf(`
virtual_server 127.0.0.1 %d {
    protocol TCP
    lvs_sched wrr
    real_server 127.0.0.2 %d {
        weight 10
    }
    real_server 127.0.0.3 %d {
        weight 5
    }
}
`, port, port, port))
	vs := fmt.Sprintf("127.0.0.1:%d", port)
	code, before, stderr := runCmd(t, "ipvsadm", "-Ln")
	if code != 0 {
		t.Fatalf("ipvsadm -Ln: %d %s", code, stderr)
	}
	// ipvsadm sorts destinations by address.
	want := fmt.Sprintf("TCP  %s wrr\n  -> 127.0.0.2:%d", vs, port)
	if !strings.Contains(before, want) || !strings.Contains(before, "IP Virtual Server version 1.2.1 (size=4096)") {
		t.Fatalf("ipvsadm -Ln:\n%s\nwant it to contain:\n%s", before, want)
	}
	bad := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-A", "-t", vs, "-s", "rr"}, 255, "Service already exists"},
		{[]string{"-A", "-t", "127.0.0.1:99999"}, 2, "illegal virtual server address[:port] specified"},
		{[]string{"-A", "-t", "127.0.0.9:80", "-s", "nosuch"}, 255, "Scheduler or persistence engine not found"},
		{[]string{"-a", "-t", "127.0.0.9:80", "-r", "127.0.0.2:80"}, 255, "Service not defined"},
		{[]string{"-a", "-t", vs, "-r", fmt.Sprintf("127.0.0.2:%d", port)}, 255, "Destination already exists"},
		{[]string{"-d", "-t", vs, "-r", "127.0.0.7:80"}, 255, "No such destination"},
	}
	for _, b := range bad {
		code, _, stderr := runCmd(t, append([]string{"keepvs", "adm"}, b.args...)...)
		if code != b.code || !strings.Contains(stderr, b.msg) {
			t.Errorf("keepvs adm %v: exit %d, stderr %q; want %d and %q", b.args, code, stderr, b.code, b.msg)
		}
	}
	if _, after, _ := runCmd(t, "ipvsadm", "-Ln"); after != before {
		t.Errorf("refused commands changed the table:\nbefore\n%s\nafter\n%s", before, after)
	}
	// Good commands change it, through the same path (-m: without it
	// ipvsadm -e means -g, as the real one does).
	if code, _, stderr := runCmd(t, "ipvsadm", "-e", "-t", vs, "-r", fmt.Sprintf("127.0.0.3:%d", port), "-m", "-w", "0"); code != 0 {
		t.Fatalf("-e: %d %s", code, stderr)
	}
	_, after, _ := runCmd(t, "ipvsadm", "-Ln")
	changed := false
	for _, l := range strings.Split(after, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == fmt.Sprintf("127.0.0.3:%d", port) {
			changed = f[2] == "Masq" && f[3] == "0"
		}
	}
	if !changed {
		t.Errorf("weight not changed:\n%s", after)
	}
}

func TestAdmWithoutDaemon(t *testing.T) {
	t.Setenv("KEEPVS_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
	code, _, stderr := runCmd(t, "ipvsadm", "-Ln")
	if code == 0 || !strings.Contains(stderr, "no keepvs daemon on") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	// Like the real ipvsadm, even -v opens the table first and fails.
	if code, _, stderr := runCmd(t, "ipvsadm", "-v"); code != 2 || !strings.Contains(stderr, "Can't initialize ipvs") {
		t.Errorf("-v without a table: exit %d %q", code, stderr)
	}
}

// lockedWriter serializes the daemon's log writes.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func TestReloadOnSIGHUP(t *testing.T) {
	port := freePort(t)
	conf := func(weight string) string {
		return fmt.Sprintf("virtual_server 127.0.0.1 %d {\n    protocol TCP\n    real_server 127.0.0.2 %d {\n        %s\n    }\n}\n", port, port, weight)
	}
	d := startDaemonD(t, conf("weight 4"))
	_, before, _ := runCmd(t, "ipvsadm", "-Ln")

	// A typo: refused with its file:line, the table as it was.
	if err := os.WriteFile(d.config, []byte(conf("weight5")), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	d.waitLog(t, "reload refused")
	if !strings.Contains(d.logs.String(), d.config+":4:9: weight5: unknown keyword in real_server; did you mean `weight 5`?") {
		t.Errorf("the refusal does not say where:\n%s", d.logs.String())
	}
	if _, after, _ := runCmd(t, "ipvsadm", "-Ln"); after != before {
		t.Errorf("a refused reload changed the table:\n%s", after)
	}

	// The fix applies.
	if err := os.WriteFile(d.config, []byte(conf("weight 5")), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	d.waitLog(t, "reload done")
	_, after, _ := runCmd(t, "ipvsadm", "-Ln")
	if !strings.Contains(after, "Masq    5") {
		t.Errorf("reload did not apply the new weight:\n%s", after)
	}
}
