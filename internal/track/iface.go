package track

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkUp is keepalived's IF_ISUP: administratively up and running
// (carrier).
func linkUp(l netlink.Link) Result {
	f := l.Attrs().RawFlags
	if f&unix.IFF_UP != 0 && f&unix.IFF_RUNNING != 0 {
		return Up
	}
	return Down
}

// RunInterfaces subscribes to link changes in the current network
// namespace and sends an Update for each of names when it changes (and
// its state at start). A name that does not exist is Down. It returns
// when ctx ends, or with an error if the subscription fails.
func RunInterfaces(ctx context.Context, names []string, out chan<- Update) error {
	want := map[string]Result{}
	for _, n := range names {
		want[n] = Unknown
	}
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errs := make(chan error, 1)
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	}); err != nil {
		return fmt.Errorf("track_interface: netlink subscription: %w", err)
	}
	send := func(name string, r Result) bool {
		if old, ok := want[name]; !ok || old == r {
			return true
		}
		want[name] = r
		select {
		case out <- Update{Kind: KindInterface, Name: name, Result: r}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// Names the dump did not list are missing: Down.
	for _, n := range names {
		if _, err := netlink.LinkByName(n); err != nil && !send(n, Down) {
			return nil
		}
	}
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("track_interface: netlink subscription closed")
			}
			r := linkUp(u.Link)
			if u.Header.Type == unix.RTM_DELLINK {
				r = Down
			}
			if !send(u.Link.Attrs().Name, r) {
				return nil
			}
		case err := <-errs:
			return fmt.Errorf("track_interface: %w", err)
		case <-ctx.Done():
			return nil
		}
	}
}
