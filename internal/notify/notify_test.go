package notify

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/model"
)

func script(cmd string) model.Script {
	argv, _ := model.SplitArgv(cmd)
	return model.Script{Cmd: cmd, Argv: argv}
}

// TestOrderPerSubject: scripts of one subject run one at a time in the order
// queued, even when an earlier one is slow; other subjects do not wait.
func TestOrderPerSubject(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	release := make(chan struct{})
	r := New(Options{Exec: func(ctx context.Context, argv []string, uid, gid int) error {
		if argv[1] == "slow" {
			<-release
		}
		mu.Lock()
		ran = append(ran, strings.Join(argv[1:], " "))
		mu.Unlock()
		return nil
	}})
	r.Run("rs1", script("/n slow"), "DOWN")
	r.Run("rs1", script("/n fast"), "UP")
	r.Run("rs2", script("/n other"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(ran)
		mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	if len(ran) != 1 || ran[0] != "other" {
		t.Fatalf("while rs1's first script runs, only rs2's may finish: %v", ran)
	}
	mu.Unlock()
	close(release)
	r.Wait()
	if got := strings.Join(ran, ","); got != "other,slow DOWN,fast UP" {
		t.Errorf("order %s", got)
	}
}

func TestRealScriptArgsAndTimeout(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	sh := filepath.Join(dir, "n.sh")
	os.WriteFile(sh, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755)
	r := New(Options{Timeout: 200 * time.Millisecond})
	r.Run("vi", script(sh+" 'a b'"), "INSTANCE", "VI_1", "MASTER", "100")
	hang := filepath.Join(dir, "hang.sh")
	os.WriteFile(hang, []byte("#!/bin/sh\nsleep 30 &\nwait\n"), 0o755)
	start := time.Now()
	r.Run("vi", script(hang))
	r.Run("vi", script(sh+" after"))
	r.Wait()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a hung script held the queue %v", took)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "a b INSTANCE VI_1 MASTER 100\nafter\n" {
		t.Errorf("script output %q", b)
	}
}

func TestSecurity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("script security applies to scripts run as root; not root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	good := filepath.Join(dir, "good.sh")
	os.WriteFile(good, []byte("#!/bin/sh\n"), 0o755)
	if err := CheckSecurity(good, -1); err != nil {
		t.Errorf("root-owned 0755 script refused: %v", err)
	}
	bad := filepath.Join(dir, "bad.sh")
	os.WriteFile(bad, []byte("#!/bin/sh\n"), 0o757)
	os.Chmod(bad, 0o757)
	if err := CheckSecurity(bad, -1); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "writable by everyone") {
		t.Errorf("world-writable script: %v", err)
	}
	open := t.TempDir()
	os.Chmod(open, 0o777)
	inOpen := filepath.Join(open, "s.sh")
	os.WriteFile(inOpen, []byte("#!/bin/sh\n"), 0o755)
	if err := CheckSecurity(inOpen, -1); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), open) {
		t.Errorf("script in a world-writable directory: %v", err)
	}
	if err := CheckSecurity("/nonexistent/x.sh", -1); err == nil {
		t.Error("missing script accepted")
	}
}

func TestFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	f, err := OpenFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	vs := ServiceName("TCP", netip.MustParseAddr("192.168.201.15"), 80)
	f.Write(InstanceLine("instance", "VI_1", "MASTER", 100))
	f.Write(VSLine(vs, true))
	f.Write(RSLine(ServiceName("TCP", netip.MustParseAddr("1.2.3.4"), 80), vs, false))
	sc := bufio.NewScanner(r)
	var got []string
	for len(got) < 3 && sc.Scan() {
		got = append(got, sc.Text())
	}
	want := []string{`INSTANCE "VI_1" MASTER 100`, "VS [192.168.201.15]:tcp:80 UP", "RS [1.2.3.4]:tcp:80 [192.168.201.15]:tcp:80 DOWN"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
	f.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a FIFO keepvs created was left behind")
	}
}
