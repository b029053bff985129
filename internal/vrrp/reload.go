package vrrp

import (
	"fmt"
	"time"
)

// Reconfigure gives a running instance the configuration a reload
// brings, as keepalived's restore_vrrp_state does: the instance keeps
// its state, the master it follows, its trackers' delta and whether its
// VIPs are set, and only what changed takes effect. It returns the
// actions that calls for (an ActPriority, timers re-armed), reused by the
// next call as Handle's are.
//
// A master stays MASTER and a backup BACKUP, whatever "state" now says:
// that only chooses how an instance starts. A new priority is the
// instance's from now on and the protocol settles the rest: a master
// that now has less than its backup hears nothing (a backup does not
// advertise) until the backup's master down timer runs out and it takes
// over; a backup that now has more than its master takes over the same
// way when it preempts.
//
// The name, the VRID and the family are the virtual router itself: a
// configuration that changes them is another instance, not this one.
func (in *Instance) Reconfigure(now time.Time, cfg Config) ([]Action, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Name != in.cfg.Name || cfg.VRID != in.cfg.VRID || cfg.Family != in.cfg.Family {
		return nil, fmt.Errorf("vrrp instance %s: reconfigured as %s vrid %d: %w", in.cfg.Name, cfg.Name, cfg.VRID, ErrConfig)
	}
	if cfg.DownTimerAdverts == 0 {
		cfg.DownTimerAdverts = 3
	}
	*in.out = (*in.out)[:0]
	old := in.cfg
	oldDown := in.downInterval()
	in.cfg = cfg
	in.base = cfg.Priority
	if !cfg.Preempt || cfg.PreemptDelay == 0 {
		in.preemptAt = time.Time{}
		in.stopTimer(TimerPreempt)
	}
	switch in.state {
	case StateMaster:
		in.masterAdverInt = cfg.AdvertInterval
		in.setEff(EffectivePriority(in.base, in.delta))
		in.masterAddr, in.masterPrio = cfg.Src, in.eff
		// The next advert no later than one new interval from now: a
		// backup given a shorter interval by the same reload must not
		// miss us while the old, longer one runs out.
		if d, ok := in.Deadline(TimerAdvert); !ok || d.After(now.Add(cfg.AdvertInterval)) {
			in.setTimer(now, TimerAdvert, cfg.AdvertInterval)
		}
		if g := cfg.GARP; g.MasterRefresh != old.GARP.MasterRefresh {
			if g.MasterRefresh > 0 {
				in.setTimer(now, TimerGARPRefresh, g.MasterRefresh)
			} else {
				in.stopTimer(TimerGARPRefresh)
			}
		}
	case StateBackup:
		// A VRRPv3 backup keeps the interval its master advertises
		// (RFC 5798 6.4.2); otherwise it is the instance's own.
		if cfg.Version != 3 || old.Version != 3 || !in.masterAddr.IsValid() {
			in.masterAdverInt = cfg.AdvertInterval
		}
		in.setEff(EffectivePriority(in.base, in.delta))
		if d := in.deadline[TimerMasterDown]; !d.IsZero() {
			// Move the running master down timer by what the interval
			// changed, as a tracker's priority change does.
			in.setTimer(now, TimerMasterDown, d.Add(in.downInterval()-oldDown).Sub(now))
		}
	default:
		in.masterAdverInt = cfg.AdvertInterval
		in.setEff(EffectivePriority(in.base, in.delta))
	}
	return *in.out, nil
}

// Ungroup takes the members out of g, which is not used again: a reload
// that changes a sync group regroups its instances with NewSyncGroup.
func (g *SyncGroup) Ungroup() {
	for _, m := range g.members {
		if m.group == g {
			m.group = nil
			m.out = &m.own
		}
	}
	g.members = nil
}
