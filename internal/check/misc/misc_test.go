package misc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		dynamic bool
		ok      bool
		weight  int // -1: none
		reason  string
	}{
		{"exit 0", "exit 0", false, true, -1, ""},
		{"exit 1", "exit 1", false, false, -1, "exited with status 1"},
		{"exit 7 not dynamic", "exit 7", false, false, -1, "exited with status 7"},
		{"exit 7 dynamic: weight 5", "exit 7", true, true, 5, ""},
		{"exit 2 dynamic: weight 0", "exit 2", true, true, 0, ""},
		{"exit 255 dynamic: weight 253", "exit 255", true, true, 253, ""},
		{"exit 1 dynamic is down", "exit 1", true, false, -1, "exited with status 1"},
		{"exit 0 dynamic: configured weight", "exit 0", true, true, -1, ""},
		{"killed", "kill -9 $$", false, false, -1, "killed by signal 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := (&Checker{Argv: []string{script(t, tt.body)}, Dynamic: tt.dynamic}).Check(ctx)
			if res.OK != tt.ok || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Check = %+v, want ok=%v reason %q", res, tt.ok, tt.reason)
			}
			switch {
			case tt.weight < 0 && res.Weight != nil:
				t.Errorf("weight %d, want none", *res.Weight)
			case tt.weight >= 0 && (res.Weight == nil || *res.Weight != tt.weight):
				t.Errorf("weight %v, want %d", res.Weight, tt.weight)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	p := script(t, `[ "$1" = "a b" ] && [ "$2" = c ]`)
	if res := (&Checker{Argv: []string{p, "a b", "c"}}).Check(context.Background()); !res.OK {
		t.Errorf("Check = %+v", res)
	}
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "child.pid")
	// The script ignores SIGTERM and leaves a child behind; both must go.
	p := script(t, "trap '' TERM\nsleep 30 &\necho $! > "+pidfile+"\nwait")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := (&Checker{Argv: []string{p}, KillGrace: 200 * time.Millisecond}).Check(ctx)
	if res.OK || !strings.Contains(res.Reason, "timed out") {
		t.Errorf("Check = %+v, want timed out", res)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		// A zombie until reaped by init still answers; check its state.
		st, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
		if strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed out script still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScriptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a script as another user needs root")
	}
	// t.TempDir's parent is private to root; nobody needs a way in.
	dir, err := os.MkdirTemp("", "keepvs-misc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "uid")
	p := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nid -u > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res := (&Checker{Argv: []string{p}, User: "nobody"}).Check(context.Background())
	if !res.OK {
		t.Fatalf("Check = %+v", res)
	}
	b, _ := os.ReadFile(out)
	if strings.TrimSpace(string(b)) == "0" {
		t.Error("script ran as root, want nobody")
	}
}
