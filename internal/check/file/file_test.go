package file

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStrtol(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12\n", 12, true}, {"  -3", -3, true}, {"+7x", 7, true}, {"0x1f", 31, true},
		{"017", 15, true}, {"09", 0, true}, {"", 0, true}, {"abc", 0, true}, {"0x", 0, true},
		{"99999999999999999999", 0, false}, {"-9223372036854775808", math.MinInt64, true},
	}
	for _, tt := range tests {
		if got, ok := Strtol(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("Strtol(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		weight  int
		reverse bool
		ok      bool
		offset  int
		reason  string
	}{
		{"missing, weight 0", nil, 0, false, true, 0, ""},
		{"0, weight 0", ptr("0\n"), 0, false, true, 0, ""},
		{"1, weight 0", ptr("1\n"), 0, false, false, 0, "holds 1"},
		{"0, weight 0 reverse", ptr("0"), 0, true, false, 0, "holds 0"},
		{"5, weight 0 reverse", ptr("5"), 0, true, true, 0, ""},
		{"5, weight 2", ptr("5"), 2, false, true, 10, ""},
		{"5, weight 2 reverse", ptr("5"), 2, true, true, -10, ""},
		{"-300, weight 1: a big cut, still up", ptr("-300"), 1, false, true, -300, ""},
		{"huge, weight 254: fault", ptr("-2147483648"), 254, false, false, 0, "below the fault limit"},
		{"garbage is 0", ptr("up"), 0, false, true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "state")
			if tt.content != nil {
				if err := os.WriteFile(p, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res := (&Checker{Path: p, Weight: tt.weight, Reverse: tt.reverse}).Check(context.Background())
			if res.OK != tt.ok || res.WeightOffset != tt.offset || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Check = %+v, want ok=%v offset %d reason %q", res, tt.ok, tt.offset, tt.reason)
			}
		})
	}
}

func TestOutOfRangeKeepsTheLastValue(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	c := &Checker{Path: p, Weight: 1}
	os.WriteFile(p, []byte("4"), 0o644)
	if res := c.Check(context.Background()); res.WeightOffset != 4 {
		t.Fatalf("Check = %+v", res)
	}
	os.WriteFile(p, []byte("99999999999"), 0o644)
	res := c.Check(context.Background())
	if !res.OK || res.WeightOffset != 4 || !strings.Contains(res.Reason, "ignored") {
		t.Errorf("Check = %+v, want the last value 4 kept", res)
	}
}

func ptr(s string) *string { return &s }
