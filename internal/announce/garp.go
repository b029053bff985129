package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// allNodes is where unsolicited neighbour adverts go (RFC 4861 7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// GARP sends one round of gratuitous ARP (IPv4 addrs) and unsolicited
// neighbour advertisements (IPv6 addrs) out of dev, from dev's MAC: every
// host on the LAN that knew the addresses at another MAC moves them here.
func (a *Announcer) GARP(dev string, addrs []netip.Addr) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return fmt.Errorf("garp: %w", err)
	}
	var v4, v6 []netip.Addr
	for _, ip := range addrs {
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, gratuitousARP(ifi, v4))
	}
	if len(v6) > 0 {
		errs = append(errs, unsolicitedNA(ifi, v6))
	}
	return errors.Join(errs...)
}

// gratuitousARP sends, for each address, an ARP request for itself from
// itself to the broadcast address, as keepalived does: hosts that cache
// the address update its MAC.
func gratuitousARP(ifi *net.Interface, addrs []netip.Addr) error {
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("gratuitous arp on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	for _, ip := range addrs {
		p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
		if err != nil {
			return fmt.Errorf("gratuitous arp %v: %w", ip, err)
		}
		if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
			return fmt.Errorf("gratuitous arp %v on %s: %w", ip, ifi.Name, err)
		}
	}
	return nil
}

// unsolicitedNA sends, for each address, a neighbour advertisement with
// the override flag to all nodes (RFC 4861 7.2.6).
func unsolicitedNA(ifi *net.Interface, addrs []netip.Addr) error {
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("unsolicited na on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	for _, ip := range addrs {
		m := &ndp.NeighborAdvertisement{
			Override:      true,
			TargetAddress: ip,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
		}
		if err := c.WriteTo(m, nil, allNodes); err != nil {
			return fmt.Errorf("unsolicited na %v on %s: %w", ip, ifi.Name, err)
		}
	}
	return nil
}
