package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

const seeds = "../../internal/model/testdata/seeds/"

func TestConfigTestTypos(t *testing.T) {
	code, _, stderr := runCmd(t, "keepvs", "-t", "-f", seeds+"seed003_lvs_typos.conf")
	if code != exitConfigTest {
		t.Errorf("exit %d, want %d", code, exitConfigTest)
	}
	for _, want := range []string{
		"seed003_lvs_typos.conf:6:1: lb_algowlc: unknown keyword in virtual_server; did you mean `lb_algo wlc`?",
		"seed003_lvs_typos.conf:12:1: protocolTCP: unknown keyword in virtual_server; did you mean `protocol TCP`?",
		"seed003_lvs_typos.conf:16:1: weight1: unknown keyword in real_server; did you mean `weight 1`?",
		"3 errors",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestConfigTestSeedsPass(t *testing.T) {
	for _, f := range []string{"seed000_01.conf", "seed000_06.conf", "seed000_07.conf", "seed000_11.conf", "seed002_master.conf"} {
		code, _, stderr := runCmd(t, "keepvs", "--config-test", "--use-file="+seeds+f)
		if code != 0 || !strings.Contains(stderr, "configuration OK") {
			t.Errorf("%s: exit %d\n%s", f, code, stderr)
		}
	}
}

func TestDump(t *testing.T) {
	code, stdout, _ := runCmd(t, "keepvs", "-t", "--dump", "-f", seeds+"seed000_01.conf")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("dump is not JSON: %v\n%s", err, stdout)
	}
	vs := m["virtual_servers"].([]any)[0].(map[string]any)
	if vs["lvs_sched"] != "rr" || vs["protocol"] != "TCP" {
		t.Errorf("dump: %v", vs)
	}
}

func TestEmbeddedDefault(t *testing.T) {
	code, stdout, _ := runCmd(t, "keepvs", "--print-default")
	if code != 0 || !strings.Contains(stdout, "virtual_server 127.0.0.1 8080") {
		t.Fatalf("exit %d: %s", code, stdout)
	}
	src, cfg := "<embedded default>", defaultConf
	if c, diags := loadConfig(src, cfg, confOptions("")); diags.HasErrors() || len(c.VirtualServers) != 1 {
		t.Fatalf("the embedded default does not load: %v", diags)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"keepvs", "--nosuch"}, 2, "unrecognized option '--nosuch'"},
		{[]string{"keepvs", "-Q"}, 2, "invalid option -- 'Q'"},
		{[]string{"keepvs", "-f"}, 2, "option requires an argument -- 'f'"},
		{[]string{"keepvs", "-t", "-f", "/nonexistent/k.conf"}, exitConfigTest, "cannot read configuration"},
		{[]string{"keepvs", "--signum=NOPE"}, 1, "Unknown sigfunc NOPE"},
	}
	for _, tt := range tests {
		code, _, stderr := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.err)
		}
	}
	if code, out, _ := runCmd(t, "keepvs", "--signum=RELOAD"); code != 0 || out != "1\n" {
		t.Errorf("--signum=RELOAD: %d %q", code, out)
	}
	// Bundled short options and -fFILE, as getopt takes them.
	p, err := parseOptions(daemonOptions, []string{"-lDnf/x.conf", "-i", "lb2"})
	if err != nil || p.get("use-file", "") != "/x.conf" || p.get("config-id", "") != "lb2" || !p.has("log-detail") {
		t.Errorf("parsed %+v, %v", p, err)
	}
}

func TestSubsystems(t *testing.T) {
	load := func(args ...string) (int, int) {
		c, _ := loadConfig("<embedded default>", []byte(`
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 1
    virtual_ipaddress {
        10.9.9.9
    }
}
virtual_server 127.0.0.1 80 {
    protocol TCP
    real_server 127.0.0.2 80 {
    }
}
`), confOptions(""))
		opts, _ := parseOptions(daemonOptions, args)
		subsystems(opts)(c)
		return len(c.VRRP.Instances), len(c.VirtualServers)
	}
	for _, tt := range []struct {
		args       []string
		vrrp, lvsN int
	}{{nil, 1, 1}, {[]string{"-P"}, 1, 0}, {[]string{"-C"}, 0, 1}, {[]string{"-P", "-C"}, 1, 1}} {
		if v, l := load(tt.args...); v != tt.vrrp || l != tt.lvsN {
			t.Errorf("%v: %d instances, %d virtual servers; want %d, %d", tt.args, v, l, tt.vrrp, tt.lvsN)
		}
	}
}
