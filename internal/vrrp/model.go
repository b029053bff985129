package vrrp

import (
	"fmt"
	"net/netip"

	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// ConfigFromModel is the state machine's view of a resolved
// vrrp_instance. Src is unicast_src_ip or mcast_src_ip when given; when it
// is not, the engine sets the interface's primary address before
// NewInstance. Dst is the unicast peers, or mcast_dst_ip.
func ConfigFromModel(m *model.Instance) (Config, error) {
	c := Config{
		Name:                 m.Name,
		InitialMaster:        m.State == "MASTER",
		Preempt:              m.Preempt,
		PreemptDelay:         m.PreemptDelay.D(),
		AdvertInterval:       m.AdvertInt.D(),
		DownTimerAdverts:     m.DownTimerAdverts,
		SkipCheckAdvAddr:     m.SkipCheckAdvAddr,
		LowerPrioNoAdvert:    m.GARP.LowerPrioNoAdvert,
		HigherPrioSendAdvert: m.GARP.HigherPrioSendAdvert,
		CheckUnicastSrc:      m.CheckUnicastSrc,
		GARP: GARP{
			MasterDelay:         m.GARP.MasterDelay.D(),
			MasterRepeat:        int(m.GARP.MasterRepeat),
			LowerPrioDelay:      m.GARP.LowerPrioDelay.D(),
			LowerPrioRepeat:     int(m.GARP.LowerPrioRepeat),
			MasterRefresh:       m.GARP.MasterRefresh.D(),
			MasterRefreshRepeat: int(m.GARP.MasterRefreshRepeat),
			Interval:            m.GARP.Interval.D(),
		},
	}
	if m.VRID < 1 || m.VRID > 255 || m.Priority < 1 || m.Priority > 255 || (m.Version != 2 && m.Version != 3) {
		return Config{}, fmt.Errorf("vrrp instance %s: vrid %d priority %d version %d: %w", m.Name, m.VRID, m.Priority, m.Version, ErrConfig)
	}
	c.VRID, c.Priority, c.Version = uint8(m.VRID), uint8(m.Priority), uint8(m.Version)
	c.Family = packet.IPv4
	if m.Family == "inet6" {
		c.Family = packet.IPv6
		if m.GARP.NAInterval != 0 {
			c.GARP.Interval = m.GARP.NAInterval.D()
		}
	}
	for _, v := range m.VIPs {
		c.VIPs = append(c.VIPs, v.Prefix.Addr())
	}
	c.Src = m.McastSrcIP
	if len(m.UnicastPeers) > 0 {
		c.Unicast = true
		if m.UnicastSrcIP.IsValid() {
			c.Src = m.UnicastSrcIP
		}
		ranged := false
		for _, p := range m.UnicastPeers {
			c.Dst = append(c.Dst, p.Addr)
			r := packet.TTLRange{Min: 0, Max: 255}
			if p.MinTTL != nil {
				r.Min, ranged = uint8(*p.MinTTL), true
			}
			if p.MaxTTL != nil {
				r.Max, ranged = uint8(*p.MaxTTL), true
			}
			c.PeerTTL = append(c.PeerTTL, r)
		}
		if !ranged {
			c.PeerTTL = nil
		}
	} else {
		c.Dst = []netip.Addr{m.McastDstIP}
	}
	if m.Auth != nil {
		if m.Auth.Type != "PASS" {
			return Config{}, fmt.Errorf("vrrp instance %s: auth_type %s: %w", m.Name, m.Auth.Type, packet.ErrAuthAH)
		}
		c.AuthType, c.AuthData = packet.AuthPass, packet.PassAuthData(m.Auth.Pass)
	}
	if err := c.Check(); err != nil {
		return Config{}, err
	}
	return c, nil
}
