package model

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
)

// LargeConfig writes a configuration of nvs virtual servers with nrs real
// servers each, TCP_CHECK on every real server: the size of keepalived
// issue #2318 at 2,000 x 20.
func LargeConfig(nvs, nrs int) string { return largeConfig(nvs, nrs, true) }

// largeConfig is LargeConfig, without the TCP_CHECKs unless checks: the
// kernel benchmark (internal/dataplane/ipvs/qemutest) loads it so.
func largeConfig(nvs, nrs int, checks bool) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id large\n}\n")
	for v := 0; v < nvs; v++ {
		fmt.Fprintf(&b, "virtual_server 10.%d.%d.1 80 {\n    delay_loop 6\n    lvs_sched wlc\n    lvs_method NAT\n    protocol TCP\n", v/250, v%250)
		for r := 0; r < nrs; r++ {
			if !checks {
				fmt.Fprintf(&b, "    real_server 172.%d.%d.%d 8080 {\n        weight %d\n    }\n", 16+v/256%16, v%256, r+1, 1+r%5)
				continue
			}
			fmt.Fprintf(&b, "    real_server 172.%d.%d.%d 8080 {\n        weight %d\n        TCP_CHECK {\n            connect_timeout 3\n            retry 3\n            delay_before_retry 3\n        }\n    }\n", 16+v/256%16, v%256, r+1, 1+r%5)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func TestLargeConfigValid(t *testing.T) {
	f, d := conf.Parse("large.conf", []byte(LargeConfig(20, 20)), testOptions())
	c, more := Build(f)
	if all := append(d, more...); all.HasErrors() {
		t.Fatal(all)
	}
	if len(c.VirtualServers) != 20 || len(c.VirtualServers[19].RealServers) != 20 {
		t.Fatalf("got %d virtual servers", len(c.VirtualServers))
	}
}

// BenchmarkLoadLarge parses and validates 2,000 virtual servers x 20 real
// servers from a file. Run with:
//
//	go test -run XXX -bench LoadLarge -benchmem ./internal/model/
func BenchmarkLoadLarge(b *testing.B) { benchLoad(b, LargeConfig(2000, 20)) }

// BenchmarkLoadLargeNoChecks is the same without the checks: what the
// kernel benchmark's daemons load.
func BenchmarkLoadLargeNoChecks(b *testing.B) { benchLoad(b, largeConfig(2000, 20, false)) }

func benchLoad(b *testing.B, src string) {
	path := filepath.Join(b.TempDir(), "large.conf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, d := Load(path, testOptions())
		if d.HasErrors() || len(c.VirtualServers) != 2000 {
			b.Fatalf("%d virtual servers, %v", len(c.VirtualServers), d.Errors())
		}
	}
}
