package track

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddrOn is an address on an interface, as track_src_ip watches it.
type AddrOn struct {
	Dev  string
	Addr netip.Addr
}

// Key is the name its Updates carry.
func (a AddrOn) Key() string { return a.Dev + " " + a.Addr.String() }

// RunAddresses watches whether each of want is configured on its
// interface and sends an Update (KindAddress, Name Key()) when that
// changes, and its state at start: Up while the address is there, Down
// while it is not (or its interface is missing). It returns when ctx
// ends, or with an error if the subscription fails.
func RunAddresses(ctx context.Context, want []AddrOn, out chan<- Update) error {
	state := map[AddrOn]Result{}
	for _, a := range want {
		state[a] = Unknown
	}
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errs := make(chan error, 1)
	// Subscribe first, then list: an address that comes or goes between
	// the two is seen by the subscription, and applying an update twice
	// changes nothing.
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	}); err != nil {
		return fmt.Errorf("track_src_ip: netlink subscription: %w", err)
	}
	send := func(a AddrOn, r Result) bool {
		if old, ok := state[a]; !ok || old == r {
			return true
		}
		state[a] = r
		select {
		case out <- Update{Kind: KindAddress, Name: a.Key(), Result: r}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, a := range want {
		if !send(a, present(a)) {
			return nil
		}
	}
	names := map[int]string{} // ifindex → name, for the updates
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("track_src_ip: netlink subscription closed")
			}
			ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			dev, ok := names[u.LinkIndex]
			if !ok {
				if l, err := netlink.LinkByIndex(u.LinkIndex); err == nil {
					dev = l.Attrs().Name
					names[u.LinkIndex] = dev
				}
			}
			r := Down
			if u.NewAddr {
				r = Up
			}
			if !send(AddrOn{Dev: dev, Addr: ip.Unmap()}, r) {
				return nil
			}
		case err := <-errs:
			return fmt.Errorf("track_src_ip: %w", err)
		case <-ctx.Done():
			return nil
		}
	}
}

// present reports whether a is configured now.
func present(a AddrOn) Result {
	l, err := netlink.LinkByName(a.Dev)
	if err != nil {
		return Down
	}
	fam := unix.AF_INET
	if a.Addr.Is6() {
		fam = unix.AF_INET6
	}
	addrs, err := netlink.AddrList(l, fam)
	if err != nil {
		return Down
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a.Addr {
			return Up
		}
	}
	return Down
}
