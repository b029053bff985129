package model

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// builder turns a parsed file into a Config, collecting diagnostics.
type builder struct {
	diags conf.Diagnostics
	// elsewhere maps each keyword to the blocks that have it, sorted, so
	// an unknown keyword can say where it belongs ("weight" in
	// virtual_server).
	elsewhere map[string][]string
	// tables caches each block's keyword table for the build.
	tables map[string]any
	// checkTables are the checker blocks' tables, by checker type.
	checkTables map[string]table[Check]

	// What a large configuration has tens of thousands of comes from
	// slabs: one allocation per chunk instead of one each.
	realServers slab[RealServer]
	checks      slab[Check]
	durations   slab[Duration]
	ints        slab[int]
}

// slab hands out the elements of chunks that grow from 8 to 256: a small
// configuration wastes little, a large one allocates rarely. Everything
// the model builds lives as long as the model, chunk-mates included.
type slab[T any] struct {
	buf  []T
	size int // of the last chunk
}

func (s *slab[T]) new() *T {
	if len(s.buf) == 0 {
		s.size = min(256, max(8, 2*s.size))
		s.buf = make([]T, s.size)
	}
	p := &s.buf[0]
	s.buf = s.buf[1:]
	return p
}

// duration returns a pointer to a copy of d, for the optional settings of
// Timing.
func (b *builder) duration(d Duration) *Duration {
	p := b.durations.new()
	*p = d
	return p
}

func (b *builder) intPtr(v int) *int {
	p := b.ints.new()
	*p = v
	return p
}

// cached returns the keyword table named name, building it once per build.
func cached[T any](b *builder, name string, mk func() table[T]) table[T] {
	if t, ok := b.tables[name]; ok {
		return t.(table[T])
	}
	t := mk()
	b.tables[name] = t
	return t
}

