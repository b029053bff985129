package ipvs

import (
	"time"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/keepvs/keepvs/internal/lvs"
)

// serviceTo is s as cloudflare/ipvs sends it. The netmask goes as IPVS
// keeps it: an IPv4 mask, or an IPv6 prefix length.
func serviceTo(s lvs.Service) cfipvs.Service {
	out := cfipvs.Service{
		Scheduler: s.Scheduler,
		Timeout:   uint32(s.Timeout / time.Second),
		Flags:     cfipvs.Flags(s.Flags),
		Family:    cfipvs.INET,
		FWMark:    s.FWMark,
	}
	if s.Is6() {
		out.Family = cfipvs.INET6
	}
	if s.FWMark == 0 {
		out.Protocol = cfipvs.Protocol(s.Proto)
		out.Address = s.Addr
		out.Port = s.Port
	}
	if s.Is6() {
		out.Netmask = netmask.MaskFrom(int(s.Netmask), 128)
	} else {
		m := s.Netmask
		out.Netmask = netmask.MaskFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
	}
	return out
}

func serviceFrom(s cfipvs.Service) lvs.Service {
	out := lvs.Service{
		Scheduler: s.Scheduler,
		Flags:     lvs.ServiceFlags(s.Flags),
		Timeout:   time.Duration(s.Timeout) * time.Second,
	}
	if s.FWMark != 0 {
		out.FWMark = s.FWMark
		out.IPv6 = s.Family == cfipvs.INET6
	} else {
		out.Proto = lvs.Protocol(s.Protocol)
		out.Addr = s.Address
		out.Port = s.Port
	}
	switch {
	case s.Netmask.Is4():
		b := s.Netmask.AsSlice()
		out.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	case s.Netmask.Is6():
		out.Netmask = uint32(s.Netmask.Bits())
	}
	return out
}

func destTo(d lvs.Destination) cfipvs.Destination {
	out := cfipvs.Destination{
		Address:        d.Addr,
		Port:           d.Port,
		FwdMethod:      cfipvs.ForwardType(d.Forward),
		Weight:         uint32(d.Weight),
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
		Family:         cfipvs.INET,
		TunnelType:     cfipvs.TunnelType(d.TunType),
		TunnelPort:     d.TunPort,
		TunnelFlags:    cfipvs.TunnelFlags(d.TunFlags),
	}
	if d.Addr.Is6() {
		out.Family = cfipvs.INET6
	}
	return out
}

func destFrom(d cfipvs.Destination) lvs.Destination {
	return lvs.Destination{
		Addr:       d.Address,
		Port:       d.Port,
		Weight:     int(int32(d.Weight)),
		Forward:    lvs.Forward(d.FwdMethod),
		UThreshold: d.UpperThreshold,
		LThreshold: d.LowerThreshold,
		TunType:    uint8(d.TunnelType),
		TunPort:    d.TunnelPort,
		TunFlags:   uint16(d.TunnelFlags),
	}
}

func statsFrom(s cfipvs.Stats) (lvs.Stats, lvs.Rates) {
	return lvs.Stats{
			Conns:    s.Connections,
			InPkts:   s.IncomingPackets,
			OutPkts:  s.OutgoingPackets,
			InBytes:  s.IncomingBytes,
			OutBytes: s.OutgoingBytes,
		}, lvs.Rates{
			CPS:    s.ConnectionRate,
			InPPS:  s.IncomingPacketRate,
			OutPPS: s.OutgoingPacketRate,
			InBPS:  s.IncomingByteRate,
			OutBPS: s.OutgoingByteRate,
		}
}
