package vrrp

// How keepalived turns what it tracks into priority (vrrp_track.c): each
// tracked script, interface or file contributes a number to the
// instance's total, or faults the instance; the effective priority is
// base + total clamped to 1..254, and an address owner's never moves.
// The track package decides up/down and file values; these functions are
// the arithmetic, kept here beside the one place that applies it.

// ScriptWeight is what one tracked vrrp_script or interface contributes
// (track_script, track_interface, with "weight W [reverse]"):
//
//   - weight 0: no priority change; down faults the instance (reverse:
//     up faults it);
//   - weight > 0: +W while up (reverse: while down);
//   - weight < 0: W (negative) while down (reverse: while up).
func ScriptWeight(weight int, reverse, up bool) (delta int, fault bool) {
	if reverse {
		up = !up
	}
	switch {
	case weight == 0:
		return 0, !up
	case weight > 0 && up:
		return weight, false
	case weight < 0 && !up:
		return weight, false
	}
	return 0, false
}

// FileWeight is what a tracked file holding value contributes with
// "weight W [reverse]": value*W (negated by reverse), clamped to
// -254..253, where -254 faults the instance; with weight 0, any non-zero
// value faults it.
func FileWeight(value int64, weight int, reverse bool) (delta int, fault bool) {
	if weight == 0 {
		return 0, value != 0
	}
	v := value * int64(weight)
	if reverse {
		v = -v
	}
	switch {
	case v <= -254:
		return -254, true
	case v > 253:
		v = 253
	}
	return int(v), false
}

// EffectivePriority is base + delta clamped to 1..254; the address owner
// (255) keeps 255 whatever the delta.
func EffectivePriority(base uint8, delta int) uint8 {
	if base == PriorityOwner {
		return PriorityOwner
	}
	p := int(base) + delta
	switch {
	case p < 1:
		return 1
	case p >= PriorityOwner:
		return PriorityOwner - 1
	}
	return uint8(p)
}
