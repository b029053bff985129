package qemu

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBoot boots the kernel once and reads IPVS with the real ipvsadm.
func TestBoot(t *testing.T) {
	h, err := Find()
	if err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("boots a VM; skipped with -short")
	}
	im, err := NewImage(h, t.TempDir()+"/root")
	if err != nil {
		t.Fatal(err)
	}
	if err := im.AddBinary("/usr/sbin/ipvsadm", ""); err != nil {
		t.Skipf("ipvsadm: %v", err)
	}
	if err := im.AddModules(IPVSModules...); err != nil {
		t.Fatal(err)
	}
	initrd, err := im.Pack("ipvsadm -A -t 10.0.0.1:80 -s wrr && ipvsadm -Ln\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := Boot(context.Background(), h, initrd, 256, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booted and ran in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "TCP  10.0.0.1:80 wrr") {
		t.Errorf("no service listed:\n%s", out)
	}
}
