package announce

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/keepvs/keepvs/internal/model"
)

// ruleTables are the table names ip(8) knows without rt_tables.
var ruleTables = map[string]int{"main": syscall.RT_TABLE_MAIN, "local": syscall.RT_TABLE_LOCAL, "default": syscall.RT_TABLE_DEFAULT}

// ruleActions are the rule types ip-rule takes as flags.
var ruleActions = map[string]uint8{"blackhole": syscall.RTN_BLACKHOLE, "unreachable": syscall.RTN_UNREACHABLE, "prohibit": syscall.RTN_PROHIBIT}

// rule is the netlink form of a virtual or static rule (ip-rule syntax).
// An option keepvs cannot give the kernel is an error naming it.
func rule(r model.Rule) (*netlink.Rule, error) {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.Inet6 || (r.From.IsValid() && r.From.Addr().Is6()) || (r.To.IsValid() && r.To.Addr().Is6()) {
		nr.Family = netlink.FAMILY_V6
	}
	if r.From.IsValid() {
		nr.Src = ipnet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = ipnet(r.To)
	}
	if r.Priority != nil {
		nr.Priority = int(*r.Priority)
	}
	nr.Invert = r.Not
	if r.Table != "" {
		t, ok := ruleTables[r.Table]
		if !ok {
			n, err := strconv.ParseUint(r.Table, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("rule: table %q: use a number, main, local or default", r.Table)
			}
			t = int(n)
		}
		nr.Table = t
	}
	num := func(k, v string, bits int) (uint64, error) {
		n, err := strconv.ParseUint(v, 0, bits)
		if err != nil {
			return 0, fmt.Errorf("rule: %s %q: not a number", k, v)
		}
		return n, nil
	}
	for k, v := range r.Options {
		var err error
		var n uint64
		switch k {
		case "iif":
			nr.IifName = v
		case "oif":
			nr.OifName = v
		case "fwmark":
			mark, mask, masked := strings.Cut(v, "/")
			if n, err = num(k, mark, 32); err == nil {
				nr.Mark = uint32(n)
				if masked {
					if n, err = num(k, mask, 32); err == nil {
						m := uint32(n)
						nr.Mask = &m
					}
				}
			}
		case "tos", "dsfield":
			if n, err = num(k, v, 8); err == nil {
				nr.Tos = uint(n)
			}
		case "goto":
			if n, err = num(k, v, 31); err == nil {
				nr.Goto = int(n)
			}
		case "suppress_prefixlength":
			if n, err = num(k, v, 8); err == nil {
				nr.SuppressPrefixlen = int(n)
			}
		case "suppress_ifgroup":
			if n, err = num(k, v, 31); err == nil {
				nr.SuppressIfgroup = int(n)
			}
		case "ipproto", "ip_proto":
			if n, err = num(k, v, 8); err == nil {
				nr.IPProto = int(n)
			}
		case "sport", "dport":
			var pr *netlink.RulePortRange
			if pr, err = portRange(k, v); err == nil {
				if k == "sport" {
					nr.Sport = pr
				} else {
					nr.Dport = pr
				}
			}
		case "tun_id":
			if n, err = num(k, v, 32); err == nil {
				nr.TunID = uint(n)
			}
		case "protocol":
			if n, err = num(k, v, 8); err == nil {
				nr.Protocol = uint8(n)
			}
		default:
			if t, ok := ruleActions[k]; ok {
				nr.Type = t
				continue
			}
			err = fmt.Errorf("rule: %s is not supported by keepvs", k)
		}
		if err != nil {
			return nil, err
		}
	}
	return nr, nil
}

func portRange(k, v string) (*netlink.RulePortRange, error) {
	lo, hi, isRange := strings.Cut(v, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a > b {
		return nil, fmt.Errorf("rule: %s %q: want PORT or LOW-HIGH", k, v)
	}
	return netlink.NewRulePortRange(uint16(a), uint16(b)), nil
}

// AddRules adds the rules; one already there is not an error.
func (a *Announcer) AddRules(rules []model.Rule) error {
	var errs []error
	for _, r := range rules {
		nr, err := rule(r)
		if err == nil {
			err = a.h.RuleAdd(nr)
		}
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			errs = append(errs, fmt.Errorf("add rule %s: %w", r.Pos, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveRules removes them; a rule already gone is not an error.
func (a *Announcer) RemoveRules(rules []model.Rule) error {
	var errs []error
	for _, r := range rules {
		nr, err := rule(r)
		if err == nil {
			err = a.h.RuleDel(nr)
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("remove rule %s: %w", r.Pos, err))
		}
	}
	return errors.Join(errs...)
}
