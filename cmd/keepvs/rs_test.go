package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRuntimeRealServers(t *testing.T) {
	port := freePort(t)
	newBackend(t, fmt.Sprintf("127.0.0.2:%d", port), false)
	startDaemon(t, fmt.Sprintf("virtual_server 127.0.0.1 %[1]d {\n    protocol TCP\n    delay_loop 0.2\n    real_server 127.0.0.2 %[1]d {\n    }\n}\n", port))
	vs := fmt.Sprintf("TCP 127.0.0.1:%d", port)
	live := fmt.Sprintf("127.0.0.2:%d", port)
	dead := fmt.Sprintf("127.0.0.7:%d", port)

	// A checked real server whose backend does not exist: added, then its
	// TCP_CHECK takes it out (delay_loop comes from its virtual server).
	code, _, stderr := runCmd(t, "keepvs", "rs", "add", vs, fmt.Sprintf("real_server 127.0.0.7 %d {\n weight 4\n TCP_CHECK {\n connect_timeout 0.2\n retry 0\n warmup 0\n }\n}", port))
	if code != 0 {
		t.Fatalf("rs add: %d %s", code, stderr)
	}
	waitTable(t, "checked real server out", 5*time.Second, func(out string) bool { return destLine(out, dead) == nil })
	_, st, _ := runCmd(t, "keepvs", "status")
	if !strings.Contains(st, dead) || !strings.Contains(st, "DOWN") || !strings.Contains(st, "connection refused") {
		t.Errorf("status does not show the added real server down:\n%s", st)
	}
	var probes, late uint64
	if i := strings.Index(st, "checks: "); i < 0 {
		t.Errorf("status has no checks line:\n%s", st)
	} else if _, err := fmt.Sscanf(st[i:], "checks: %d probes started, %d of them", &probes, &late); err != nil || probes == 0 {
		t.Errorf("status checks line %q: %d probes (%v), want some", strings.SplitN(st[i:], "\n", 2)[0], probes, err)
	}

	// Weight of a live one.
	if code, _, stderr := runCmd(t, "keepvs", "rs", "weight", vs, live, "9"); code != 0 {
		t.Fatalf("rs weight: %s", stderr)
	}
	waitTable(t, "weight 9", 5*time.Second, func(out string) bool { f := destLine(out, live); return f != nil && f[3] == "9" })

	// Bad input: clear errors, nothing changes.
	bad := []struct {
		args []string
		msg  string
	}{
		{[]string{"rs", "add", "TCP 10.9.9.9:1", "real_server 127.0.0.8 80 { }"}, "no such virtual server"},
		{[]string{"rs", "add", vs, fmt.Sprintf("real_server 127.0.0.2 %d { }", port)}, "already in this virtual server"},
		{[]string{"rs", "add", vs, "real_server 127.0.0.8 80 {\n weight1\n}"}, "did you mean `weight 1`?"},
		{[]string{"rs", "del", vs, "127.0.0.99:80"}, "no such real server"},
		{[]string{"rs", "weight", vs, live, "x"}, "is not a number"},
	}
	_, before, _ := runCmd(t, "ipvsadm", "-Ln")
	for _, b := range bad {
		code, _, stderr := runCmd(t, append([]string{"keepvs"}, b.args...)...)
		if code == 0 || !strings.Contains(stderr, b.msg) {
			t.Errorf("%v: exit %d stderr %q, want %q", b.args, code, stderr, b.msg)
		}
	}
	if _, after, _ := runCmd(t, "ipvsadm", "-Ln"); after != before {
		t.Errorf("refused calls changed the table:\n%s", after)
	}

	if code, _, stderr := runCmd(t, "keepvs", "rs", "del", vs, live); code != 0 {
		t.Fatalf("rs del: %s", stderr)
	}
	waitTable(t, "removed", 5*time.Second, func(out string) bool { return destLine(out, live) == nil })
}
