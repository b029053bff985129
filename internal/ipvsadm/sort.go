package ipvsadm

import (
	"net/netip"

	"github.com/keepvs/keepvs/internal/lvs"
)

// ipvsadm sorts with qsort, which glibc implements as a top-down merge
// sort, and with comparators that subtract unsigned 32-bit words into an
// int. The subtraction wraps, so the order is not numeric when addresses
// (or marks) are 2^31 or more apart: 200.0.0.1 lists before 10.0.0.1.
// msort and the comparators below reproduce both, so listings come out in
// ipvsadm's order.

func msort[T any](b []T, cmp func(a, b *T) int) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := b[:n1], b[n1:]
	msort(b1, cmp)
	msort(b2, cmp)
	tmp := make([]T, 0, n)
	i, j := 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(&b1[i], &b2[j]) <= 0 {
			tmp = append(tmp, b1[i])
			i++
		} else {
			tmp = append(tmp, b2[j])
			j++
		}
	}
	tmp = append(tmp, b1[i:]...)
	// What is left of b2 is already in place at the end.
	copy(b, tmp)
}

// words is an address as libipvs's nf_inet_addr union, in host-order
// 32-bit words: an IPv4 address in the first, zeroes after.
func words(a netip.Addr) [4]uint32 {
	var w [4]uint32
	switch {
	case a.Is4():
		w[0] = addrTo32(a)
	case a.Is6():
		b := a.As16()
		for i := range w {
			w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
		}
	}
	return w
}

// cmpAddr compares as libipvs does, word by word when the first is IPv6.
func cmpAddr(a, b netip.Addr) int {
	wa, wb := words(a), words(b)
	if a.Is6() {
		r := 0
		for i := 0; r == 0 && i < 4; i++ {
			r = int(int32(wa[i] - wb[i]))
		}
		return r
	}
	return int(int32(wa[0] - wb[0]))
}

// familyNumber is the AF_* value libipvs compares.
func familyNumber(is6 bool) int {
	if is6 {
		return 10
	}
	return 2
}

// cmpServices is ipvs_cmp_services.
func cmpServices(s1, s2 *lvs.ServiceStatus) int {
	if r := int(int32(s1.FWMark - s2.FWMark)); r != 0 {
		return r
	}
	if r := familyNumber(s1.Is6()) - familyNumber(s2.Is6()); r != 0 {
		return r
	}
	p1, p2 := int(s1.Proto), int(s2.Proto)
	a1, a2 := s1.Addr, s2.Addr
	port1, port2 := int(s1.Port), int(s2.Port)
	if s1.FWMark != 0 {
		// the kernel reports neither protocol, address nor port for a
		// fwmark service
		p1, p2, a1, a2, port1, port2 = 0, 0, netip.Addr{}, netip.Addr{}, 0, 0
	}
	if r := p1 - p2; r != 0 {
		return r
	}
	if r := cmpAddr(a1, a2); r != 0 {
		return r
	}
	return port1 - port2
}

// cmpDests is ipvs_cmp_dests.
func cmpDests(d1, d2 *lvs.DestStatus) int {
	if r := cmpAddr(d1.Addr, d2.Addr); r != 0 {
		return r
	}
	return int(d1.Port) - int(d2.Port)
}
