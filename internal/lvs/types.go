// Package lvs is the virtual service table as IPVS keeps it: services keyed
// by protocol, address and port (or fwmark), destinations with weights,
// thresholds and forwarding methods, persistence templates, the connection
// table with IPVS's states and timeouts, and statistics with the kernel's
// rate estimator. The userspace data plane runs on it; the kernel data plane
// reports the same types from the kernel. These types are also what the
// control API speaks in JSON.
package lvs

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol numbers IPVS services use.
type Protocol uint16

const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "FWM"
	}
	return fmt.Sprintf("%d", uint16(p))
}

// ServiceKey identifies a virtual service: Proto+Addr+Port, or FWMark
// (with the family of its addresses; Proto 0).
type ServiceKey struct {
	Proto  Protocol   `json:"protocol"`
	Addr   netip.Addr `json:"addr,omitzero"`
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	// IPv6 is the family of a fwmark service (its Addr is unset).
	IPv6 bool `json:"ipv6,omitempty"`
}

// Family reports whether the service is IPv6.
func (k ServiceKey) Is6() bool {
	if k.FWMark != 0 {
		return k.IPv6
	}
	return k.Addr.Is6()
}

func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return fmt.Sprintf("%s %s", k.Proto, netip.AddrPortFrom(k.Addr, k.Port))
}

// ServiceFlags are IPVS's IP_VS_SVC_F_* bits.
type ServiceFlags uint32

const (
	FlagPersistent ServiceFlags = 0x0001
	FlagHashed     ServiceFlags = 0x0002
	FlagOnePacket  ServiceFlags = 0x0004
	FlagSched1     ServiceFlags = 0x0008 // sh-fallback, mh-fallback
	FlagSched2     ServiceFlags = 0x0010 // sh-port, mh-port
	FlagSched3     ServiceFlags = 0x0020
)

// Service is a virtual service's configuration.
type Service struct {
	ServiceKey
	Scheduler string       `json:"scheduler"`
	Flags     ServiceFlags `json:"flags,omitempty"`
	// Timeout is the persistence timeout (FlagPersistent set).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Netmask is the persistence granularity as IPVS keeps it: for IPv4
	// the mask in host byte order (0xffffffff by default), for IPv6 the
	// prefix length (128 by default).
	Netmask uint32 `json:"netmask"`
	PEName  string `json:"pe_name,omitempty"`
}

// Persistent reports whether connections stick to a destination.
func (s *Service) Persistent() bool { return s.Flags&FlagPersistent != 0 }

// Forward is a destination's forwarding method: IPVS's IP_VS_CONN_F_FWD_MASK
// values.
type Forward uint32

const (
	Masq   Forward = 0 // NAT
	Local  Forward = 1
	Tunnel Forward = 2
	Route  Forward = 3 // DR
)

func (f Forward) String() string {
	switch f {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return "Unknown"
}

// Tunnel types for Forward == Tunnel.
const (
	TunIPIP = 0
	TunGUE  = 1
	TunGRE  = 2
)

// Tunnel flags.
const (
	TunFlagNoCsum  = 0
	TunFlagCsum    = 1
	TunFlagRemCsum = 2
)

// Destination is a real server of a service.
type Destination struct {
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port"`
	Weight  int        `json:"weight"`
	Forward Forward    `json:"forward"`
	// UThreshold and LThreshold bound connections: at UThreshold
	// (active+inactive) the destination is OVERLOADED until it drops to
	// LThreshold (or, with no lower threshold, 3/4 of the upper one). 0
	// means no threshold.
	UThreshold uint32 `json:"u_threshold,omitempty"`
	LThreshold uint32 `json:"l_threshold,omitempty"`
	TunType    uint8  `json:"tun_type,omitempty"`
	TunPort    uint16 `json:"tun_port,omitempty"`
	TunFlags   uint16 `json:"tun_flags,omitempty"`
}

// AddrPort is the destination's address and port.
func (d *Destination) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Stats are IPVS's counters for a service or destination.
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"inpkts"`
	OutPkts  uint64 `json:"outpkts"`
	InBytes  uint64 `json:"inbytes"`
	OutBytes uint64 `json:"outbytes"`
}

// Rates are the estimator's smoothed per-second rates.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"inpps"`
	OutPPS uint64 `json:"outpps"`
	InBPS  uint64 `json:"inbps"`
	OutBPS uint64 `json:"outbps"`
}

// DestStatus is a destination with its counters, as ipvsadm -L shows it.
type DestStatus struct {
	Destination
	ActiveConns  uint32 `json:"active_conns"`
	InactConns   uint32 `json:"inact_conns"`
	PersistConns uint32 `json:"persist_conns"`
	Overloaded   bool   `json:"overloaded,omitempty"`
	Stats        Stats  `json:"stats"`
	Rates        Rates  `json:"rates"`
}

// ServiceStatus is a service with its destinations and counters.
type ServiceStatus struct {
	Service
	Stats Stats        `json:"stats"`
	Rates Rates        `json:"rates"`
	Dests []DestStatus `json:"dests"`
}

// Conn is one entry of the connection table, as ipvsadm -Lnc shows it.
// A persistence template has Template set, a client port of 0 (and, for a
// persistent fwmark service, a virtual address of 0 and the mark in FWMark).
type Conn struct {
	Proto    Protocol       `json:"protocol"`
	Client   netip.AddrPort `json:"client"`
	Virtual  netip.AddrPort `json:"virtual"`
	Dest     netip.AddrPort `json:"dest"`
	State    string         `json:"state"`
	Expires  time.Duration  `json:"expires"`
	Template bool           `json:"template,omitempty"`
	FWMark   uint32         `json:"fwmark,omitempty"`
}

// Timeouts are the connection timeouts ipvsadm --set sets: TCP ESTABLISHED,
// TCP FIN_WAIT (and the closing states), UDP.
type Timeouts struct {
	TCP    time.Duration `json:"tcp"`
	TCPFin time.Duration `json:"tcpfin"`
	UDP    time.Duration `json:"udp"`
}

// DefaultTimeouts are the kernel's.
var DefaultTimeouts = Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}

// Info is the table's identity line: "IP Virtual Server version 1.2.1
// (size=4096)".
type Info struct {
	Version       string `json:"version"`
	ConnTableSize int    `json:"conn_tab_size"`
}

// Errors, matching what the kernel returns for ipvsadm to report.
var (
	ErrServiceExists = errors.New("service already exists")       // EEXIST on add service
	ErrNoService     = errors.New("no such service")              // ESRCH
	ErrDestExists    = errors.New("destination already exists")   // EEXIST on add destination
	ErrNoDest        = errors.New("no such destination")          // ENOENT on edit/delete destination
	ErrNoScheduler   = errors.New("scheduler not found")          // ENOENT on add/edit service
	ErrNoPE          = errors.New("persistence engine not found") // ENOENT
	ErrInvalid       = errors.New("invalid argument")             // EINVAL
	ErrRange         = errors.New("value out of range")           // ERANGE (weight < 0)
	ErrNoDestination = errors.New("no destination available")     // scheduling found nothing
)
