package vrrp

import (
	"testing"
	"time"
)

func TestSkewAndMasterDownInterval(t *testing.T) {
	tests := []struct {
		name     string
		version  uint8
		prio     uint8
		interval time.Duration
		adverts  int
		skew     time.Duration
		down     time.Duration
	}{
		// VRRPv2: (256-p)/256 s, whatever the interval.
		// (256-100)/256 = 156/256 = 0.609375 s exactly.
		{"v2 p100 1s", 2, 100, time.Second, 3, us(609375), 3*time.Second + us(609375)},
		// 2/256 s = 7812.5 µs, truncated to 7812 µs.
		{"v2 p254 1s", 2, 254, time.Second, 3, us(7812), 3*time.Second + us(7812)},
		// 255/256 s = 996093.75 µs -> 996093 µs.
		{"v2 p1 1s", 2, 1, time.Second, 3, us(996093), 3*time.Second + us(996093)},
		// 1/256 s = 3906.25 µs -> 3906 µs.
		{"v2 p255 1s", 2, 255, time.Second, 3, us(3906), 3*time.Second + us(3906)},
		// The v2 skew ignores the interval: 3*2s + 0.609375 s.
		{"v2 p100 2s", 2, 100, 2 * time.Second, 3, us(609375), 6*time.Second + us(609375)},
		// VRRPv3: (256-p) * centiseconds * 10000 µs / 256.
		// 156 * 100 cs * 10000 / 256 = 609375 µs, as v2 at 1s.
		{"v3 p100 1s", 3, 100, time.Second, 3, us(609375), 3*time.Second + us(609375)},
		// 156 * 1 cs * 10000 / 256 = 6093.75 -> 6093 µs; 3*10ms + that.
		{"v3 p100 10ms", 3, 100, 10 * time.Millisecond, 3, us(6093), 30*time.Millisecond + us(6093)},
		// 56 * 5 cs * 10000 / 256 = 10937.5 -> 10937 µs.
		{"v3 p200 50ms", 3, 200, 50 * time.Millisecond, 3, us(10937), 150*time.Millisecond + us(10937)},
		// 2 * 10 cs * 10000 / 256 = 781.25 -> 781 µs.
		{"v3 p254 100ms", 3, 254, 100 * time.Millisecond, 3, us(781), 300*time.Millisecond + us(781)},
		// 255 * 4095 cs * 10000 / 256 = 40790039.0625 -> 40790039 µs.
		{"v3 p1 40.95s", 3, 1, 40950 * time.Millisecond, 3, us(40790039), 3*40950*time.Millisecond + us(40790039)},
		// vrrp_down_timer_adverts 5: 5*1s + 0.609375 s.
		{"v3 p100 1s 5 adverts", 3, 100, time.Second, 5, us(609375), 5*time.Second + us(609375)},
		// 0 adverts means the RFC's 3.
		{"v2 p100 default adverts", 2, 100, time.Second, 0, us(609375), 3*time.Second + us(609375)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Skew(tt.version, tt.prio, tt.interval); got != tt.skew {
				t.Errorf("Skew = %v, want %v", got, tt.skew)
			}
			if got := MasterDownInterval(tt.version, tt.prio, tt.interval, tt.adverts); got != tt.down {
				t.Errorf("MasterDownInterval = %v, want %v", got, tt.down)
			}
		})
	}
}

func TestEffectivePriority(t *testing.T) {
	tests := []struct {
		base  uint8
		delta int
		want  uint8
	}{
		{100, 0, 100},
		{100, 50, 150},
		{100, -99, 1},
		{100, -100, 1},  // clamps at 1: priority 0 means "leaving"
		{100, -253, 1},  // ...however far down
		{100, 154, 254}, // clamps at 254: 255 is the owner's alone
		{100, 253, 254},
		{1, -5, 1},
		{254, 1, 254},
		{255, -100, 255}, // the owner does not move
		{255, 100, 255},
	}
	for _, tt := range tests {
		if got := EffectivePriority(tt.base, tt.delta); got != tt.want {
			t.Errorf("EffectivePriority(%d, %d) = %d, want %d", tt.base, tt.delta, got, tt.want)
		}
	}
}

func TestTrackerWeights(t *testing.T) {
	scripts := []struct {
		weight      int
		reverse, up bool
		delta       int
		fault       bool
	}{
		{0, false, true, 0, false},
		{0, false, false, 0, true},
		{0, true, true, 0, true}, // weight 0 reverse: up faults
		{0, true, false, 0, false},
		{20, false, true, 20, false},
		{20, false, false, 0, false},
		{20, true, false, 20, false},
		{-30, false, false, -30, false},
		{-30, false, true, 0, false},
		{-30, true, true, -30, false},
	}
	for _, tt := range scripts {
		d, f := ScriptWeight(tt.weight, tt.reverse, tt.up)
		if d != tt.delta || f != tt.fault {
			t.Errorf("ScriptWeight(%d, %v, %v) = %d, %v; want %d, %v", tt.weight, tt.reverse, tt.up, d, f, tt.delta, tt.fault)
		}
	}
	files := []struct {
		value   int64
		weight  int
		reverse bool
		delta   int
		fault   bool
	}{
		{0, 0, false, 0, false},
		{3, 0, false, 0, true}, // weight 0: non-zero faults
		{5, 1, false, 5, false},
		{5, 10, false, 50, false},
		{5, 10, true, -50, false},
		{100, 10, false, 253, false},  // clamped to 253
		{-100, 10, false, -254, true}, // -254 faults
		{-253, 1, false, -253, false},
	}
	for _, tt := range files {
		d, f := FileWeight(tt.value, tt.weight, tt.reverse)
		if d != tt.delta || f != tt.fault {
			t.Errorf("FileWeight(%d, %d, %v) = %d, %v; want %d, %v", tt.value, tt.weight, tt.reverse, d, f, tt.delta, tt.fault)
		}
	}
}
