// Package sched holds the LVS schedulers (rr wrr lc wlc sed nq lblc lblcr dh
// sh mh fo ovf twos) with the Linux kernel's semantics; Standard builds the
// registry of all of them. Schedulers are pure: they read the destinations'
// weights, connection counts and flags (lblc and lblcr also the Clock, for
// expiry), keep their own tables, and pick one destination for a new
// connection. They start no goroutines and are not safe for concurrent use;
// the owner of a virtual service (package lvs) serializes calls, as the
// kernel's per-service locks do.
package sched

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
)

// Dest is what a scheduler sees of a destination (real server). The owner
// keeps the counters current; a scheduler only reads them.
type Dest struct {
	Addr netip.Addr
	Port uint16
	// Weight is the current weight; 0 means quiesced: no new connections.
	Weight int
	// ActiveConns and InactConns are IPVS's counts (established vs other
	// states); PersistConns counts persistence templates.
	ActiveConns  int
	InactConns   int
	PersistConns int
	// Overloaded is IP_VS_DEST_F_OVERLOAD: set by the owner when the upper
	// threshold is reached, cleared at the lower one.
	Overloaded bool
}

func (d *Dest) String() string {
	return d.key().String()
}

// key is what identifies a destination within its service across Updates,
// as the kernel's ip_vs_lookup_dest does: a destination removed and added
// again comes back from the kernel's trash as the same struct, so tables
// that remember it (lblc, lblcr, mh's last weight) find it again.
func (d *Dest) key() netip.AddrPort {
	return netip.AddrPortFrom(d.Addr, d.Port)
}

// Flow is what a scheduler may hash: the first packet's addresses and ports.
type Flow struct {
	Proto   uint8 // IPPROTO_TCP, IPPROTO_UDP, ...
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
	DstPort uint16
}

// Flags are the service's scheduler flags (ipvsadm -b), the kernel's
// IP_VS_SVC_F_SCHED1..3. Their meaning depends on the scheduler.
type Flags uint32

const (
	FlagSched1 Flags = 0x0008 // sh-fallback, mh-fallback
	FlagSched2 Flags = 0x0010 // sh-port, mh-port
	FlagSched3 Flags = 0x0020

	SHFallback = FlagSched1
	SHPort     = FlagSched2
	MHFallback = FlagSched1
	MHPort     = FlagSched2
)

// Scheduler picks destinations for new connections of one virtual service.
type Scheduler interface {
	// Name is the kernel's name for the scheduler ("wlc").
	Name() string
	// Update is called with the service's whole destination list whenever a
	// destination is added, edited (weight) or removed: the kernel's
	// add_dest/upd_dest/del_dest hooks, so once per change, as the kernel
	// calls them (wrr's current weight depends on the steps). The list is in
	// the kernel's order (svc->destinations): a destination added later
	// comes first, because ip_vs_ctl.c adds with list_add_rcu at the head;
	// rr, wrr, the least-connection ties, dh, sh and mh all depend on it.
	// Weight is never negative (the kernel answers -ERANGE). Pointers stay
	// valid until the next Update.
	Update(dests []*Dest)
	// Schedule returns the destination for a new connection, or nil when
	// none can take it (the kernel's "no destination available").
	Schedule(f Flow) *Dest
}

// Config is what a scheduler is built with.
type Config struct {
	Flags Flags
	// Clock drives lblc/lblcr expiry; default the wall clock.
	Clock clock.Clock
	// Rand returns a uniformly random integer in [0, n) for twos; default
	// math/rand/v2.
	Rand func(n uint32) uint32
	// Expiration is the lblc_expiration or lblcr_expiration sysctl: how
	// long an unused lblc entry, or an unchanged lblcr set with more than
	// one member, is kept. Zero means the kernel's default, 24h.
	Expiration time.Duration
}

// Factory builds a scheduler.
type Factory func(Config) Scheduler

// Registry maps scheduler names to factories. main builds it (see
// Standard); tests may build smaller ones.
type Registry map[string]Factory

// New builds the named scheduler.
func (r Registry) New(name string, cfg Config) (Scheduler, error) {
	f, ok := r[name]
	if !ok {
		return nil, fmt.Errorf("unknown scheduler %q (known: %s)", name, strings.Join(r.Names(), " "))
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return f(cfg), nil
}

// Names lists the registered schedulers, sorted.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
