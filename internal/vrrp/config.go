package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/vrrp/packet"
)

// PriorityOwner is the address owner's priority (RFC 5798 5.2.4).
const PriorityOwner = 255

// Config is what the state machine needs of a vrrp_instance, resolved:
// ConfigFromModel builds it from model.Instance, and the engine fills Src
// (and Dst, when it knows better) from the interface.
type Config struct {
	Name    string
	VRID    uint8
	Version uint8 // 2 or 3
	Family  packet.Family
	// Priority is the base priority, 1-255; 255 is the address owner,
	// which tracking cannot move.
	Priority       uint8
	AdvertInterval time.Duration
	// InitialMaster is "state MASTER". keepalived 2.x starts such an
	// instance as BACKUP unless it is the address owner; in a sync group
	// it only shortens the first master down timer.
	InitialMaster bool
	// Preempt is on unless nopreempt; PreemptDelay is preempt_delay.
	Preempt      bool
	PreemptDelay time.Duration
	// DownTimerAdverts is vrrp_down_timer_adverts: how many adverts a
	// backup misses before the master is down (RFC: 3). 0 means 3.
	DownTimerAdverts int
	// SkipCheckAdvAddr: do not check the address list of adverts from
	// the master the backup already follows.
	SkipCheckAdvAddr bool
	// LowerPrioNoAdvert: a master does not answer a lower-priority
	// advert. HigherPrioSendAdvert: a master sends an advert before it
	// yields to a higher priority.
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	GARP                 GARP

	// VIPs are the addresses the adverts carry (virtual_ipaddress).
	VIPs []netip.Addr
	// Src is the instance's primary address: the adverts' source, and
	// what a master compares a sender with at equal priority.
	Src netip.Addr
	// Dst is where adverts go: the multicast group, or the unicast peers
	// when Unicast.
	Dst     []netip.Addr
	Unicast bool
	// CheckUnicastSrc: unicast adverts only from Dst.
	CheckUnicastSrc bool
	// PeerTTL, when not nil, is each unicast peer's (Dst's) accepted TTL
	// range (min_ttl, max_ttl).
	PeerTTL []packet.TTLRange
	// AuthType and AuthData: VRRPv2 authentication (AuthNone or AuthPass).
	AuthType packet.AuthType
	AuthData [packet.AuthDataLen]byte
}

// GARP is the gratuitous ARP / unsolicited NA schedule of a master.
type GARP struct {
	// MasterDelay and MasterRepeat: on becoming master, MasterRepeat
	// rounds at once and MasterRepeat more after MasterDelay (0: none).
	MasterDelay  time.Duration
	MasterRepeat int
	// LowerPrioDelay and LowerPrioRepeat: the same on receiving a
	// lower-priority advert as master (LowerPrioRepeat 0: none).
	LowerPrioDelay  time.Duration
	LowerPrioRepeat int
	// MasterRefresh and MasterRefreshRepeat: MasterRefreshRepeat rounds
	// every MasterRefresh while master (0: no refresh).
	MasterRefresh       time.Duration
	MasterRefreshRepeat int
	// Interval is the pause between rounds.
	Interval time.Duration
}

// ErrConfig is wrapped by every Config.Check error.
var ErrConfig = errors.New("invalid vrrp instance config")

// Check reports a configuration the state machine cannot run.
func (c *Config) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("vrrp instance %s: %s: %w", c.Name, fmt.Sprintf(format, args...), ErrConfig)
	}
	if c.VRID == 0 {
		return bad("vrid 0")
	}
	if c.Priority == 0 {
		return bad("priority 0")
	}
	if _, err := packet.AdvertIntFor(c.Version, c.AdvertInterval); err != nil {
		return bad("%v", err)
	}
	if c.Family != packet.IPv4 && c.Family != packet.IPv6 {
		return bad("family %v", c.Family)
	}
	if c.Version == 2 && c.Family == packet.IPv6 {
		return bad("vrrpv2 over ipv6")
	}
	if c.DownTimerAdverts < 0 || c.DownTimerAdverts > 100 {
		return bad("down_timer_adverts %d", c.DownTimerAdverts)
	}
	if c.PreemptDelay < 0 {
		return bad("preempt_delay %v", c.PreemptDelay)
	}
	if len(c.VIPs) > 255 {
		return bad("%d vips", len(c.VIPs))
	}
	return nil
}

// Expect is what packet.ValidateInto checks adverts for this instance
// against. Set SkipAddrCheck per advert from Instance.SkipAddrCheck.
func (c *Config) Expect() packet.Expect {
	e := packet.Expect{
		Version:         c.Version,
		Family:          c.Family,
		VRID:            c.VRID,
		AuthType:        c.AuthType,
		AuthData:        c.AuthData,
		AdvertInterval:  c.AdvertInterval,
		VIPs:            c.VIPs,
		Unicast:         c.Unicast,
		CheckUnicastSrc: c.CheckUnicastSrc,
	}
	if c.Unicast {
		e.UnicastPeers = c.Dst
		e.PeerTTL = c.PeerTTL
	}
	return e
}

// Skew is Skew_Time for a priority and a Master_Adver_Interval, computed
// as keepalived computes it, in whole microseconds:
//
//	VRRPv2: (256-priority)/256 s (RFC 3768 6.1)
//	VRRPv3: ((256-priority) * Master_Adver_Interval)/256 (RFC 5798 6.1),
//	        with the interval counted in whole centiseconds.
//
// RFC 5798 does the v3 division in centiseconds; keepalived, and so
// keepvs, keep the microseconds (609.375 ms rather than 600 ms for
// priority 100 at 1 s), which only moves a takeover by under 10 ms.
func Skew(version uint8, priority uint8, masterAdverInt time.Duration) time.Duration {
	p := int64(256 - int(priority))
	if version == 3 {
		cs := int64(masterAdverInt / (10 * time.Millisecond))
		// 625/16 is 10000 µs per centisecond over 256.
		return time.Duration(p*cs*625/16) * time.Microsecond
	}
	return time.Duration(p*1_000_000/256) * time.Microsecond
}

// MasterDownInterval is adverts*Master_Adver_Interval + Skew_Time (RFC:
// adverts is 3; keepalived's vrrp_down_timer_adverts changes it).
func MasterDownInterval(version, priority uint8, masterAdverInt time.Duration, adverts int) time.Duration {
	if adverts <= 0 {
		adverts = 3
	}
	return time.Duration(adverts)*masterAdverInt + Skew(version, priority, masterAdverInt)
}
