package track

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddrOn is an address on an interface, as track_src_ip watches it.
type AddrOn struct {
	Dev  string
	Addr netip.Addr
}

// Key is the name its Updates carry.
func (a AddrOn) Key() string { return a.Dev + " " + a.Addr.String() }

// WatchAddresses calls seen with every address configured on the
// interfaces of the current network namespace: once at start, then after
// each change netlink reports, from the calling goroutine. The set is
// seen's until its next call. It returns when ctx ends, or with an error
// if the subscription fails.
func WatchAddresses(ctx context.Context, seen func(set map[AddrOn]bool)) error {
	ch := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	errs := make(chan error, 1)
	// Subscribe first, then list: an address that comes or goes between
	// the two is seen by the subscription, and applying a change twice
	// changes nothing.
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	}); err != nil {
		return fmt.Errorf("address watch: netlink subscription: %w", err)
	}
	names := map[int]string{} // ifindex → name
	name := func(index int) string {
		n, ok := names[index]
		if !ok {
			if l, err := netlink.LinkByIndex(index); err == nil {
				n = l.Attrs().Name
				names[index] = n
			}
		}
		return n
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("address watch: %w", err)
	}
	set := map[AddrOn]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			set[AddrOn{name(a.LinkIndex), ip.Unmap()}] = true
		}
	}
	seen(set)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("address watch: netlink subscription closed")
			}
			ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok {
				continue
			}
			a := AddrOn{name(u.LinkIndex), ip.Unmap()}
			if u.NewAddr == set[a] {
				continue
			}
			if u.NewAddr {
				set[a] = true
			} else {
				delete(set, a)
			}
			seen(set)
		case err := <-errs:
			return fmt.Errorf("address watch: %w", err)
		case <-ctx.Done():
			return nil
		}
	}
}

// RunAddresses watches whether each of want is configured on its
// interface and sends an Update (KindAddress, Name Key()) when that
// changes, and its state at start: Up while the address is there, Down
// while it is not (or its interface is missing). It returns when ctx
// ends, or with an error if the subscription fails.
func RunAddresses(ctx context.Context, want []AddrOn, out chan<- Update) error {
	state := map[AddrOn]Result{}
	return WatchAddresses(ctx, func(set map[AddrOn]bool) {
		for _, a := range want {
			r := Down
			if set[a] {
				r = Up
			}
			if state[a] == r {
				continue
			}
			state[a] = r
			select {
			case out <- Update{Kind: KindAddress, Name: a.Key(), Result: r}:
			case <-ctx.Done():
				return
			}
		}
	})
}
