package qemutest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/dataplane/ipvs"
	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// guestEnv is set by the VM's script: the TestGuest* tests run only there,
// against the real kernel.
const guestEnv = "KEEPVS_QEMU_GUEST"

func inGuest(t *testing.T) {
	if os.Getenv(guestEnv) == "" {
		t.Skip("runs inside the qemu VM (TestKernel boots it)")
	}
}

// largeConfig is internal/model's LargeConfig (2,000 x 20 in the
// benchmark) without the TCP_CHECKs, so that what is timed is the data
// plane alone and no probe changes the table while it is measured.
func largeConfig(nvs, nrs int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id large\n}\n")
	for v := 0; v < nvs; v++ {
		fmt.Fprintf(&b, "virtual_server 10.%d.%d.1 80 {\n    delay_loop 6\n    lvs_sched wlc\n    lvs_method NAT\n    protocol TCP\n", v/250, v%250)
		for r := 0; r < nrs; r++ {
			fmt.Fprintf(&b, "    real_server 172.%d.%d.%d 8080 {\n        weight %d\n    }\n", 16+v/256%16, v%256, r+1, 1+r%5)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// write puts src in a file for build.
func write(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "large.conf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// build loads the configuration at path as the daemon does (model.Load).
func build(t *testing.T, path string) *model.Config {
	t.Helper()
	c, diags := model.Load(path, conf.Options{ConfigID: "large"})
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return c
}

// TestGuestLarge loads 2,000 virtual servers x 20 real servers into the
// kernel through the engine, then reloads a configuration that differs in
// one weight: that must be one netlink request, an edit.
func TestGuestLarge(t *testing.T) {
	inGuest(t)
	ctx := context.Background()
	nvs, nrs := 2000, 20
	src := largeConfig(nvs, nrs)
	path := write(t, src)
	t0 := time.Now()
	cfg := build(t, path)
	parse := time.Since(t0)

	k, err := ipvs.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	own := ipvs.NewOwner(k)
	if err := own.Start(ctx, true); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(own, slog.New(slog.NewTextHandler(io.Discard, nil)), engine.Options{})
	before := k.Ops()
	t1 := time.Now()
	if err := eng.Load(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := own.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	load := time.Since(t1)
	ops := k.Ops()
	loadChanges := ops.Changes() - before.Changes()
	fmt.Printf("BENCH keepvs-load vs=%d rs=%d parse_s=%.3f apply_s=%.3f changes=%d %s\n", nvs, nrs, parse.Seconds(), load.Seconds(), loadChanges, ops)
	if want := int64(nvs + nvs*nrs); loadChanges != want { // one request per service and per destination
		t.Errorf("load sent %d changes, want %d", loadChanges, want)
	}

	svcs, err := k.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nd := 0
	for _, s := range svcs {
		nd += len(s.Dests)
	}
	if len(svcs) != nvs || nd != nvs*nrs {
		t.Errorf("kernel has %d services, %d destinations", len(svcs), nd)
	}

	// One weight: real server 172.16.0.2 of the first virtual server.
	cfg2 := build(t, write(t, strings.Replace(src, "172.16.0.2 8080 {\n        weight 2\n", "172.16.0.2 8080 {\n        weight 9\n", 1)))
	before = k.Ops()
	t2 := time.Now()
	if err := eng.Reload(ctx, cfg2); err != nil {
		t.Fatal(err)
	}
	reload := time.Since(t2)
	after := k.Ops()
	fmt.Printf("BENCH keepvs-reload-one-weight reload_s=%.3f changes=%d edit_dest=%d\n", reload.Seconds(), after.Changes()-before.Changes(), after.EditDest-before.EditDest)
	if after.Changes()-before.Changes() != 1 || after.EditDest-before.EditDest != 1 {
		t.Errorf("reload of one weight: %s then %s", before, after)
	}

	t3 := time.Now()
	if err := own.Release(ctx, ""); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCH keepvs-release release_s=%.3f\n", time.Since(t3).Seconds())
	if svcs, _ := k.Services(ctx); len(svcs) != 0 {
		t.Errorf("%d services left after release", len(svcs))
	}
}

// TestGuestBulkErrors: in a batch only the last request asks for an
// acknowledgement; the real kernel must still answer every refused request,
// in the middle of a batch and at its end, and take the others.
func TestGuestBulkErrors(t *testing.T) {
	inGuest(t)
	ctx := context.Background()
	k, err := ipvs.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	defer k.Flush(ctx)
	svc := func(i int, sched string) lvs.Service {
		return lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.AddrFrom4([4]byte{10, 99, 0, byte(i)}), Port: 80},
			Scheduler: sched, Netmask: 0xffffffff}
	}
	dest := func(i int) lvs.DestStatus {
		return lvs.DestStatus{Destination: lvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 98, 0, byte(i)}), Port: 80, Weight: 1, Forward: lvs.Masq}}
	}
	want := []lvs.ServiceStatus{
		{Service: svc(1, "rr"), Dests: []lvs.DestStatus{dest(1), dest(1), dest(2)}}, // the second dest(1): EEXIST
		{Service: svc(2, "nosuch")},                                         // ENOENT: no such scheduler
		{Service: svc(3, "wlc"), Dests: []lvs.DestStatus{dest(3), dest(3)}}, // the last request of its batch refused
		{Service: svc(1, "rr")},                                             // EEXIST, the last service
	}
	errs := k.AddBulk(ctx, want)
	for _, c := range []struct {
		i, j int
		want error
	}{
		{0, 0, nil}, {0, 1, nil}, {0, 2, lvs.ErrDestExists}, {0, 3, nil},
		{1, 0, lvs.ErrNoScheduler},
		{2, 0, nil}, {2, 1, nil}, {2, 2, lvs.ErrDestExists},
		{3, 0, lvs.ErrServiceExists},
	} {
		if got := errs[c.i][c.j]; (c.want == nil) != (got == nil) || c.want != nil && !errors.Is(got, c.want) {
			t.Errorf("request %d/%d: %v, want %v", c.i, c.j, got, c.want)
		}
	}
	svcs, err := k.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 || len(svcs[0].Dests)+len(svcs[1].Dests) != 3 {
		t.Errorf("kernel table after the batch: %+v", svcs)
	}
}
