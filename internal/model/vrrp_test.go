package model

import (
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// buildString builds a configuration from src and returns it with its
// diagnostics rendered one per line, without the file name.
func buildString(t *testing.T, src string) (*Config, string) {
	t.Helper()
	f, diags := conf.Parse("t.conf", []byte(src), testOptions())
	c, more := Build(f)
	var out []string
	for _, d := range append(diags, more...) {
		out = append(out, strings.TrimPrefix(d.String(), "t.conf:"))
	}
	return c, strings.Join(out, "\n")
}

// inst wraps instance statements in a minimal valid vrrp_instance.
func inst(body string) string {
	return "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n10.0.0.1\n}\n" + body + "\n}\n"
}

func TestInstanceKeywords(t *testing.T) {
	tests := []struct {
		name, body, diag string
		check            func(*Instance) bool
	}{
		{"priority ok", "priority 200", "", func(i *Instance) bool { return i.Priority == 200 }},
		{"priority range", "priority 256", "7:10: priority: 256 is out of range 1-255", nil},
		{"priority word", "priority high", `7:10: priority: "high" is not an integer`, nil},
		{"vrid range", "virtual_router_id 0", "7:19: virtual_router_id: 0 is out of range 1-255", nil},
		{"state", "state BACKUP", "", func(i *Instance) bool { return i.State == "BACKUP" }},
		{"state case", "state backup", `7:7: state: "backup" is not one of MASTER, BACKUP (did you mean BACKUP?)`, nil},
		{"advert_int", "advert_int 3", "", func(i *Instance) bool { return i.AdvertInt.D() == 3*time.Second }},
		{"advert_int v2 fraction", "advert_int 1.5", "7:1: advert_int: 1.5s is not a whole number of seconds, as VRRPv2 needs (use version 3 for fractions)", nil},
		{"advert_int v3 fraction", "version 3\nadvert_int 0.25", "", func(i *Instance) bool { return i.AdvertInt.D() == 250*time.Millisecond && i.Version == 3 }},
		{"advert_int v3 too long", "version 3\nadvert_int 41", "8:1: advert_int: 41s is more than VRRPv3's 40.95s", nil},
		{"preempt_delay", "preempt_delay 4.5", "", func(i *Instance) bool { return i.PreemptDelay.D() == 4500*time.Millisecond }},
		{"preempt_delay range", "preempt_delay 1000.5", "7:15: preempt_delay: 1000.5 is out of range 0s-1000s", nil},
		{"nopreempt", "nopreempt", "", func(i *Instance) bool { return !i.Preempt }},
		{"nopreempt preempt", "nopreempt\npreempt", "", func(i *Instance) bool { return i.Preempt }},
		{"nopreempt master", "state MASTER\nnopreempt", "8:1: nopreempt: warning: ignored: an address owner (priority 255) always preempts", func(i *Instance) bool { return i.Preempt }},
		{"auth pass", "authentication {\nauth_type PASS\nauth_pass abcdefghij\n}", `9:11: auth_pass: warning: only the first 8 characters are used ("abcdefgh")`, func(i *Instance) bool { return i.Auth.Pass == "abcdefgh" }},
		{"auth v3", "version 3\nauthentication {\nauth_type AH\n}", "8:1: authentication: warning: ignored: VRRPv3 has no authentication", func(i *Instance) bool { return i.Auth == nil }},
		{"unicast peer", "unicast_peer {\n10.0.0.2 min_ttl 1\n}", "", func(i *Instance) bool { return len(i.UnicastPeers) == 1 && i.CheckUnicastSrc }},
		{"unicast peer family", "unicast_peer {\n2001:db8::2\n}", "8:1: 2001:db8::2: unicast peer is IPv6 but VI_1 is IPv4", nil},
		{"track_interface weight", "track_interface {\neth1 weight -20\n}", "", func(i *Instance) bool { return i.TrackInterface[0].Weight.Value == -20 }},
		{"track_interface reverse", "track_interface {\neth1 weight 20 reverse\n}", "", func(i *Instance) bool { return i.TrackInterface[0].Weight.Reverse }},
		{"track_interface range", "track_interface {\neth1 weight 254\n}", "8:13: eth1: weight 254 is out of range -253-253", nil},
		{"use_vmac name mac", "use_vmac vrrp.1 02:00:5e:00:01:01", "", func(i *Instance) bool { return i.VMAC.Name == "vrrp.1" && i.VMAC.MAC == "02:00:5e:00:01:01" }},
		{"garp override", "garp_master_delay 1", "", func(i *Instance) bool {
			return i.GARP.MasterDelay.D() == time.Second && i.GARP.LowerPrioDelay.D() == time.Second && i.GARP.MasterRepeat == 5
		}},
		{"vip options", "virtual_ipaddress_excluded {\n2001:db8::1/64 dev eth1 scope global label eth1:1 -nodad noprefixroute no_track\n}", "", func(i *Instance) bool {
			v := i.ExcludedVIPs[0]
			return v.Dev == "eth1" && v.Scope == "global" && v.NoDAD && v.NoPrefixRoute && v.NoTrack && v.Label == "eth1:1"
		}},
		{"vip brd v6", "virtual_ipaddress_excluded {\n2001:db8::1 brd ::1\n}", "8:17: 2001:db8::1: brd is for IPv4 addresses only", nil},
		{"notify script user", `notify_master "/bin/n.sh 'a b'" nobody nogroup`, "", func(i *Instance) bool {
			s := i.Notify.Master
			return s.User == "nobody" && s.Group == "nogroup" && len(s.Argv) == 2 && s.Argv[1] == "a b"
		}},
		{"unknown keyword", "prority 1", "7:1: prority: unknown keyword in vrrp_instance; did you mean `priority`?", nil},
		{"ignored", "track_bfd {\nb1\n}", "7:1: track_bfd: warning: accepted but not implemented by keepvs; ignored", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, diag := buildString(t, inst(tt.body))
			if diag != tt.diag {
				t.Errorf("diagnostics (-want +got):\n-%s\n+%s", tt.diag, diag)
			}
			if tt.check != nil && (len(c.Instances) != 1 || !tt.check(c.Instances[0])) {
				t.Errorf("model check failed: %+v", c.Instances)
			}
		})
	}
}

