package announce

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
)

// VMACAddr is the virtual router MAC of RFC 5798 7.3:
// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
func VMACAddr(vrid uint8, v6 bool) net.HardwareAddr {
	m := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
	if v6 {
		m[4] = 0x02
	}
	return m
}

// CreateVMAC creates (or takes over) the macvlan name on parent with MAC
// mac, mode private as keepalived's use_vmac, and brings it up. ARP for
// addresses on the VMAC is answered by the VMAC only, so the LAN learns
// the virtual MAC.
func (a *Announcer) CreateVMAC(parent, name string, mac net.HardwareAddr) error {
	p, err := a.h.LinkByName(parent)
	if err != nil {
		return fmt.Errorf("vmac %s: parent %s: %w", name, parent, err)
	}
	if old, err := a.h.LinkByName(name); err == nil {
		// Left by a run that did not stop cleanly.
		a.h.LinkDel(old)
	}
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, HardwareAddr: mac},
		Mode:      netlink.MACVLAN_MODE_PRIVATE,
	}
	if err := a.h.LinkAdd(mv); err != nil {
		return fmt.Errorf("vmac %s on %s: %w", name, parent, err)
	}
	// The parent answers ARP only for its own addresses, so the VIPs on
	// the VMAC are answered from the VMAC alone (arp_ignore 1 on the VMAC
	// too would silence it: measured). Best effort: a read-only
	// /proc/sys costs only the ARP answers.
	os.WriteFile("/proc/sys/net/ipv4/conf/"+parent+"/arp_ignore", []byte("1"), 0)
	// And the parent's own ARP requests (for a reply from a VIP) must not
	// carry the VIP as their sender: with arp_announce 0 they would, with
	// the parent's MAC, and every neighbour would move the VIP back to the
	// parent's MAC. arp_filter keeps replies to the interface they belong to.
	os.WriteFile("/proc/sys/net/ipv4/conf/"+parent+"/arp_announce", []byte("2"), 0)
	os.WriteFile("/proc/sys/net/ipv4/conf/"+parent+"/arp_filter", []byte("1"), 0)
	os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/accept_dad", []byte("0"), 0)
	if err := a.h.LinkSetUp(mv); err != nil {
		a.h.LinkDel(mv)
		return fmt.Errorf("vmac %s up: %w", name, err)
	}
	return nil
}

// DeleteVMAC removes the macvlan; one already gone is not an error.
func (a *Announcer) DeleteVMAC(name string) error {
	l, err := a.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return a.h.LinkDel(l)
}
