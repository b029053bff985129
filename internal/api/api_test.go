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
	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/dataplane/fake"
	"github.com/keepvs/keepvs/internal/ipvsadm"
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

// fakeSyncd keeps sync daemons as the kernel does: one master and one
// backup at most.
type fakeSyncd map[bool]ipvsadm.SyncDaemon

func (f fakeSyncd) StartDaemon(_ context.Context, d ipvsadm.SyncDaemon) error {
	if _, ok := f[d.Backup]; ok {
		return ipvsadm.ErrDaemonRunning
	}
	f[d.Backup] = d
	return nil
}

func (f fakeSyncd) StopDaemon(_ context.Context, backup bool) error {
	if _, ok := f[backup]; !ok {
		return ipvsadm.ErrNoDaemon
	}
	delete(f, backup)
	return nil
}

func (f fakeSyncd) Daemons(context.Context) ([]ipvsadm.SyncDaemon, error) {
	var ds []ipvsadm.SyncDaemon
	for _, b := range []bool{false, true} {
		if d, ok := f[b]; ok {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// TestSyncDaemons: ipvsadm's --start-daemon, --stop-daemon and --list
// --daemon reach the daemon's data plane, with the kernel's errors; a
// data plane without sync daemons lists none and starts none.
func TestSyncDaemons(t *testing.T) {
	ctx := context.Background()
	for _, kernel := range []bool{true, false} {
		dp := fake.New(lvs.NewTable(clocktest.New(time.Unix(0, 0)), sched.Standard()))
		path := filepath.Join(t.TempDir(), "k.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(dp, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if kernel {
			srv.SyncDaemons = fakeSyncd{}
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { srv.Serve(sctx, l); close(done) }()
		c, err := Dial(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		m := ipvsadm.SyncDaemon{Interface: "eth0", SyncID: 7, MaxLen: 1400, Group: netip.MustParseAddr("224.0.0.99"), Port: 8850, TTL: 3}
		b := ipvsadm.SyncDaemon{Backup: true, Interface: "eth1", SyncID: 9}
		if !kernel {
			if err := c.StartDaemon(ctx, m); !errors.Is(err, dataplane.ErrNotSupported) {
				t.Errorf("no sync daemons: start: %v, want ErrNotSupported", err)
			}
			if ds, err := c.Daemons(ctx); err != nil || len(ds) != 0 {
				t.Errorf("no sync daemons: list %v %v", ds, err)
			}
		} else {
			if err := c.StartDaemon(ctx, m); err != nil {
				t.Fatal(err)
			}
			if err := c.StartDaemon(ctx, b); err != nil {
				t.Fatal(err)
			}
			if ds, err := c.Daemons(ctx); err != nil || len(ds) != 2 || ds[0] != m || ds[1] != b {
				t.Errorf("list %+v %v, want %+v %+v", ds, err, m, b)
			}
			if err := c.StartDaemon(ctx, m); !errors.Is(err, ipvsadm.ErrDaemonRunning) {
				t.Errorf("second master: %v, want ErrDaemonRunning", err)
			}
			if err := c.StopDaemon(ctx, true); err != nil {
				t.Fatal(err)
			}
			if err := c.StopDaemon(ctx, true); !errors.Is(err, ipvsadm.ErrNoDaemon) {
				t.Errorf("stop a stopped backup: %v, want ErrNoDaemon", err)
			}
			if ds, err := c.Daemons(ctx); err != nil || len(ds) != 1 || ds[0] != m {
				t.Errorf("list after stop %+v %v", ds, err)
			}
		}
		c.Close()
		cancel()
		<-done
	}
}
