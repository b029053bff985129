package model

import "encoding/json"

// Diff is what old has that new has not (gone) and what new has that old
// has not (added), in their orders. Two entries are the same when they
// read the same as JSON, so where in the files they were written (Pos,
// never marshalled) does not tell them apart: a reload compares VIPs,
// routes and rules with it.
func Diff[T any](old, new []T) (gone, added []T) {
	key := func(x T) string {
		b, _ := json.Marshal(x)
		return string(b)
	}
	in := func(xs []T) map[string]bool {
		m := make(map[string]bool, len(xs))
		for _, x := range xs {
			m[key(x)] = true
		}
		return m
	}
	o, n := in(old), in(new)
	for _, x := range old {
		if !n[key(x)] {
			gone = append(gone, x)
		}
	}
	for _, x := range new {
		if !o[key(x)] {
			added = append(added, x)
		}
	}
	return gone, added
}
