package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

func buildModel(t *testing.T, src string) *model.Config {
	t.Helper()
	f, diags := conf.Parse("t.conf", []byte(src), conf.Options{ConfigID: "lb1"})
	c, more := model.Build(f)
	for _, d := range append(diags, more...) {
		t.Logf("%v", d)
	}
	return c
}

func TestConfigFromModel(t *testing.T) {
	m := buildModel(t, `
global_defs {
	vrrp_garp_master_repeat 2
}
vrrp_instance VI_1 {
	interface eth0
	state MASTER
	priority 150
	virtual_router_id 51
	version 3
	advert_int 0.5
	preempt_delay 3
	unicast_src_ip 10.0.0.1
	unicast_peer {
		10.0.0.2 min_ttl 60
		10.0.0.3
	}
	garp_master_delay 1
	virtual_ipaddress {
		10.0.0.100/24
	}
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 52
	authentication {
		auth_type PASS
		auth_pass secret
	}
	virtual_ipaddress {
		10.0.0.101
	}
}
`)
	c, err := ConfigFromModel(m.Instances[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "VI_1" || c.VRID != 51 || c.Priority != 150 || c.Version != 3 || c.Family != packet.IPv4 ||
		c.AdvertInterval != 500*time.Millisecond || !c.InitialMaster || !c.Preempt ||
		!c.Unicast || c.Src != netip.MustParseAddr("10.0.0.1") || len(c.Dst) != 2 ||
		len(c.VIPs) != 1 || c.VIPs[0] != netip.MustParseAddr("10.0.0.100") ||
		c.GARP.MasterDelay != time.Second || c.GARP.MasterRepeat != 2 || c.DownTimerAdverts != 3 {
		t.Errorf("VI_1: %+v", c)
	}
	if len(c.PeerTTL) != 2 || c.PeerTTL[0] != (packet.TTLRange{Min: 60, Max: 255}) || c.PeerTTL[1] != (packet.TTLRange{Min: 0, Max: 255}) {
		t.Errorf("VI_1 peer ttl ranges %v", c.PeerTTL)
	}
	if e := c.Expect(); len(e.PeerTTL) != 2 {
		t.Errorf("Expect carries no peer ttl ranges: %+v", e)
	}
	// state MASTER clears preempt_delay in the model, as in keepalived.
	if c.PreemptDelay != 0 {
		t.Errorf("preempt_delay %v with state MASTER", c.PreemptDelay)
	}
	c2, err := ConfigFromModel(m.Instances[1])
	if err != nil {
		t.Fatal(err)
	}
	if c2.Version != 2 || c2.Priority != 100 || c2.AuthType != packet.AuthPass || c2.AuthData != packet.PassAuthData("secret") ||
		c2.Unicast || len(c2.Dst) != 1 || c2.Dst[0] != packet.GroupIPv4 {
		t.Errorf("VI_2: %+v", c2)
	}
	if _, err := NewInstance(c2); err != nil {
		t.Error(err)
	}
}
