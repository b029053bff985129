package vrrpd

import (
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/model"
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

// instSnap is what Status copies out of the loop: values and the
// instance's configuration (which a reload replaces, never changes), so
// the loop allocates nothing for it but the slice.
type instSnap struct {
	m       *model.Instance
	base    string
	group   string
	src     netip.Addr
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
	var snaps []instSnap
	n.call(func() {
		snaps = make([]instSnap, len(n.ins))
		for k, i := range n.ins {
			sn := &snaps[k]
			sn.m, sn.base = i.m, i.base
			if i.group != nil {
				sn.group = i.group.m.Name
			}
			if i.in == nil {
				continue
			}
			master, _ := i.in.Master()
			sn.ok, sn.state, sn.prio, sn.vipsSet = true, i.in.State().String(), int(i.in.Priority()), i.in.VIPsSet()
			sn.src, sn.master, sn.since, sn.stats = i.cfg.Src, master, i.since, i.stats
		}
	})
	var out []InstanceStatus
	for _, sn := range snaps {
		m := sn.m
		s := InstanceStatus{Name: m.Name, Interface: sn.base, VRID: m.VRID, Version: m.Version,
			BasePriority: m.Priority, State: "INIT", Priority: m.Priority, SyncGroup: sn.group}
		for _, v := range m.VIPs {
			s.VIPs = append(s.VIPs, v.Prefix.String())
		}
		if sn.ok {
			s.State = sn.state
			s.Priority = sn.prio
			s.HoldsVIPs = sn.vipsSet
			s.Src = sn.src.String()
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
