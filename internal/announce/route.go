package announce

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/keepvs/keepvs/internal/model"
)

var routeTypes = map[string]int{"": syscall.RTN_UNICAST, "unicast": syscall.RTN_UNICAST,
	"blackhole": syscall.RTN_BLACKHOLE, "unreachable": syscall.RTN_UNREACHABLE,
	"prohibit": syscall.RTN_PROHIBIT, "throw": syscall.RTN_THROW, "local": syscall.RTN_LOCAL}

// route is the netlink form of a virtual route. dev is the instance's
// interface, used when the route names none and has a gateway or is
// unicast.
func (a *Announcer) route(dev string, r model.Route) (*netlink.Route, error) {
	typ, ok := routeTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("route %v: type %s not supported", r.To, r.Type)
	}
	nr := &netlink.Route{Dst: ipnet(r.To), Type: typ}
	if r.To.Bits() == 0 {
		nr.Dst = nil
		nr.Family = netlink.FAMILY_V4
		if r.To.Addr().Is6() {
			nr.Family = netlink.FAMILY_V6
		}
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.Metric != nil {
		nr.Priority = int(*r.Metric)
	}
	if r.Table != "" {
		t, err := strconv.Atoi(r.Table)
		if err != nil {
			switch r.Table {
			case "main":
				t = syscall.RT_TABLE_MAIN
			case "local":
				t = syscall.RT_TABLE_LOCAL
			default:
				return nil, fmt.Errorf("route %v: table %q: use a number", r.To, r.Table)
			}
		}
		nr.Table = t
	}
	if s, ok := scopes[r.Scope]; ok {
		nr.Scope = netlink.Scope(s)
	} else if r.Via.IsValid() || typ != syscall.RTN_UNICAST {
		nr.Scope = netlink.SCOPE_UNIVERSE
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Onlink {
		nr.Flags |= int(netlink.FLAG_ONLINK)
	}
	d := r.Dev
	if d == "" && typ == syscall.RTN_UNICAST {
		d = dev
	}
	if d != "" {
		link, err := a.h.LinkByName(d)
		if err != nil {
			return nil, fmt.Errorf("route %v dev %s: %w", r.To, d, err)
		}
		nr.LinkIndex = link.Attrs().Index
	}
	return nr, nil
}

// AddRoutes adds the virtual routes (replacing a route with the same
// key, as keepalived does).
func (a *Announcer) AddRoutes(dev string, routes []model.Route) error {
	var errs []error
	for _, r := range routes {
		nr, err := a.route(dev, r)
		if err == nil {
			err = a.h.RouteReplace(nr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add route %v: %w", r.To, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveRoutes removes them; a route already gone is not an error.
func (a *Announcer) RemoveRoutes(dev string, routes []model.Route) error {
	var errs []error
	for _, r := range routes {
		nr, err := a.route(dev, r)
		if err == nil {
			err = a.h.RouteDel(nr)
		}
		if err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.ENODEV) {
			errs = append(errs, fmt.Errorf("remove route %v: %w", r.To, err))
		}
	}
	return errors.Join(errs...)
}
