package ipvs

import (
	"context"
	"testing"
)

// BenchmarkAddBulk is the user-space half of a bulk load: encoding 2,000
// services of 20 destinations, sending and reading the acknowledgements of
// a kernel that does nothing.
func BenchmarkAddBulk(b *testing.B) {
	want := bulkTable(2000)
	for i := range want[:2000] {
		ds := want[i].Dests
		for len(want[i].Dests) < 20 {
			x := ds[0]
			x.Port += uint16(len(want[i].Dests))
			want[i].Dests = append(want[i].Dests, x)
		}
	}
	_, d := newFake()
	d.batch = &nullBatch{}
	b.ReportAllocs()
	for b.Loop() {
		d.AddBulk(context.Background(), want)
	}
}
