package vrrp

import (
	"testing"
	"time"
)

// BenchmarkHandleAdvertBackup is the hot path: every second (or every
// advert_int, down to 10 ms with VRRPv3) a backup takes its master's
// advert and re-arms the master down timer.
func BenchmarkHandleAdvertBackup(b *testing.B) {
	for _, bc := range []struct {
		name string
		c    Config
	}{
		{"v2", cfg("VI_1", 100)},
		{"v3", cfg("VI_1", 100, v3, advInt(10*time.Millisecond))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in, err := NewInstance(bc.c)
			if err != nil {
				b.Fatal(err)
			}
			now := t0
			in.Handle(now, Start())
			ev := AdvertReceived(advert(bc.c, 200), addr2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				now = now.Add(bc.c.AdvertInterval)
				if acts := in.Handle(now, ev); len(acts) != 1 {
					b.Fatalf("actions %s", kinds(acts))
				}
			}
		})
	}
}

// BenchmarkHandleAdvertBackupGroup is the same through a sync group.
func BenchmarkHandleAdvertBackupGroup(b *testing.B) {
	a, _ := NewInstance(cfg("VI_A", 100))
	o, _ := NewInstance(cfg("VI_B", 100, func(c *Config) { c.VRID = 52 }))
	if _, err := NewSyncGroup("G", a, o); err != nil {
		b.Fatal(err)
	}
	now := t0
	a.Handle(now, Start())
	o.Handle(now, Start())
	ev := AdvertReceived(advert(a.Config(), 200), addr2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Millisecond)
		a.Handle(now, ev)
	}
}
