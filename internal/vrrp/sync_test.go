package vrrp

import (
	"errors"
	"testing"
	"time"
)

func newGroup(t *testing.T) (*sim, *SyncGroup, *Instance, *Instance) {
	t.Helper()
	a, err := NewInstance(cfg("VI_A", 100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewInstance(cfg("VI_B", 150, func(c *Config) { c.VRID = 52 }))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewSyncGroup("G", a, b)
	if err != nil {
		t.Fatal(err)
	}
	return newSim(t, a, b), g, a, b
}

func TestSyncGroupMovesTogether(t *testing.T) {
	s, g, a, b := newGroup(t)
	steps := []struct {
		name string
		run  func() []Action
		want string
	}{
		{"start A", func() []Action { return s.do(a, Start()) }, "VI_A:INIT->BACKUP G:INIT->BACKUP"},
		{"start B", func() []Action { return s.do(b, Start()) }, "VI_B:INIT->BACKUP"},
		// B (priority 150) times out first, but A still waits for its
		// master: B is held in BACKUP, wanting MASTER.
		{"B times out alone", func() []Action { return s.at(down150) }, ""},
		// A times out too: everyone wants MASTER, so A goes and takes B.
		{"A times out", func() []Action { return s.at(down100) }, "VI_A:BACKUP->MASTER VI_B:BACKUP->MASTER G:BACKUP->MASTER"},
		// B meets a higher priority: the group goes BACKUP.
		{"B meets higher", func() []Action { return s.do(b, AdvertReceived(advert(b.Config(), 200), addr2)) },
			"VI_B:MASTER->BACKUP VI_A:MASTER->BACKUP G:MASTER->BACKUP"},
		{"A faults", func() []Action { return s.do(a, FaultChanged(true)) }, "VI_A:BACKUP->FAULT VI_B:BACKUP->FAULT G:BACKUP->FAULT"},
		{"B faults too", func() []Action { return s.do(b, FaultChanged(true)) }, ""},
		// The group leaves FAULT only when every member is up.
		{"A recovers", func() []Action { return s.do(a, FaultChanged(false)) }, ""},
		{"B recovers", func() []Action { return s.do(b, FaultChanged(false)) }, "VI_B:FAULT->BACKUP VI_A:FAULT->BACKUP G:FAULT->BACKUP"},
	}
	for _, st := range steps {
		if got := transitions(st.run()); got != st.want {
			t.Fatalf("%s:\n got %s\nwant %s", st.name, got, st.want)
		}
	}
	if g.State() != StateBackup || a.State() != StateBackup || b.State() != StateBackup {
		t.Fatalf("group %v, A %v, B %v", g.State(), a.State(), b.State())
	}
	// Silence: both time out and go MASTER together; then a fault on one
	// takes both down, each master saying goodbye with priority 0.
	s.advance(10 * time.Second)
	if g.State() != StateMaster || a.State() != StateMaster || b.State() != StateMaster {
		t.Fatalf("after silence: group %v, A %v, B %v", g.State(), a.State(), b.State())
	}
	got := s.do(b, FaultChanged(true))
	if tr := transitions(got); tr != "VI_B:MASTER->FAULT VI_A:MASTER->FAULT G:MASTER->FAULT" {
		t.Fatalf("master fault: %s", tr)
	}
	goodbyes := map[string]bool{}
	for _, act := range got {
		if act.Kind == ActSend && act.Priority == 0 {
			goodbyes[act.Instance] = true
		}
	}
	if !goodbyes["VI_A"] || !goodbyes["VI_B"] {
		t.Errorf("priority 0 adverts from %v, want both", goodbyes)
	}
}

func TestSyncGroupHeldByHeardMaster(t *testing.T) {
	s, g, a, b := newGroup(t)
	s.do(a, Start())
	s.do(b, Start())
	// A keeps hearing its master; B's router has no master for B's VRID.
	peer(s, a, 200, addr2, time.Second, 60*time.Second)
	if a.State() != StateBackup || b.State() != StateBackup || g.State() != StateBackup {
		t.Fatalf("A %v, B %v, group %v; want all BACKUP", a.State(), b.State(), g.State())
	}
	if _, ok := b.Deadline(TimerMasterDown); !ok {
		t.Error("held member has no master down timer")
	}
	// A's master leaves: A takes over, and B with it.
	s.at(60*time.Second + 500*time.Millisecond)
	s.do(a, AdvertReceived(advert(a.Config(), 0), addr2))
	s.advance(time.Second)
	if a.State() != StateMaster || b.State() != StateMaster {
		t.Fatalf("A %v, B %v; want MASTER", a.State(), b.State())
	}
}

func TestSyncGroupStartFaulted(t *testing.T) {
	s, g, a, b := newGroup(t)
	s.do(a, FaultChanged(true))
	s.do(a, Start())
	if got := transitions(s.do(b, Start())); got != "VI_B:INIT->FAULT" || g.State() != StateFault {
		t.Fatalf("start beside a faulted member: %s, group %v", got, g.State())
	}
	if got := transitions(s.do(a, FaultChanged(false))); got != "VI_A:FAULT->BACKUP VI_B:FAULT->BACKUP G:FAULT->BACKUP" {
		t.Fatalf("recover: %s", got)
	}
}

func TestSyncGroupMembership(t *testing.T) {
	a, _ := NewInstance(cfg("VI_A", 100))
	if _, err := NewSyncGroup("G1", a); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSyncGroup("G2", a); !errors.Is(err, ErrGrouped) {
		t.Errorf("second group: %v", err)
	}
	if _, err := NewSyncGroup("G3"); err == nil {
		t.Error("empty group")
	}
}