func newBuilder() *builder {
	b := &builder{elsewhere: map[string][]string{}, tables: map[string]any{}, checkTables: map[string]table[Check]{}}
	blocks := knownBlocks()
	for _, where := range sortedKeys(blocks) {
		for _, n := range blocks[where] {
			b.elsewhere[n] = append(b.elsewhere[n], where)
		}
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (b *builder) errorf(pos conf.Pos, kw, format string, a ...any) {
	b.diags.Errorf(pos, kw, format, a...)
}

func (b *builder) warnf(pos conf.Pos, kw, format string, a ...any) {
	b.diags.Warnf(pos, kw, format, a...)
}

// nargs checks that n has between lo and hi arguments (hi < 0: no upper
// bound).
func (b *builder) nargs(n *conf.Node, lo, hi int) bool {
	got := len(n.Args())
	switch {
	case got < lo && lo == hi:
		b.errorf(n.Pos(), n.Keyword(), "needs %s", plural(lo, "argument"))
	case got < lo:
		b.errorf(n.Pos(), n.Keyword(), "needs at least %s", plural(lo, "argument"))
	case hi >= 0 && got > hi:
		extra := n.Args()[hi]
		if hi == 0 {
			b.errorf(extra.Pos, n.Keyword(), "takes no argument, got %q", extra.Text)
		} else {
			b.errorf(extra.Pos, n.Keyword(), "takes at most %s; %q is one too many", plural(hi, "argument"), extra.Text)
		}
	default:
		return true
	}
	return false
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// arg returns the single argument of n.
func (b *builder) arg(n *conf.Node) (conf.Word, bool) {
	if !b.nargs(n, 1, 1) {
		return conf.Word{}, false
	}
	return n.Args()[0], true
}

// str returns the single argument of n as a string.
func (b *builder) str(n *conf.Node) (string, bool) {
	w, ok := b.arg(n)
	return w.Text, ok
}

// rest joins all arguments of n (at least one) with spaces, as keepalived
// does for free-text keywords.
func (b *builder) rest(n *conf.Node) (string, bool) {
	if !b.nargs(n, 1, -1) {
		return "", false
	}
	parts := make([]string, len(n.Args()))
	for i, w := range n.Args() {
		parts[i] = w.Text
	}
	return strings.Join(parts, " "), true
}

// flag checks that n has no arguments.
func (b *builder) flag(n *conf.Node) bool { return b.nargs(n, 0, 0) }

// integer parses w as an integer within [lo, hi] (decimal, or 0x hex).
func (b *builder) integer(n *conf.Node, w conf.Word, lo, hi int64) (int64, bool) {
	v, err := strconv.ParseInt(w.Text, 0, 64)
	if err != nil {
		b.errorf(w.Pos, n.Keyword(), "%q is not an integer", w.Text)
		return 0, false
	}
	if v < lo || v > hi {
		b.errorf(w.Pos, n.Keyword(), "%d is out of range %d-%d", v, lo, hi)
		return 0, false
	}
	return v, true
}

// intArg parses the single argument of n as an integer in [lo, hi].
func (b *builder) intArg(n *conf.Node, lo, hi int64) (int64, bool) {
	w, ok := b.arg(n)
	if !ok {
		return 0, false
	}
	return b.integer(n, w, lo, hi)
}

// timer parses a keepalived <TIMER>: seconds, fractions allowed, microsecond
// resolution, within [lo, hi].
func (b *builder) timer(n *conf.Node, w conf.Word, lo, hi time.Duration) (Duration, bool) {
	f, err := strconv.ParseFloat(w.Text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		b.errorf(w.Pos, n.Keyword(), "%q is not a time in seconds", w.Text)
		return 0, false
	}
	d := time.Duration(math.Round(f*1e6)) * time.Microsecond
	if f*1e6 > float64(math.MaxInt64/1000) || d < lo || d > hi {
		b.errorf(w.Pos, n.Keyword(), "%s is out of range %s-%s", w.Text, seconds(lo), seconds(hi))
		return 0, false
	}
	return Duration(d), true
}

// timerArg parses the single argument of n as a <TIMER>.
func (b *builder) timerArg(n *conf.Node, lo, hi time.Duration) (Duration, bool) {
	w, ok := b.arg(n)
	if !ok {
		return 0, false
	}
	return b.timer(n, w, lo, hi)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// boolArg reads keepalived's optional <BOOL>: no argument means true.
func (b *builder) boolArg(n *conf.Node) (bool, bool) {
	if !b.nargs(n, 0, 1) {
		return false, false
	}
	if len(n.Args()) == 0 {
		return true, true
	}
	w := n.Args()[0]
	switch strings.ToLower(w.Text) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	b.errorf(w.Pos, n.Keyword(), "%q is not one of on|off|true|false|yes|no", w.Text)
	return false, false
}

// addr parses w as an IPv4 or IPv6 address.
func (b *builder) addr(n *conf.Node, w conf.Word) (netip.Addr, bool) {
	a, err := netip.ParseAddr(w.Text)
	if err != nil {
		b.errorf(w.Pos, n.Keyword(), "%q is not an IP address", w.Text)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// prefix parses "ADDR[/LEN]"; without /LEN the prefix is the host (/32 or
// /128).
func (b *builder) prefix(n *conf.Node, w conf.Word) (netip.Prefix, bool) {
	s := w.Text
	if !strings.Contains(s, "/") {
		a, ok := b.addr(n, w)
		if !ok {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		b.errorf(w.Pos, n.Keyword(), "%q is not an address with prefix length: %v", s, err)
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), true
}

// port parses w as a port number in [lo, 65535].
func (b *builder) port(n *conf.Node, w conf.Word, lo int64) (uint16, bool) {
	v, ok := b.integer(n, w, lo, 65535)
	return uint16(v), ok
}

// choice checks that w is one of the allowed values (exact case); the error
// names them, and a value that differs only in case is suggested.
func (b *builder) choice(n *conf.Node, w conf.Word, allowed ...string) (string, bool) {
	for _, a := range allowed {
		if w.Text == a {
			return a, true
		}
	}
	hint := ""
	for _, a := range allowed {
		if strings.EqualFold(w.Text, a) {
			hint = fmt.Sprintf(" (did you mean %s?)", a)
		}
	}
	b.errorf(w.Pos, n.Keyword(), "%q is not one of %s%s", w.Text, strings.Join(allowed, ", "), hint)
	return "", false
}

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
