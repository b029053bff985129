package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
	"github.com/keepvs/keepvs/internal/dataplane/fake"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/sched"
)

func serve(t *testing.T) (*Client, *fake.Dataplane, string) {
	t.Helper()
	dp := fake.New(lvs.NewTable(clocktest.New(time.Unix(0, 0)), sched.Standard()))
	path := filepath.Join(t.TempDir(), "k.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		NewServer(dp, slog.New(slog.NewTextHandler(io.Discard, nil))).Serve(ctx, l)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return c, dp, path
}

func TestRoundTrip(t *testing.T) {
	c, dp, path := serve(t)
	ctx := context.Background()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v, want 0600", fi.Mode(), err)
	}
	k := lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	if err := c.AddService(ctx, lvs.Service{ServiceKey: k, Scheduler: "wrr"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddDest(ctx, k, lvs.Destination{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80, Weight: 3, Forward: lvs.Route}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTimeouts(ctx, lvs.Timeouts{TCP: 100 * time.Second}); err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 1 || svcs[0].Scheduler != "wrr" || svcs[0].Dests[0].Weight != 3 || svcs[0].Dests[0].Forward != lvs.Route {
		t.Fatalf("services %+v %v", svcs, err)
	}
	if to, _ := c.Timeouts(ctx); to.TCP != 100*time.Second || to.UDP != 300*time.Second {
		t.Errorf("timeouts %+v", to)
	}
	if c.Name() != "fake" {
		t.Errorf("name %q", c.Name())
	}
	// Errors come back as the table's sentinels, and change nothing.
	dp.Calls()
	tests := []struct {
		err  error
		want error
	}{
		{c.AddService(ctx, lvs.Service{ServiceKey: k, Scheduler: "rr"}), lvs.ErrServiceExists},
		{c.AddService(ctx, lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: k.Addr, Port: 81}, Scheduler: "nosuch"}), lvs.ErrNoScheduler},
		{c.AddDest(ctx, lvs.ServiceKey{Proto: lvs.UDP, Addr: k.Addr, Port: 80}, lvs.Destination{Addr: k.Addr, Port: 1}), lvs.ErrNoService},
		{c.DelDest(ctx, k, netip.MustParseAddrPort("10.9.9.9:80")), lvs.ErrNoDest},
	}
	for i, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%d: got %v, want %v", i, tt.err, tt.want)
		}
	}
	if calls := dp.Calls(); len(calls) != 0 {
		t.Errorf("refused calls changed the table: %v", calls)
	}
	if err := c.DelService(ctx, k); err != nil {
		t.Fatal(err)
	}
	if svcs, _ := c.Services(ctx); len(svcs) != 0 {
		t.Errorf("service not deleted: %+v", svcs)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	_, _, path := serve(t)
	if _, err := Listen(path); err == nil {
		t.Fatal("a second daemon took over a live socket")
	}
}

func TestDialNoDaemon(t *testing.T) {
	_, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("got %v", err)
	}
}
