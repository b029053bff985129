package engine

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/dataplane/fake"
	"github.com/keepvs/keepvs/internal/lvs"
)

// bulkFake is the fake data plane with AddBulk, as the kernel's has it:
// the services, then the destinations of those that went in.
type bulkFake struct {
	*fake.Dataplane
	calls int
}

func (b *bulkFake) AddBulk(ctx context.Context, want []lvs.ServiceStatus) [][]error {
	b.calls++
	errs := make([][]error, len(want))
	for i, s := range want {
		errs[i] = make([]error, 1+len(s.Dests))
		errs[i][0] = b.AddService(ctx, s.Service)
	}
	for i, s := range want {
		if errs[i][0] != nil {
			continue
		}
		for j, x := range s.Dests {
			errs[i][1+j] = b.AddDest(ctx, s.ServiceKey, x.Destination)
		}
	}
	return errs
}

const bulkConf = `
virtual_server_group G {
    10.0.0.1-2 80
    fwmark 7
}
virtual_server 10.1.1.166 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.1.1.163 80 {
        weight 10
    }
    real_server 10.1.1.164 80 {
        weight 5
        uthreshold 100
    }
}
virtual_server group G {
    protocol UDP
    lvs_sched sh
    real_server 10.2.0.1 80 {
    }
    real_server 10.2.0.2 80 {
        weight 0
    }
}
`

// TestLoadBulk: a data plane with AddBulk gets one call and ends with the
// table the one-by-one path makes.
func TestLoadBulk(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	one := newFake()
	if err := New(one, log, Options{}).Load(ctx, load(t, bulkConf)); err != nil {
		t.Fatal(err)
	}
	bulk := &bulkFake{Dataplane: newFake()}
	e := New(bulk, log, Options{})
	if err := e.Load(ctx, load(t, bulkConf)); err != nil {
		t.Fatal(err)
	}
	if bulk.calls != 1 {
		t.Errorf("%d AddBulk calls, want 1", bulk.calls)
	}
	want, _ := one.Services(ctx)
	got, _ := bulk.Services(ctx)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bulk load:\n%+v\nwant:\n%+v", got, want)
	}
	// The engine knows what it installed: a reload of the same
	// configuration changes nothing.
	bulk.Calls()
	if err := e.Reload(ctx, load(t, bulkConf)); err != nil {
		t.Fatal(err)
	}
	if c := bulk.Calls(); len(c) != 0 {
		t.Errorf("reload of the same configuration: %v", c)
	}
}

func TestLoadBulkRefusal(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := load(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\nvirtual_server 10.0.0.2 80 {\n protocol TCP\n real_server 10.0.1.2 80 {\n }\n}\n")
	dp := &bulkFake{Dataplane: newFake()}
	dp.T.AddService(lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: cfg.VirtualServers[0].Addr, Port: 80}, Scheduler: "rr"})
	err := New(dp, log, Options{}).Load(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "t.conf:1:1: virtual_server TCP 10.0.0.1:80: service already exists") {
		t.Errorf("got %v", err)
	}

	// A destination the data plane refuses is named by its real_server.
	cfg = load(t, "virtual_server 10.0.0.3 80 {\n protocol TCP\n real_server 10.0.1.3 80 {\n }\n}\n")
	dp = &bulkFake{Dataplane: newFake()}
	err = New(&refuseDest{dp}, log, Options{}).Load(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "t.conf:1:1: real_server 10.0.1.3:80: ") {
		t.Errorf("got %v", err)
	}
}

// refuseDest refuses every destination.
type refuseDest struct{ *bulkFake }

func (r *refuseDest) AddDest(context.Context, lvs.ServiceKey, lvs.Destination) error {
	return lvs.ErrRange
}

func (r *refuseDest) AddBulk(ctx context.Context, want []lvs.ServiceStatus) [][]error {
	errs := make([][]error, len(want))
	for i, s := range want {
		errs[i] = make([]error, 1+len(s.Dests))
		errs[i][0] = r.AddService(ctx, s.Service)
		for j := range s.Dests {
			errs[i][1+j] = lvs.ErrRange
		}
	}
	return errs
}
