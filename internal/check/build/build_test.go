package build

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check/file"
	"github.com/keepvs/keepvs/internal/check/http"
	"github.com/keepvs/keepvs/internal/check/misc"
	"github.com/keepvs/keepvs/internal/check/tcp"
	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/model"
)

const config = `
track_file state {
    file /run/keepvs/state
    weight 3
}
virtual_server 10.0.0.100 80 {
    delay_loop 6
    protocol TCP
    real_server 10.0.0.1 80 {
        weight 5
        TCP_CHECK {
            connect_timeout 2
        }
        HTTP_GET {
            url {
                path /a
            }
            url {
                path /b
                status_code 200 301-302
            }
            connect_timeout 4
            retry 2
        }
        MISC_CHECK {
            misc_path "/bin/check.sh arg"
            misc_dynamic
        }
        DNS_CHECK {
            connect_port 5353
            name example.com
        }
        FILE_CHECK {
            track_file state
        }
    }
}
`

func TestRealServer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := model.Load(p, conf.Options{})
	for _, d := range diags {
		t.Log(d)
	}
	if cfg == nil || len(cfg.VirtualServers) != 1 {
		t.Fatalf("config: %v", diags)
	}
	vs := cfg.VirtualServers[0]
	rs, err := RealServer(vs, vs.RealServers[0], cfg.TrackFiles)
	if err != nil {
		t.Fatal(err)
	}
	if rs.ID != "TCP 10.0.0.100:80 10.0.0.1:80" || rs.Weight != 5 || len(rs.Checks) != 5 {
		t.Fatalf("rs = %+v", rs)
	}
	type row struct {
		name               string
		timeout, loop, dbr time.Duration
		retry              int
		dynamic, fromStart bool
	}
	var got []row
	for _, sp := range rs.Checks {
		got = append(got, row{sp.Name, sp.Timeout, sp.DelayLoop, sp.DelayBeforeRetry, sp.Retry, sp.Dynamic, sp.FromStart})
	}
	want := []row{
		{"TCP_CHECK 10.0.0.1:80", 2 * time.Second, 6 * time.Second, time.Second, 1, false, false},
		{"HTTP_GET 10.0.0.1:80", 8 * time.Second, 6 * time.Second, 3 * time.Second, 2, false, false},
		{"MISC_CHECK /bin/check.sh arg", 6 * time.Second, 6 * time.Second, time.Second, 0, true, true},
		{"DNS_CHECK 10.0.0.1:5353", 5 * time.Second, 6 * time.Second, 6 * time.Second, 3, false, false},
		{"FILE_CHECK /run/keepvs/state", FilePoll, FilePoll, time.Second, 0, false, false},
	}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("check %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	hc := rs.Checks[1].Checker.(*http.Checker)
	if len(hc.URLs) != 2 || len(hc.URLs[1].StatusCodes) != 2 || hc.URLTimeout != 4*time.Second {
		t.Errorf("http checker = %+v", hc)
	}
	mc := rs.Checks[2].Checker.(*misc.Checker)
	if strings.Join(mc.Argv, "|") != "/bin/check.sh|arg" || !mc.Dynamic {
		t.Errorf("misc checker = %+v", mc)
	}
	fc := rs.Checks[4].Checker.(*file.Checker)
	if fc.Weight != 3 || fc.Path != "/run/keepvs/state" {
		t.Errorf("file checker = %+v", fc)
	}
}

// TestTCPCheckMode: with a SynProber (--tcp-check=syn) a TCP_CHECK is
// half-open, except where it binds a source port, a device or a mark;
// without one it connects.
func TestTCPCheckMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the half-open TCP_CHECK needs root (CAP_NET_RAW) for its raw sockets")
	}
	p, err := tcp.OpenSynProber(tcp.SynOptions{Ports: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rs := &model.RealServer{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}
	tests := []struct {
		name string
		opt  Options
		c    model.Check
		syn  bool
	}{
		{"connect by default", Options{}, model.Check{}, false},
		{"half-open", Options{SynProber: p}, model.Check{}, true},
		{"half-open from bindto", Options{SynProber: p}, model.Check{BindTo: netip.MustParseAddr("10.0.0.9")}, true},
		{"bind_port connects", Options{SynProber: p}, model.Check{BindPort: 1000}, false},
		{"bind_if connects", Options{SynProber: p}, model.Check{BindIf: "lo"}, false},
		{"fwmark connects", Options{SynProber: p}, model.Check{FWMark: 7}, false},
	}
	for _, tt := range tests {
		c := tt.c
		c.Type = "TCP_CHECK"
		c.ConnectTimeout, c.DelayLoop = model.Duration(time.Second), model.Duration(time.Second)
		sp, err := tt.opt.Spec(&c, rs, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if _, syn := sp.Checker.(*tcp.SynChecker); syn != tt.syn {
			t.Errorf("%s: checker %T, want half-open %v", tt.name, sp.Checker, tt.syn)
		}
	}
}
