package model

import (
	"net/netip"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
)

func TestDiff(t *testing.T) {
	v := func(s string, line int) VIP {
		return VIP{Prefix: netip.MustParsePrefix(s), Pos: conf.Pos{Line: line}}
	}
	// The same address written on another line is the same VIP.
	gone, added := Diff([]VIP{v("10.0.0.1/24", 1), v("10.0.0.2/24", 2)}, []VIP{v("10.0.0.2/24", 7), v("10.0.0.3/24", 8)})
	if len(gone) != 1 || gone[0].Prefix.String() != "10.0.0.1/24" || len(added) != 1 || added[0].Prefix.String() != "10.0.0.3/24" {
		t.Errorf("gone %v added %v", gone, added)
	}
	if g, a := Diff([]VIP{v("10.0.0.1/24", 1)}, []VIP{v("10.0.0.1/24", 9)}); g != nil || a != nil {
		t.Errorf("same list: gone %v added %v", g, a)
	}
}
