package vrrpd

import (
	"net/netip"
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

// instSnap is what Status copies out of the loop: values only, so the
// loop allocates nothing for it.
type instSnap struct {
	ok      bool
	state   string
	prio    int
	vipsSet bool
	master  netip.Addr
	since   time.Time
	stats   packet.Stats
}

// Status is every instance's state and counters.
func (n *Node) Status() []InstanceStatus {
	snaps := make([]instSnap, len(n.ins))
	n.call(func() {
		for k, i := range n.ins {
			if i.in == nil {
				continue
			}
			master, _ := i.in.Master()
			snaps[k] = instSnap{ok: true, state: i.in.State().String(), prio: int(i.in.Priority()), vipsSet: i.in.VIPsSet(),
				master: master, since: i.since, stats: i.stats}
		}
	})
	var out []InstanceStatus
	for k, i := range n.ins {
		s := InstanceStatus{Name: i.m.Name, Interface: i.base, VRID: i.m.VRID, Version: i.m.Version,
			BasePriority: i.m.Priority, State: "INIT", Priority: i.m.Priority}
		for _, v := range i.m.VIPs {
			s.VIPs = append(s.VIPs, v.Prefix.String())
		}
		if i.group != nil {
			s.SyncGroup = i.group.m.Name
		}
		if sn := snaps[k]; sn.ok {
			s.State = sn.state
			s.Priority = sn.prio
			s.HoldsVIPs = sn.vipsSet
			s.Src = i.cfg.Src.String()
			if sn.master.IsValid() {
				s.Master = sn.master.String()
			}
			s.Since = sn.since
			s.Stats.Stats = sn.stats
			for r, c := range sn.stats.Drops {
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
	return out
}
