package sched

// connOverhead is ip_vs_dest_conn_overhead, the load estimate of lc, wlc,
// lblc, lblcr and twos: an active connection is taken to cost 256 times an
// inactive one. int64 because the kernel compares products of it with
// weights as __s64.
func connOverhead(d *Dest) int64 {
	return int64(d.ActiveConns)<<8 + int64(d.InactConns)
}

// gcd is lib/math/gcd.c's greatest common divisor, for wrr and mh.
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// keepList copies the destination list handed to Update: the owner may
// reuse its slice, and Update is rare enough to copy.
func keepList(dests []*Dest) []*Dest {
	return append([]*Dest(nil), dests...)
}
