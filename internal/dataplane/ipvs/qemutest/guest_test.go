package qemutest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/dataplane/ipvs"
	"github.com/keepvs/keepvs/internal/engine"
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

func build(t *testing.T, src string) *model.Config {
	t.Helper()
	f, diags := conf.Parse("large.conf", []byte(src), conf.Options{ConfigID: "large"})
	c, more := model.Build(f)
	if d := append(diags, more...); d.HasErrors() {
		t.Fatalf("config: %v", d)
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
	t0 := time.Now()
	cfg := build(t, src)
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
	cfg2 := build(t, strings.Replace(src, "172.16.0.2 8080 {\n        weight 2\n", "172.16.0.2 8080 {\n        weight 9\n", 1))
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
