package engine

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// DesiredService is one virtual service the configuration asks for, with
// the destinations it should have now.
type DesiredService struct {
	Service lvs.Service
	Dests   []lvs.Destination
	// From is the virtual_server it came from.
	From *model.VirtualServer
}

// maxGroupServices bounds what one virtual_server_group may expand to.
const maxGroupServices = 65536

// Desired turns the configuration's virtual servers into IPVS services.
// A virtual_server_group expands into one service per address and port (and
// one per fwmark), as keepalived programs IPVS. Until health checks run,
// every real server counts as up.
func Desired(cfg *model.Config) ([]DesiredService, error) {
	return desired(cfg, true)
}

// desired is Desired, with the destinations left out unless withDests.
func desired(cfg *model.Config, withDests bool) ([]DesiredService, error) {
	groups := map[string]*model.VirtualServerGroup{}
	for _, g := range cfg.VSGroups {
		groups[g.Name] = g
	}
	out := make([]DesiredService, 0, len(cfg.VirtualServers))
	for _, vs := range cfg.VirtualServers {
		base, err := serviceOf(vs)
		if err != nil {
			return nil, fmt.Errorf("%s: virtual_server %s: %w", vs.Pos, vs.Name(), err)
		}
		var dests []lvs.Destination
		if withDests {
			dests = destsOf(vs)
		}
		var keys []lvs.ServiceKey
		switch {
		case vs.Group != "":
			g, ok := groups[vs.Group]
			if !ok {
				return nil, fmt.Errorf("%s: virtual_server_group %q is not defined", vs.Pos, vs.Group)
			}
			keys, err = groupKeys(g, base.ServiceKey)
			if err != nil {
				return nil, fmt.Errorf("%s: virtual_server group %s: %w", vs.Pos, vs.Group, err)
			}
		default:
			keys = []lvs.ServiceKey{base.ServiceKey}
		}
		for _, k := range keys {
			s := base
			s.ServiceKey = k
			if s.Netmask == 0 || (k.Is6() && s.Netmask > 128) {
				s.Netmask = defaultMask(k.Is6())
			}
			out = append(out, DesiredService{Service: s, Dests: dests, From: vs})
		}
	}
	return out, nil
}

func defaultMask(v6 bool) uint32 {
	if v6 {
		return 128
	}
	return 0xffffffff
}

func serviceOf(vs *model.VirtualServer) (lvs.Service, error) {
	s := lvs.Service{Scheduler: vs.Scheduler}
	switch {
	case vs.FWMark != 0:
		s.FWMark = vs.FWMark
		s.IPv6 = vs.Family == "inet6"
	case vs.Group == "":
		s.Proto, s.Addr, s.Port = lvs.Protocol(vs.Protocol), vs.Addr, vs.Port
	default:
		s.Proto = lvs.Protocol(vs.Protocol)
	}
	if vs.PersistenceTimeout > 0 {
		s.Flags |= lvs.FlagPersistent
		s.Timeout = vs.PersistenceTimeout.D()
	}
	if vs.OnePacket {
		s.Flags |= lvs.FlagOnePacket
	}
	for _, f := range vs.SchedFlags {
		switch f {
		case model.FlagSched1:
			s.Flags |= lvs.FlagSched1
		case model.FlagSched2:
			s.Flags |= lvs.FlagSched2
		case model.FlagSched3:
			s.Flags |= lvs.FlagSched3
		}
	}
	s.PEName = vs.PersistenceEngine
	if g := vs.PersistenceGranularity; g != "" {
		if strings.Contains(g, ".") {
			a, err := netip.ParseAddr(g)
			if err != nil || !a.Is4() {
				return s, fmt.Errorf("persistence_granularity %q", g)
			}
			b := a.As4()
			s.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		} else {
			n, err := strconv.Atoi(g)
			if err != nil {
				return s, fmt.Errorf("persistence_granularity %q", g)
			}
			s.Netmask = uint32(n)
		}
	}
	return s, nil
}

// Forward maps keepalived's lvs_method to IPVS's forwarding method.
func Forward(f model.Forward) (lvs.Forward, uint8, uint16, uint16) {
	var tunType uint8
	var tunFlags uint16
	switch f.TunType {
	case "gue":
		tunType = lvs.TunGUE
	case "gre":
		tunType = lvs.TunGRE
	}
	switch f.TunCsum {
	case "csum":
		tunFlags = lvs.TunFlagCsum
	case "remcsum":
		tunFlags = lvs.TunFlagRemCsum
	}
	switch f.Method {
	case model.DR:
		return lvs.Route, 0, 0, 0
	case model.TUN:
		return lvs.Tunnel, tunType, f.TunPort, tunFlags
	}
	return lvs.Masq, 0, 0, 0
}

// DestinationOf is a real server as an IPVS destination.
func DestinationOf(rs *model.RealServer) lvs.Destination {
	fwd, tt, tp, tf := Forward(rs.Forward)
	return lvs.Destination{Addr: rs.Addr, Port: rs.Port, Weight: rs.Weight, Forward: fwd,
		UThreshold: rs.UThreshold, LThreshold: rs.LThreshold, TunType: tt, TunPort: tp, TunFlags: tf}
}

func destsOf(vs *model.VirtualServer) []lvs.Destination {
	out := make([]lvs.Destination, 0, len(vs.RealServers))
	for _, rs := range vs.RealServers {
		out = append(out, DestinationOf(rs))
	}
	return out
}

// groupKeys expands a group's members into service keys.
func groupKeys(g *model.VirtualServerGroup, base lvs.ServiceKey) ([]lvs.ServiceKey, error) {
	var keys []lvs.ServiceKey
	for _, m := range g.Members {
		if m.FWMark != 0 {
			keys = append(keys, lvs.ServiceKey{FWMark: m.FWMark, IPv6: m.Family == "inet6"})
			continue
		}
		for a := m.First; ; a = a.Next() {
			keys = append(keys, lvs.ServiceKey{Proto: base.Proto, Addr: a, Port: m.Port})
			if len(keys) > maxGroupServices {
				return nil, fmt.Errorf("expands to more than %d services", maxGroupServices)
			}
			if a == m.Last || !a.IsValid() {
				break
			}
		}
	}
	return keys, nil
}
