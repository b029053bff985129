package sched

import (
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/clock"
)

// lblc and lblcr remember, per destination IP address of the traffic (the
// "locality", e.g. the web site a cache cluster serves), which real server
// or set of servers it went to. Both keep that memory in the same kind of
// table with the same garbage collection; this file is that table.

const (
	// localityTabBits is CONFIG_IP_VS_LBLC_TAB_BITS and
	// CONFIG_IP_VS_LBLCR_TAB_BITS' default: 1024 hash buckets.
	localityTabBits = 10
	localityTabSize = 1 << localityTabBits
	localityTabMask = localityTabSize - 1
	// localityMaxSize is tbl->max_size: past 16 entries a bucket on
	// average, the periodic check starts collecting.
	localityMaxSize = localityTabSize * 16

	// checkExpireInterval is CHECK_EXPIRE_INTERVAL, the period of the
	// kernel's garbage-collection timer.
	checkExpireInterval = 60 * time.Second
	// entryTimeout is ENTRY_TIMEOUT: when the table is over max_size, the
	// periodic check drops entries unused for this long.
	entryTimeout = 6 * time.Minute
	// countForFullExpiration is COUNT_FOR_FULL_EXPIRATION: every 30th
	// tick without a collection is a full check, which drops every entry
	// unused for the expiration (lblc_expiration, lblcr_expiration).
	countForFullExpiration = 30
	// defaultExpiration is DEFAULT_EXPIRATION, the sysctls' default.
	defaultExpiration = 24 * time.Hour
)

// localityEntry is one destination IP address and what it maps to.
type localityEntry[T any] struct {
	addr    netip.Addr
	lastuse time.Duration // since the table's epoch
	val     T
}

// localityTable is the kernel's ip_vs_lblc_table / ip_vs_lblcr_table.
//
// The kernel collects garbage from a timer every 60s. Here the same ticks
// run lazily: before each lookup, every tick that fell due since the last
// one runs in order, each at its own due time. Entries change only when
// scheduling, so the table a lookup sees is the one the kernel's timer
// would have left, and no goroutine or lock is needed (a clock.AfterFunc
// callback would race with Schedule). The cost is that an idle service
// keeps its memory until its next connection.
type localityTable[T any] struct {
	clock      clock.Clock
	epoch      time.Time
	expiration time.Duration

	bucket  [localityTabSize][]*localityEntry[T]
	entries int
	rover   int // the last bucket a collection visited
	counter int // ticks since the last full check, 1..30
	next    time.Duration
}

func (t *localityTable[T]) init(cfg Config) {
	t.clock = cfg.Clock
	if t.clock == nil {
		t.clock = clock.Real{}
	}
	t.epoch = t.clock.Now()
	t.expiration = cfg.Expiration
	if t.expiration <= 0 {
		t.expiration = defaultExpiration
	}
	t.counter = 1
	t.next = checkExpireInterval
}

// now runs the ticks that are due and returns the time since the epoch.
func (t *localityTable[T]) now() time.Duration {
	now := t.clock.Now().Sub(t.epoch)
	for t.next <= now {
		if t.entries == 0 {
			// Nothing to expire, and a full check of an empty
			// table ends on the rover it began on: only the counter
			// moves, one step per tick round 1..30.
			ticks := (now-t.next)/checkExpireInterval + 1
			t.counter = int((int64(t.counter)-1+int64(ticks))%countForFullExpiration) + 1
			t.next += ticks * checkExpireInterval
			break
		}
		t.checkExpire(t.next)
		t.next += checkExpireInterval
	}
	return now
}

// checkExpire is ip_vs_lblc_check_expire / ip_vs_lblcr_check_expire.
func (t *localityTable[T]) checkExpire(now time.Duration) {
	if t.counter%countForFullExpiration == 0 {
		t.fullCheck(now)
		t.counter = 1
		return
	}
	if t.entries <= localityMaxSize {
		t.counter++
		return
	}
	// Over max_size: drop entries idle for entryTimeout, a third more than
	// the excess, at most half the max, whole buckets at a time from
	// where the last collection stopped.
	goal := (t.entries - localityMaxSize) * 4 / 3
	goal = min(goal, localityMaxSize/2)
	j := t.rover
	for range localityTabSize {
		j = (j + 1) & localityTabMask
		goal -= t.sweep(j, now, entryTimeout)
		if goal <= 0 {
			break
		}
	}
	t.rover = j
}

// fullCheck drops every entry unused for the expiration, all buckets from
// the rover round to it again.
func (t *localityTable[T]) fullCheck(now time.Duration) {
	j := t.rover
	for range localityTabSize {
		j = (j + 1) & localityTabMask
		t.sweep(j, now, t.expiration)
	}
	t.rover = j
}

// sweep drops the entries of bucket j unused for ttl at now (the kernel's
// !time_before(now, lastuse+ttl)) and says how many.
func (t *localityTable[T]) sweep(j int, now, ttl time.Duration) int {
	b := t.bucket[j]
	kept := b[:0]
	for _, e := range b {
		if now < e.lastuse+ttl {
			kept = append(kept, e)
		}
	}
	clear(b[len(kept):])
	t.bucket[j] = kept
	n := len(b) - len(kept)
	t.entries -= n
	return n
}

// get is ip_vs_lblc_get: the entry for a destination address, or nil.
func (t *localityTable[T]) get(addr netip.Addr) *localityEntry[T] {
	for _, e := range t.bucket[localityBucket(addr)] {
		if e.addr == addr {
			return e
		}
	}
	return nil
}

// add hashes a new entry in (ip_vs_lblc_hash).
func (t *localityTable[T]) add(e *localityEntry[T]) {
	j := localityBucket(e.addr)
	t.bucket[j] = append(t.bucket[j], e)
	t.entries++
}

// each calls fn on every entry, for Update to follow destinations.
func (t *localityTable[T]) each(fn func(*localityEntry[T])) {
	for _, b := range t.bucket {
		for _, e := range b {
			fn(e)
		}
	}
}

// localityBucket is ip_vs_lblc_hashkey / ip_vs_lblcr_hashkey.
func localityBucket(addr netip.Addr) uint32 {
	return hash32(foldAddr(addr), localityTabBits)
}

// localityRef is what an entry holds of a destination: the pointer, and
// whether it is still in the service. A removed destination stays
// referenced, as in the kernel's trash, and is available again if it is
// added back.
type localityRef struct {
	dest  *Dest
	avail bool
}

// follow points ref at the destination with the same address and port in
// live, or marks it unavailable.
func (r *localityRef) follow(live map[netip.AddrPort]*Dest) {
	if d, ok := live[r.dest.key()]; ok {
		r.dest, r.avail = d, true
		return
	}
	r.avail = false
}

func liveDests(dests []*Dest) map[netip.AddrPort]*Dest {
	live := make(map[netip.AddrPort]*Dest, len(dests))
	for _, d := range dests {
		live[d.key()] = d
	}
	return live
}

// localityOverloaded is lblc's and lblcr's is_overloaded: the destination
// has more active connections than its weight while some destination of
// the service (any, even quiesced or flagged) is under half of its own.
func localityOverloaded(d *Dest, dests []*Dest) bool {
	if d.ActiveConns <= d.Weight {
		return false
	}
	for _, o := range dests {
		if o.ActiveConns*2 < o.Weight {
			return true
		}
	}
	return false
}
