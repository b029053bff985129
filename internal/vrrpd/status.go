package vrrpd

import (
	"time"

	"github.com/keepvs/keepvs/internal/track"
	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

type trackedRefs = track.Tracked

// InstanceStatus is one instance as `keepvs status` shows it.
type InstanceStatus struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      int    `json:"vrid"`
	Version   int    `json:"version"`
	State     string `json:"state"`
	// Priority is the effective priority; BasePriority the configured.
	Priority     int       `json:"priority"`
	BasePriority int       `json:"base_priority"`
	Src          string    `json:"src,omitempty"`
	Master       string    `json:"master,omitempty"`
	VIPs         []string  `json:"vips"`
	HoldsVIPs    bool      `json:"holds_vips"`
	SyncGroup    string    `json:"sync_group,omitempty"`
	Since        time.Time `json:"since"`
	Stats        Stats     `json:"stats"`
}

// Stats are the RFC 6527 counters and the drops by reason.
type Stats struct {
	packet.Stats
	// DropsByReason names packet.Stats.Drops.
	DropsByReason map[string]uint64 `json:"drops_by_reason,omitempty"`
}

// Status is every instance's state and counters.
func (n *Node) Status() []InstanceStatus {
	var out []InstanceStatus
	n.call(func() {
		for _, i := range n.ins {
			s := InstanceStatus{Name: i.m.Name, Interface: i.base, VRID: i.m.VRID, Version: i.m.Version,
				BasePriority: i.m.Priority, State: "INIT", Priority: i.m.Priority}
			for _, v := range i.m.VIPs {
				s.VIPs = append(s.VIPs, v.Prefix.String())
			}
			if i.group != nil {
				s.SyncGroup = i.group.m.Name
			}
			if i.in != nil {
				s.State = i.in.State().String()
				s.Priority = int(i.in.Priority())
				s.HoldsVIPs = i.in.VIPsSet()
				s.Src = i.cfg.Src.String()
				if a, _ := i.in.Master(); a.IsValid() {
					s.Master = a.String()
				}
				s.Since = i.since
				s.Stats.Stats = i.stats
				for r, c := range i.stats.Drops {
					if c > 0 {
						if s.Stats.DropsByReason == nil {
							s.Stats.DropsByReason = map[string]uint64{}
						}
						s.Stats.DropsByReason[packet.DropReason(r).String()] = c
					}
				}
			}
			out = append(out, s)
		}
	})
	return out
}
