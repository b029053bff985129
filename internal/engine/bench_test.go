package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/dataplane/fake"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// nullBulk takes every AddBulk without doing anything: what is measured is
// the engine's own work at load.
type nullBulk struct{ *fake.Dataplane }

func (nullBulk) AddBulk(_ context.Context, want []lvs.ServiceStatus) [][]error {
	errs := make([][]error, len(want))
	for i, s := range want {
		errs[i] = make([]error, 1+len(s.Dests))
	}
	return errs
}

// largeConfig is 2,000 virtual servers x 20 real servers without checks,
// as the kernel benchmark loads it.
func largeConfig(nvs, nrs int) string {
	var b strings.Builder
	for v := 0; v < nvs; v++ {
		fmt.Fprintf(&b, "virtual_server 10.%d.%d.1 80 {\n    lvs_sched wlc\n    lvs_method NAT\n    protocol TCP\n", v/250, v%250)
		for r := 0; r < nrs; r++ {
			fmt.Fprintf(&b, "    real_server 172.%d.%d.%d 8080 {\n        weight %d\n    }\n", 16+v/256%16, v%256, r+1, 1+r%5)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// BenchmarkLoadLarge is the engine's bookkeeping when it loads 2,000 x 20
// into a data plane with AddBulk (the kernel's):
//
//	go test -run XXX -bench LoadLarge -benchmem ./internal/engine/
func BenchmarkLoadLarge(b *testing.B) {
	f, diags := conf.Parse("large.conf", []byte(largeConfig(2000, 20)), conf.Options{ConfigID: "x"})
	cfg, more := model.Build(f)
	if d := append(diags, more...); d.HasErrors() {
		b.Fatal(d)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		e := New(nullBulk{newFake()}, log, Options{})
		if err := e.Load(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
	}
}
