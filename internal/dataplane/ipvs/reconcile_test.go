package ipvs

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

func svc(addr string, port uint16, sched string) lvs.Service {
	return lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddr(addr), Port: port}, Scheduler: sched, Netmask: 0xffffffff}
}

func dst(addr string, w int) lvs.DestStatus {
	return lvs.DestStatus{Destination: lvs.Destination{Addr: netip.MustParseAddr(addr), Port: 80, Weight: w}}
}

func TestPlan(t *testing.T) {
	a, b, c := svc("10.0.0.1", 80, "wlc"), svc("10.0.0.2", 80, "rr"), svc("10.0.0.3", 80, "rr")
	b2 := b
	b2.Scheduler = "wrr"
	have := []lvs.ServiceStatus{
		{Service: a, Dests: []lvs.DestStatus{dst("10.1.0.1", 1), dst("10.1.0.2", 1), dst("10.1.0.3", 1)}},
		{Service: b},
		{Service: c},
	}
	have[0].Service.Flags |= lvs.FlagHashed // as the kernel lists it
	want := []lvs.ServiceStatus{
		{Service: a, Dests: []lvs.DestStatus{dst("10.1.0.4", 1), dst("10.1.0.2", 5), dst("10.1.0.1", 1)}},
		{Service: b2},
		{Service: svc("10.0.0.4", 80, "sh"), Dests: []lvs.DestStatus{dst("10.1.0.9", 2)}},
	}
	var got []string
	for _, o := range Plan(have, want) {
		got = append(got, o.String())
	}
	wantOps := []string{
		"EditDest TCP 10.0.0.1:80 10.1.0.2:80 w5",
		"AddDest TCP 10.0.0.1:80 10.1.0.4:80 w1",
		"DelDest TCP 10.0.0.1:80 10.1.0.3:80 w1",
		"EditService TCP 10.0.0.2:80",
		"AddService TCP 10.0.0.4:80",
		"AddDest TCP 10.0.0.4:80 10.1.0.9:80 w2",
		"DelService TCP 10.0.0.3:80",
	}
	if strings.Join(got, "\n") != strings.Join(wantOps, "\n") {
		t.Errorf("plan (-want +got):\n-%s\n+%s", strings.Join(wantOps, "\n-"), strings.Join(got, "\n+"))
	}
}

func loadConf(t *testing.T, src string) *model.Config {
	t.Helper()
	f, diags := conf.Parse("t.conf", []byte(src), conf.Options{ConfigID: "x"})
	c, more := model.Build(f)
	if d := append(diags, more...); d.HasErrors() {
		t.Fatalf("config: %v", d)
	}
	return c
}

const twoVS = `
virtual_server 10.0.0.1 80 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 10.1.0.1 80 {
        weight 1
    }
    real_server 10.1.0.2 80 {
        weight 2
    }
}
virtual_server 10.0.0.2 443 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    persistence_timeout 60
    real_server 10.1.0.3 443 {
        weight 1
    }
}
`

// TestReloadOneWeightOneEdit: the engine's reload over the kernel data
// plane sends exactly one netlink request when one weight changes.
func TestReloadOneWeightOneEdit(t *testing.T) {
	k, d := newFake()
	ctx := context.Background()
	own := NewOwner(d)
	if err := own.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(own, slog.New(slog.NewTextHandler(io.Discard, nil)), engine.Options{})
	if err := eng.Load(ctx, loadConf(t, twoVS)); err != nil {
		t.Fatal(err)
	}
	if n, err := own.Settle(ctx); n != 0 || err != nil {
		t.Fatalf("settle: %d %v", n, err)
	}
	if c := d.Ops(); c.AddService != 2 || c.AddDest != 3 || c.Changes() != 5 {
		t.Errorf("load: %s", c)
	}
	before := d.Ops()
	if err := eng.Reload(ctx, loadConf(t, strings.Replace(twoVS, "weight 2", "weight 7", 1))); err != nil {
		t.Fatal(err)
	}
	after := d.Ops()
	if after.Changes()-before.Changes() != 1 || after.EditDest-before.EditDest != 1 {
		t.Errorf("reload of one weight: %s, then %s", before, after)
	}
	if w := k.svcs[0].dests[1].Weight; w != 7 {
		t.Errorf("weight %d in the kernel", w)
	}
	// Stopping removes what keepvs installed, and only that.
	if err := d.AddService(ctx, svc("10.9.9.9", 80, "rr")); err != nil {
		t.Fatal(err)
	}
	if err := own.Release(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if len(k.svcs) != 1 || k.svcs[0].s.Address != netip.MustParseAddr("10.9.9.9") {
		t.Errorf("after release: %d services left", len(k.svcs))
	}
}

// TestOwnerAdopt: a keepvs restarted over the table it left behind sends
// only what differs; with lvs_flush it starts from nothing.
func TestOwnerAdopt(t *testing.T) {
	k, d := newFake()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// What a previous run left, plus a stray destination and a foreign
	// service.
	if _, err := Reconcile(ctx, d, []lvs.ServiceStatus{
		{Service: svc("10.0.0.1", 80, "wlc"), Dests: []lvs.DestStatus{
			{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.0.1"), Port: 80, Weight: 1}},
			{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.0.2"), Port: 80, Weight: 9}},
			{Destination: lvs.Destination{Addr: netip.MustParseAddr("10.1.0.99"), Port: 80, Weight: 1}},
		}},
		{Service: svc("10.9.9.9", 80, "rr")},
	}); err != nil {
		t.Fatal(err)
	}
	before := d.Ops()
	own := NewOwner(d)
	if err := own.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(own, quiet, engine.Options{})
	if err := eng.Load(ctx, loadConf(t, twoVS)); err != nil {
		t.Fatal(err)
	}
	if n, err := own.Settle(ctx); n != 1 || err != nil {
		t.Fatalf("settle: adopted %d, %v", n, err)
	}
	c := d.Ops()
	// 10.0.0.1: 10.1.0.2's weight edited, 10.1.0.99 deleted; 10.0.0.2
	// added with its one destination.
	if got := [4]int64{c.AddService - before.AddService, c.AddDest - before.AddDest, c.EditDest - before.EditDest, c.DelDest - before.DelDest}; got != [4]int64{1, 1, 1, 1} || c.Changes()-before.Changes() != 4 {
		t.Errorf("adopting: %s (before %s)", c, before)
	}
	if len(k.svcs) != 3 {
		t.Errorf("%d services", len(k.svcs))
	}
	if err := own.Release(ctx, "VS"); err != nil {
		t.Fatal(err)
	}
	if len(k.svcs) != 1 {
		t.Errorf("after release: %d services, want the foreign one", len(k.svcs))
	}

	own = NewOwner(d)
	if err := own.Start(ctx, true); err != nil {
		t.Fatal(err)
	}
	if len(k.svcs) != 0 {
		t.Errorf("lvs_flush left %d services", len(k.svcs))
	}
}
