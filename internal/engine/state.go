package engine

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
)

// vsState is a virtual_server at run time: the IPVS services it became, the
// state of its real servers, its quorum, and what the data plane holds.
type vsState struct {
	id       string // "TCP 10.0.0.1:80": the identity kept across reloads
	vs       *model.VirtualServer
	services []lvs.Service
	rss      []*rsState
	// quorumUp: keepalived starts a virtual server with its quorum up and
	// lets the first evaluation take it down.
	quorumUp bool
	// installed is what the data plane has for each of the services (they
	// all get the same destinations).
	installed map[netip.AddrPort]lvs.Destination
}

// rsState is a real server (or the sorry server) at run time.
type rsState struct {
	rs      *model.RealServer
	checkID string // the check.Runner's name for it; "" without checkers
	up      bool
	weight  int // the weight it serves with (misc_dynamic may change it)
	// since and reason describe the last transition.
	since  time.Time
	reason string
	// checkSpec is the checkers as configured, to tell on reload whether
	// they changed.
	checkSpec string
}

func vsID(vs *model.VirtualServer) string { return vs.Protocol.String() + " " + vs.Name() }

func checkSpec(rs *model.RealServer) string {
	if rs.Checks == nil {
		return "null" // json.Marshal's, without its cost per real server
	}
	b, _ := json.Marshal(rs.Checks)
	return string(b)
}

// aliveWeight is the weight of the real servers that are up.
func (v *vsState) aliveWeight() int {
	sum := 0
	for _, r := range v.rss {
		if r.up {
			sum += r.weight
		}
	}
	return sum
}

// updateQuorum applies keepalived's quorum rule with hysteresis: lost when
// the live weight falls below quorum-hysteresis (or to nothing), regained at
// quorum+hysteresis. It reports whether the state changed.
func (v *vsState) updateQuorum() bool {
	alive := v.aliveWeight()
	q, h := v.vs.Quorum, v.vs.Hysteresis
	switch {
	case v.quorumUp && (alive == 0 || alive < q-h):
		v.quorumUp = false
		return true
	case !v.quorumUp && alive > 0 && alive >= q+h:
		v.quorumUp = true
		return true
	}
	return false
}

// desired is what the data plane should hold for the virtual server now,
// by address (eachDesired says what).
func (v *vsState) desired() map[netip.AddrPort]lvs.Destination {
	out := make(map[netip.AddrPort]lvs.Destination, len(v.rss)+1)
	v.eachDesired(func(d lvs.Destination) { out[d.AddrPort()] = d })
	return out
}

// desiredSorted is desired as a list in address order, without the map.
func (v *vsState) desiredSorted() []lvs.Destination {
	out := make([]lvs.Destination, 0, len(v.rss)+1)
	v.eachDesired(func(d lvs.Destination) { out = append(out, d) })
	slices.SortStableFunc(out, func(a, b lvs.Destination) int { return a.AddrPort().Compare(b.AddrPort()) })
	// Of two at one address the last counts, as in desired's map.
	n := 0
	for i := range out {
		if i+1 < len(out) && out[i+1].AddrPort() == out[i].AddrPort() {
			continue
		}
		out[n] = out[i]
		n++
	}
	return out[:n]
}

// eachDesired calls f for each destination the data plane should hold.
// Quorum lost with a sorry server: the sorry server alone (real servers
// with inhibit_on_failure stay, at weight 0). Otherwise every live real
// server at its weight, failed ones at weight 0 with inhibit_on_failure
// and absent without it; the sorry server absent (or at weight 0 with
// sorry_server_inhibit).
func (v *vsState) eachDesired(f func(lvs.Destination)) {
	sorryOn := !v.quorumUp && v.vs.SorryServer != nil
	for _, r := range v.rss {
		d := DestinationOf(r.rs)
		switch {
		case r.up && !sorryOn:
			d.Weight = r.weight
		case r.rs.InhibitOnFailure:
			d.Weight = 0
		default:
			continue
		}
		f(d)
	}
	if s := v.vs.SorryServer; s != nil {
		d := DestinationOf(s)
		switch {
		case sorryOn:
			f(d)
		case v.vs.SorryServerInhibit:
			d.Weight = 0
			f(d)
		}
	}
}
