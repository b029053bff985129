package engine

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/clock/clocktest"
	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/dataplane/fake"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/sched"
)

func load(t *testing.T, src string) *model.Config {
	t.Helper()
	f, diags := conf.Parse("t.conf", []byte(src), conf.Options{ConfigID: "x"})
	c, more := model.Build(f)
	if d := append(diags, more...); d.HasErrors() {
		t.Fatalf("config: %v", d)
	}
	return c
}

func newFake() *fake.Dataplane {
	return fake.New(lvs.NewTable(clocktest.New(time.Unix(0, 0)), sched.Standard()))
}

func TestLoad(t *testing.T) {
	cfg := load(t, `
virtual_server_group G {
    10.0.0.1-2 80
    fwmark 7
}
virtual_server 10.1.1.166 80 {
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    persistence_granularity 255.255.255.0
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
    sh-port
    lvs_method TUN type gue port 6080 csum
    real_server 10.2.0.1 80 {
    }
}
`)
	dp := newFake()
	e := New(dp, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err := e.Load(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"AddService TCP 10.1.1.166:80", "AddDest TCP 10.1.1.166:80 10.1.1.163:80 w10", "AddDest TCP 10.1.1.166:80 10.1.1.164:80 w5",
		"AddService UDP 10.0.0.1:80", "AddService UDP 10.0.0.2:80", "AddService FWM 7",
		"AddDest UDP 10.0.0.1:80 10.2.0.1:80 w1", "AddDest UDP 10.0.0.2:80 10.2.0.1:80 w1", "AddDest FWM 7 10.2.0.1:80 w1",
	}
	if got := dp.Calls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	svcs, _ := e.Services(context.Background())
	s := svcs[0]
	if s.Scheduler != "wrr" || s.Flags&lvs.FlagPersistent == 0 || s.Timeout != 50*time.Second || s.Netmask != 0xffffff00 {
		t.Errorf("service %+v", s.Service)
	}
	if d := s.Dests[0]; d.Forward != lvs.Route || d.UThreshold != 100 {
		t.Errorf("newest destination first, DR with threshold: %+v", d)
	}
	if g := svcs[1]; g.Flags&lvs.FlagSched2 == 0 || g.Dests[0].Forward != lvs.Tunnel || g.Dests[0].TunType != lvs.TunGUE || g.Dests[0].TunPort != 6080 || g.Dests[0].TunFlags != lvs.TunFlagCsum {
		t.Errorf("group service %+v %+v", g.Service, g.Dests[0])
	}
}

func TestLoadRefusal(t *testing.T) {
	cfg := load(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n")
	dp := newFake()
	dp.T.AddService(lvs.Service{ServiceKey: lvs.ServiceKey{Proto: lvs.TCP, Addr: cfg.VirtualServers[0].Addr, Port: 80}, Scheduler: "rr"})
	err := New(dp, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{}).Load(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "t.conf:1:1: virtual_server TCP 10.0.0.1:80: service already exists") {
		t.Errorf("got %v", err)
	}
}
