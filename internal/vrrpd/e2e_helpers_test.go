package vrrpd_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/vrrpd"
	"github.com/keepvs/keepvs/internal/vrrpd/netnstest"
)

var (
	buildOnce sync.Once
	keepvsBin string
	buildErr  error
)

// keepvsBinary builds cmd/keepvs once per test run.
func keepvsBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keepvs-e2e")
		if err != nil {
			buildErr = err
			return
		}
		keepvsBin = filepath.Join(dir, "keepvs")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		out, err := exec.Command(goTool, "build", "-buildvcs=false", "-o", keepvsBin, "github.com/keepvs/keepvs/cmd/keepvs").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return keepvsBin
}

const keepalivedBin = "/usr/sbin/keepalived"

// director is keepvs or keepalived running on a host of the bed.
type director struct {
	t       testing.TB
	bed     *netnstest.Bed
	host    string
	kind    string // "keepvs" or "keepalived"
	dir     string
	cmd     *exec.Cmd
	sock    string
	logPath string
	done    chan struct{}
}

func (d *director) String() string { return d.kind + "@" + d.host }

// startDirector runs kind on host with the keepalived.conf text conf.
func startDirector(t testing.TB, bed *netnstest.Bed, host, kind, conf string) *director {
	t.Helper()
	d := &director{t: t, bed: bed, host: host, kind: kind, dir: t.TempDir(), done: make(chan struct{})}
	cfg := filepath.Join(d.dir, "keepalived.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.logPath = filepath.Join(d.dir, "log")
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "keepvs", "keepvs-nort":
		d.sock = filepath.Join(d.dir, "k.sock")
		d.cmd = bed.Command(host, keepvsBinary(t), "-f", cfg, "-l", "-D", "-n", "--control-socket", d.sock, "-p", filepath.Join(d.dir, "pid"))
		d.cmd.Env = append(os.Environ(), "KEEPVS_STATE_DIR="+d.dir)
		if e := os.Getenv("KEEPVS_DIRECTOR_ENV"); e != "" {
			// Benchmarks: an environment for the keepvs directors only
			// (GOMAXPROCS=3, say), not for the test itself.
			d.cmd.Env = append(d.cmd.Env, strings.Fields(e)...)
		}
		if kind == "keepvs-nort" {
			// keepvs with its VRRP thread in normal scheduling, to
			// measure what realtime buys.
			d.cmd.Env = append(d.cmd.Env, "KEEPVS_VRRP_REALTIME=off")
		}
	case "keepalived":
		if _, err := os.Stat(keepalivedBin); err != nil {
			t.Skip("keepalived is not installed (apt-get install keepalived)")
		}
		d.cmd = bed.Command(host, keepalivedBin, "-f", cfg, "-P", "-l", "-D", "-n",
			"-p", filepath.Join(d.dir, "k.pid"), "-r", filepath.Join(d.dir, "v.pid"), "-c", filepath.Join(d.dir, "c.pid"))
	default:
		t.Fatalf("kind %q", kind)
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); logf.Close(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			b, _ := os.ReadFile(d.logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", d, b)
		}
	})
	if d.sock != "" {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(d.sock); err == nil {
				break
			}
			select {
			case <-d.done:
				b, _ := os.ReadFile(d.logPath)
				t.Fatalf("%s exited at start:\n%s", d, b)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start", d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return d
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (d *director) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.t.Errorf("%s did not stop within 10s of SIGTERM", d)
		d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *director) stopped() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// holds reports whether the host has addr on any interface.
func (d *director) holds(addr netip.Addr) bool {
	out, _ := d.bed.Run(d.host, "ip", "-o", "addr", "show")
	return strings.Contains(out, " "+addr.String()+"/")
}

// status is keepvs's /v1/status VRRP half.
func (d *director) status() []vrrpd.InstanceStatus {
	d.t.Helper()
	if d.sock == "" {
		d.t.Fatalf("status of %s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := api.Dial(ctx, d.sock)
	if err != nil {
		d.t.Fatal(err)
	}
	defer c.Close()
	var st struct {
		VRRP []vrrpd.InstanceStatus `json:"vrrp"`
	}
	if err := c.Status(ctx, &st); err != nil {
		d.t.Fatal(err)
	}
	return st.VRRP
}

func (d *director) instance(name string) vrrpd.InstanceStatus {
	d.t.Helper()
	for _, s := range d.status() {
		if s.Name == name {
			return s
		}
	}
	d.t.Fatalf("%s has no instance %s", d, name)
	return vrrpd.InstanceStatus{}
}

func (d *director) mac(dev string) string {
	return strings.TrimSpace(d.bed.MustRun(d.host, "cat", "/sys/class/net/"+dev+"/address"))
}

// linkDown cuts (or restores) the host's cable at the bridge.
func (d *director) link(up bool) {
	state := "down"
	if up {
		state = "up"
	}
	d.bed.MustRun("", "ip", "link", "set", d.bed.Veth(d.host), state)
}

func eventually(t testing.TB, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// never fails if cond holds at any point during d.
func never(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			t.Fatalf("%s", what)
		}
	}
}

func neighMAC(bed *netnstest.Bed, host string, ip netip.Addr) string {
	out, _ := bed.Run(host, "ip", "neigh", "show", ip.String())
	f := strings.Fields(out)
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// instanceConf is one vrrp_instance block; extra goes inside it.
func instanceConf(name string, vrid, prio int, advert string, version int, vip string, extra string) string {
	v := ""
	if version != 0 {
		v = fmt.Sprintf("    version %d\n", version)
	}
	return fmt.Sprintf(`
vrrp_instance %s {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
%s%s
    virtual_ipaddress {
        %s
    }
}
`, name, vrid, prio, advert, v, extra, vip)
}

func globalConf(id string) string {
	return fmt.Sprintf(`
global_defs {
    router_id %s
    script_user root
    vrrp_garp_master_delay 0
}
`, id)
}