func TestInstanceDefaults(t *testing.T) {
	c, diag := buildString(t, inst(""))
	if diag != "" {
		t.Fatalf("unexpected diagnostics:\n%s", diag)
	}
	i := c.Instances[0]
	switch {
	case i.State != "BACKUP", i.Priority != 100, i.AdvertInt.D() != time.Second, i.Version != 2,
		i.Family != "inet", !i.Preempt, i.PreemptDelay != 0, i.Accept == nil || !*i.Accept,
		i.McastDstIP.String() != "224.0.0.18", i.DownTimerAdverts != 3,
		i.GARP.MasterDelay.D() != 5*time.Second, i.GARP.MasterRepeat != 5,
		i.GARP.LowerPrioDelay.D() != 5*time.Second, i.GARP.LowerPrioRepeat != 5,
		i.GARP.MasterRefresh != 0, i.GARP.MasterRefreshRepeat != 1:
		t.Errorf("defaults: %+v", i)
	}
	c, _ = buildString(t, inst("state MASTER"))
	if c.Instances[0].Priority != 255 {
		t.Errorf("state MASTER without priority: got %d, want 255", c.Instances[0].Priority)
	}
	c, _ = buildString(t, "vrrp_instance V {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\nfe80::1\n}\n}\n")
	if i := c.Instances[0]; i.Version != 3 || i.Family != "inet6" || i.McastDstIP.String() != "ff02::12" {
		t.Errorf("IPv6 instance: version %d family %s mcast %s", i.Version, i.Family, i.McastDstIP)
	}
}

func TestVRRPScript(t *testing.T) {
	c, diag := buildString(t, "vrrp_script s {\nscript \"/bin/check -q\"\n}\n"+inst("track_script {\ns\n}"))
	if diag != "" {
		t.Fatalf("unexpected diagnostics:\n%s", diag)
	}
	s := c.Scripts[0]
	if s.Interval.D() != time.Second || s.Timeout != 0 || s.Rise != 1 || s.Fall != 1 || s.Weight.Value != 0 || len(s.Script.Argv) != 2 {
		t.Errorf("defaults: %+v", s)
	}
	_, diag = buildString(t, "vrrp_script s {\nscript /bin/check -q\n}\n"+inst("track_script {\ns\n}"))
	want := `2:19: script: keepalived would run "/bin/check" alone and drop "-q"; quote the whole command
1:1: vrrp_script: vrrp_script s has no script`
	if diag != want {
		t.Errorf("unquoted script (-want +got):\n-%s\n+%s", want, diag)
	}
}

func TestGlobalDefaults(t *testing.T) {
	c, diag := buildString(t, "global_defs {\n}\n")
	if diag != "" {
		t.Fatalf("unexpected diagnostics:\n%s", diag)
	}
	g := c.Global
	if g.SMTPConnectTimeout.D() != 30*time.Second || g.VRRPVersion != 2 || g.VRRPMcastGroup4.String() != "224.0.0.18" ||
		g.VRRPMcastGroup6.String() != "ff02::12" || g.GARP.MasterDelay.D() != 5*time.Second || g.GARP.MasterRepeat != 5 ||
		g.DefaultInterface != "eth0" || g.VRRPDownTimerAdverts != 3 {
		t.Errorf("defaults: %+v", g)
	}
}

func TestGlobalKeywords(t *testing.T) {
	tests := []struct{ body, diag string }{
		{"smtp_server 10.0.0.1", ""},
		{"smtp_server 10.0.0.1 0", "2:22: smtp_server: 0 is out of range 1-65535"},
		{"vrrp_garp_master_refresh 60", ""},
		{"vrrp_garp_master_refresh -1", "2:26: vrrp_garp_master_refresh: -1 is out of range 0-4294967295"},
		{"lvs_sync_daemon eth0 id 5", ""},
		{"lvs_sync_daemon eth0 port", "2:22: lvs_sync_daemon: port needs a value"},
		{"lvs_timeouts tcp 10", ""},
		{"lvs_timeouts", "2:1: lvs_timeouts: needs at least 2 arguments"},
		{"vrrp_mcast_group4 ff02::12", "2:19: vrrp_mcast_group4: ff02::12 is not an IPv4 address"},
		{"enable_traps", "2:1: enable_traps: warning: accepted but not implemented by keepvs; ignored"},
		{"script_user a b c", `2:17: script_user: takes at most 2 arguments; "c" is one too many`},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, diag := buildString(t, "global_defs {\n"+tt.body+"\n}\n")
			if diag != tt.diag {
				t.Errorf("(-want +got):\n-%s\n+%s", tt.diag, diag)
			}
		})
	}
}

func TestSplitScriptWords(t *testing.T) {
	c, diag := buildString(t, inst(`notify_backup /bin/b root`))
	if diag != "" {
		t.Fatal(diag)
	}
	s := c.Instances[0].Notify.Backup
	if s.Cmd != "/bin/b" || s.User != "root" || len(s.Argv) != 1 {
		t.Errorf("notify user: %+v", s)
	}
}
