// Package announce makes a VRRP master's addresses real: it adds and
// removes virtual IPs and virtual routes with netlink, tells the LAN where
// they moved with gratuitous ARPs (IPv4) and unsolicited neighbour
// advertisements (IPv6), and creates the VMAC macvlans of use_vmac.
//
// Every VIP it adds is written to a state file first, so a run that dies
// without removing them (SIGKILL, a crash: keepalived issue #159) has them
// removed by the next one's RemoveStale.
package announce

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/keepvs/keepvs/internal/model"
)

// Announcer changes addresses and routes in the network namespace it was
// created in.
type Announcer struct {
	h     *netlink.Handle
	log   *slog.Logger
	state string // the state file; "" keeps none

	mu   sync.Mutex
	held map[heldAddr]bool
}

// heldAddr is one VIP keepvs added, as the state file lists it.
type heldAddr struct {
	Dev    string       `json:"dev"`
	Prefix netip.Prefix `json:"prefix"`
}

// New opens a netlink handle. stateFile records the VIPs added ("": none).
func New(log *slog.Logger, stateFile string) (*Announcer, error) {
	// Route netlink only: with no families named the handle opens xfrm
	// and netfilter sockets too, which a kernel without those modules
	// refuses ("protocol not supported").
	h, err := netlink.NewHandle(syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("announce: netlink: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Announcer{h: h, log: log, state: stateFile, held: map[heldAddr]bool{}}, nil
}

// Close closes the netlink handle.
func (a *Announcer) Close() { a.h.Close() }

// RemoveStale removes the VIPs a previous run's state file lists and
// empties it. It returns what it removed.
func (a *Announcer) RemoveStale() ([]string, error) {
	if a.state == "" {
		return nil, nil
	}
	b, err := os.ReadFile(a.state)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var stale []heldAddr
	if err := json.Unmarshal(b, &stale); err != nil {
		return nil, fmt.Errorf("state file %s: %w", a.state, err)
	}
	var gone []string
	for _, s := range stale {
		link, err := a.h.LinkByName(s.Dev)
		if err != nil {
			continue
		}
		if err := a.h.AddrDel(link, &netlink.Addr{IPNet: ipnet(s.Prefix)}); err == nil {
			gone = append(gone, s.Prefix.String()+" dev "+s.Dev)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return gone, a.saveLocked()
}

func (a *Announcer) saveLocked() error {
	if a.state == "" {
		return nil
	}
	list := make([]heldAddr, 0, len(a.held))
	for h := range a.held {
		list = append(list, h)
	}
	b, _ := json.Marshal(list)
	if err := os.MkdirAll(filepath.Dir(a.state), 0o755); err != nil {
		return err
	}
	tmp := a.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, a.state)
}

func ipnet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

var scopes = map[string]int{"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}

// addr is the netlink form of a VIP.
func addr(v model.VIP) (*netlink.Addr, error) {
	na := &netlink.Addr{IPNet: ipnet(v.Prefix), Label: v.Label}
	if s, ok := scopes[v.Scope]; ok {
		na.Scope = s
	} else if v.Scope != "" {
		n, err := strconv.Atoi(v.Scope)
		if err != nil {
			return nil, fmt.Errorf("vip %v: scope %q", v.Prefix, v.Scope)
		}
		na.Scope = n
	}
	switch v.Brd {
	case "":
	case "-":
		na.Broadcast = nil
	case "+":
		if v.Prefix.Addr().Is4() && v.Prefix.Bits() < 31 {
			ip := v.Prefix.Masked().Addr().As4()
			host := ^uint32(0) >> v.Prefix.Bits()
			for i := range 4 {
				ip[i] |= byte(host >> (24 - 8*i))
			}
			na.Broadcast = net.IP(ip[:])
		}
	default:
		b, err := netip.ParseAddr(v.Brd)
		if err != nil {
			return nil, fmt.Errorf("vip %v: brd %q", v.Prefix, v.Brd)
		}
		na.Broadcast = b.AsSlice()
	}
	if v.NoDAD {
		na.Flags |= syscall.IFA_F_NODAD
	}
	if v.NoPrefixRoute {
		na.Flags |= 0x200 // IFA_F_NOPREFIXROUTE
	}
	if v.PreferredLft != nil {
		na.PreferedLft = int(*v.PreferredLft)
		na.ValidLft = -1 // forever, as ip(8)
		if na.PreferedLft < 0 {
			na.PreferedLft = -1
		}
	}
	if v.Prefix.Addr().Is6() {
		// A VIP that moves must not wait for duplicate address detection.
		na.Flags |= syscall.IFA_F_NODAD
	}
	return na, nil
}

// AddVIPs adds vips on dev (each VIP's own dev when it names one). An
// address already there is not an error. The first error is returned
// after trying them all.
func (a *Announcer) AddVIPs(dev string, vips []model.VIP) error {
	var errs []error
	for _, v := range vips {
		d := dev
		if v.Dev != "" && !v.UseVMAC {
			d = v.Dev
		}
		if err := a.addOne(d, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Announcer) addOne(dev string, v model.VIP) error {
	link, err := a.h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("add vip %v: %s: %w", v.Prefix, dev, err)
	}
	na, err := addr(v)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.held[heldAddr{dev, v.Prefix}] = true
	serr := a.saveLocked()
	a.mu.Unlock()
	if serr != nil {
		a.log.Warn("state file not written; a crash would leave this vip behind", "vip", v.Prefix, "err", serr)
	}
	if err := a.h.AddrAdd(link, na); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add vip %v dev %s: %w", v.Prefix, dev, err)
	}
	return nil
}

// RemoveVIPs removes vips from dev; an address already gone is not an
// error.
func (a *Announcer) RemoveVIPs(dev string, vips []model.VIP) error {
	var errs []error
	for _, v := range vips {
		d := dev
		if v.Dev != "" && !v.UseVMAC {
			d = v.Dev
		}
		link, err := a.h.LinkByName(d)
		if err == nil {
			err = a.h.AddrDel(link, &netlink.Addr{IPNet: ipnet(v.Prefix)})
		}
		if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENODEV) {
			var nf netlink.LinkNotFoundError
			if !errors.As(err, &nf) {
				errs = append(errs, fmt.Errorf("remove vip %v dev %s: %w", v.Prefix, d, err))
			}
		}
		a.mu.Lock()
		delete(a.held, heldAddr{d, v.Prefix})
		a.saveLocked()
		a.mu.Unlock()
	}
	return errors.Join(errs...)
}

// HasAddr reports whether dev has p's address.
func (a *Announcer) HasAddr(dev string, p netip.Addr) bool {
	link, err := a.h.LinkByName(dev)
	if err != nil {
		return false
	}
	list, _ := a.h.AddrList(link, netlink.FAMILY_ALL)
	for _, x := range list {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == p {
			return true
		}
	}
	return false
}

// PrimaryAddr is dev's first IPv4 address, or its IPv6 link-local
// address: what keepalived sends adverts from when no source is
// configured.
func (a *Announcer) PrimaryAddr(dev string, v6 bool) (netip.Addr, error) {
	link, err := a.h.LinkByName(dev)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("primary address of %s: %w", dev, err)
	}
	fam := netlink.FAMILY_V4
	if v6 {
		fam = netlink.FAMILY_V6
	}
	list, err := a.h.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("primary address of %s: %w", dev, err)
	}
	for _, x := range list {
		ip, _ := netip.AddrFromSlice(x.IP)
		ip = ip.Unmap()
		if x.Flags&syscall.IFA_F_SECONDARY != 0 {
			continue
		}
		if !v6 || ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("primary address of %s: none", dev)
}
